//! Recorded screenings: one row per attempt, never changed afterwards.

use sea_orm::QueryOrder;
use sea_orm::entity::prelude::*;
use serde::Serialize;

/// A screening attempt of a candidate.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize)]
#[sea_orm(table_name = "screenings")]
pub struct Model {
    /// Row id (UUID).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// Trial.
    pub trial_id: String,
    /// The site's screening identifier.
    pub screening_id: String,
    /// 1 for the first attempt.
    pub attempt: i32,
    /// Screening site.
    pub site_code: String,
    /// Assessment date.
    pub assessed_on: Date,
    /// All criteria met.
    pub eligible: bool,
    /// Per-criterion results, JSON array of {criterion_id, outcome, detail}.
    #[sea_orm(column_type = "Text")]
    pub results_json: String,
    /// The screening values as supplied, JSON object.
    #[sea_orm(column_type = "Text")]
    pub values_json: String,
    /// When recorded, UTC.
    pub recorded_at: DateTimeUtc,
    /// The protocol version whose criteria judged it (in force on `assessed_on`).
    pub protocol_version: String,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// The latest screening attempt of a candidate of a trial, if any.
pub async fn latest<C: ConnectionTrait>(conn: &C, trial_id: &str, screening_id: &str) -> Result<Option<Model>, DbErr> {
    Entity::find()
        .filter(Column::TrialId.eq(trial_id))
        .filter(Column::ScreeningId.eq(screening_id))
        .order_by_desc(Column::Attempt)
        .one(conn)
        .await
}

/// One screening attempt of a candidate of a trial, if recorded.
pub async fn attempt<C: ConnectionTrait>(
    conn: &C,
    trial_id: &str,
    screening_id: &str,
    attempt: i32,
) -> Result<Option<Model>, DbErr> {
    Entity::find()
        .filter(Column::TrialId.eq(trial_id))
        .filter(Column::ScreeningId.eq(screening_id))
        .filter(Column::Attempt.eq(attempt))
        .one(conn)
        .await
}

/// Stores a screening attempt.
pub async fn insert<C: ConnectionTrait>(conn: &C, record: &Model) -> Result<(), DbErr> {
    Entity::insert(ActiveModel::from(record.clone()))
        .exec_without_returning(conn)
        .await?;
    Ok(())
}
