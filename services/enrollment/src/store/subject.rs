//! Enrolled subjects. Updated only through status changes and corrections, each guarded by
//! `version` (optimistic locking) and audited.

use sea_orm::entity::prelude::*;
use serde::Serialize;

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
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
