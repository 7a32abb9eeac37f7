//! Accrual closures an administrator placed: on a whole trial (empty site code) or on one site.
//! A row is a closure in force; opening accrual again deletes it (the audit trail keeps both).

use sea_orm::entity::prelude::*;
use serde::Serialize;

/// A closure in force.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize)]
#[sea_orm(table_name = "accrual_closures")]
pub struct Model {
    /// `<trial_id>|<site_code>`, or the trial id alone for the whole trial (the audit trail's
    /// entity id).
    #[sea_orm(primary_key, auto_increment = false)]
    pub scope: String,
    /// Trial.
    pub trial_id: String,
    /// Site; empty for the whole trial.
    pub site_code: String,
    /// Why accrual was closed.
    pub reason: String,
    /// When, UTC.
    pub closed_at: DateTimeUtc,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// The key of the closure of `site_code` (empty: the whole trial) in `trial_id`.
pub fn scope(trial_id: &str, site_code: &str) -> String {
    if site_code.is_empty() {
        trial_id.to_owned()
    } else {
        format!("{trial_id}|{site_code}")
    }
}

/// The closure in force on `site_code` (empty: the whole trial), if any.
pub async fn find<C: ConnectionTrait>(conn: &C, trial_id: &str, site_code: &str) -> Result<Option<Model>, DbErr> {
    Entity::find_by_id(scope(trial_id, site_code)).one(conn).await
}

/// Every closure in force in a trial (the trial's own first, then by site code).
pub async fn of_trial<C: ConnectionTrait>(conn: &C, trial_id: &str) -> Result<Vec<Model>, DbErr> {
    use sea_orm::QueryOrder;
    Entity::find()
        .filter(Column::TrialId.eq(trial_id))
        .order_by_asc(Column::SiteCode)
        .all(conn)
        .await
}

/// Stores a closure.
pub async fn insert<C: ConnectionTrait>(conn: &C, record: &Model) -> Result<(), DbErr> {
    Entity::insert(ActiveModel::from(record.clone()))
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// Ends a closure.
pub async fn delete<C: ConnectionTrait>(conn: &C, record: &Model) -> Result<(), DbErr> {
    Entity::delete_by_id(record.scope.clone()).exec(conn).await?;
    Ok(())
}
