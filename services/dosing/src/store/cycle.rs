//! Started cycles with the measurements they were dosed from. Decimals are canonical text so
//! both SQLite and PostgreSQL keep them exact.

use sea_orm::QueryOrder;
use sea_orm::entity::prelude::*;
use serde::Serialize;

/// A started cycle.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize)]
#[sea_orm(table_name = "cycles")]
pub struct Model {
    /// `<subject_id>|<cycle_number>`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// Study subject id.
    pub subject_id: String,
    /// 1-based.
    pub cycle_number: i32,
    /// Day 1.
    pub start_date: Date,
    /// Height used, cm.
    pub height_cm: String,
    /// Weight used, kg.
    pub weight_kg: String,
    /// BSA, m², rounded per protocol.
    pub bsa_m2: String,
    /// ANC at start, /µL.
    pub anc_per_ul: String,
    /// Platelets at start, /µL.
    pub platelets_per_ul: String,
    /// When the counts were measured, UTC.
    pub measured_at: DateTimeUtc,
    /// Days late against the due date.
    pub delay_days: i32,
    /// A pharmacist confirmed flagged measurements.
    pub implausible_confirmed: bool,
    /// When recorded, UTC.
    pub created_at: DateTimeUtc,
    /// The protocol version it was dosed under (in force on day 1).
    pub protocol_version: String,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// A subject's started cycles, in number order.
pub async fn for_subject<C: ConnectionTrait>(conn: &C, subject_id: &str) -> Result<Vec<Model>, DbErr> {
    Entity::find()
        .filter(Column::SubjectId.eq(subject_id))
        .order_by_asc(Column::CycleNumber)
        .all(conn)
        .await
}

/// One cycle of a subject, with its doses in plan order.
pub async fn with_doses<C: ConnectionTrait>(
    conn: &C,
    subject_id: &str,
    number: i32,
) -> Result<Option<(Model, Vec<super::dose::Model>)>, DbErr> {
    use super::dose;
    let Some(found) = Entity::find_by_id(format!("{subject_id}|{number}")).one(conn).await? else {
        return Ok(None);
    };
    let doses = dose::Entity::find()
        .filter(dose::Column::SubjectId.eq(subject_id))
        .filter(dose::Column::CycleNumber.eq(number))
        .order_by_asc(dose::Column::Position)
        .all(conn)
        .await?;
    Ok(Some((found, doses)))
}

/// Stores a started cycle: the cycle, its doses and its calendar of administrations.
pub async fn insert_started<C: ConnectionTrait>(
    conn: &C,
    cycle: &Model,
    doses: &[super::dose::Model],
    administrations: &[super::administration::Model],
) -> Result<(), DbErr> {
    use super::{administration, dose};
    Entity::insert(ActiveModel::from(cycle.clone()))
        .exec_without_returning(conn)
        .await?;
    dose::Entity::insert_many(doses.iter().cloned().map(dose::ActiveModel::from))
        .exec_without_returning(conn)
        .await?;
    administration::Entity::insert_many(administrations.iter().cloned().map(administration::ActiveModel::from))
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// The cycle running on `on` (the latest started on or before it) and its agents in plan order.
pub async fn running_on<C: ConnectionTrait>(
    conn: &C,
    subject_id: &str,
    on: Date,
) -> Result<Option<(Model, Vec<String>)>, DbErr> {
    use super::dose;
    let running = Entity::find()
        .filter(Column::SubjectId.eq(subject_id))
        .filter(Column::StartDate.lte(on))
        .order_by_desc(Column::StartDate)
        .one(conn)
        .await?;
    let Some(running) = running else {
        return Ok(None);
    };
    let agents = dose::Entity::find()
        .filter(dose::Column::SubjectId.eq(subject_id))
        .filter(dose::Column::CycleNumber.eq(running.cycle_number))
        .order_by_asc(dose::Column::Position)
        .all(conn)
        .await?;
    Ok(Some((running, agents.into_iter().map(|d| d.agent_id).collect())))
}

/// How many cycles a subject has started.
pub async fn count_for_subject<C: ConnectionTrait>(conn: &C, subject_id: &str) -> Result<u64, DbErr> {
    use sea_orm::PaginatorTrait;
    Entity::find()
        .filter(Column::SubjectId.eq(subject_id))
        .count(conn)
        .await
}

/// Cycles of `trial_id` started before versions were kept: dosed under `version`, the definition
/// the service then ran.
pub async fn fill_in_version<C: ConnectionTrait>(conn: &C, trial_id: &str, version: &str) -> Result<(), DbErr> {
    use sea_orm::sea_query::{Expr, ExprTrait, Query};
    let of_trial = Query::select()
        .column(super::plan::Column::SubjectId)
        .from(super::plan::Entity)
        .and_where(Expr::col(super::plan::Column::TrialId).eq(trial_id))
        .to_owned();
    Entity::update_many()
        .col_expr(Column::ProtocolVersion, Expr::value(version))
        .filter(Column::ProtocolVersion.eq(""))
        .filter(Column::SubjectId.in_subquery(of_trial))
        .exec(conn)
        .await?;
    Ok(())
}

/// Day 1 of cycle `number` of `subject_id` with the trial of the subject's plan, in one query;
/// `None` when either is missing.
pub async fn day_1_and_trial<C: ConnectionTrait>(
    conn: &C,
    subject_id: &str,
    number: i32,
) -> Result<Option<(Date, String)>, DbErr> {
    use sea_orm::sea_query::{Expr, ExprTrait, Query};
    let plans = super::plan::Entity;
    let stmt = Query::select()
        .column((Entity, Column::StartDate))
        .column((plans, super::plan::Column::TrialId))
        .from(Entity)
        .inner_join(
            plans,
            Expr::col((plans, super::plan::Column::SubjectId)).equals((Entity, Column::SubjectId)),
        )
        .and_where(Expr::col((Entity, Column::Id)).eq(format!("{subject_id}|{number}")))
        .to_owned();
    let Some(row) = conn.query_one(&stmt).await? else {
        return Ok(None);
    };
    Ok(Some((row.try_get("", "start_date")?, row.try_get("", "trial_id")?)))
}
