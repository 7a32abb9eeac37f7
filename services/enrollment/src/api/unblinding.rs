//! Emergency unblinding: an investigator is told a subject's arm, giving a reason; every
//! unblinding is recorded (who, in which role, why, when) and audited, so the event stream
//! notifies whoever follows `subject.unblinded` and the trial report lists it.

use tonic::Request;
use trialops_domain::identifiers::SubjectId;
use trialops_platform::AppError;
use trialops_platform::identity::auth::CallContext;
use trialops_platform::records::audit::{self, AuditContext, Change};
use trialops_platform::records::idempotency;
use trialops_platform::wire::convert::{self as wire, to_timestamp};
use trialops_platform::wire::fields::AllFields;
use trialops_platform::wire::pagination;
use trialops_proto::enrollment::v1 as pb;

use super::{EnrollmentApi, parse, subjects};
use crate::store::unblinding;

/// UnblindSubject: the subject's arm to an investigator of its site, recorded and audited.
pub(super) async fn unblind(
    api: &EnrollmentApi,
    request: Request<pb::UnblindSubjectRequest>,
) -> Result<pb::UnblindSubjectResponse, AppError> {
    let call = CallContext::of(&request)?;
    let req = request.into_inner();
    let (request_id, subject_id, reason) = (
        wire::request_id("request_id", &req.request_id),
        wire::parsed("subject_id", SubjectId::parse(&req.subject_id)),
        wire::text("reason", &req.reason, 1000),
    )
        .all()?;
    // Scoping before the idempotency record: a replay is authorized exactly as a first call.
    let current = subjects::find(&api.db, subject_id.as_str()).await?;
    call.require_visible(&current.site_code, "subject", &current.subject_id)?;
    let record = unblinding::Model {
        unblinding_id: request_id.to_string(),
        subject_id: current.subject_id,
        trial_id: current.trial_id,
        site_code: current.site_code,
        arm_code: current.arm_code,
        reason,
        unblinded_by: call.principal.subject.clone(),
        unblinded_by_role: call.principal.role.as_str().to_owned(),
        unblinded_at: trialops_platform::clock::now_stored(),
    };
    let audit_ctx = AuditContext::new(call, request_id);
    idempotency::execute(
        &api.db,
        "EnrollmentService/UnblindSubject",
        request_id,
        &req,
        move |tx| {
            Box::pin(async move {
                unblinding::insert(tx, &record).await?;
                let mut entry = Change::created(
                    "subject.unblinded",
                    "unblinding",
                    &record.unblinding_id,
                    audit::to_json(&record)?,
                )
                .within(&record.trial_id, &record.site_code);
                entry.reason = &record.reason;
                audit::append(tx, &audit_ctx, entry).await?;
                tracing::warn!(
                    subject_id = %record.subject_id,
                    unblinding_id = %record.unblinding_id,
                    "emergency unblinding"
                );
                Ok(pb::UnblindSubjectResponse {
                    unblinding: Some(to_wire(record)),
                })
            })
        },
    )
    .await
}

/// ListUnblindings: a trial's unblindings, oldest first.
pub(super) async fn list(
    api: &EnrollmentApi,
    request: Request<pb::ListUnblindingsRequest>,
) -> Result<pb::ListUnblindingsResponse, AppError> {
    let req = request.into_inner();
    let trial = parse::trial(&api.trials, &req.trial_id)??;
    let trial_id = trial.protocol.trial.id.as_str();
    let scope = format!("unblindings|{trial_id}");
    let page = pagination::page(req.page_size, &req.page_token, &scope)?;
    let rows = unblinding::of_trial(&api.db, trial_id, page.after.as_deref(), page.size + 1).await?;
    let (rows, next_page_token) = pagination::split(rows, &page, &scope, unblinding::page_key);
    Ok(pb::ListUnblindingsResponse {
        unblindings: rows.into_iter().map(to_wire).collect(),
        next_page_token,
    })
}

fn to_wire(u: unblinding::Model) -> pb::Unblinding {
    pb::Unblinding {
        unblinding_id: u.unblinding_id,
        subject_id: u.subject_id,
        trial_id: u.trial_id,
        site_code: u.site_code,
        arm_code: u.arm_code,
        reason: u.reason,
        unblinded_by: u.unblinded_by,
        unblinded_by_role: u.unblinded_by_role,
        unblinded_at: Some(to_timestamp(u.unblinded_at)),
    }
}
