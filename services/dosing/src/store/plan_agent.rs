//! Each agent of a plan: its current dose level and whether it was discontinued.

use sea_orm::entity::prelude::*;
use serde::Serialize;

/// One agent of a subject's plan.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize)]
#[sea_orm(table_name = "plan_agents")]
pub struct Model {
    /// `<subject_id>|<agent_id>`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// Study subject id.
    pub subject_id: String,
    /// Agent.
    pub agent_id: String,
    /// Current dose level (0 = starting dose).
    pub dose_level: i32,
    /// Discontinued permanently.
    pub discontinued: bool,
    /// Why discontinued.
    #[sea_orm(column_type = "Text")]
    pub discontinued_reason: String,
    /// Position in the protocol's agent order.
    pub position: i32,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
