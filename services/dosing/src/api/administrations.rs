//! ListAdministrations (a site's worklist for a date range) and RecordAdministration.
//!
//! An administration is recorded once: given, partially given, held or not given. A held one
//! may still be recorded as given later. Anything else already recorded changes only as a
//! correction: the etag last read and a correction reason; the audit trail keeps the old value.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Days, NaiveDate, Utc};
use rust_decimal::Decimal;
use sea_orm::DatabaseTransaction;
use tonic::Request;
use trialops_domain::dosing::administration::{Recording as RecordingKind, RecordingRefusal, check_recording};
use trialops_domain::dosing::cycle::{GivenTooEarly, check_given_on};
use trialops_domain::dosing::dose::deviation_percent;
use trialops_domain::identifiers::{SiteCode, SubjectId};
use trialops_domain::protocol::Protocol;
use trialops_platform::identity::auth::CallContext;
use trialops_platform::records::audit::{self, AuditContext, Change};
use trialops_platform::wire::fields::{AllFields, Field, ensure, required, violation};
use trialops_platform::wire::{convert as wire, pagination};
use trialops_platform::{AppError, Violations, records::idempotency};
use trialops_proto::dosing::v1 as pb;

use super::{DosingApi, convert};
use crate::error::Reason;
use crate::store::{administration, plan};

/// Longest worklist range, days.
const MAX_RANGE_DAYS: i64 = 92;

pub(super) async fn list(
    api: &DosingApi,
    request: Request<pb::ListAdministrationsRequest>,
) -> Result<pb::ListAdministrationsResponse, AppError> {
    let call = CallContext::of(&request)?;
    let req = request.into_inner();
    let (_, (from, to)) = (
        wire::parsed("site_code", SiteCode::parse(&req.site_code)),
        worklist_range(&req),
    )
        .all()?;
    call.require_own_site("site_code", &req.site_code)?;
    let scope = format!("administrations|{}|{from}|{to}", req.site_code);
    let page = pagination::page(req.page_size, &req.page_token, &scope)?;
    let end = to.checked_add_days(Days::new(1)).unwrap_or(to);
    let keys = (format!("{from}|"), format!("{end}|"));
    let range = (keys.0.as_str(), keys.1.as_str());
    let rows = administration::worklist(&api.db, &req.site_code, range, page.after.as_deref(), page.size + 1).await?;
    let (rows, next_page_token) = pagination::split(rows, &page, &scope, |a| a.worklist_key.clone());
    let administrations = rows.iter().map(convert::administration).collect::<Result<_, _>>()?;
    Ok(pb::ListAdministrationsResponse {
        administrations,
        next_page_token,
    })
}

/// GetAdministration: one administration the caller's site sees.
pub(super) async fn get(
    api: &DosingApi,
    request: Request<pb::GetAdministrationRequest>,
) -> Result<pb::GetAdministrationResponse, AppError> {
    let call = CallContext::of(&request)?;
    let req = request.into_inner();
    required("administration_id", &req.administration_id)?;
    let not_found = || AppError::NotFound {
        what: "administration",
        id: req.administration_id.clone(),
    };
    let found = administration::find(&api.db, &req.administration_id)
        .await?
        .ok_or_else(not_found)?;
    call.require_visible(&found.site_code, "administration", &found.administration_id)?;
    Ok(pb::GetAdministrationResponse {
        administration: Some(convert::administration(&found)?),
    })
}

/// ListSubjectAdministrations: one subject's administrations, when the caller sees its site.
pub(super) async fn of_subject(
    api: &DosingApi,
    request: Request<pb::ListSubjectAdministrationsRequest>,
) -> Result<pb::ListSubjectAdministrationsResponse, AppError> {
    let call = CallContext::of(&request)?;
    let req = request.into_inner();
    wire::parsed("subject_id", SubjectId::parse(&req.subject_id))?;
    // No plan yet: no administrations (and nothing to reveal about the subject).
    let Some(plan) = plan::find(&api.db, &req.subject_id).await? else {
        return Ok(pb::ListSubjectAdministrationsResponse::default());
    };
    call.require_visible(&plan.site_code, "treatment plan", &plan.subject_id)?;
    let scope = format!("subject-administrations|{}|{}", req.subject_id, req.recorded_only);
    let page = pagination::page(req.page_size, &req.page_token, &scope)?;
    let rows = administration::of_subject(
        &api.db,
        &req.subject_id,
        req.recorded_only,
        page.after.as_deref(),
        page.size + 1,
    )
    .await?;
    let (rows, next_page_token) = pagination::split(rows, &page, &scope, |a| a.worklist_key.clone());
    let administrations = rows.iter().map(convert::administration).collect::<Result<_, _>>()?;
    Ok(pb::ListSubjectAdministrationsResponse {
        administrations,
        next_page_token,
    })
}

