//! The gRPC API of the outcomes service: one file per RPC group.

mod audit;
mod convert;
mod derivation;
mod followup;
mod rederive;
mod report;
mod responses;
mod safety;
mod statistics;
mod trial_data;

use std::collections::BTreeMap;
use std::sync::Arc;

use sea_orm::DatabaseConnection;
use tonic::{Request, Response, Status};
use trialops_domain::protocol::Protocol;
use trialops_platform::AppError;
use trialops_proto::outcomes::v1 as pb;
use trialops_proto::outcomes::v1::outcomes_service_server::OutcomesService;

use crate::deps::Dependencies;

/// The service state shared by every RPC.
pub struct OutcomesApi {
    db: DatabaseConnection,
    protocols: Arc<BTreeMap<String, Arc<Protocol>>>,
    deps: Dependencies,
}

impl OutcomesApi {
    /// The API over a migrated database, the loaded protocols and the other services' clients.
    pub fn new(db: DatabaseConnection, protocols: Arc<BTreeMap<String, Arc<Protocol>>>, deps: Dependencies) -> Self {
        OutcomesApi { db, protocols, deps }
    }

    fn protocol(&self, trial_id: &str) -> Result<Arc<Protocol>, AppError> {
        self.protocols.get(trial_id).cloned().ok_or_else(|| AppError::NotFound {
            what: "trial",
            id: trial_id.to_owned(),
        })
    }
}

type RpcResult<T> = Result<Response<T>, Status>;

fn respond<T>(result: Result<T, AppError>) -> RpcResult<T> {
    result.map(Response::new).map_err(Status::from)
}

#[tonic::async_trait]
impl OutcomesService for OutcomesApi {
    async fn record_response_assessment(
        &self,
        r: Request<pb::RecordResponseAssessmentRequest>,
    ) -> RpcResult<pb::RecordResponseAssessmentResponse> {
        respond(responses::record(self, r).await)
    }

    async fn reenter_curie_segments(
        &self,
        r: Request<pb::ReenterCurieSegmentsRequest>,
    ) -> RpcResult<pb::ReenterCurieSegmentsResponse> {
        respond(rederive::reenter(self, r).await)
    }

    async fn list_response_assessments(
        &self,
        r: Request<pb::ListResponseAssessmentsRequest>,
    ) -> RpcResult<pb::ListResponseAssessmentsResponse> {
        respond(responses::list(self, r).await)
    }

    async fn record_adverse_event(
        &self,
        r: Request<pb::RecordAdverseEventRequest>,
    ) -> RpcResult<pb::RecordAdverseEventResponse> {
        respond(safety::record(self, r).await)
    }

    async fn update_adverse_event(
        &self,
        r: Request<pb::UpdateAdverseEventRequest>,
    ) -> RpcResult<pb::UpdateAdverseEventResponse> {
        respond(safety::update(self, r).await)
    }

    async fn record_report_submitted(
        &self,
        r: Request<pb::RecordReportSubmittedRequest>,
    ) -> RpcResult<pb::RecordReportSubmittedResponse> {
        respond(safety::submitted(self, r).await)
    }

    async fn list_overdue_reports(
        &self,
        r: Request<pb::ListOverdueReportsRequest>,
    ) -> RpcResult<pb::ListOverdueReportsResponse> {
        respond(safety::overdue(self, r).await)
    }

    async fn record_follow_up(&self, r: Request<pb::RecordFollowUpRequest>) -> RpcResult<pb::RecordFollowUpResponse> {
        respond(followup::record(self, r).await)
    }

    async fn get_response_rate(
        &self,
        r: Request<pb::GetResponseRateRequest>,
    ) -> RpcResult<pb::GetResponseRateResponse> {
        respond(statistics::response_rate(self, r).await)
    }

    async fn compute_simon_design(
        &self,
        r: Request<pb::ComputeSimonDesignRequest>,
    ) -> RpcResult<pb::ComputeSimonDesignResponse> {
        respond(statistics::simon_design(r))
    }

    async fn evaluate_simon_interim(
        &self,
        r: Request<pb::EvaluateSimonInterimRequest>,
    ) -> RpcResult<pb::EvaluateSimonInterimResponse> {
        respond(statistics::simon_interim(self, r).await)
    }

    async fn get_survival_analysis(
        &self,
        r: Request<pb::GetSurvivalAnalysisRequest>,
    ) -> RpcResult<pb::GetSurvivalAnalysisResponse> {
        respond(statistics::survival(self, r).await)
    }

    async fn get_trial_report(&self, r: Request<pb::GetTrialReportRequest>) -> RpcResult<pb::GetTrialReportResponse> {
        respond(report::trial_report(self, r).await)
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
