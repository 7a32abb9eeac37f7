//! GetScreening, SignScreening and SignEndOfTreatment: an investigator's electronic signatures of
//! an eligibility confirmation (an eligible screening) and of an end-of-treatment record (the
//! subject's change to off protocol therapy), and the signatures shown with those records.

use sea_orm::{ConnectionTrait, DatabaseConnection};
use serde_json::Value as Json;
use tonic::Request;
use trialops_domain::identifiers::{ScreeningId, SubjectId};
use trialops_domain::subject::SubjectStatus;
use trialops_platform::AppError;
use trialops_platform::identity::auth::CallContext;
use trialops_platform::records::audit::{self, AuditContext};
use trialops_platform::records::idempotency;
use trialops_platform::records::signature::{self, Meaning, Record};
use trialops_platform::wire::convert as wire;
use trialops_platform::wire::fields::{AllFields, ensure, required};
use trialops_proto::common::v1::{AuditEvent, CommonReason, Signature};
use trialops_proto::enrollment::v1 as pb;

use super::{EnrollmentApi, convert, subjects};
use crate::store::{screening, subject};

/// Signed kind of a screening (an eligibility confirmation).
const SCREENING: &str = "screening";
/// Signed kind of an end-of-treatment record.
pub(super) const END_OF_TREATMENT: &str = "end_of_treatment";

/// The signed fields of a screening: who was screened where and when, every criterion's result
/// and every value, under which protocol version.
const SCREENING_FIELDS: &[&str] = &[
    "trial_id",
    "screening_id",
    "attempt",
    "site_code",
    "assessed_on",
    "eligible",
    "results_json",
    "values_json",
    "protocol_version",
];

/// The signed fields of an end-of-treatment record, as its status change entry holds them.
const END_OF_TREATMENT_FIELDS: &[&str] = &[
    "subject_id",
    "trial_id",
    "site_code",
    "status",
    "status_reason",
    "status_effective_on",
];

/// A screening's identifier in signatures and the audit log: trial/screening id/attempt.
fn screening_key(record: &screening::Model) -> String {
    format!("{}/{}/{}", record.trial_id, record.screening_id, record.attempt)
}

/// A screening as shown, with its signatures.
async fn shown_screening<C: ConnectionTrait>(conn: &C, record: &screening::Model) -> Result<pb::Screening, AppError> {
    let key = screening_key(record);
    let rows = signature::of_records(conn, SCREENING, &[key.as_str()]).await?;
    let content = signature::pick(&audit::to_json(record)?, SCREENING_FIELDS);
    let mut shown = convert::screening(record)?;
    shown.signatures = signature::shown(&rows, SCREENING, &key, &content);
    Ok(shown)
}

/// The screening attempt named (the latest for attempt 0) that the caller may see.
async fn find_screening<C: ConnectionTrait>(
    conn: &C,
    call: &CallContext,
    trial_id: &str,
    screening_id: &str,
    attempt: i32,
) -> Result<screening::Model, AppError> {
    let found = if attempt == 0 {
        screening::latest(conn, trial_id, screening_id).await?
    } else {
        screening::attempt(conn, trial_id, screening_id, attempt).await?
    };
    let id = format!("{trial_id}/{screening_id}/{attempt}");
    let record = found.ok_or(AppError::NotFound {
        what: "screening",
        id: id.clone(),
    })?;
    call.require_visible(&record.site_code, "screening", &id)?;
    Ok(record)
}

/// GetScreening.
pub(super) async fn get(
    api: &EnrollmentApi,
    request: Request<pb::GetScreeningRequest>,
) -> Result<pb::GetScreeningResponse, AppError> {
    let call = CallContext::of(&request)?;
    let req = request.into_inner();
    let (trial_id, screening_id, ()) = (
        required("trial_id", &req.trial_id),
        wire::parsed("screening_id", ScreeningId::parse(&req.screening_id)),
        ensure(req.attempt >= 0, "attempt", "0 for the latest, or an attempt number"),
    )
        .all()?;
    let record = find_screening(&api.db, &call, trial_id, screening_id.as_str(), req.attempt).await?;
    Ok(pb::GetScreeningResponse {
        screening: Some(shown_screening(&api.db, &record).await?),
    })
}

