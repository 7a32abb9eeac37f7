//! Treatment plans: one per subject, with the arm and site enrollment gave at creation.

use sea_orm::entity::prelude::*;
use serde::Serialize;

/// A subject's treatment plan.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize)]
#[sea_orm(table_name = "plans")]
pub struct Model {
    /// Study subject id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub subject_id: String,
    /// Trial.
    pub trial_id: String,
    /// Arm (from enrollment).
    pub arm_code: String,
    /// The subject's site (from enrollment), for worklists.
    pub site_code: String,
    /// When created, UTC.
    pub created_at: DateTimeUtc,
    /// Optimistic-locking version (the plan's etag); bumped by every modification.
    pub version: i32,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
