//! Re-derivations of response assessments: when an assessment's inputs are completed later (its
//! Curie segment scores re-entered), its responses, and those of the later assessments derived
//! against it, are derived again and appended here with the reason. The assessment as recorded
//! is never rewritten; what every read shows is the latest re-derivation ([`effective`]).

use sea_orm::QueryOrder;
use sea_orm::entity::prelude::*;
use serde::Serialize;

use super::assessment;

/// A re-derivation of one assessment.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize)]
#[sea_orm(table_name = "assessment_rederivations")]
pub struct Model {
    /// Re-derivation id (UUID).
    #[sea_orm(primary_key, auto_increment = false)]
    pub rederivation_id: String,
    /// The assessment derived again.
    pub assessment_id: String,
    /// Study subject id.
    pub subject_id: String,
    /// Trial.
    pub trial_id: String,
    /// The skeletal Curie score now known for the assessment, if this re-derivation supplied it.
    pub curie_skeletal_score: Option<i32>,
    /// Primary tumour response.
    pub primary_response: String,
    /// Metastases response.
    pub metastases_response: String,
    /// Marrow response.
    pub marrow_response: String,
    /// Derived overall response.
    pub derived_overall: String,
    /// Overall response (an override recorded with the assessment stays).
    pub overall: String,
    /// Whether any response differs from what was shown before.
    pub changed: bool,
    /// Why.
    #[sea_orm(column_type = "Text")]
    pub reason: String,
    /// Order of re-derivations (increasing in each database).
    pub sequence: i32,
    /// When, UTC.
    pub recorded_at: DateTimeUtc,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// The assessments as every read shows them: each with its latest re-derivation applied.
pub fn effective(mut assessments: Vec<assessment::Model>, rederivations: &[Model]) -> Vec<assessment::Model> {
    // Each assessment's re-derivations found by id (not by scanning them all per assessment).
    let mut by_assessment: std::collections::HashMap<&str, Vec<&Model>> = std::collections::HashMap::new();
    for r in rederivations {
        by_assessment.entry(r.assessment_id.as_str()).or_default().push(r);
    }
    for a in &mut assessments {
        let Some(mine) = by_assessment.get_mut(a.assessment_id.as_str()) else {
            continue;
        };
        mine.sort_by_key(|r| r.sequence);
        for r in mine.iter() {
            if r.curie_skeletal_score.is_some() {
                a.curie_skeletal_score = r.curie_skeletal_score;
            }
            a.primary_response.clone_from(&r.primary_response);
            a.metastases_response.clone_from(&r.metastases_response);
            a.marrow_response.clone_from(&r.marrow_response);
            a.derived_overall.clone_from(&r.derived_overall);
            a.overall.clone_from(&r.overall);
        }
    }
    assessments
}

/// A subject's assessments as shown, in date order.
pub async fn subject_assessments<C: ConnectionTrait>(
    conn: &C,
    subject_id: &str,
) -> Result<Vec<assessment::Model>, DbErr> {
    let rows = assessment::Entity::find()
        .filter(assessment::Column::SubjectId.eq(subject_id))
        .order_by_asc(assessment::Column::AssessedOn)
        .order_by_asc(assessment::Column::AssessmentId)
        .all(conn)
        .await?;
    let rederived = Entity::find()
        .filter(Column::SubjectId.eq(subject_id))
        .all(conn)
        .await?;
    Ok(effective(rows, &rederived))
}

/// A trial's assessments as shown.
pub async fn trial_assessments<C: ConnectionTrait>(conn: &C, trial_id: &str) -> Result<Vec<assessment::Model>, DbErr> {
    // In subject order, as the analyses read them (one merge pass with the subjects).
    let rows = assessment::Entity::find()
        .filter(assessment::Column::TrialId.eq(trial_id))
        .order_by_asc(assessment::Column::SubjectId)
        .order_by_asc(assessment::Column::AssessedOn)
        .order_by_asc(assessment::Column::AssessmentId)
        .all(conn)
        .await?;
    let rederived = Entity::find().filter(Column::TrialId.eq(trial_id)).all(conn).await?;
    Ok(effective(rows, &rederived))
}

/// Assessments of a trial whose responses a re-derivation changed.
pub async fn changed_count<C: ConnectionTrait>(conn: &C, trial_id: &str) -> Result<usize, DbErr> {
    let changed = Entity::find()
        .filter(Column::TrialId.eq(trial_id))
        .filter(Column::Changed.eq(true))
        .all(conn)
        .await?;
    Ok(changed
        .iter()
        .map(|r| r.assessment_id.as_str())
        .collect::<std::collections::BTreeSet<_>>()
        .len())
}

/// How many re-derivations are stored (their sequence numbers continue from it).
pub async fn count<C: ConnectionTrait>(conn: &C) -> Result<u64, DbErr> {
    use sea_orm::PaginatorTrait;
    Entity::find().count(conn).await
}

/// Stores a re-derivation.
pub async fn insert<C: ConnectionTrait>(conn: &C, row: &Model) -> Result<(), DbErr> {
    Entity::insert(ActiveModel::from(row.clone()))
        .exec_without_returning(conn)
        .await?;
    Ok(())
}
