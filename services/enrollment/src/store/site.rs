//! Registered sites.

use sea_orm::entity::prelude::*;
use serde::Serialize;

/// A participating site.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize)]
#[sea_orm(table_name = "sites")]
pub struct Model {
    /// Site code.
    #[sea_orm(primary_key, auto_increment = false)]
    pub site_code: String,
    /// Institution name.
    pub name: String,
    /// When registered, UTC.
    pub registered_at: DateTimeUtc,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
