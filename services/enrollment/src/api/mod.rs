//! The gRPC API of the enrollment service: one file per RPC group, each converting the proto
//! request, asking the domain to decide, persisting through the store, and converting back.

mod accrual;
mod allocation;
mod amendments;
mod audit;
pub(crate) use audit::RECORDS;
mod commitment;
mod convert;
mod enroll;
mod parse;
mod screening;
mod signatures;
mod sites;
mod subjects;
mod trials;
mod unblinding;

use std::sync::Arc;

use sea_orm::DatabaseConnection;
use trialops_proto::enrollment::v1 as pb;
use trialops_proto::enrollment::v1::enrollment_service_server::EnrollmentService;

use crate::error::Reason;
use crate::store::site;
use crate::trials::Trials;
use trialops_platform::AppError;

/// The service state shared by every RPC.
pub struct EnrollmentApi {
    db: DatabaseConnection,
    trials: Arc<Trials>,
    trail: trialops_platform::records::log::Trail,
    /// Enrollments, one lane per trial: each trial's are committed in batches.
    lanes: enroll::Lanes,
    /// Who may sign and how recently they must have authenticated.
    signing: trialops_platform::records::signature::Signing,
}

impl EnrollmentApi {
    /// The API over a migrated database and the loaded trials, serving WatchEvents and the audit
    /// log with `trail` and taking electronic signatures by the rules of `signing`.
    pub fn new(
        db: DatabaseConnection,
        trials: Arc<Trials>,
        trail: trialops_platform::records::log::Trail,
        signing: trialops_platform::records::signature::Signing,
    ) -> Self {
        let lanes = enroll::lanes(db.clone());
        EnrollmentApi {
            db,
            trials,
            trail,
            lanes,
            signing,
        }
    }
}

/// FAILED_PRECONDITION `SITE_NOT_REGISTERED` unless the site is registered.
async fn require_registered<C: sea_orm::ConnectionTrait>(conn: &C, site_code: &str) -> Result<(), AppError> {
    if site::is_registered(conn, site_code).await? {
        return Ok(());
    }
    Err(site_not_registered(site_code))
}

/// FAILED_PRECONDITION `SITE_NOT_REGISTERED`.
fn site_not_registered(site_code: &str) -> AppError {
    AppError::FailedPrecondition {
        reason: Reason::SiteNotRegistered.into(),
        message: format!("site {site_code} is not registered; an administrator registers it with RegisterSite"),
        metadata: vec![("site_code".into(), site_code.to_owned())],
    }
}

trialops_platform::rpc_handlers! {
    impl EnrollmentService for EnrollmentApi {
        list_trials(pb::ListTrialsRequest) -> pb::ListTrialsResponse = trials::list;
        get_trial(pb::GetTrialRequest) -> pb::GetTrialResponse = trials::get;
        amend_protocol(pb::AmendProtocolRequest) -> pb::AmendProtocolResponse = amendments::amend;
        list_protocol_versions(pb::ListProtocolVersionsRequest) -> pb::ListProtocolVersionsResponse = amendments::list;
        get_protocol_version(pb::GetProtocolVersionRequest) -> pb::GetProtocolVersionResponse = amendments::get;
        register_site(pb::RegisterSiteRequest) -> pb::RegisterSiteResponse = sites::register;
        list_sites(pb::ListSitesRequest) -> pb::ListSitesResponse = sites::list;
        screen_subject(pb::ScreenSubjectRequest) -> pb::ScreenSubjectResponse = screening::screen;
        get_screening(pb::GetScreeningRequest) -> pb::GetScreeningResponse = signatures::get;
        sign_screening(pb::SignScreeningRequest) -> pb::SignScreeningResponse = signatures::sign_screening;
        sign_end_of_treatment(pb::SignEndOfTreatmentRequest) -> pb::SignEndOfTreatmentResponse
            = signatures::sign_end_of_treatment;
        enroll_subject(pb::EnrollSubjectRequest) -> pb::EnrollSubjectResponse = enroll::enroll;
        get_subject(pb::GetSubjectRequest) -> pb::GetSubjectResponse = subjects::get;
        list_subjects(pb::ListSubjectsRequest) -> pb::ListSubjectsResponse = subjects::list;
        list_status_changes(pb::ListStatusChangesRequest) -> pb::ListStatusChangesResponse = subjects::status_changes;
        change_subject_status(pb::ChangeSubjectStatusRequest) -> pb::ChangeSubjectStatusResponse
            = subjects::change_status;
        correct_subject(pb::CorrectSubjectRequest) -> pb::CorrectSubjectResponse = subjects::correct;
        mark_randomized_in_error(pb::MarkRandomizedInErrorRequest) -> pb::MarkRandomizedInErrorResponse
            = subjects::mark_in_error;
        unblind_subject(pb::UnblindSubjectRequest) -> pb::UnblindSubjectResponse = unblinding::unblind;
        list_unblindings(pb::ListUnblindingsRequest) -> pb::ListUnblindingsResponse = unblinding::list;
        simulate_allocation(pb::SimulateAllocationRequest) -> pb::SimulateAllocationResponse
            = allocation::simulate;
        close_accrual(pb::CloseAccrualRequest) -> pb::CloseAccrualResponse = accrual::close;
        open_accrual(pb::OpenAccrualRequest) -> pb::OpenAccrualResponse = accrual::open;
        list_allocations(pb::ListAllocationsRequest) -> pb::ListAllocationsResponse = commitment::list;
        reveal_allocation_key(pb::RevealAllocationKeyRequest) -> pb::RevealAllocationKeyResponse
            = commitment::reveal;
        get_allocation_summary(pb::GetAllocationSummaryRequest) -> pb::GetAllocationSummaryResponse
            = allocation::summary;
        list_audit_events(pb::ListAuditEventsRequest) -> pb::ListAuditEventsResponse = audit::list;
        verify_audit_trail(pb::VerifyAuditTrailRequest) -> pb::VerifyAuditTrailResponse = audit::verify;
        get_checkpoint(pb::GetCheckpointRequest) -> pb::GetCheckpointResponse = audit::checkpoint;
        get_inclusion_proof(pb::GetInclusionProofRequest) -> pb::GetInclusionProofResponse = audit::inclusion;
        get_consistency_proof(pb::GetConsistencyProofRequest) -> pb::GetConsistencyProofResponse = audit::consistency;
    }
    stream WatchEventsStream: watch_events(pb::WatchEventsRequest) -> pb::WatchEventsResponse = audit::watch;
}
