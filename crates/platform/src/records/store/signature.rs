//! Electronic signatures: one row per signature, only ever inserted
//! ([`crate::records::signature`] decides what one is).

use sea_orm::entity::prelude::*;
use serde::Serialize;

/// An electronic signature of one record.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize)]
#[sea_orm(table_name = "signatures")]
pub struct Model {
    /// Signature id (UUID).
    #[sea_orm(primary_key, auto_increment = false)]
    pub signature_id: String,
    /// Kind of record signed, for example "adverse_event".
    pub record_type: String,
    /// The signed record's identifier.
    pub record_id: String,
    /// The record's trial.
    pub trial_id: String,
    /// The record's site.
    pub site_code: String,
    /// The signer's staff identifier.
    pub signer: String,
    /// The signer's printed name.
    pub printed_name: String,
    /// The role signed in.
    pub signer_role: String,
    /// The signer's site, empty when none.
    pub signer_site: String,
    /// "reviewed", "approved" or "responsible_for".
    pub meaning: String,
    /// When signed, UTC.
    pub signed_at: DateTimeUtc,
    /// When the signer last authenticated before signing, UTC.
    pub authenticated_at: DateTimeUtc,
    /// SHA-256 (hex) of the signed content.
    pub content_sha256: String,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
