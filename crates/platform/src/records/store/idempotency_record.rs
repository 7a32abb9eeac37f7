//! One row per client request id: which RPC it was for, a fingerprint of the request, and the
//! encoded first response, written in the same transaction as the change it made.

use sea_orm::entity::prelude::*;

/// An idempotency record.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "idempotency_records")]
pub struct Model {
    /// The client's request id (UUID text).
    #[sea_orm(primary_key, auto_increment = false)]
    pub request_id: String,
    /// Full RPC name.
    pub method: String,
    /// SHA-256 (hex) of the method and the encoded request.
    pub fingerprint: String,
    /// The encoded response; empty until the operation completes in the same transaction.
    pub response: Option<Vec<u8>>,
    /// When the request was first seen, UTC.
    pub created_at: DateTimeUtc,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
