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

/// Whether a site with this code is registered.
pub async fn is_registered<C: ConnectionTrait>(conn: &C, site_code: &str) -> Result<bool, DbErr> {
    Ok(Entity::find_by_id(site_code.to_owned()).one(conn).await?.is_some())
}