/// A worklist's dates: from and to, at most [`MAX_RANGE_DAYS`] apart.
fn worklist_range(req: &pb::ListAdministrationsRequest) -> Field<(NaiveDate, NaiveDate)> {
    let (from, to) = (
        wire::date("from_date", req.from_date.as_ref()),
        wire::date("to_date", req.to_date.as_ref()),
    )
        .collect()?;
    (
        ensure(to >= from, "to_date", "must not be before from_date"),
        ensure(
            (to - from).num_days() < MAX_RANGE_DAYS,
            "to_date",
            format!("the range is at most {MAX_RANGE_DAYS} days"),
        ),
    )
        .collect()?;
    Ok((from, to))
}

/// A checked recording.
struct Recording {
    status: pb::AdministrationStatus,
    actual: Option<Decimal>,
    started_at: Option<chrono::DateTime<Utc>>,
    ended_at: Option<chrono::DateTime<Utc>>,
    reason: String,
    correction: Option<(i32, String)>,
}

impl TryFrom<&pb::RecordAdministrationRequest> for Recording {
    type Error = Violations;

    /// The recording, or a violation naming each bad field.
    fn try_from(req: &pb::RecordAdministrationRequest) -> Field<Recording> {
        let status = pb::AdministrationStatus::try_from(req.status)
            .ok()
            .filter(|s| {
                matches!(
                    s,
                    pb::AdministrationStatus::Given
                        | pb::AdministrationStatus::PartiallyGiven
                        | pb::AdministrationStatus::Held
                        | pb::AdministrationStatus::NotGiven
                )
            })
            .ok_or_else(|| violation("status", "one of GIVEN, PARTIALLY_GIVEN, HELD, NOT_GIVEN"))?;
        let given = matches!(
            status,
            pb::AdministrationStatus::Given | pb::AdministrationStatus::PartiallyGiven
        );
        let delivery = if given {
            delivery(req)
        } else {
            ensure(
                req.actual_dose.is_none(),
                "actual_dose",
                "only for GIVEN or PARTIALLY_GIVEN",
            )
            .map(|()| None)
            .map_err(Violations::from)
        };
        let reason = if status == pb::AdministrationStatus::Given {
            Ok(req.reason.trim().to_owned())
        } else {
            wire::text("reason", &req.reason, 1000)
        };
        let correction = match (req.etag.is_empty(), req.correction_reason.trim().is_empty()) {
            (true, true) => Ok(None),
            _ => (
                wire::etag("etag", &req.etag),
                wire::text("correction_reason", &req.correction_reason, 1000),
            )
                .collect()
                .map(Some),
        };
        let (delivery, reason, correction) = (delivery, reason, correction).collect()?;
        let (actual, started_at, ended_at) = match delivery {
            Some((actual, (started, ended))) => (Some(actual), Some(started), Some(ended)),
            None => (None, None, None),
        };
        Ok(Recording {
            status,
            actual,
            started_at,
            ended_at,
            reason,
            correction,
        })
    }
}

/// When an administration started and ended.
type Period = (DateTime<Utc>, DateTime<Utc>);

/// What was given: the dose and when its administration started and ended.
fn delivery(req: &pb::RecordAdministrationRequest) -> Field<Option<(Decimal, Period)>> {
    let actual = wire::decimal_in(
        "actual_dose",
        req.actual_dose.as_ref(),
        Decimal::new(1, 4),
        Decimal::from(100_000),
        "units",
    );
    let times = (
        wire::timestamp("started_at", req.started_at.as_ref()),
        wire::timestamp("ended_at", req.ended_at.as_ref()),
    )
        .collect()
        .and_then(|(started, ended)| {
            ensure(ended >= started, "ended_at", "must not be before started_at")?;
            Ok((started, ended))
        });
    (actual, times).collect().map(Some)
}

pub(super) async fn record(
    api: &DosingApi,
    request: Request<pb::RecordAdministrationRequest>,
) -> Result<pb::RecordAdministrationResponse, AppError> {
    let call = CallContext::of(&request)?;
    let req = request.into_inner();
    let (request_id, _, rec) = (
        wire::request_id("request_id", &req.request_id),
        required("administration_id", &req.administration_id),
        Recording::try_from(&req),
    )
        .all()?;
    // Scoping before the idempotency record: a replay is authorized exactly as a first call.
    let found = administration::find(&api.db, &req.administration_id).await?;
    if let Some(found) = &found {
        call.require_visible(&found.site_code, "administration", &found.administration_id)?;
    }
    let protocols = api.protocols_of_cycle(&call, found.as_ref()).await?;
    let viewer = call.clone();
    let audit_ctx = AuditContext::new(call, request_id);
    let administration_id = req.administration_id.clone();
    idempotency::execute(
        &api.db,
        "DosingService/RecordAdministration",
        request_id,
        &req,
        move |tx| Box::pin(record_in(tx, viewer, audit_ctx, protocols, administration_id, rec)),
    )
    .await
}

