//! GetSubject, ListSubjects, ChangeSubjectStatus and CorrectSubject.

use std::sync::Arc;

use chrono::NaiveDate;
use sea_orm::{ConnectionTrait, DatabaseTransaction};
use tonic::Request;
use trialops_domain::identifiers::SubjectId;
use trialops_domain::strata::{parse_stratum_key, stratum_key};
use trialops_domain::subject::{StatusChangeRefusal, SubjectStatus, check_status_change};
use trialops_platform::AppError;
use trialops_platform::identity::auth::CallContext;
use trialops_platform::records::audit::{self, AuditContext, Change};
use trialops_platform::records::idempotency::{self, RequestId};
use trialops_platform::records::signature;
use trialops_platform::wire::fields::{self, AllFields, Field, violation};
use trialops_platform::wire::{convert as wire, pagination};
use trialops_proto::common::v1::AuditEvent;
use trialops_proto::enrollment::v1 as pb;

use super::parse::{self, require_accepted_version};
use super::{EnrollmentApi, convert, signatures};
use crate::error::Reason;
use crate::store::subject;
use crate::trials::Trial;

pub(super) async fn find<C: ConnectionTrait>(conn: &C, subject_id: &str) -> Result<subject::Model, AppError> {
    subject::find(conn, subject_id)
        .await?
        .ok_or_else(|| AppError::NotFound {
            what: "subject",
            id: subject_id.to_owned(),
        })
}

/// Writes `updated` if the row is still at `expected_version`; ABORTED otherwise.
async fn save<C: ConnectionTrait>(conn: &C, updated: &subject::Model, expected_version: i32) -> Result<(), AppError> {
    if subject::save_if_version(conn, updated, expected_version).await? {
        return Ok(());
    }
    Err(AppError::Aborted(
        "the subject changed since it was read; read it again and retry".into(),
    ))
}

fn require_etag(current: &subject::Model, expected: i32) -> Result<(), AppError> {
    if current.version != expected {
        return Err(AppError::Aborted(format!(
            "stale etag: the subject is at etag {}; read it again and retry",
            current.version
        )));
    }
    Ok(())
}

/// Saves a changed subject (if still at `version`), audits it and returns its wire form.
async fn commit<C: ConnectionTrait>(
    conn: &C,
    ctx: &AuditContext,
    action: &str,
    current: &subject::Model,
    mut updated: subject::Model,
    version: i32,
    reason: &str,
) -> Result<pb::Subject, AppError> {
    updated.updated_at = trialops_platform::clock::now_stored();
    updated.version = version + 1;
    save(conn, &updated, version).await?;
    audit::append(
        conn,
        ctx,
        Change::updated(
            action,
            "subject",
            &updated.subject_id,
            audit::to_json(current)?,
            audit::to_json(&updated)?,
            reason,
        )
        .within(&updated.trial_id, &updated.site_code),
    )
    .await?;
    convert::subject(&updated)
}

pub(super) async fn get(
    api: &EnrollmentApi,
    request: Request<pb::GetSubjectRequest>,
) -> Result<pb::GetSubjectResponse, AppError> {
    let call = CallContext::of(&request)?;
    let req = request.into_inner();
    if req.subject_id.is_empty() {
        return Err(AppError::invalid("subject_id", "required"));
    }
    let record = find(&api.db, &req.subject_id).await?;
    call.require_visible(&record.site_code, "subject", &record.subject_id)?;
    let mut subject = convert::subject(&record)?;
    if call.blinded_to_allocation() {
        subject.arm_code.clear();
    }
    subject.end_of_treatment_signatures = signatures::of_subject(&api.db, &record).await?;
    Ok(pb::GetSubjectResponse { subject: Some(subject) })
}

