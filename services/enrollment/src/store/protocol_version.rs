//! The versions of each trial's protocol definition: the first recorded when the trial first
//! starts, each later one by an amendment. Rows are never changed or removed.

use sea_orm::entity::prelude::*;
use sea_orm::{FromQueryResult, QueryOrder, QuerySelect};
use serde::Serialize;

/// One version of a trial's protocol definition.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize)]
#[sea_orm(table_name = "protocol_versions")]
pub struct Model {
    /// The trial.
    #[sea_orm(primary_key, auto_increment = false)]
    pub trial_id: String,
    /// 1 for the first version, then 2, 3, … in the order they were recorded.
    #[sea_orm(primary_key, auto_increment = false)]
    pub ordinal: i32,
    /// The definition's `trial.protocol_version`, unique within the trial.
    pub version: String,
    /// First day in force; `None` for the first version (in force from the start).
    pub effective_on: Option<Date>,
    /// The amendment's reason, or where the first version came from.
    pub reason: String,
    /// Staff identifier of the administrator, or "protocol file".
    pub activated_by: String,
    /// When recorded, UTC.
    pub activated_at: DateTimeUtc,
    /// SHA-256 of `definition`, hex.
    pub definition_sha256: String,
    /// The definition as activated (TOML). Kept out of audit entries, which carry its hash.
    #[serde(skip)]
    pub definition: String,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// The columns every reader needs: all but the definition.
const SUMMARY: [Column; 8] = [
    Column::TrialId,
    Column::Ordinal,
    Column::Version,
    Column::EffectiveOn,
    Column::Reason,
    Column::ActivatedBy,
    Column::ActivatedAt,
    Column::DefinitionSha256,
];

/// A trial's versions, oldest first, without their definitions (`definition` is empty).
pub async fn of_trial<C: ConnectionTrait>(conn: &C, trial_id: &str) -> Result<Vec<Model>, DbErr> {
    #[derive(Debug, FromQueryResult)]
    struct Row {
        trial_id: String,
        ordinal: i32,
        version: String,
        effective_on: Option<Date>,
        reason: String,
        activated_by: String,
        activated_at: DateTimeUtc,
        definition_sha256: String,
    }
    let rows = Entity::find()
        .select_only()
        .columns(SUMMARY)
        .filter(Column::TrialId.eq(trial_id))
        .order_by_asc(Column::Ordinal)
        .into_model::<Row>()
        .all(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| Model {
            trial_id: r.trial_id,
            ordinal: r.ordinal,
            version: r.version,
            effective_on: r.effective_on,
            reason: r.reason,
            activated_by: r.activated_by,
            activated_at: r.activated_at,
            definition_sha256: r.definition_sha256,
            definition: String::new(),
        })
        .collect())
}

/// One version with its definition.
pub async fn find<C: ConnectionTrait>(conn: &C, trial_id: &str, version: &str) -> Result<Option<Model>, DbErr> {
    Entity::find()
        .filter(Column::TrialId.eq(trial_id))
        .filter(Column::Version.eq(version))
        .one(conn)
        .await
}

/// Stores a trial's first version unless one is stored already (another replica's, at the same
/// start); whether it stored it.
pub async fn insert_first<C: ConnectionTrait>(conn: &C, record: &Model) -> Result<bool, DbErr> {
    use sea_orm::sea_query::OnConflict;
    let stored = Entity::insert(ActiveModel::from(record.clone()))
        .on_conflict(
            OnConflict::columns([Column::TrialId, Column::Ordinal])
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
    Ok(stored > 0)
}

/// Stores a new version.
pub async fn insert<C: ConnectionTrait>(conn: &C, record: &Model) -> Result<(), DbErr> {
    Entity::insert(ActiveModel::from(record.clone()))
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// Screenings and subjects of `trial_id` recorded before versions were: judged under `version`,
/// the first.
pub async fn fill_in_earlier_records<C: ConnectionTrait>(conn: &C, trial_id: &str, version: &str) -> Result<(), DbErr> {
    use super::{screening, subject};
    use sea_orm::sea_query::Expr;
    screening::Entity::update_many()
        .col_expr(screening::Column::ProtocolVersion, Expr::value(version))
        .filter(screening::Column::TrialId.eq(trial_id))
        .filter(screening::Column::ProtocolVersion.eq(""))
        .exec(conn)
        .await?;
    subject::Entity::update_many()
        .col_expr(subject::Column::ProtocolVersion, Expr::value(version))
        .filter(subject::Column::TrialId.eq(trial_id))
        .filter(subject::Column::ProtocolVersion.eq(""))
        .exec(conn)
        .await?;
    Ok(())
}
