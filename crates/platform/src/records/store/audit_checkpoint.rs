//! Checkpoints the service signed. The signing key is never in the database: a changed row no
//! longer verifies.

use sea_orm::entity::prelude::*;

/// A signed checkpoint.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_checkpoints")]
pub struct Model {
    /// Entries the checkpoint covers.
    #[sea_orm(primary_key, auto_increment = false)]
    pub tree_size: i64,
    /// Root hash (hex).
    pub root_hash: String,
    /// The signed note, exactly as signed.
    #[sea_orm(column_type = "Text")]
    pub note: String,
    /// When it was signed.
    pub signed_at: DateTimeUtc,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
