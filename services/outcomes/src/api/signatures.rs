//! SignAdverseEvent and SignResponseAssessment: an investigator's electronic signature of a
//! serious adverse event report and a central reviewer's of a response assessment, and the
//! signatures shown wherever those records are.

use sea_orm::ConnectionTrait;
use serde_json::Value as Json;
use tonic::Request;
use trialops_platform::AppError;
use trialops_platform::identity::auth::CallContext;
use trialops_platform::records::audit::{self, AuditContext};
use trialops_platform::records::idempotency;
use trialops_platform::records::signature::{self, Meaning, Record};
use trialops_platform::wire::convert as wire;
use trialops_platform::wire::fields::{AllFields, required};
use trialops_proto::common::v1::CommonReason;
use trialops_proto::outcomes::v1 as pb;

use super::{OutcomesApi, convert};
use crate::store::{adverse_event, assessment, obligation};

/// Signed kind of an adverse event (a serious adverse event report).
pub(crate) const ADVERSE_EVENT: &str = "adverse_event";
/// Signed kind of a response assessment.
pub(crate) const ASSESSMENT: &str = "assessment";

/// The signed fields of an adverse event: the event as reported (term, grade, dates,
/// attributions, seriousness, expectedness, the cycle and agents at onset). The reporting
/// obligations' submissions are tracked apart and are not part of the report signed.
const ADVERSE_EVENT_FIELDS: &[&str] = &[
    "adverse_event_id",
    "subject_id",
    "trial_id",
    "site_code",
    "ctcae_term",
    "ctcae_version",
    "grade",
    "onset_on",
    "site_aware_at",
    "resolved_on",
    "attributions",
    "seriousness",
    "expected",
    "cycle_at_onset",
    "agents_at_onset",
];

/// The signed fields of a response assessment: every measurement and every derived and overall
/// response. Not the arm: a signature's hash is shown to central reviewers, who are blinded, and
/// with the arm inside it the two possible hashes would tell them the arm.
const ASSESSMENT_FIELDS: &[&str] = &[
    "assessment_id",
    "subject_id",
    "trial_id",
    "assessed_on",
    "after_cycle",
    "assessor",
    "criteria",
    "primary_mm",
    "primary_avid",
    "primary_not_involved",
    "metastases_sum_mm",
    "metastases_not_involved",
    "curie_score",
    "curie_skeletal_score",
    "fdg_avid_lesions",
    "new_lesions",
    "marrow_percent",
    "primary_response",
    "metastases_response",
    "marrow_response",
    "derived_overall",
    "overall",
    "override_reason",
    "protocol_version",
];

fn event_content(event: &adverse_event::Model) -> Result<Json, AppError> {
    Ok(signature::pick(&audit::to_json(event)?, ADVERSE_EVENT_FIELDS))
}

fn assessment_content(record: &assessment::Model) -> Result<Json, AppError> {
    Ok(signature::pick(&audit::to_json(record)?, ASSESSMENT_FIELDS))
}

/// `shown` (the wire forms of `events`, in the same order) with their signatures.
pub(super) async fn with_event_signatures<C: ConnectionTrait>(
    conn: &C,
    events: &[adverse_event::Model],
    shown: &mut [pb::AdverseEvent],
) -> Result<(), AppError> {
    let ids: Vec<&str> = events.iter().map(|e| e.adverse_event_id.as_str()).collect();
    let rows = signature::of_records(conn, ADVERSE_EVENT, &ids).await?;
    for (event, wire) in events.iter().zip(shown.iter_mut()) {
        wire.signatures = signature::shown(&rows, ADVERSE_EVENT, &event.adverse_event_id, &event_content(event)?);
    }
    Ok(())
}

/// `shown` (the wire forms of `assessments`, in the same order) with their signatures.
pub(super) async fn with_assessment_signatures<C: ConnectionTrait>(
    conn: &C,
    assessments: &[assessment::Model],
    shown: &mut [pb::ResponseAssessment],
) -> Result<(), AppError> {
    let ids: Vec<&str> = assessments.iter().map(|a| a.assessment_id.as_str()).collect();
    let rows = signature::of_records(conn, ASSESSMENT, &ids).await?;
    for (record, wire) in assessments.iter().zip(shown.iter_mut()) {
        wire.signatures = signature::shown(&rows, ASSESSMENT, &record.assessment_id, &assessment_content(record)?);
    }
    Ok(())
}

