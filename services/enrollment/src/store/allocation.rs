//! Randomization allocations: which position of which stratum's sequence each subject took.
//! With the trial's secret, an auditor recomputes every arm from (stratum, position).

use sea_orm::entity::prelude::*;
use serde::Serialize;

/// One allocation.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize)]
#[sea_orm(table_name = "allocations")]
pub struct Model {
    /// The subject.
    #[sea_orm(primary_key, auto_increment = false)]
    pub subject_id: String,
    /// Trial.
    pub trial_id: String,
    /// Stratum key at randomization.
    pub stratum: String,
    /// 0-based position in the stratum's sequence.
    pub position: i64,
    /// Arm assigned.
    pub arm_code: String,
    /// When allocated, UTC.
    pub allocated_at: DateTimeUtc,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// Subjects randomized per `(stratum, arm)` of a trial, in stratum then arm order.
pub async fn counts<C: ConnectionTrait>(conn: &C, trial_id: &str) -> Result<Vec<(String, String, i64)>, DbErr> {
    use sea_orm::sea_query::{Expr, ExprTrait};
    use sea_orm::{QueryOrder, QuerySelect};
    Entity::find()
        .select_only()
        .column(Column::Stratum)
        .column(Column::ArmCode)
        .column_as(Expr::col(Column::SubjectId).count(), "subjects")
        .filter(Column::TrialId.eq(trial_id))
        .group_by(Column::Stratum)
        .group_by(Column::ArmCode)
        .order_by_asc(Column::Stratum)
        .order_by_asc(Column::ArmCode)
        .into_tuple()
        .all(conn)
        .await
}

/// One page of a trial's allocations in subject order, after `after`, at most `limit`.
pub async fn of_trial<C: ConnectionTrait>(
    conn: &C,
    trial_id: &str,
    after: Option<&str>,
    limit: u64,
) -> Result<Vec<Model>, DbErr> {
    use sea_orm::{QueryOrder, QuerySelect};
    let mut query = Entity::find()
        .filter(Column::TrialId.eq(trial_id))
        .order_by_asc(Column::SubjectId);
    if let Some(after) = after {
        query = query.filter(Column::SubjectId.gt(after));
    }
    query.limit(limit).all(conn).await
}
