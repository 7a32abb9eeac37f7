//! The gRPC API of the dosing service: one file per RPC group.

mod administrations;
mod audit;
pub(crate) use audit::RECORDS;
mod convert;
mod cycles;
mod exposure;
mod plans;

use std::collections::BTreeMap;
use std::sync::Arc;

use sea_orm::{ConnectionTrait, DatabaseConnection};
use trialops_domain::protocol::{Agent, Protocol};
use trialops_platform::AppError;
use trialops_proto::dosing::v1 as pb;
use trialops_proto::dosing::v1::dosing_service_server::DosingService;

use crate::enrollment::Enrollment;
use crate::error::Reason;
use crate::store::{plan, plan_agent};
use trialops_platform::identity::auth::CallContext;

/// The service state shared by every RPC.
pub struct DosingApi {
    db: DatabaseConnection,
    enrollment: Enrollment,
    trail: trialops_platform::records::log::Trail,
}

impl DosingApi {
    /// The API over a migrated database and an enrollment client (which also tells the protocol
    /// version in force), serving WatchEvents and the audit log with `trail`.
    pub fn new(db: DatabaseConnection, enrollment: Enrollment, trail: trialops_platform::records::log::Trail) -> Self {
        DosingApi { db, enrollment, trail }
    }

    /// The protocol of `trial_id` in force today.
    async fn protocol_today(&self, call: &CallContext, trial_id: &str) -> Result<Arc<Protocol>, AppError> {
        let today = trialops_platform::clock::now().date_naive();
        self.enrollment.protocol_on(call, trial_id, today).await
    }

    /// The protocol version `administration`'s cycle was dosed under (in force on its day 1), by
    /// trial id (empty without an administration, or its plan or cycle: the recording then
    /// finds none).
    async fn protocols_of_cycle(
        &self,
        call: &CallContext,
        administration: Option<&crate::store::administration::Model>,
    ) -> Result<Arc<BTreeMap<String, Arc<Protocol>>>, AppError> {
        let mut protocols = BTreeMap::new();
        let Some(a) = administration else {
            return Ok(Arc::new(protocols));
        };
        let started = crate::store::cycle::for_subject(&self.db, &a.subject_id).await?;
        let day_1 = started
            .iter()
            .find(|c| c.cycle_number == a.cycle_number)
            .map(|c| c.start_date);
        if let (Some(found), Some(day_1)) = (plan::find(&self.db, &a.subject_id).await?, day_1) {
            let protocol = self.enrollment.protocol_on(call, &found.trial_id, day_1).await?;
            protocols.insert(found.trial_id, protocol);
        }
        Ok(Arc::new(protocols))
    }

    /// The protocol in force today of the trial of `subject_id`'s plan, by trial id (empty when
    /// there is no plan: the change then finds none). A plan the caller may not see answers as
    /// no plan at all (asked before the idempotency record, so a replay is scoped as a first
    /// call).
    async fn protocols_of_plan(
        &self,
        call: &CallContext,
        subject_id: &str,
    ) -> Result<Arc<BTreeMap<String, Arc<Protocol>>>, AppError> {
        let mut protocols = BTreeMap::new();
        let found = plan::find(&self.db, subject_id).await?;
        if found.as_ref().is_some_and(|p| !call.sees_site(&p.site_code)) {
            return Err(no_plan(subject_id));
        }
        if let Some(found) = found {
            protocols.insert(
                found.trial_id.clone(),
                self.protocol_today(call, &found.trial_id).await?,
            );
        }
        Ok(Arc::new(protocols))
    }
}

/// The protocol agent `agent_id` of `arm`.
fn protocol_agent<'a>(protocol: &'a Protocol, arm: &str, agent_id: &str) -> Option<&'a Agent> {
    protocol
        .regimens
        .iter()
        .find(|r| r.arm == arm)?
        .agents
        .iter()
        .find(|a| a.id == agent_id)
}

