//! Started cycles with the measurements they were dosed from. Decimals are canonical text so
//! both SQLite and PostgreSQL keep them exact.

use sea_orm::entity::prelude::*;
use serde::Serialize;

/// A started cycle.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize)]
#[sea_orm(table_name = "cycles")]
pub struct Model {
    /// `<subject_id>|<cycle_number>`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// Study subject id.
    pub subject_id: String,
    /// 1-based.
    pub cycle_number: i32,
    /// Day 1.
    pub start_date: Date,
    /// Height used, cm.
    pub height_cm: String,
    /// Weight used, kg.
    pub weight_kg: String,
    /// BSA, m², rounded per protocol.
    pub bsa_m2: String,
    /// ANC at start, /µL.
    pub anc_per_ul: String,
    /// Platelets at start, /µL.
    pub platelets_per_ul: String,
    /// When the counts were measured, UTC.
    pub measured_at: DateTimeUtc,
    /// Days late against the due date.
    pub delay_days: i32,
    /// A pharmacist confirmed flagged measurements.
    pub implausible_confirmed: bool,
    /// When recorded, UTC.
    pub created_at: DateTimeUtc,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