/// The transaction: the stored administration, whether it may be recorded (or corrected), the
/// day it was given against its planned day, the deviation from the prescription; stored if
/// still at the version read, and audited.
async fn record_in(
    tx: &DatabaseTransaction,
    viewer: CallContext,
    audit_ctx: AuditContext,
    protocols: Arc<BTreeMap<String, Arc<Protocol>>>,
    administration_id: String,
    rec: Recording,
) -> Result<pb::RecordAdministrationResponse, AppError> {
    let current = administration::find(tx, &administration_id)
        .await?
        .ok_or_else(|| AppError::NotFound {
            what: "administration",
            id: administration_id.clone(),
        })?;
    viewer.require_visible(&current.site_code, "administration", &current.administration_id)?;
    let kind = check_recording(current.status()?, current.version, rec.correction.as_ref().map(|c| c.0))
        .map_err(|refusal| recording_refused(refusal, &current))?;
    let (protocol, trial_id) = protocol_of(tx, &protocols, &current.subject_id).await?;
    let rules = &protocol.treatment;
    if let Some(started) = rec.started_at {
        check_given_on(current.planned_on, started.date_naive(), rules)
            .map_err(|early| given_too_early(&current, early))?;
    }
    let prescribed = wire::from_stored("administrations.prescribed_dose", &current.prescribed_dose)?;
    let tolerance = rules.administration_tolerance_percent;
    let deviation_flagged = rec
        .actual
        .is_some_and(|actual| deviation_percent(prescribed, actual).is_some_and(|p| p > tolerance));
    let updated = administration::Model {
        status: convert::status_from_wire(rec.status).as_str().to_owned(),
        actual_dose: rec.actual.map(wire::to_stored).unwrap_or_default(),
        started_at: rec.started_at,
        ended_at: rec.ended_at,
        deviation_flagged,
        reason: rec.reason.clone(),
        version: current.version + 1,
        ..current.clone()
    };
    if !administration::save_if_version(tx, &updated, current.version).await? {
        return Err(AppError::Aborted(
            "the administration changed since it was read; retry".into(),
        ));
    }
    let (action, reason) = match (kind, rec.correction) {
        (RecordingKind::Correction, Some((_, why))) => ("administration.corrected", why),
        _ => ("administration.recorded", rec.reason.clone()),
    };
    let (old, new) = (audit::to_json(&current)?, audit::to_json(&updated)?);
    let change = Change::updated(action, "administration", &updated.administration_id, old, new, &reason)
        .within(&trial_id, &updated.site_code);
    audit::append(tx, &audit_ctx, change).await?;
    Ok(pb::RecordAdministrationResponse {
        administration: Some(convert::administration(&updated)?),
    })
}

/// The protocol of the trial the administration's subject is planned in.
async fn protocol_of(
    tx: &DatabaseTransaction,
    protocols: &BTreeMap<String, Arc<Protocol>>,
    subject_id: &str,
) -> Result<(Arc<Protocol>, String), AppError> {
    let trial = plan::find(tx, subject_id)
        .await?
        .map(|p| p.trial_id)
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("administration without a plan")))?;
    let protocol = protocols
        .get(&trial)
        .cloned()
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("no protocol for {trial}")))?;
    Ok((protocol, trial))
}

/// The refusal a caller gets for a recording the administration's state does not allow.
fn recording_refused(refusal: RecordingRefusal, current: &administration::Model) -> AppError {
    match refusal {
        RecordingRefusal::AlreadyRecorded => AppError::AlreadyExists {
            reason: Reason::AdministrationAlreadyRecorded.into(),
            message: format!(
                "administration {} is already recorded as {}; \
                 to correct it send its etag and a correction_reason",
                current.administration_id, current.status
            ),
        },
        RecordingRefusal::NothingToCorrect => AppError::invalid(
            "correction_reason",
            "nothing is recorded yet to correct; leave etag and correction_reason empty",
        ),
        RecordingRefusal::StaleEtag { current: version } => {
            AppError::Aborted(format!("stale etag: the administration is at etag {version}"))
        }
    }
}

/// ADMINISTRATION_BEFORE_PLANNED_DAY, naming the planned day and the earliest allowed.
fn given_too_early(current: &administration::Model, early: GivenTooEarly) -> AppError {
    AppError::FailedPrecondition {
        reason: Reason::AdministrationBeforePlannedDay.into(),
        message: format!(
            "administration {} is planned for {}; it cannot be recorded as given before {}",
            current.administration_id, early.planned_on, early.earliest
        ),
        metadata: vec![
            ("planned_on".into(), early.planned_on.to_string()),
            ("earliest_allowed".into(), early.earliest.to_string()),
        ],
    }
}
