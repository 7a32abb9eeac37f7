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
    /// The stored name of a [`VitalStatus`].
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

/// A subject's vital status at a contact, by its stored name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VitalStatus {
    /// Alive at the contact (`alive`).
    Alive,
    /// Dead; the contact date is the date of death (`dead`).
    Dead,
}

impl VitalStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            VitalStatus::Alive => "alive",
            VitalStatus::Dead => "dead",
        }
    }
}

impl Model {
    /// The vital status; a stored name no version writes is an error, never read as alive.
    pub fn vital_status(&self) -> Result<VitalStatus, DbErr> {
        [VitalStatus::Alive, VitalStatus::Dead]
            .into_iter()
            .find(|s| s.as_str() == self.vital_status)
            .ok_or_else(|| {
                DbErr::Custom(format!(
                    "follow-up {} has the unknown stored vital status {:?}",
                    self.id, self.vital_status
                ))
            })
    }
}

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