/// SignScreening: an eligible screening of the investigator's site, signed.
pub(super) async fn sign_screening(
    api: &EnrollmentApi,
    request: Request<pb::SignScreeningRequest>,
) -> Result<pb::SignScreeningResponse, AppError> {
    let call = CallContext::of(&request)?;
    let req = request.into_inner();
    let (request_id, trial_id, screening_id, (), meaning) = (
        wire::request_id("request_id", &req.request_id),
        required("trial_id", &req.trial_id),
        wire::parsed("screening_id", ScreeningId::parse(&req.screening_id)),
        ensure(req.attempt >= 1, "attempt", "required: the attempt signed, from 1"),
        Meaning::from_proto("meaning", req.meaning),
    )
        .all()?;
    let signer = api.signing.signer(&call)?;
    // Scoping before the idempotency record: a replay is authorized exactly as a first call.
    let (trial_id, screening_id, attempt) = (trial_id.to_owned(), screening_id.to_string(), req.attempt);
    find_screening(&api.db, &call, &trial_id, &screening_id, attempt).await?;
    let audit_ctx = AuditContext::new(call.clone(), request_id);
    let method = "EnrollmentService/SignScreening";
    idempotency::execute(&api.db, method, request_id, &req, move |tx| {
        Box::pin(async move {
            let record = find_screening(tx, &call, &trial_id, &screening_id, attempt).await?;
            if !record.eligible {
                return Err(AppError::precondition(
                    CommonReason::RecordNotSignable,
                    format!(
                        "screening {} attempt {} is not eligible: only an eligible screening is confirmed",
                        record.screening_id, record.attempt
                    ),
                ));
            }
            let key = screening_key(&record);
            let signed = Record {
                kind: SCREENING,
                id: &key,
                trial_id: &record.trial_id,
                site_code: &record.site_code,
                content: signature::pick(&audit::to_json(&record)?, SCREENING_FIELDS),
            };
            let (made, all) = signature::sign(tx, &audit_ctx, &signer, meaning, &signed).await?;
            let mut shown = convert::screening(&record)?;
            shown.signatures = signature::shown(&all, SCREENING, &key, &signed.content);
            Ok(pb::SignScreeningResponse {
                screening: Some(shown),
                signature: Some(signature::to_proto(&made, true)),
            })
        })
    })
    .await
}

/// A subject's end-of-treatment record: the audit log entry of its change to off protocol
/// therapy, if it has one. Integrate the log first to see a change just made.
async fn end_of_treatment_entry<C: ConnectionTrait>(
    conn: &C,
    subject_id: &str,
) -> Result<Option<AuditEvent>, AppError> {
    let changes = audit::of_entity_action(conn, "subject", subject_id, "subject.status_changed").await?;
    let off_therapy = SubjectStatus::OffProtocolTherapy.as_str();
    Ok(changes.into_iter().rev().find(|e| {
        serde_json::from_str::<Json>(&e.new_value_json)
            .is_ok_and(|record| record.get("status").and_then(Json::as_str) == Some(off_therapy))
    }))
}

/// The signed content of a subject's end-of-treatment record, or `None` while on protocol
/// therapy or when the subject never was off protocol therapy (withdrawn from it). Off protocol
/// therapy, the subject's row holds the record; once further on (off study, withdrawn), the
/// entry of the change to off protocol therapy does, as it stored the same row.
async fn end_of_treatment_content<C: ConnectionTrait>(
    conn: &C,
    subject: &subject::Model,
) -> Result<Option<Json>, AppError> {
    let record = match subject.status()? {
        SubjectStatus::OnProtocolTherapy => return Ok(None),
        SubjectStatus::OffProtocolTherapy => audit::to_json(subject)?,
        _ => match end_of_treatment_entry(conn, &subject.subject_id).await? {
            Some(entry) => serde_json::from_str(&entry.new_value_json).map_err(AppError::internal)?,
            None => return Ok(None),
        },
    };
    Ok(Some(signature::pick(&record, END_OF_TREATMENT_FIELDS)))
}

