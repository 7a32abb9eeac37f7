//! The log's Merkle tree as stored hashes: the leaf hashes and the root of every complete
//! subtree, at the index the Go checksum database's layout gives them (`tlog_tiles`'s
//! `stored_hash_index`), about two per entry. Written only by the sequencer.

use sea_orm::entity::prelude::*;

/// One stored hash.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_tree_hashes")]
pub struct Model {
    /// Stored-hash index.
    #[sea_orm(primary_key, auto_increment = false)]
    pub stored_index: i64,
    /// The 32-byte SHA-256 hash.
    pub hash: Vec<u8>,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
