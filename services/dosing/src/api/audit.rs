//! ListAuditEvents and VerifyAuditTrail over the platform's audit trail.

use tonic::Request;
use trialops_platform::{AppError, audit};
use trialops_proto::dosing::v1 as pb;

use super::DosingApi;

pub(super) async fn list(
    api: &DosingApi,
    request: Request<pb::ListAuditEventsRequest>,
) -> Result<pb::ListAuditEventsResponse, AppError> {
    let req = request.into_inner();
    let (events, next_page_token) = audit::list(
        &api.db,
        &req.entity_type,
        &req.entity_id,
        req.page_size,
        &req.page_token,
    )
    .await?;
    Ok(pb::ListAuditEventsResponse {
        events,
        next_page_token,
    })
}

pub(super) async fn verify(
    api: &DosingApi,
    _: Request<pb::VerifyAuditTrailRequest>,
) -> Result<pb::VerifyAuditTrailResponse, AppError> {
    Ok(pb::VerifyAuditTrailResponse {
        verification: Some(audit::verify(&api.db).await?),
    })
}