/// The signatures of subjects' end-of-treatment records among `rows`, as shown with the record
/// in `entry` (a `subject.status_changed` entry to off protocol therapy).
pub(super) fn end_of_treatment_signatures(
    rows: &[trialops_platform::records::store::signature::Model],
    entry: &AuditEvent,
) -> Result<Vec<Signature>, AppError> {
    let record: Json = serde_json::from_str(&entry.new_value_json).map_err(AppError::internal)?;
    let content = signature::pick(&record, END_OF_TREATMENT_FIELDS);
    Ok(signature::shown(rows, END_OF_TREATMENT, &entry.entity_id, &content))
}

/// The signatures of a subject's end-of-treatment record (none while on protocol therapy).
pub(super) async fn of_subject(db: &DatabaseConnection, subject: &subject::Model) -> Result<Vec<Signature>, AppError> {
    if subject.status()? == SubjectStatus::OnProtocolTherapy {
        return Ok(Vec::new());
    }
    let rows = signature::of_records(db, END_OF_TREATMENT, &[subject.subject_id.as_str()]).await?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let content = match end_of_treatment_content(db, subject).await? {
        Some(content) => content,
        None => {
            // Signed, so the change was committed: its entry may wait to be integrated.
            trialops_platform::records::log::integrate(db).await?;
            end_of_treatment_content(db, subject).await?.unwrap_or(Json::Null)
        }
    };
    Ok(signature::shown(&rows, END_OF_TREATMENT, &subject.subject_id, &content))
}

/// SignEndOfTreatment: the subject's change to off protocol therapy, signed.
pub(super) async fn sign_end_of_treatment(
    api: &EnrollmentApi,
    request: Request<pb::SignEndOfTreatmentRequest>,
) -> Result<pb::SignEndOfTreatmentResponse, AppError> {
    let call = CallContext::of(&request)?;
    let req = request.into_inner();
    let (request_id, subject_id, meaning) = (
        wire::request_id("request_id", &req.request_id),
        wire::parsed("subject_id", SubjectId::parse(&req.subject_id)),
        Meaning::from_proto("meaning", req.meaning),
    )
        .all()?;
    let signer = api.signing.signer(&call)?;
    let current = subjects::find(&api.db, subject_id.as_str()).await?;
    call.require_visible(&current.site_code, "subject", &current.subject_id)?;
    if !matches!(
        current.status()?,
        SubjectStatus::OnProtocolTherapy | SubjectStatus::OffProtocolTherapy
    ) {
        // Past off protocol therapy, the record is in the audit log: make every entry readable.
        trialops_platform::records::log::integrate(&api.db).await?;
    }
    let blinded = call.blinded_to_allocation();
    let audit_ctx = AuditContext::new(call, request_id);
    let method = "EnrollmentService/SignEndOfTreatment";
    idempotency::execute(&api.db, method, request_id, &req, move |tx| {
        Box::pin(async move {
            let subject = subjects::find(tx, subject_id.as_str()).await?;
            let Some(content) = end_of_treatment_content(tx, &subject).await? else {
                return Err(AppError::precondition(
                    CommonReason::RecordNotSignable,
                    format!(
                        "subject {} has no end-of-treatment record: its status never became off protocol therapy",
                        subject.subject_id
                    ),
                ));
            };
            let signed = Record {
                kind: END_OF_TREATMENT,
                id: &subject.subject_id,
                trial_id: &subject.trial_id,
                site_code: &subject.site_code,
                content,
            };
            let (made, all) = signature::sign(tx, &audit_ctx, &signer, meaning, &signed).await?;
            let mut shown = convert::subject(&subject)?;
            if blinded {
                shown.arm_code.clear();
            }
            shown.end_of_treatment_signatures =
                signature::shown(&all, END_OF_TREATMENT, &subject.subject_id, &signed.content);
            Ok(pb::SignEndOfTreatmentResponse {
                subject: Some(shown),
                signature: Some(signature::to_proto(&made, true)),
            })
        })
    })
    .await
}
