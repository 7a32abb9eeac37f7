//! Audit entries committed with their change and not yet in the log. A write inserts here and
//! locks nothing shared; the sequencer moves the rows to [`super::audit_event`], giving each its
//! position, and deletes them here.

use sea_orm::entity::prelude::*;

/// An entry waiting for its position; the fields are those of [`super::audit_event::Model`].
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_pending")]
pub struct Model {
    /// Insertion order (the sequencer takes entries in this order).
    #[sea_orm(primary_key)]
    pub id: i64,
    /// Commit time, UTC, microseconds.
    pub occurred_at: DateTimeUtc,
    /// Principal subject.
    pub actor: String,
    /// Principal role.
    pub actor_role: String,
    /// Principal site, empty when none.
    pub actor_site: String,
    /// The system that carried the call, empty when none.
    pub actor_via: String,
    /// Action.
    pub action: String,
    /// Kind of record.
    pub entity_type: String,
    /// Record identifier.
    pub entity_id: String,
    /// JSON before, empty on creation.
    #[sea_orm(column_type = "Text")]
    pub old_value: String,
    /// JSON after.
    #[sea_orm(column_type = "Text")]
    pub new_value: String,
    /// Reason given.
    #[sea_orm(column_type = "Text")]
    pub reason: String,
    /// Client request id.
    pub request_id: String,
    /// W3C trace id, empty when untraced.
    pub trace_id: String,
    /// Trial of the changed record, empty when none.
    pub trial_id: String,
    /// Site of the changed record, empty when none.
    pub site_code: String,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
