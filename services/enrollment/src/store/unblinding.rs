//! Emergency unblindings: each disclosure of a subject's arm to an investigator, with who, why
//! and when. Never updated or deleted.

use sea_orm::entity::prelude::*;
use serde::Serialize;

/// One unblinding.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize)]
#[sea_orm(table_name = "unblindings")]
pub struct Model {
    /// The request id of the call that unblinded.
    #[sea_orm(primary_key, auto_increment = false)]
    pub unblinding_id: String,
    /// The subject.
    pub subject_id: String,
    /// Its trial.
    pub trial_id: String,
    /// Its site.
    pub site_code: String,
    /// The arm disclosed.
    pub arm_code: String,
    /// Why.
    #[sea_orm(column_type = "Text")]
    pub reason: String,
    /// Who, as authenticated.
    pub unblinded_by: String,
    /// The role acted in.
    pub unblinded_by_role: String,
    /// When, UTC.
    pub unblinded_at: DateTimeUtc,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// Records an unblinding.
pub async fn insert<C: ConnectionTrait>(conn: &C, unblinding: &Model) -> Result<(), DbErr> {
    Entity::insert(ActiveModel::from(unblinding.clone()))
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// The key a page of unblindings is cut after: the time in microseconds, then the id.
pub fn page_key(unblinding: &Model) -> String {
    format!(
        "{}|{}",
        unblinding.unblinded_at.timestamp_micros(),
        unblinding.unblinding_id
    )
}

/// One page of a trial's unblindings, oldest first (then by id), after the [`page_key`] `after`
/// (one that does not parse starts from the beginning), at most `limit`.
pub async fn of_trial<C: ConnectionTrait>(
    conn: &C,
    trial_id: &str,
    after: Option<&str>,
    limit: u64,
) -> Result<Vec<Model>, DbErr> {
    use sea_orm::{QueryOrder, QuerySelect};
    let mut query = Entity::find()
        .filter(Column::TrialId.eq(trial_id))
        .order_by_asc(Column::UnblindedAt)
        .order_by_asc(Column::UnblindingId);
    let after = after
        .and_then(|key| key.split_once('|'))
        .and_then(|(micros, id)| Some((chrono::DateTime::from_timestamp_micros(micros.parse().ok()?)?, id)));
    if let Some((at, id)) = after {
        query = query.filter(trialops_platform::records::store::after_pair(
            Column::UnblindedAt,
            at,
            Column::UnblindingId,
            id,
        ));
    }
    query.limit(limit).all(conn).await
}
