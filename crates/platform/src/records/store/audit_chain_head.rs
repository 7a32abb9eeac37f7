//! The single row holding the last sequence number and hash of the audit chain. Every append
//! updates it first, which serializes appends across transactions and replicas (the row lock
//! on PostgreSQL, the write lock on SQLite) so the chain never forks.

use sea_orm::entity::prelude::*;

/// The chain head (one row, id 1).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_chain_head")]
pub struct Model {
    /// Always 1.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: i32,
    /// Sequence of the last entry, 0 when empty.
    pub last_sequence: i64,
    /// Hash of the last entry, 64 zeros when empty.
    pub last_hash: String,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
