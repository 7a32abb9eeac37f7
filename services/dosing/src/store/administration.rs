//! Planned and recorded administrations: the pharmacy's and ward's worklist.

use sea_orm::entity::prelude::*;
use serde::Serialize;
use trialops_domain::dosing::administration::AdministrationStatus;

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
        AdministrationStatus::parse(&self.status).ok_or_else(|| {
            DbErr::Custom(format!(
                "administration {} has the unknown stored status {:?}",
                self.administration_id, self.status
            ))
        })
    }
}
