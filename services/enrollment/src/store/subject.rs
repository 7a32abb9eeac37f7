//! Enrolled subjects. Updated only through status changes and corrections, each guarded by
//! `version` (optimistic locking) and audited.

use sea_orm::entity::prelude::*;
use serde::Serialize;
use trialops_domain::subject::SubjectStatus;
use trialops_platform::records;

/// An enrolled subject.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize)]
#[sea_orm(table_name = "subjects")]
pub struct Model {
    /// Study subject identifier, for example "ANBL1221-0007".
    #[sea_orm(primary_key, auto_increment = false)]
    pub subject_id: String,
    /// Trial.
    pub trial_id: String,
    /// Sequence number within the trial, from 1.
    pub subject_number: i64,
    /// Enrolling site.
    pub site_code: String,
    /// The site's screening identifier.
    pub screening_id: String,
    /// Arm assigned by randomization; never updated.
    pub arm_code: String,
    /// Current strata as a stratum key (`factor=value|…`, protocol order).
    pub strata: String,
    /// Strata used at randomization, as a stratum key; never updated.
    pub randomized_stratum: String,
    /// Consent signature date.
    pub consent_signed_on: Date,
    /// Consent form version.
    pub consent_form_version: String,
    /// Lifecycle status (domain `SubjectStatus::as_str`).
    pub status: String,
    /// Reason for the current status.
    #[sea_orm(column_type = "Text")]
    pub status_reason: String,
    /// Date the current status took effect.
    pub status_effective_on: Date,
    /// When enrolled, UTC.
    pub enrolled_at: DateTimeUtc,
    /// Last change, UTC.
    pub updated_at: DateTimeUtc,
    /// Optimistic-locking version, exposed as the etag.
    pub version: i32,
    /// Marked randomized in error (kept for intention to treat, out of per-protocol analyses).
    pub randomized_in_error: bool,
    /// Why it was marked; empty when not.
    #[sea_orm(column_type = "Text")]
    pub randomized_in_error_reason: String,
    /// The protocol version in force on the enrollment date.
    pub protocol_version: String,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// The subject a trial enrolled from this screening id, if any.
pub async fn by_screening<C: ConnectionTrait>(
    conn: &C,
    trial_id: &str,
    screening_id: &str,
) -> Result<Option<Model>, DbErr> {
    Entity::find()
        .filter(Column::TrialId.eq(trial_id))
        .filter(Column::ScreeningId.eq(screening_id))
        .one(conn)
        .await
}

/// Stores newly enrolled subjects and their allocations, in order: two statements.
pub async fn insert_enrolled<C: ConnectionTrait>(
    conn: &C,
    enrolled: &[(Model, super::allocation::Model)],
) -> Result<(), DbErr> {
    if enrolled.is_empty() {
        return Ok(());
    }
    Entity::insert_many(enrolled.iter().map(|(subject, _)| ActiveModel::from(subject.clone())))
        .exec_without_returning(conn)
        .await?;
    super::allocation::Entity::insert_many(
        enrolled
            .iter()
            .map(|(_, allocation)| super::allocation::ActiveModel::from(allocation.clone())),
    )
    .exec_without_returning(conn)
    .await?;
    Ok(())
}

impl Model {
    /// The lifecycle status; a stored name no version of trialops writes is an error.
    pub fn status(&self) -> Result<SubjectStatus, DbErr> {
        SubjectStatus::parse(&self.status).ok_or_else(|| {
            DbErr::Custom(format!(
                "subject {} has the unknown stored status {:?}",
                self.subject_id, self.status
            ))
        })
    }
}

/// A subject by its study identifier.
pub async fn find<C: ConnectionTrait>(conn: &C, subject_id: &str) -> Result<Option<Model>, DbErr> {
    Entity::find_by_id(subject_id.to_owned()).one(conn).await
}

/// Writes `updated` if the stored row is still at `expected_version`; whether it was.
pub async fn save_if_version<C: ConnectionTrait>(
    conn: &C,
    updated: &Model,
    expected_version: i32,
) -> Result<bool, DbErr> {
    let key = (Column::SubjectId, updated.subject_id.as_str());
    records::store::save_if_version(conn, updated.clone(), key, Column::Version, expected_version).await
}

/// Which subjects of a trial a list shows; empty or `None` filters match everything.
#[derive(Debug, Default)]
pub struct Filter<'a> {
    /// The trial.
    pub trial_id: &'a str,
    /// Sites asked for, and the caller's own site for a site-bound caller (both must match).
    pub sites: Vec<&'a str>,
    /// Arm.
    pub arm_code: Option<&'a str>,
    /// Status.
    pub status: Option<SubjectStatus>,
}

/// One page of subjects in subject id order: at most `limit`, after `after`.
pub async fn list<C: ConnectionTrait>(
    conn: &C,
    filter: &Filter<'_>,
    after: Option<&str>,
    limit: u64,
) -> Result<Vec<Model>, DbErr> {
    use sea_orm::{QueryOrder, QuerySelect};
    let mut query = Entity::find()
        .filter(Column::TrialId.eq(filter.trial_id))
        .order_by_asc(Column::SubjectId);
    for site in &filter.sites {
        query = query.filter(Column::SiteCode.eq(*site));
    }
    if let Some(arm) = filter.arm_code {
        query = query.filter(Column::ArmCode.eq(arm));
    }
    if let Some(status) = filter.status {
        query = query.filter(Column::Status.eq(status.as_str()));
    }
    if let Some(after) = after {
        query = query.filter(Column::SubjectId.gt(after));
    }
    query.limit(limit).all(conn).await
}

/// Subjects enrolled at `site_code` in `trial_id`.
pub async fn count_at_site<C: ConnectionTrait>(conn: &C, trial_id: &str, site_code: &str) -> Result<u64, DbErr> {
    use sea_orm::PaginatorTrait;
    Entity::find()
        .filter(Column::TrialId.eq(trial_id))
        .filter(Column::SiteCode.eq(site_code))
        .count(conn)
        .await
}

/// Subjects enrolled in `trial_id` per site, by site code.
pub async fn counts_by_site<C: ConnectionTrait>(conn: &C, trial_id: &str) -> Result<Vec<(String, i64)>, DbErr> {
    use sea_orm::sea_query::{Expr, ExprTrait};
    use sea_orm::{QueryOrder, QuerySelect};
    Entity::find()
        .select_only()
        .column(Column::SiteCode)
        .column_as(Expr::col(Column::SubjectId).count(), "subjects")
        .filter(Column::TrialId.eq(trial_id))
        .group_by(Column::SiteCode)
        .order_by_asc(Column::SiteCode)
        .into_tuple()
        .all(conn)
        .await
}

/// Subjects enrolled in `trial_id`.
pub async fn count_in_trial<C: ConnectionTrait>(conn: &C, trial_id: &str) -> Result<u64, DbErr> {
    use sea_orm::PaginatorTrait;
    Entity::find().filter(Column::TrialId.eq(trial_id)).count(conn).await
}
