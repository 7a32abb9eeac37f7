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
    /// ISO 3166-1 alpha-3 country code; empty when registered without one.
    pub country: String,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// Whether a site with this code is registered.
pub async fn is_registered<C: ConnectionTrait>(conn: &C, site_code: &str) -> Result<bool, DbErr> {
    Ok(Entity::find_by_id(site_code.to_owned()).one(conn).await?.is_some())
}

/// Stores a newly registered site.
pub async fn insert<C: ConnectionTrait>(conn: &C, record: &Model) -> Result<(), DbErr> {
    Entity::insert(ActiveModel::from(record.clone()))
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// One page of sites in code order: at most `limit`, after `after`.
pub async fn list<C: ConnectionTrait>(conn: &C, after: Option<&str>, limit: u64) -> Result<Vec<Model>, DbErr> {
    use sea_orm::{QueryOrder, QuerySelect};
    let mut query = Entity::find().order_by_asc(Column::SiteCode);
    if let Some(after) = after {
        query = query.filter(Column::SiteCode.gt(after));
    }
    query.limit(limit).all(conn).await
}