/// A subject's plan and its agents in protocol order; FAILED_PRECONDITION without one.
async fn load_plan<C: ConnectionTrait>(
    conn: &C,
    subject_id: &str,
) -> Result<(plan::Model, Vec<plan_agent::Model>), AppError> {
    plan::with_agents(conn, subject_id)
        .await?
        .ok_or_else(|| no_plan(subject_id))
}

/// Whether `subject_id` has a treatment plan the caller may not see (another site's). Such a plan
/// answers exactly as no plan at all, so its existence is not revealed. Write handlers ask before
/// the idempotency record, so a replayed request is scoped exactly as a first call (a stored
/// answer never reaches another site).
async fn plan_hidden_from(
    db: &DatabaseConnection,
    call: &trialops_platform::identity::auth::CallContext,
    subject_id: &str,
) -> Result<bool, AppError> {
    let found = plan::find(db, subject_id).await?;
    Ok(found.is_some_and(|p| !call.sees_site(&p.site_code)))
}

/// FAILED_PRECONDITION NO_TREATMENT_PLAN: the answer for a subject without a plan, and for a plan
/// the caller may not see.
fn no_plan(subject_id: &str) -> AppError {
    AppError::precondition(
        Reason::NoTreatmentPlan,
        format!("subject {subject_id} has no treatment plan; call CreateTreatmentPlan first"),
    )
}

trialops_platform::rpc_handlers! {
    impl DosingService for DosingApi {
        create_treatment_plan(pb::CreateTreatmentPlanRequest) -> pb::CreateTreatmentPlanResponse = plans::create;
        get_treatment_plan(pb::GetTreatmentPlanRequest) -> pb::GetTreatmentPlanResponse = plans::get;
        start_cycle(pb::StartCycleRequest) -> pb::StartCycleResponse = cycles::start;
        get_cycle(pb::GetCycleRequest) -> pb::GetCycleResponse = cycles::get;
        list_administrations(pb::ListAdministrationsRequest) -> pb::ListAdministrationsResponse = administrations::list;
        get_administration(pb::GetAdministrationRequest) -> pb::GetAdministrationResponse = administrations::get;
        list_subject_administrations(pb::ListSubjectAdministrationsRequest) -> pb::ListSubjectAdministrationsResponse
            = administrations::of_subject;
        record_administration(pb::RecordAdministrationRequest) -> pb::RecordAdministrationResponse
            = administrations::record;
        apply_dose_modification(pb::ApplyDoseModificationRequest) -> pb::ApplyDoseModificationResponse = plans::modify;
        discontinue_agent(pb::DiscontinueAgentRequest) -> pb::DiscontinueAgentResponse = plans::discontinue;
        get_cumulative_exposure(pb::GetCumulativeExposureRequest) -> pb::GetCumulativeExposureResponse
            = exposure::cumulative;
        list_exposures(pb::ListExposuresRequest) -> pb::ListExposuresResponse = exposure::list;
        get_active_treatment(pb::GetActiveTreatmentRequest) -> pb::GetActiveTreatmentResponse = exposure::active;
        list_audit_events(pb::ListAuditEventsRequest) -> pb::ListAuditEventsResponse = audit::list;
        verify_audit_trail(pb::VerifyAuditTrailRequest) -> pb::VerifyAuditTrailResponse = audit::verify;
        get_checkpoint(pb::GetCheckpointRequest) -> pb::GetCheckpointResponse = audit::checkpoint;
        get_inclusion_proof(pb::GetInclusionProofRequest) -> pb::GetInclusionProofResponse = audit::inclusion;
        get_consistency_proof(pb::GetConsistencyProofRequest) -> pb::GetConsistencyProofResponse = audit::consistency;
    }
    stream WatchEventsStream: watch_events(pb::WatchEventsRequest) -> pb::WatchEventsResponse = audit::watch;
}
