//! Follow-up contacts: last contact, vital status, relapse/progression and second malignancy.

use sea_orm::entity::prelude::*;
use serde::Serialize;

/// A follow-up contact.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize)]
#[sea_orm(table_name = "follow_ups")]
pub struct Model {
    /// Row id (UUID).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// Study subject id.
    pub subject_id: String,
    /// Trial.
    pub trial_id: String,
    /// Last contact (or death) date.
    pub last_contact_on: Date,
    /// "alive" or "dead".
    pub vital_status: String,
    /// Relapse or progression date.
    pub progression_on: Option<Date>,
    /// Second malignancy date.
    pub second_malignancy_on: Option<Date>,
    /// When recorded, UTC.
    pub recorded_at: DateTimeUtc,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// Stores a follow-up contact.
pub async fn insert<C: ConnectionTrait>(conn: &C, record: &Model) -> Result<(), DbErr> {
    Entity::insert(ActiveModel::from(record.clone()))
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// A trial's follow-up contacts.
pub async fn of_trial<C: ConnectionTrait>(conn: &C, trial_id: &str) -> Result<Vec<Model>, DbErr> {
    Entity::find().filter(Column::TrialId.eq(trial_id)).all(conn).await
}