pub(super) async fn list(
    api: &EnrollmentApi,
    request: Request<pb::ListSubjectsRequest>,
) -> Result<pb::ListSubjectsResponse, AppError> {
    let call = CallContext::of(&request)?;
    let req = request.into_inner();
    if req.trial_id.is_empty() {
        return Err(AppError::invalid("trial_id", "required"));
    }
    let trial = api.trials.get(&req.trial_id)?;
    if call.blinded_to_allocation() && !req.arm_code.is_empty() {
        return Err(AppError::PermissionDenied(
            "arm_code: central reviewers are blinded to allocation".into(),
        ));
    }
    let known_arm = req.arm_code.is_empty() || trial.protocol.arm(&req.arm_code).is_some();
    let status = convert::status_from_proto(req.status);
    let any_status = req.status == pb::SubjectStatus::Unspecified as i32;
    (
        fields::ensure(known_arm, "arm_code", "not an arm of this trial"),
        fields::ensure(status.is_some() || any_status, "status", "not a SubjectStatus value"),
    )
        .all()?;

    let scope = format!(
        "subjects|{}|{}|{}|{}",
        req.trial_id, req.site_code, req.arm_code, req.status
    );
    let page = pagination::page(req.page_size, &req.page_token, &scope)?;
    let mut sites: Vec<&str> = Vec::new();
    if !req.site_code.is_empty() {
        sites.push(&req.site_code);
    }
    // A site-bound caller lists only their site (another site's filter matches nothing).
    if let Some(own) = &call.site_scope {
        sites.push(own);
    }
    let filter = subject::Filter {
        trial_id: &req.trial_id,
        sites,
        arm_code: (!req.arm_code.is_empty()).then_some(req.arm_code.as_str()),
        status,
    };
    let rows = subject::list(&api.db, &filter, page.after.as_deref(), page.size + 1).await?;
    let (rows, next_page_token) = pagination::split(rows, &page, &scope, |s| s.subject_id.clone());
    let mut subjects: Vec<pb::Subject> = rows.iter().map(convert::subject).collect::<Result<_, _>>()?;
    if call.blinded_to_allocation() {
        subjects.iter_mut().for_each(|s| s.arm_code.clear());
    }
    Ok(pb::ListSubjectsResponse {
        subjects,
        next_page_token,
    })
}

/// A ChangeSubjectStatus request, parsed.
struct ChangeStatus {
    request_id: RequestId,
    subject_id: SubjectId,
    version: i32,
    to: SubjectStatus,
    reason: String,
    effective_on: NaiveDate,
}

impl TryFrom<&pb::ChangeSubjectStatusRequest> for ChangeStatus {
    type Error = AppError;

    /// The command, or INVALID_ARGUMENT naming every bad field.
    fn try_from(req: &pb::ChangeSubjectStatusRequest) -> Result<ChangeStatus, AppError> {
        let to = convert::status_from_proto(req.new_status).ok_or_else(|| {
            violation(
                "new_status",
                "required: one of ON_PROTOCOL_THERAPY, OFF_PROTOCOL_THERAPY, OFF_STUDY, WITHDRAWN",
            )
        });
        let (request_id, subject_id, version, to, reason, effective_on) = (
            wire::request_id("request_id", &req.request_id),
            wire::parsed("subject_id", SubjectId::parse(&req.subject_id)),
            wire::etag("etag", &req.etag),
            to,
            wire::text("reason", &req.reason, 1000),
            wire::past_date("effective_on", req.effective_on.as_ref()),
        )
            .all()?;
        Ok(ChangeStatus {
            request_id,
            subject_id,
            version,
            to,
            reason,
            effective_on,
        })
    }
}

pub(super) async fn change_status(
    api: &EnrollmentApi,
    request: Request<pb::ChangeSubjectStatusRequest>,
) -> Result<pb::ChangeSubjectStatusResponse, AppError> {
    let call = CallContext::of(&request)?;
    let req = request.into_inner();
    let command = ChangeStatus::try_from(&req)?;
    // Scoping before the idempotency record: a replay is authorized exactly as a first call.
    let current = find(&api.db, command.subject_id.as_str()).await?;
    call.require_visible(&current.site_code, "subject", &current.subject_id)?;
    let visible = call.clone();
    let audit_ctx = AuditContext::new(call, command.request_id);
    let method = "EnrollmentService/ChangeSubjectStatus";
    idempotency::execute(&api.db, method, command.request_id, &req, move |tx| {
        Box::pin(change_status_in(tx, visible, audit_ctx, command))
    })
    .await
}

/// The transaction: the lifecycle's decision on the stored subject, then the change, audited.
async fn change_status_in(
    tx: &DatabaseTransaction,
    visible: CallContext,
    audit_ctx: AuditContext,
    command: ChangeStatus,
) -> Result<pb::ChangeSubjectStatusResponse, AppError> {
    let current = find(tx, command.subject_id.as_str()).await?;
    visible.require_visible(&current.site_code, "subject", &current.subject_id)?;
    require_etag(&current, command.version)?;
    let from = current.status()?;
    let to = command.to;
    match check_status_change(from, to, command.effective_on, current.enrolled_at.date_naive()) {
        Ok(()) => {}
        Err(StatusChangeRefusal::NotAllowed { from, to }) => {
            return Err(AppError::FailedPrecondition {
                reason: Reason::InvalidStatusTransition.into(),
                message: format!("a subject {} cannot become {}", from.as_str(), to.as_str()),
                metadata: vec![("from".into(), from.as_str().into()), ("to".into(), to.as_str().into())],
            });
        }
        Err(StatusChangeRefusal::BeforeEnrollment) => {
            return Err(AppError::invalid(
                "effective_on",
                "must not be before the enrollment date",
            ));
        }
    }
    let mut updated = current.clone();
    updated.status = to.as_str().to_owned();
    updated.status_reason = command.reason.clone();
    updated.status_effective_on = command.effective_on;
    let action = "subject.status_changed";
    let subject = commit(
        tx,
        &audit_ctx,
        action,
        &current,
        updated,
        command.version,
        &command.reason,
    )
    .await?;
    Ok(pb::ChangeSubjectStatusResponse { subject: Some(subject) })
}

