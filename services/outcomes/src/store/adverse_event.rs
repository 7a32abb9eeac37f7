//! Adverse events. Grade and resolution change only through UpdateAdverseEvent, with a reason
//! and the previous values in the audit trail.

use sea_orm::entity::prelude::*;
use serde::Serialize;
use trialops_domain::outcomes::safety::Attribution;

/// An adverse event.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize)]
#[sea_orm(table_name = "adverse_events")]
pub struct Model {
    /// Adverse event id (UUID).
    #[sea_orm(primary_key, auto_increment = false)]
    pub adverse_event_id: String,
    /// Study subject id.
    pub subject_id: String,
    /// Trial.
    pub trial_id: String,
    /// Arm.
    pub arm_code: String,
    /// Site.
    pub site_code: String,
    /// CTCAE term.
    pub ctcae_term: String,
    /// CTCAE version.
    pub ctcae_version: String,
    /// Grade 1–5.
    pub grade: i32,
    /// Onset date.
    pub onset_on: Date,
    /// When the site became aware, UTC.
    pub site_aware_at: DateTimeUtc,
    /// Resolution date.
    pub resolved_on: Option<Date>,
    /// JSON object agent -> attribution name.
    #[sea_orm(column_type = "Text")]
    pub attributions: String,
    /// JSON array of seriousness names.
    #[sea_orm(column_type = "Text")]
    pub seriousness: String,
    /// On the protocol's expected list.
    pub expected: bool,
    /// Cycle active at onset (0 = none).
    pub cycle_at_onset: i32,
    /// JSON array of agents dosed in that cycle.
    #[sea_orm(column_type = "Text")]
    pub agents_at_onset: String,
    /// Optimistic-locking version (etag).
    pub version: i32,
    /// When recorded, UTC.
    pub recorded_at: DateTimeUtc,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl Model {
    /// Each agent's attribution, by agent; a stored name no version writes is an error (never
    /// read as unrelated, which would drop an expedited report).
    pub fn attributions(&self) -> Result<Vec<(String, Attribution)>, DbErr> {
        let stored: std::collections::BTreeMap<String, String> =
            serde_json::from_str(&self.attributions).map_err(|e| DbErr::Custom(e.to_string()))?;
        stored
            .into_iter()
            .map(|(agent, name)| match Attribution::parse(&name) {
                Some(a) => Ok((agent, a)),
                None => Err(DbErr::Custom(format!(
                    "adverse event {} has the unknown stored attribution {name:?}",
                    self.adverse_event_id
                ))),
            })
            .collect()
    }
}

/// An adverse event by its id.
pub async fn find<C: ConnectionTrait>(conn: &C, adverse_event_id: &str) -> Result<Option<Model>, DbErr> {
    Entity::find_by_id(adverse_event_id.to_owned()).one(conn).await
}

/// One page of a subject's adverse events (of `site` only, when given), by onset date then id,
/// at most `limit`, after the key `after` ("onset|id").
pub async fn of_subject<C: ConnectionTrait>(
    conn: &C,
    subject_id: &str,
    site: Option<&str>,
    after: Option<(chrono::NaiveDate, &str)>,
    limit: u64,
) -> Result<Vec<Model>, DbErr> {
    use sea_orm::{QueryOrder, QuerySelect};
    let mut query = Entity::find()
        .filter(Column::SubjectId.eq(subject_id))
        .order_by_asc(Column::OnsetOn)
        .order_by_asc(Column::AdverseEventId);
    if let Some(site) = site {
        query = query.filter(Column::SiteCode.eq(site));
    }
    if let Some((onset, id)) = after {
        query = query.filter(trialops_platform::records::store::after_pair(
            Column::OnsetOn,
            onset,
            Column::AdverseEventId,
            id,
        ));
    }
    query.limit(limit).all(conn).await
}

/// A trial's adverse events, by subject, onset and id.
pub async fn of_trial<C: ConnectionTrait>(conn: &C, trial_id: &str) -> Result<Vec<Model>, DbErr> {
    use sea_orm::QueryOrder;
    Entity::find()
        .filter(Column::TrialId.eq(trial_id))
        .order_by_asc(Column::SubjectId)
        .order_by_asc(Column::OnsetOn)
        .order_by_asc(Column::AdverseEventId)
        .all(conn)
        .await
}

/// Stores a new adverse event with its reporting obligations.
pub async fn insert_with_obligations<C: ConnectionTrait>(
    conn: &C,
    event: &Model,
    obligations: &[super::obligation::Model],
) -> Result<(), DbErr> {
    Entity::insert(ActiveModel::from(event.clone()))
        .exec_without_returning(conn)
        .await?;
    super::obligation::insert_many(conn, obligations).await
}

/// Writes a changed adverse event.
pub async fn save<C: ConnectionTrait>(conn: &C, event: &Model) -> Result<(), DbErr> {
    use sea_orm::ActiveModelTrait;
    ActiveModel::from(event.clone()).reset_all().update(conn).await?;
    Ok(())
}

/// Grade 3 or higher events of a trial, counted per term and arm: `(term, arm, events,
/// subjects)`, in term then arm order.
pub async fn severe_by_term_and_arm<C: ConnectionTrait>(
    conn: &C,
    trial_id: &str,
) -> Result<Vec<(String, String, i64, i64)>, DbErr> {
    use sea_orm::sea_query::Expr;
    use sea_orm::{QueryOrder, QuerySelect};
    Entity::find()
        .select_only()
        .column(Column::CtcaeTerm)
        .column(Column::ArmCode)
        .column_as(Expr::cust("COUNT(*)"), "events")
        .column_as(Expr::cust("COUNT(DISTINCT subject_id)"), "subjects")
        .filter(Column::TrialId.eq(trial_id))
        .filter(Column::Grade.gte(3))
        .group_by(Column::CtcaeTerm)
        .group_by(Column::ArmCode)
        .order_by_asc(Column::CtcaeTerm)
        .order_by_asc(Column::ArmCode)
        .into_tuple()
        .all(conn)
        .await
}
