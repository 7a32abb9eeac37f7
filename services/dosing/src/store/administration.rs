//! Planned and recorded administrations: the pharmacy's and ward's worklist.

use sea_orm::entity::prelude::*;
use serde::Serialize;
use trialops_domain::dosing::administration::AdministrationStatus;
use trialops_platform::records;

/// One administration.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize)]
#[sea_orm(table_name = "administrations")]
pub struct Model {
    /// Administration id (UUID).
    #[sea_orm(primary_key, auto_increment = false)]
    pub administration_id: String,
    /// Study subject id.
    pub subject_id: String,
    /// The subject's site.
    pub site_code: String,
    /// Cycle.
    pub cycle_number: i32,
    /// Agent.
    pub agent_id: String,
    /// Day of the cycle.
    pub cycle_day: i32,
    /// Planned date.
    pub planned_on: Date,
    /// `<planned_on>|<subject_id>|<cycle>|<agent>|<day>`: the worklist order, unique.
    pub worklist_key: String,
    /// Prescribed dose.
    pub prescribed_dose: String,
    /// Unit.
    pub unit: String,
    /// "planned", "given", "partially_given", "held", "not_given".
    pub status: String,
    /// Dose given; empty until recorded.
    pub actual_dose: String,
    /// Start of administration.
    pub started_at: Option<DateTimeUtc>,
    /// End of administration.
    pub ended_at: Option<DateTimeUtc>,
    /// Deviation beyond the protocol tolerance.
    pub deviation_flagged: bool,
    /// Reason (held, not given, partial).
    #[sea_orm(column_type = "Text")]
    pub reason: String,
    /// Optimistic-locking version (etag).
    pub version: i32,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl Model {
    /// The status; a stored name no version of trialops writes is an error, never a guess.
    pub fn status(&self) -> Result<AdministrationStatus, DbErr> {
        stored_status(&self.administration_id, &self.status)
    }
}

fn stored_status(administration_id: &str, name: &str) -> Result<AdministrationStatus, DbErr> {
    AdministrationStatus::parse(name).ok_or_else(|| {
        DbErr::Custom(format!(
            "administration {administration_id} has the unknown stored status {name:?}"
        ))
    })
}

/// What a subject's exposure reads of one of its administrations (the other columns are not
/// read: a trial's exposures read every administration of it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dosed {
    /// Study subject id.
    pub subject_id: String,
    /// Cycle.
    pub cycle_number: i32,
    /// Agent.
    pub agent_id: String,
    /// Unit.
    pub unit: String,
    /// Prescribed dose (stored decimal text).
    pub prescribed_dose: String,
    /// Dose given; empty until recorded.
    pub actual_dose: String,
    /// Status.
    pub status: AdministrationStatus,
}

/// The [`Dosed`] rows of `subject_ids`' administrations.
pub async fn dosed<C: ConnectionTrait>(conn: &C, subject_ids: &[String]) -> Result<Vec<Dosed>, DbErr> {
    use sea_orm::QuerySelect;
    type Row = (String, String, i32, String, String, String, String, String);
    let rows: Vec<Row> = Entity::find()
        .select_only()
        .columns([
            Column::AdministrationId,
            Column::SubjectId,
            Column::CycleNumber,
            Column::AgentId,
            Column::Unit,
            Column::PrescribedDose,
            Column::ActualDose,
            Column::Status,
        ])
        .filter(Column::SubjectId.is_in(subject_ids.iter().cloned()))
        .into_tuple()
        .all(conn)
        .await?;
    rows.into_iter()
        .map(
            |(id, subject_id, cycle_number, agent_id, unit, prescribed_dose, actual_dose, status)| {
                Ok(Dosed {
                    status: stored_status(&id, &status)?,
                    subject_id,
                    cycle_number,
                    agent_id,
                    unit,
                    prescribed_dose,
                    actual_dose,
                })
            },
        )
        .collect()
}

/// An administration by its id.
pub async fn find<C: ConnectionTrait>(conn: &C, administration_id: &str) -> Result<Option<Model>, DbErr> {
    Entity::find_by_id(administration_id.to_owned()).one(conn).await
}

/// Writes `updated` if the stored row is still at `expected_version`; whether it was.
pub async fn save_if_version<C: ConnectionTrait>(
    conn: &C,
    updated: &Model,
    expected_version: i32,
) -> Result<bool, DbErr> {
    let key = (Column::AdministrationId, updated.administration_id.as_str());
    records::store::save_if_version(conn, updated.clone(), key, Column::Version, expected_version).await
}

/// One page of a site's worklist: administrations whose worklist key (date first) lies in
/// `[from_key, to_key)`, in key order, at most `limit`, after `after`.
pub async fn worklist<C: ConnectionTrait>(
    conn: &C,
    site_code: &str,
    (from_key, to_key): (&str, &str),
    after: Option<&str>,
    limit: u64,
) -> Result<Vec<Model>, DbErr> {
    use sea_orm::{QueryOrder, QuerySelect};
    let mut query = Entity::find()
        .filter(Column::SiteCode.eq(site_code))
        .filter(Column::WorklistKey.gte(from_key))
        .filter(Column::WorklistKey.lt(to_key))
        .order_by_asc(Column::WorklistKey);
    if let Some(after) = after {
        query = query.filter(Column::WorklistKey.gt(after));
    }
    query.limit(limit).all(conn).await
}

/// One page of a subject's administrations (only recorded ones, if asked) in worklist-key
/// order, at most `limit`, after `after`.
pub async fn of_subject<C: ConnectionTrait>(
    conn: &C,
    subject_id: &str,
    recorded_only: bool,
    after: Option<&str>,
    limit: u64,
) -> Result<Vec<Model>, DbErr> {
    use sea_orm::{QueryOrder, QuerySelect};
    let mut query = Entity::find()
        .filter(Column::SubjectId.eq(subject_id))
        .order_by_asc(Column::WorklistKey);
    if recorded_only {
        query = query.filter(Column::Status.ne(AdministrationStatus::Planned.as_str()));
    }
    if let Some(after) = after {
        query = query.filter(Column::WorklistKey.gt(after));
    }
    query.limit(limit).all(conn).await
}

/// A subject's administrations of one agent still open (planned or held).
pub async fn open_of_agent<C: ConnectionTrait>(
    conn: &C,
    subject_id: &str,
    agent_id: &str,
) -> Result<Vec<Model>, DbErr> {
    let open = AdministrationStatus::ALL
        .into_iter()
        .filter(|s| s.is_open())
        .map(AdministrationStatus::as_str);
    Entity::find()
        .filter(Column::SubjectId.eq(subject_id))
        .filter(Column::AgentId.eq(agent_id))
        .filter(Column::Status.is_in(open))
        .all(conn)
        .await
}

/// Writes a changed administration (its version already moved on by the caller).
pub async fn save<C: ConnectionTrait>(conn: &C, record: &Model) -> Result<(), DbErr> {
    use sea_orm::ActiveModelTrait;
    ActiveModel::from(record.clone()).reset_all().update(conn).await?;
    Ok(())
}
