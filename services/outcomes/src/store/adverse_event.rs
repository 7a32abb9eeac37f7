//! Adverse events. Grade and resolution change only through UpdateAdverseEvent, with a reason
//! and the previous values in the audit trail.

use sea_orm::entity::prelude::*;
use serde::Serialize;

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
