//! Treatment plans: one per subject, with the arm and site enrollment gave at creation.

use sea_orm::entity::prelude::*;
use serde::Serialize;

/// A subject's treatment plan.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize)]
#[sea_orm(table_name = "plans")]
pub struct Model {
    /// Study subject id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub subject_id: String,
    /// Trial.
    pub trial_id: String,
    /// Arm (from enrollment).
    pub arm_code: String,
    /// The subject's site (from enrollment), for worklists.
    pub site_code: String,
    /// When created, UTC.
    pub created_at: DateTimeUtc,
    /// Optimistic-locking version (the plan's etag); bumped by every modification.
    pub version: i32,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// A subject's plan.
pub async fn find<C: ConnectionTrait>(conn: &C, subject_id: &str) -> Result<Option<Model>, DbErr> {
    Entity::find_by_id(subject_id.to_owned()).one(conn).await
}

/// A subject's plan with its agents in protocol order.
pub async fn with_agents<C: ConnectionTrait>(
    conn: &C,
    subject_id: &str,
) -> Result<Option<(Model, Vec<super::plan_agent::Model>)>, DbErr> {
    use super::plan_agent;
    use sea_orm::QueryOrder;
    let Some(found) = find(conn, subject_id).await? else {
        return Ok(None);
    };
    let agents = plan_agent::Entity::find()
        .filter(plan_agent::Column::SubjectId.eq(subject_id))
        .order_by_asc(plan_agent::Column::Position)
        .all(conn)
        .await?;
    Ok(Some((found, agents)))
}

/// One page of a trial's plans in subject id order: at most `limit`, after `after`.
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

/// Everything the exposure of some subjects is computed from: their plans' agents (in
/// protocol order), their cycles and their administrations, in three queries.
pub struct ExposureRows {
    /// Plan agents.
    pub agents: Vec<super::plan_agent::Model>,
    /// Started cycles.
    pub cycles: Vec<super::cycle::Model>,
    /// Administrations, as an exposure reads them.
    pub administrations: Vec<super::administration::Dosed>,
}

/// [`ExposureRows`] of `subject_ids`.
pub async fn exposure_rows<C: ConnectionTrait>(conn: &C, subject_ids: &[String]) -> Result<ExposureRows, DbErr> {
    use super::{administration, cycle, plan_agent};
    use sea_orm::QueryOrder;
    let ids = || subject_ids.iter().cloned();
    Ok(ExposureRows {
        agents: plan_agent::Entity::find()
            .filter(plan_agent::Column::SubjectId.is_in(ids()))
            .order_by_asc(plan_agent::Column::Position)
            .all(conn)
            .await?,
        cycles: cycle::Entity::find()
            .filter(cycle::Column::SubjectId.is_in(ids()))
            .all(conn)
            .await?,
        administrations: administration::dosed(conn, subject_ids).await?,
    })
}

/// Stores a new plan with its agents.
pub async fn insert_with_agents<C: ConnectionTrait>(
    conn: &C,
    plan: &Model,
    agents: &[super::plan_agent::Model],
) -> Result<(), DbErr> {
    use super::plan_agent;
    Entity::insert(ActiveModel::from(plan.clone()))
        .exec_without_returning(conn)
        .await?;
    plan_agent::Entity::insert_many(agents.iter().cloned().map(plan_agent::ActiveModel::from))
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// Moves a plan from version `expected` to the next; whether it was still at `expected`.
pub async fn bump_version<C: ConnectionTrait>(conn: &C, subject_id: &str, expected: i32) -> Result<bool, DbErr> {
    let result = Entity::update_many()
        .col_expr(Column::Version, sea_orm::sea_query::Expr::value(expected + 1))
        .filter(Column::SubjectId.eq(subject_id))
        .filter(Column::Version.eq(expected))
        .exec(conn)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Writes a changed plan agent.
pub async fn save_agent<C: ConnectionTrait>(conn: &C, agent: &super::plan_agent::Model) -> Result<(), DbErr> {
    use sea_orm::ActiveModelTrait;
    super::plan_agent::ActiveModel::from(agent.clone())
        .reset_all()
        .update(conn)
        .await?;
    Ok(())
}
