//! Trials whose allocation key was revealed (once accrual closed): their sequences are public,
//! so accrual to them can never open again.

use sea_orm::entity::prelude::*;
use serde::Serialize;

/// A reveal.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize)]
#[sea_orm(table_name = "allocation_reveals")]
pub struct Model {
    /// Trial.
    #[sea_orm(primary_key, auto_increment = false)]
    pub trial_id: String,
    /// Why it was revealed (the first reveal's).
    #[sea_orm(column_type = "Text")]
    pub reason: String,
    /// When first revealed, UTC.
    pub revealed_at: DateTimeUtc,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// The trial's reveal, if its key was revealed.
pub async fn find<C: ConnectionTrait>(conn: &C, trial_id: &str) -> Result<Option<Model>, DbErr> {
    Entity::find_by_id(trial_id.to_owned()).one(conn).await
}

/// Records the reveal unless one is recorded.
pub async fn record<C: ConnectionTrait>(conn: &C, reveal: &Model) -> Result<(), DbErr> {
    Entity::insert(ActiveModel::from(reveal.clone()))
        .on_conflict_do_nothing_on([Column::TrialId])
        .exec_without_returning(conn)
        .await?;
    Ok(())
}