/// MarkRandomizedInError: the subject flagged, with the reason, audited; the arm never changes.
pub(super) async fn mark_in_error(
    api: &EnrollmentApi,
    request: Request<pb::MarkRandomizedInErrorRequest>,
) -> Result<pb::MarkRandomizedInErrorResponse, AppError> {
    let call = CallContext::of(&request)?;
    let req = request.into_inner();
    let (request_id, subject_id, version, reason) = (
        wire::request_id("request_id", &req.request_id),
        wire::parsed("subject_id", SubjectId::parse(&req.subject_id)),
        wire::etag("etag", &req.etag),
        wire::text("reason", &req.reason, 1000),
    )
        .all()?;
    // Scoping before the idempotency record: a replay is authorized exactly as a first call.
    let current = find(&api.db, subject_id.as_str()).await?;
    call.require_visible(&current.site_code, "subject", &current.subject_id)?;
    let visible = call.clone();
    let audit_ctx = AuditContext::new(call, request_id);
    let method = "EnrollmentService/MarkRandomizedInError";
    idempotency::execute(&api.db, method, request_id, &req, move |tx| {
        Box::pin(async move {
            let current = find(tx, subject_id.as_str()).await?;
            visible.require_visible(&current.site_code, "subject", &current.subject_id)?;
            require_etag(&current, version)?;
            if current.randomized_in_error {
                return Err(AppError::precondition(
                    Reason::AlreadyRandomizedInError,
                    format!(
                        "subject {} is already marked randomized in error: {}",
                        current.subject_id, current.randomized_in_error_reason
                    ),
                ));
            }
            let mut updated = current.clone();
            updated.randomized_in_error = true;
            updated.randomized_in_error_reason = reason.clone();
            let action = "subject.randomized_in_error";
            let subject = commit(tx, &audit_ctx, action, &current, updated, version, &reason).await?;
            Ok(pb::MarkRandomizedInErrorResponse { subject: Some(subject) })
        })
    })
    .await
}

pub(super) async fn correct(
    api: &EnrollmentApi,
    request: Request<pb::CorrectSubjectRequest>,
) -> Result<pb::CorrectSubjectResponse, AppError> {
    let call = CallContext::of(&request)?;
    let req = request.into_inner();
    // What needs no stored data is checked first; strata need the subject's trial.
    let (request_id, subject_id, version, reason, consent) = (
        wire::request_id("request_id", &req.request_id),
        wire::parsed("subject_id", SubjectId::parse(&req.subject_id)),
        wire::etag("etag", &req.etag),
        wire::text("reason", &req.reason, 1000),
        corrected_consent(&req),
    )
        .all()?;
    let current = find(&api.db, subject_id.as_str()).await?;
    call.require_visible(&current.site_code, "subject", &current.subject_id)?;
    let trial = api.trials.get(&current.trial_id)?;
    let corrected = (!req.strata.is_empty()).then_some(req.strata.as_slice());
    let strata = fields::optional(corrected, |s| parse::strata(&trial, s, false))?;
    if let Some((_, form_version)) = &consent {
        require_accepted_version(&trial, form_version)?;
    }
    let correction = Correction {
        subject_id,
        version,
        reason,
        consent,
        strata,
        trial,
    };
    let visible = call.clone();
    let audit_ctx = AuditContext::new(call, request_id);
    let method = "EnrollmentService/CorrectSubject";
    idempotency::execute(&api.db, method, request_id, &req, move |tx| {
        Box::pin(correct_in(tx, visible, audit_ctx, correction))
    })
    .await
}

/// The consent to correct, if any; without consent the request must correct strata.
fn corrected_consent(req: &pb::CorrectSubjectRequest) -> Field<Option<(NaiveDate, String)>> {
    match &req.consent {
        Some(consent) => parse::consent(Some(consent)).map(Some),
        None if req.strata.is_empty() => {
            Err(violation("consent", "set consent or strata: the values to correct").into())
        }
        None => Ok(None),
    }
}

/// A CorrectSubject request, parsed against the stored subject's trial.
struct Correction {
    subject_id: SubjectId,
    version: i32,
    reason: String,
    consent: Option<(NaiveDate, String)>,
    strata: Option<trialops_domain::strata::Strata>,
    trial: Arc<Trial>,
}

