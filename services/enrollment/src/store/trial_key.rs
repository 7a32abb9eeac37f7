//! The fingerprint of each trial's randomization key, stored at its first allocation, so a
//! changed secret is refused before it silently breaks block balance.

use sea_orm::entity::prelude::*;

/// A trial's key fingerprint.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "trial_keys")]
pub struct Model {
    /// Trial.
    #[sea_orm(primary_key, auto_increment = false)]
    pub trial_id: String,
    /// `TrialKey::fingerprint` of the key in use.
    pub fingerprint: String,
    /// When first used, UTC.
    pub first_used_at: DateTimeUtc,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// Records `fingerprint` as the trial's key unless one is recorded; whether the recorded key is
/// this one (false: the service was started with another randomization secret).
pub async fn record_or_match<C: ConnectionTrait>(
    conn: &C,
    trial_id: &str,
    fingerprint: &str,
    now: DateTimeUtc,
) -> Result<bool, DbErr> {
    let record = Model {
        trial_id: trial_id.to_owned(),
        fingerprint: fingerprint.to_owned(),
        first_used_at: now,
    };
    Entity::insert(ActiveModel::from(record))
        .on_conflict_do_nothing_on([Column::TrialId])
        .exec_without_returning(conn)
        .await?;
    let stored = Entity::find_by_id(trial_id.to_owned()).one(conn).await?;
    Ok(stored.is_some_and(|s| s.fingerprint == fingerprint))
}

/// Records `fingerprint` as the trial's key, where none is recorded (an insert that fails if one
/// is).
pub async fn record<C: ConnectionTrait>(
    conn: &C,
    trial_id: &str,
    fingerprint: &str,
    now: DateTimeUtc,
) -> Result<(), DbErr> {
    let record = Model {
        trial_id: trial_id.to_owned(),
        fingerprint: fingerprint.to_owned(),
        first_used_at: now,
    };
    Entity::insert(ActiveModel::from(record))
        .exec_without_returning(conn)
        .await?;
    Ok(())
}
