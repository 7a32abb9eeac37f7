//! The gRPC API of the outcomes service: one file per RPC group.

mod audit;
pub(crate) use audit::RECORDS;
mod convert;
mod derivation;
mod export;
mod followup;
mod rederive;
mod report;
mod responses;
mod safety;
mod signatures;
mod statistics;
mod trial_data;

use std::collections::BTreeMap;
use std::sync::Arc;

use sea_orm::DatabaseConnection;
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
    trail: trialops_platform::records::log::Trail,
    /// Who may sign and how recently they must have authenticated.
    signing: trialops_platform::records::signature::Signing,
}

impl OutcomesApi {
    /// The API over a migrated database, the loaded protocols and the other services' clients,
    /// serving WatchEvents and the audit log with `trail`.
    pub fn new(
        db: DatabaseConnection,
        protocols: Arc<BTreeMap<String, Arc<Protocol>>>,
        deps: Dependencies,
        trail: trialops_platform::records::log::Trail,
        signing: trialops_platform::records::signature::Signing,
    ) -> Self {
        OutcomesApi {
            db,
            protocols,
            deps,
            trail,
            signing,
        }
    }

    fn protocol(&self, trial_id: &str) -> Result<Arc<Protocol>, AppError> {
        self.protocols.get(trial_id).cloned().ok_or_else(|| AppError::NotFound {
            what: "trial",
            id: trial_id.to_owned(),
        })
    }
}

trialops_platform::rpc_handlers! {
    impl OutcomesService for OutcomesApi {
        record_response_assessment(pb::RecordResponseAssessmentRequest) -> pb::RecordResponseAssessmentResponse
            = responses::record;
        reenter_curie_segments(pb::ReenterCurieSegmentsRequest) -> pb::ReenterCurieSegmentsResponse = rederive::reenter;
        list_response_assessments(pb::ListResponseAssessmentsRequest) -> pb::ListResponseAssessmentsResponse
            = responses::list;
        record_adverse_event(pb::RecordAdverseEventRequest) -> pb::RecordAdverseEventResponse = safety::record;
        update_adverse_event(pb::UpdateAdverseEventRequest) -> pb::UpdateAdverseEventResponse = safety::update;
        record_report_submitted(pb::RecordReportSubmittedRequest) -> pb::RecordReportSubmittedResponse
            = safety::submitted;
        list_overdue_reports(pb::ListOverdueReportsRequest) -> pb::ListOverdueReportsResponse = safety::overdue;
        get_adverse_event(pb::GetAdverseEventRequest) -> pb::GetAdverseEventResponse = safety::get;
        sign_adverse_event(pb::SignAdverseEventRequest) -> pb::SignAdverseEventResponse
            = signatures::sign_adverse_event;
        sign_response_assessment(pb::SignResponseAssessmentRequest) -> pb::SignResponseAssessmentResponse
            = signatures::sign_assessment;
        list_adverse_events(pb::ListAdverseEventsRequest) -> pb::ListAdverseEventsResponse = safety::list;
        get_response_assessment(pb::GetResponseAssessmentRequest) -> pb::GetResponseAssessmentResponse
            = responses::get;
        record_follow_up(pb::RecordFollowUpRequest) -> pb::RecordFollowUpResponse = followup::record;
        get_response_rate(pb::GetResponseRateRequest) -> pb::GetResponseRateResponse = statistics::response_rate;
        compute_simon_design(pb::ComputeSimonDesignRequest) -> pb::ComputeSimonDesignResponse
            = statistics::simon_design;
        evaluate_simon_interim(pb::EvaluateSimonInterimRequest) -> pb::EvaluateSimonInterimResponse
            = statistics::simon_interim;
        get_survival_analysis(pb::GetSurvivalAnalysisRequest) -> pb::GetSurvivalAnalysisResponse = statistics::survival;
        get_trial_report(pb::GetTrialReportRequest) -> pb::GetTrialReportResponse = report::trial_report;
        list_audit_events(pb::ListAuditEventsRequest) -> pb::ListAuditEventsResponse = audit::list;
        verify_audit_trail(pb::VerifyAuditTrailRequest) -> pb::VerifyAuditTrailResponse = audit::verify;
        get_checkpoint(pb::GetCheckpointRequest) -> pb::GetCheckpointResponse = audit::checkpoint;
        get_inclusion_proof(pb::GetInclusionProofRequest) -> pb::GetInclusionProofResponse = audit::inclusion;
        get_consistency_proof(pb::GetConsistencyProofRequest) -> pb::GetConsistencyProofResponse = audit::consistency;
    }
    stream WatchEventsStream: watch_events(pb::WatchEventsRequest) -> pb::WatchEventsResponse = audit::watch;
    stream ExportSdtmStream: export_sdtm(pb::ExportSdtmRequest) -> pb::ExportSdtmResponse = export::sdtm;
    stream ExportOdmStream: export_odm(pb::ExportOdmRequest) -> pb::ExportOdmResponse = export::odm;
}
