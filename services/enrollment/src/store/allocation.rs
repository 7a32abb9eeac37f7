//! Randomization allocations: which position of which stratum's sequence each subject took.
//! With the trial's secret, an auditor recomputes every arm from (stratum, position).

use sea_orm::entity::prelude::*;
use serde::Serialize;

/// One allocation.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize)]
#[sea_orm(table_name = "allocations")]
pub struct Model {
    /// The subject.
    #[sea_orm(primary_key, auto_increment = false)]
    pub subject_id: String,
    /// Trial.
    pub trial_id: String,
    /// Stratum key at randomization.
    pub stratum: String,
    /// 0-based position in the stratum's sequence.
    pub position: i64,
    /// Arm assigned.
    pub arm_code: String,
    /// When allocated, UTC.
    pub allocated_at: DateTimeUtc,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
