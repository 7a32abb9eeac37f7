//! The gRPC API of the dosing service: one file per RPC group.

mod administrations;
mod audit;
mod convert;
mod cycles;
mod exposure;
mod plans;

use std::collections::BTreeMap;
use std::sync::Arc;

use sea_orm::{ConnectionTrait, DatabaseConnection};
use tonic::{Request, Response, Status};
use trialops_domain::protocol::{Agent, Protocol};
use trialops_platform::AppError;
use trialops_proto::dosing::v1 as pb;
use trialops_proto::dosing::v1::dosing_service_server::DosingService;

use crate::enrollment::Enrollment;
use crate::error::Reason;
use crate::store::{plan, plan_agent};

/// The service state shared by every RPC.
pub struct DosingApi {
    db: DatabaseConnection,
    protocols: Arc<BTreeMap<String, Arc<Protocol>>>,
    enrollment: Enrollment,
}

impl DosingApi {
    /// The API over a migrated database, the loaded protocols and an enrollment client.
    pub fn new(
        db: DatabaseConnection,
        protocols: Arc<BTreeMap<String, Arc<Protocol>>>,
        enrollment: Enrollment,
    ) -> Self {
        DosingApi {
            db,
            protocols,
            enrollment,
        }
    }

    fn protocol(&self, trial_id: &str) -> Result<Arc<Protocol>, AppError> {
        self.protocols.get(trial_id).cloned().ok_or_else(|| {
            AppError::internal(anyhow::anyhow!(
                "trial {trial_id} has no protocol definition in the dosing service"
            ))
        })
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

type RpcResult<T> = Result<Response<T>, Status>;

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

fn respond<T>(result: Result<T, AppError>) -> RpcResult<T> {
    result.map(Response::new).map_err(Status::from)
}

#[tonic::async_trait]
impl DosingService for DosingApi {
    async fn create_treatment_plan(
        &self,
        r: Request<pb::CreateTreatmentPlanRequest>,
    ) -> RpcResult<pb::CreateTreatmentPlanResponse> {
        respond(plans::create(self, r).await)
    }

    async fn get_treatment_plan(
        &self,
        r: Request<pb::GetTreatmentPlanRequest>,
    ) -> RpcResult<pb::GetTreatmentPlanResponse> {
        respond(plans::get(self, r).await)
    }

    async fn start_cycle(&self, r: Request<pb::StartCycleRequest>) -> RpcResult<pb::StartCycleResponse> {
        respond(cycles::start(self, r).await)
    }

    async fn get_cycle(&self, r: Request<pb::GetCycleRequest>) -> RpcResult<pb::GetCycleResponse> {
        respond(cycles::get(self, r).await)
    }

    async fn list_administrations(
        &self,
        r: Request<pb::ListAdministrationsRequest>,
    ) -> RpcResult<pb::ListAdministrationsResponse> {
        respond(administrations::list(self, r).await)
    }

    async fn record_administration(
        &self,
        r: Request<pb::RecordAdministrationRequest>,
    ) -> RpcResult<pb::RecordAdministrationResponse> {
        respond(administrations::record(self, r).await)
    }

    async fn apply_dose_modification(
        &self,
        r: Request<pb::ApplyDoseModificationRequest>,
    ) -> RpcResult<pb::ApplyDoseModificationResponse> {
        respond(plans::modify(self, r).await)
    }

    async fn discontinue_agent(
        &self,
        r: Request<pb::DiscontinueAgentRequest>,
    ) -> RpcResult<pb::DiscontinueAgentResponse> {
        respond(plans::discontinue(self, r).await)
    }

    async fn get_cumulative_exposure(
        &self,
        r: Request<pb::GetCumulativeExposureRequest>,
    ) -> RpcResult<pb::GetCumulativeExposureResponse> {
        respond(exposure::cumulative(self, r).await)
    }

    async fn list_exposures(&self, r: Request<pb::ListExposuresRequest>) -> RpcResult<pb::ListExposuresResponse> {
        respond(exposure::list(self, r).await)
    }

    async fn get_active_treatment(
        &self,
        r: Request<pb::GetActiveTreatmentRequest>,
    ) -> RpcResult<pb::GetActiveTreatmentResponse> {
        respond(exposure::active(self, r).await)
    }

    async fn list_audit_events(
        &self,
        r: Request<pb::ListAuditEventsRequest>,
    ) -> RpcResult<pb::ListAuditEventsResponse> {
        respond(audit::list(self, r).await)
    }

    async fn verify_audit_trail(
        &self,
        r: Request<pb::VerifyAuditTrailRequest>,
    ) -> RpcResult<pb::VerifyAuditTrailResponse> {
        respond(audit::verify(self, r).await)
    }
}
