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
