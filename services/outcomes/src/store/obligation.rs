//! Expedited-reporting obligations with their deadlines.

use sea_orm::entity::prelude::*;
use serde::Serialize;

/// A reporting obligation.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize)]
#[sea_orm(table_name = "obligations")]
pub struct Model {
    /// Obligation id (UUID).
    #[sea_orm(primary_key, auto_increment = false)]
    pub obligation_id: String,
    /// Adverse event.
    pub adverse_event_id: String,
    /// Study subject id.
    pub subject_id: String,
    /// Site.
    pub site_code: String,
    /// Kind, for example "notification_24h".
    pub kind: String,
    /// The rule that created it.
    pub rule: String,
    /// Deadline, UTC.
    pub due_at: DateTimeUtc,
    /// True until submitted (indexed with the deadline for the overdue list).
    pub open: bool,
    /// When submitted, UTC.
    pub submitted_at: Option<DateTimeUtc>,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