/// The transaction: the corrected values on the stored subject (never its arm or randomized
/// stratum), refused when they change nothing, audited.
async fn correct_in(
    tx: &DatabaseTransaction,
    visible: CallContext,
    audit_ctx: AuditContext,
    correction: Correction,
) -> Result<pb::CorrectSubjectResponse, AppError> {
    let current = find(tx, correction.subject_id.as_str()).await?;
    visible.require_visible(&current.site_code, "subject", &current.subject_id)?;
    require_etag(&current, correction.version)?;
    let mut updated = current.clone();
    if let Some((signed_on, form_version)) = correction.consent {
        if signed_on > current.enrolled_at.date_naive() {
            return Err(AppError::invalid(
                "consent.signed_on",
                "consent must be signed before enrollment",
            ));
        }
        updated.consent_signed_on = signed_on;
        updated.consent_form_version = form_version;
    }
    if let Some(corrections) = correction.strata {
        let mut merged: trialops_domain::strata::Strata = parse_stratum_key(&current.strata).into_iter().collect();
        merged.extend(corrections);
        updated.strata = stratum_key(&correction.trial.protocol, &merged);
    }
    // The arm and the randomized stratum are never corrected (intention to treat).
    if updated == current {
        return Err(AppError::precondition(
            Reason::CorrectionChangesNothing,
            "the corrected values equal the recorded ones",
        ));
    }
    let (action, version, reason) = ("subject.corrected", correction.version, correction.reason.as_str());
    let subject = commit(tx, &audit_ctx, action, &current, updated, version, reason).await?;
    Ok(pb::CorrectSubjectResponse { subject: Some(subject) })
}

/// The fields of a subject record a status change sets, as its audit entry holds them.
#[derive(serde::Deserialize)]
struct StatusRecord {
    subject_id: String,
    status: String,
    status_reason: String,
    status_effective_on: NaiveDate,
}

/// A `subject.status_changed` audit entry read back as the status, reason and date it recorded.
pub(super) fn status_change(e: &AuditEvent) -> Result<pb::StatusChange, AppError> {
    let record: StatusRecord = serde_json::from_str(&e.new_value_json).map_err(AppError::internal)?;
    let status = SubjectStatus::parse(&record.status).ok_or_else(|| {
        AppError::internal(anyhow::anyhow!(
            "audit entry {} holds the unknown status {:?}",
            e.sequence,
            record.status
        ))
    })?;
    Ok(pb::StatusChange {
        subject_id: record.subject_id,
        status: convert::status_to_proto(status) as i32,
        reason: record.status_reason,
        effective_on: Some(wire::to_date(record.status_effective_on)),
        changed_at: e.occurred_at,
        signatures: Vec::new(),
    })
}

/// ListStatusChanges: the trial's `subject.status_changed` audit entries in log order, each read
/// back as the status, reason and date it recorded.
pub(super) async fn status_changes(
    api: &EnrollmentApi,
    request: Request<pb::ListStatusChangesRequest>,
) -> Result<pb::ListStatusChangesResponse, AppError> {
    let req = request.into_inner();
    if req.trial_id.is_empty() {
        return Err(AppError::invalid("trial_id", "required"));
    }
    api.trials.get(&req.trial_id)?;
    let scope = format!("status_changes|{}", req.trial_id);
    let page = pagination::page(req.page_size, &req.page_token, &scope)?;
    let after = match &page.after {
        None => 0,
        Some(token) => token
            .parse::<i64>()
            .map_err(|_| AppError::invalid("page_token", "not a token this list issued"))?,
    };
    trialops_platform::records::log::integrate(&api.db).await?;
    let entries = trialops_platform::records::audit::of_trial_action(
        &api.db,
        &req.trial_id,
        "subject.status_changed",
        after,
        page.size + 1,
    )
    .await?;
    let (entries, next_page_token) = pagination::split(entries, &page, &scope, |e| e.sequence.to_string());
    let ended: Vec<&str> = entries.iter().map(|e| e.entity_id.as_str()).collect();
    let signed = signature::of_records(&api.db, signatures::END_OF_TREATMENT, &ended).await?;
    let changes = entries
        .iter()
        .map(|e| {
            let mut change = status_change(e)?;
            if change.status == convert::status_to_proto(SubjectStatus::OffProtocolTherapy) as i32 {
                change.signatures = signatures::end_of_treatment_signatures(&signed, e)?;
            }
            Ok(change)
        })
        .collect::<Result<Vec<_>, AppError>>()?;
    Ok(pb::ListStatusChangesResponse {
        changes,
        next_page_token,
    })
}