/// The adverse event `id` if the caller sees its site.
async fn visible_event<C: ConnectionTrait>(
    conn: &C,
    call: &CallContext,
    id: &str,
) -> Result<adverse_event::Model, AppError> {
    let event = adverse_event::find(conn, id).await?.ok_or_else(|| AppError::NotFound {
        what: "adverse event",
        id: id.to_owned(),
    })?;
    call.require_visible(&event.site_code, "adverse event", id)?;
    Ok(event)
}

/// SignAdverseEvent: a serious adverse event of the investigator's site, signed as its report.
pub(super) async fn sign_adverse_event(
    api: &OutcomesApi,
    request: Request<pb::SignAdverseEventRequest>,
) -> Result<pb::SignAdverseEventResponse, AppError> {
    let call = CallContext::of(&request)?;
    let req = request.into_inner();
    let (request_id, adverse_event_id, meaning) = (
        wire::request_id("request_id", &req.request_id),
        required("adverse_event_id", &req.adverse_event_id),
        Meaning::from_proto("meaning", req.meaning),
    )
        .all()?;
    let signer = api.signing.signer(&call)?;
    let id = adverse_event_id.to_owned();
    // Scoping before the idempotency record: a replay is authorized exactly as a first call.
    visible_event(&api.db, &call, &id).await?;
    let audit_ctx = AuditContext::new(call.clone(), request_id);
    let method = "OutcomesService/SignAdverseEvent";
    idempotency::execute(&api.db, method, request_id, &req, move |tx| {
        Box::pin(async move {
            let event = visible_event(tx, &call, &id).await?;
            let serious: Vec<Json> = serde_json::from_str(&event.seriousness).map_err(AppError::internal)?;
            if serious.is_empty() {
                return Err(AppError::precondition(
                    CommonReason::RecordNotSignable,
                    format!(
                        "adverse event {id} meets no seriousness criterion: it is not a serious adverse event report"
                    ),
                ));
            }
            let signed = Record {
                kind: ADVERSE_EVENT,
                id: &id,
                trial_id: &event.trial_id,
                site_code: &event.site_code,
                content: event_content(&event)?,
            };
            let (made, all) = signature::sign(tx, &audit_ctx, &signer, meaning, &signed).await?;
            let obligations = obligation::of_event(tx, &id).await?;
            let mut shown = convert::adverse_event(&event, &obligations)?;
            shown.signatures = signature::shown(&all, ADVERSE_EVENT, &id, &signed.content);
            Ok(pb::SignAdverseEventResponse {
                adverse_event: Some(shown),
                signature: Some(signature::to_proto(&made, true)),
            })
        })
    })
    .await
}

/// SignResponseAssessment: a response assessment, signed by a central reviewer.
pub(super) async fn sign_assessment(
    api: &OutcomesApi,
    request: Request<pb::SignResponseAssessmentRequest>,
) -> Result<pb::SignResponseAssessmentResponse, AppError> {
    let call = CallContext::of(&request)?;
    let req = request.into_inner();
    let (request_id, assessment_id, meaning) = (
        wire::request_id("request_id", &req.request_id),
        required("assessment_id", &req.assessment_id),
        Meaning::from_proto("meaning", req.meaning),
    )
        .all()?;
    let signer = api.signing.signer(&call)?;
    let id = assessment_id.to_owned();
    let not_found = {
        let id = id.clone();
        move || AppError::NotFound {
            what: "assessment",
            id: id.clone(),
        }
    };
    let found = assessment::find(&api.db, &id).await?.ok_or_else(&not_found)?;
    // The signature belongs to the subject's site; enrollment (with the caller's token) says
    // which, and refuses a subject the caller may not see.
    let subject = api.deps.subject(&call, &found.subject_id).await.map_err(|e| match e {
        AppError::FailedPrecondition { .. } | AppError::NotFound { .. } => not_found(),
        other => other,
    })?;
    let audit_ctx = AuditContext::new(call, request_id);
    let method = "OutcomesService/SignResponseAssessment";
    idempotency::execute(&api.db, method, request_id, &req, move |tx| {
        Box::pin(async move {
            let record = assessment::find(tx, &id).await?.ok_or_else(not_found)?;
            let signed = Record {
                kind: ASSESSMENT,
                id: &id,
                trial_id: &record.trial_id,
                site_code: &subject.site_code,
                content: assessment_content(&record)?,
            };
            let (made, all) = signature::sign(tx, &audit_ctx, &signer, meaning, &signed).await?;
            let mut shown = convert::assessment(&record)?;
            shown.signatures = signature::shown(&all, ASSESSMENT, &id, &signed.content);
            Ok(pb::SignResponseAssessmentResponse {
                assessment: Some(shown),
                signature: Some(signature::to_proto(&made, true)),
            })
        })
    })
    .await
}
