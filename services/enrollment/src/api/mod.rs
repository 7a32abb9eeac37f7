//! The gRPC API of the enrollment service: one file per RPC group, each converting the proto
//! request, asking the domain to decide, persisting through the store, and converting back.

mod allocation;
mod audit;
mod convert;
mod enroll;
mod parse;
mod screening;
mod sites;
mod subjects;
mod trials;

use std::sync::Arc;

use chrono::{Days, NaiveDate};
use sea_orm::DatabaseConnection;
use tonic::{Request, Response, Status};
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
}

impl EnrollmentApi {
    /// The API over a migrated database and the loaded trials.
    pub fn new(db: DatabaseConnection, trials: Arc<Trials>) -> Self {
        EnrollmentApi { db, trials }
    }
}

/// The latest date a site may record (dates are site-local; a site east of UTC may already be
/// one day ahead).
fn latest_site_date() -> NaiveDate {
    let today = trialops_platform::clock::now().date_naive();
    today.checked_add_days(Days::new(1)).unwrap_or(today)
}

/// FAILED_PRECONDITION `SITE_NOT_REGISTERED` unless the site is registered.
async fn require_registered<C: sea_orm::ConnectionTrait>(conn: &C, site_code: &str) -> Result<(), AppError> {
    if site::is_registered(conn, site_code).await? {
        return Ok(());
    }
    Err(AppError::FailedPrecondition {
        reason: Reason::SiteNotRegistered.into(),
        message: format!("site {site_code} is not registered; an administrator registers it with RegisterSite"),
        metadata: vec![("site_code".into(), site_code.to_owned())],
    })
}

type RpcResult<T> = Result<Response<T>, Status>;

fn respond<T>(result: Result<T, trialops_platform::AppError>) -> RpcResult<T> {
    result.map(Response::new).map_err(Status::from)
}

#[tonic::async_trait]
impl EnrollmentService for EnrollmentApi {
    async fn list_trials(&self, request: Request<pb::ListTrialsRequest>) -> RpcResult<pb::ListTrialsResponse> {
        respond(trials::list(self, request))
    }

    async fn get_trial(&self, request: Request<pb::GetTrialRequest>) -> RpcResult<pb::GetTrialResponse> {
        respond(trials::get(self, request))
    }

    async fn register_site(&self, request: Request<pb::RegisterSiteRequest>) -> RpcResult<pb::RegisterSiteResponse> {
        respond(sites::register(self, request).await)
    }

    async fn list_sites(&self, request: Request<pb::ListSitesRequest>) -> RpcResult<pb::ListSitesResponse> {
        respond(sites::list(self, request).await)
    }

    async fn screen_subject(&self, request: Request<pb::ScreenSubjectRequest>) -> RpcResult<pb::ScreenSubjectResponse> {
        respond(screening::screen(self, request).await)
    }

    async fn enroll_subject(&self, request: Request<pb::EnrollSubjectRequest>) -> RpcResult<pb::EnrollSubjectResponse> {
        respond(enroll::enroll(self, request).await)
    }

    async fn get_subject(&self, request: Request<pb::GetSubjectRequest>) -> RpcResult<pb::GetSubjectResponse> {
        respond(subjects::get(self, request).await)
    }

    async fn list_subjects(&self, request: Request<pb::ListSubjectsRequest>) -> RpcResult<pb::ListSubjectsResponse> {
        respond(subjects::list(self, request).await)
    }

    async fn change_subject_status(
        &self,
        request: Request<pb::ChangeSubjectStatusRequest>,
    ) -> RpcResult<pb::ChangeSubjectStatusResponse> {
        respond(subjects::change_status(self, request).await)
    }

    async fn correct_subject(
        &self,
        request: Request<pb::CorrectSubjectRequest>,
    ) -> RpcResult<pb::CorrectSubjectResponse> {
        respond(subjects::correct(self, request).await)
    }

    async fn get_allocation_summary(
        &self,
        request: Request<pb::GetAllocationSummaryRequest>,
    ) -> RpcResult<pb::GetAllocationSummaryResponse> {
        respond(allocation::summary(self, request).await)
    }

    async fn list_audit_events(
        &self,
        request: Request<pb::ListAuditEventsRequest>,
    ) -> RpcResult<pb::ListAuditEventsResponse> {
        respond(audit::list(self, request).await)
    }

    async fn verify_audit_trail(
        &self,
        request: Request<pb::VerifyAuditTrailRequest>,
    ) -> RpcResult<pb::VerifyAuditTrailResponse> {
        respond(audit::verify(self, request).await)
    }
}
