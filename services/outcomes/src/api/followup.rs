//! RecordFollowUp: last contact, vital status, relapse/progression and second malignancy.

use sea_orm::DatabaseTransaction;
use tonic::Request;
use trialops_domain::identifiers::SubjectId;
use trialops_platform::identity::auth::CallContext;
use trialops_platform::records::audit::{self, AuditContext, Change};
use trialops_platform::wire::fields::{self, AllFields, ensure, violation};
use trialops_platform::{AppError, records::idempotency, wire::convert as wire};
use trialops_proto::outcomes::v1 as pb;
use uuid::Uuid;

use super::{OutcomesApi, convert};
use crate::store::follow_up;

pub(super) async fn record(
    api: &OutcomesApi,
    request: Request<pb::RecordFollowUpRequest>,
) -> Result<pb::RecordFollowUpResponse, AppError> {
    let call = CallContext::of(&request)?;
    let req = request.into_inner();
    let status = convert::vital_status_from(req.vital_status).ok_or_else(|| violation("vital_status", "ALIVE or DEAD"));
    let date = |field: &'static str| move |d| wire::date(field, Some(d));
    let (request_id, _, last, status, progression, malignancy) = (
        wire::request_id("request_id", &req.request_id),
        wire::parsed("subject_id", SubjectId::parse(&req.subject_id)),
        wire::past_date("last_contact_on", req.last_contact_on.as_ref()),
        status,
        fields::optional(req.progression_on.as_ref(), date("progression_on")),
        fields::optional(req.second_malignancy_on.as_ref(), date("second_malignancy_on")),
    )
        .all()?;
    (
        ensure(
            progression.is_none_or(|p| p <= last),
            "progression_on",
            "must not be after the last contact",
        ),
        ensure(
            malignancy.is_none_or(|m| m <= last),
            "second_malignancy_on",
            "must not be after the last contact",
        ),
    )
        .all()?;
    let subject = api.deps.subject(&call, &req.subject_id).await?;
    let enrolled = subject
        .enrolled_at
        .and_then(|t| chrono::DateTime::from_timestamp(t.seconds, 0))
        .map(|d| d.date_naive());
    if enrolled.is_some_and(|e| last < e) {
        return Err(AppError::invalid("last_contact_on", "must not be before enrollment"));
    }
    let audit_ctx = AuditContext::new(call, request_id).within(&subject.trial_id, &subject.site_code);
    let record = follow_up::Model {
        id: Uuid::new_v4().to_string(),
        subject_id: req.subject_id.clone(),
        trial_id: subject.trial_id.clone(),
        last_contact_on: last,
        vital_status: status.as_str().to_owned(),
        progression_on: progression,
        second_malignancy_on: malignancy,
        recorded_at: trialops_platform::clock::now_stored(),
    };
    idempotency::execute(&api.db, "OutcomesService/RecordFollowUp", request_id, &req, move |tx| {
        Box::pin(record_in(tx, audit_ctx, record))
    })
    .await
}

/// The transaction: the contact stored and audited.
async fn record_in(
    tx: &DatabaseTransaction,
    audit_ctx: AuditContext,
    record: follow_up::Model,
) -> Result<pb::RecordFollowUpResponse, AppError> {
    follow_up::insert(tx, &record).await?;
    let change = Change::created(
        "follow_up.recorded",
        "subject",
        &record.subject_id,
        audit::to_json(&record)?,
    );
    audit::append(tx, &audit_ctx, change).await?;
    Ok(pb::RecordFollowUpResponse {
        subject_id: record.subject_id,
    })
}
