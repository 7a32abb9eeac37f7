//! The dose calculation of each agent in each cycle: inputs, formula, calculated and rounded.

use sea_orm::entity::prelude::*;
use serde::Serialize;

/// One agent's daily dose in one cycle.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize)]
#[sea_orm(table_name = "doses")]
pub struct Model {
    /// `<subject_id>|<cycle_number>|<agent_id>`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// Study subject id.
    pub subject_id: String,
    /// Cycle.
    pub cycle_number: i32,
    /// Agent.
    pub agent_id: String,
    /// Level used.
    pub dose_level: i32,
    /// Protocol dose at that level, per the agent's basis.
    pub protocol_dose: String,
    /// "per_m2", "small_child_per_kg", "per_kg" or "flat".
    pub basis: String,
    /// The calculation, written out.
    #[sea_orm(column_type = "Text")]
    pub formula: String,
    /// Before rounding.
    pub calculated: String,
    /// To prepare.
    pub rounded: String,
    /// Dose unit.
    pub unit: String,
    /// Position in the protocol's agent order.
    pub position: i32,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
