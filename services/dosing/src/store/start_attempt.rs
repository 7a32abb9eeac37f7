//! Refused cycle starts (counts below the protocol's minimums): the record of each delay.

use sea_orm::entity::prelude::*;
use serde::Serialize;

/// A refused start.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize)]
#[sea_orm(table_name = "start_attempts")]
pub struct Model {
    /// The client's request id (one record per request, however often retried).
    #[sea_orm(primary_key, auto_increment = false)]
    pub request_id: String,
    /// Study subject id.
    pub subject_id: String,
    /// Cycle that could not start.
    pub cycle_number: i32,
    /// The planned day 1.
    pub planned_start_date: Date,
    /// ANC, /µL.
    pub anc_per_ul: String,
    /// Platelets, /µL.
    pub platelets_per_ul: String,
    /// When measured, UTC.
    pub measured_at: DateTimeUtc,
    /// Which criteria were not met, with values and minimums.
    #[sea_orm(column_type = "Text")]
    pub detail: String,
    /// When recorded, UTC.
    pub recorded_at: DateTimeUtc,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// Stores a refused start once per request id; whether this call stored it (false: a retry).
pub async fn insert_once<C: ConnectionTrait>(conn: &C, attempt: &Model) -> Result<bool, DbErr> {
    let inserted = Entity::insert(ActiveModel::from(attempt.clone()))
        .on_conflict_do_nothing_on([Column::RequestId])
        .exec_without_returning(conn)
        .await?;
    Ok(matches!(inserted, sea_orm::TryInsertResult::Inserted(1)))
}
