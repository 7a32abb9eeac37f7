//! The log's head: its size and root hash (one row, id 1). Only the sequencer and the checkpoint
//! signer lock it, never a write of a clinical record, so one integrates at a time across
//! replicas (the row lock on PostgreSQL, the write lock on SQLite).

use sea_orm::entity::prelude::*;

/// The head.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_log_head")]
pub struct Model {
    /// Always 1.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: i32,
    /// Entries in the log.
    pub tree_size: i64,
    /// Root hash of the tree (hex).
    pub root_hash: String,
    /// When entries were last integrated.
    pub integrated_at: DateTimeUtc,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
