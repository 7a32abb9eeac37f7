//! One audit trail entry with its position in the transparency log. Rows are only ever inserted,
//! by the sequencer, from [`super::audit_pending`].

use sea_orm::entity::prelude::*;

/// An audit trail entry; see `trialops.common.v1.AuditEvent` for the meaning of each field.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_events")]
pub struct Model {
    /// Position in the log, from 1, without gaps (leaf `sequence - 1` of the Merkle tree).
    #[sea_orm(primary_key, auto_increment = false)]
    pub sequence: i64,
    /// Commit time, UTC, microseconds.
    pub occurred_at: DateTimeUtc,
    /// Principal subject.
    pub actor: String,
    /// Principal role.
    pub actor_role: String,
    /// Principal site, empty when none.
    pub actor_site: String,
    /// Action, for example "subject.enrolled".
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
    /// Entries written before the log: the previous entry's chain hash; empty for later ones.
    pub previous_hash: String,
    /// Entries written before the log: this entry's chain hash; empty for later ones.
    pub hash: String,
    /// The system that carried the call (verified client certificate name), empty when none.
    pub actor_via: String,
    /// Trial of the changed record, empty when none (or written before entries carried it).
    pub trial_id: String,
    /// Site of the changed record, empty when none (or written before entries carried it).
    pub site_code: String,
    /// The RFC 6962 leaf hash of the entry (hex).
    pub leaf_hash: String,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
