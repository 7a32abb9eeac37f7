//! RecordAdverseEvent, UpdateAdverseEvent, RecordReportSubmitted and ListOverdueReports.
//!
//! Expectedness comes from the protocol's list, the cycle and agents at onset from dosing, and
//! the reporting obligations from the protocol's matrix, due from when the site became aware.
//! A grade raised by an update adds the obligations the new grade requires, due from the update.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use sea_orm::DatabaseTransaction;
use tonic::Request;
use trialops_domain::identifiers::SubjectId;
use trialops_domain::outcomes::safety::{self, Attribution, EventCourse, UpdateRefusal, update_course};
use trialops_domain::protocol::{Protocol, ReportingStart, Seriousness};
use trialops_platform::identity::auth::CallContext;
use trialops_platform::records::audit::{self, AuditContext, Change};
use trialops_platform::records::idempotency::{self, RequestId};
use trialops_platform::wire::fields::{self, AllFields, Field, ensure, required};
use trialops_platform::wire::{convert as wire, pagination};
use trialops_platform::{AppError, Violations};
use trialops_proto::outcomes::v1 as pb;
use uuid::Uuid;

use super::{OutcomesApi, convert, signatures};
use crate::error::Reason;
use crate::store::{adverse_event, obligation};

/// Most agent attributions one adverse event may carry.
pub const MAX_ATTRIBUTIONS: usize = 32;
/// Most seriousness criteria one adverse event may carry.
pub const MAX_SERIOUSNESS: usize = 16;

fn new_obligations(
    event: &adverse_event::Model,
    due: Vec<safety::Obligation>,
    existing: &[obligation::Model],
) -> Vec<obligation::Model> {
    due.into_iter()
        .filter(|o| !existing.iter().any(|e| e.kind == o.kind))
        .map(|o| obligation::Model {
            obligation_id: Uuid::new_v4().to_string(),
            adverse_event_id: event.adverse_event_id.clone(),
            subject_id: event.subject_id.clone(),
            site_code: event.site_code.clone(),
            kind: o.kind,
            rule: o.rule,
            due_at: o.due_at,
            open: true,
            submitted_at: None,
        })
        .collect()
}

fn facts_of(event: &adverse_event::Model) -> Result<safety::EventFacts, AppError> {
    let seriousness: Vec<Seriousness> = serde_json::from_str(&event.seriousness).map_err(AppError::internal)?;
    let attributions: Vec<Attribution> = event.attributions()?.into_iter().map(|(_, a)| a).collect();
    let related = safety::related(&attributions);
    Ok(safety::EventFacts {
        grade: event.grade as u8,
        expected: event.expected,
        seriousness,
        related,
    })
}

/// A RecordAdverseEvent request, parsed: the term, dates, attributions and seriousness, each
/// checked (the subject and the grade are read from the request as sent).
struct NewEvent {
    request_id: RequestId,
    term: String,
    onset: chrono::NaiveDate,
    aware: chrono::DateTime<Utc>,
    attributions: Vec<(String, Attribution)>,
    seriousness: Vec<Seriousness>,
}

impl NewEvent {
    /// The command, or INVALID_ARGUMENT naming every bad field.
    fn parse(req: &pb::RecordAdverseEventRequest) -> Result<NewEvent, AppError> {
        let (request_id, _, term, (), (onset, aware), (), (), attributions, seriousness) = (
            wire::request_id("request_id", &req.request_id),
            wire::parsed("subject_id", SubjectId::parse(&req.subject_id)),
            wire::text("ctcae_term", &req.ctcae_term, 200),
            ensure((1..=5).contains(&req.grade), "grade", "CTCAE grade 1 to 5"),
            onset_and_awareness(req),
            wire::at_most("attributions", req.attributions.len(), MAX_ATTRIBUTIONS),
            wire::at_most("seriousness", req.seriousness.len(), MAX_SERIOUSNESS),
            attributions(req),
            seriousness(req),
        )
            .all()?;
        Ok(NewEvent {
            request_id,
            term,
            onset,
            aware,
            attributions,
            seriousness,
        })
    }
}

/// The onset date and when the site became aware (not before the onset's eve).
fn onset_and_awareness(req: &pb::RecordAdverseEventRequest) -> Field<(NaiveDate, DateTime<Utc>)> {
    let (onset, aware) = (
        wire::date("onset_on", req.onset_on.as_ref()),
        wire::timestamp("site_aware_at", req.site_aware_at.as_ref()),
    )
        .collect()?;
    let after_onset = aware.date_naive() >= onset - Duration::days(1);
    ensure(after_onset, "site_aware_at", "must not be before the onset")?;
    Ok((onset, aware))
}

/// Each attribution's agent and causality (the first [`MAX_ATTRIBUTIONS`]).
fn attributions(req: &pb::RecordAdverseEventRequest) -> Field<Vec<(String, Attribution)>> {
    let mut bad = Violations::new();
    let mut attributions = Vec::new();
    for (i, a) in req.attributions.iter().take(MAX_ATTRIBUTIONS).enumerate() {
        match convert::attribution(a.attribution) {
            Some(x) if !a.agent_id.is_empty() => attributions.push((a.agent_id.clone(), x)),
            Some(_) => bad.add(format!("attributions[{i}].agent_id"), "required"),
            None => bad.add(
                format!("attributions[{i}].attribution"),
                "one of UNRELATED, UNLIKELY, POSSIBLE, PROBABLE, DEFINITE",
            ),
        }
    }
    bad.or(attributions)
}

/// The seriousness criteria met (the first [`MAX_SERIOUSNESS`]).
fn seriousness(req: &pb::RecordAdverseEventRequest) -> Field<Vec<Seriousness>> {
    let mut bad = Violations::new();
    let mut seriousness = Vec::new();
    for (i, s) in req.seriousness.iter().take(MAX_SERIOUSNESS).enumerate() {
        match convert::seriousness(*s) {
            Some(x) => seriousness.push(x),
            None => bad.add(format!("seriousness[{i}]"), "a seriousness criterion"),
        }
    }
    bad.or(seriousness)
}

pub(super) async fn record(
    api: &OutcomesApi,
    request: Request<pb::RecordAdverseEventRequest>,
) -> Result<pb::RecordAdverseEventResponse, AppError> {
    let call = CallContext::of(&request)?;
    let req = request.into_inner();
    let NewEvent {
        request_id,
        term,
        onset,
        aware,
        attributions,
        seriousness,
    } = NewEvent::parse(&req)?;
    let subject = api.deps.subject(&call, &req.subject_id).await?;
    // The agents and reporting rules of the protocol version in force on the onset date.
    let protocol = api.deps.protocol_on(&call, &subject.trial_id, onset).await?;
    let agents: Vec<&str> = protocol
        .regimens
        .iter()
        .find(|r| r.arm == subject.arm_code)
        .map(|r| r.agents.iter().map(|a| a.id.as_str()).collect())
        .unwrap_or_default();
    let mut unknown = Violations::new();
    for (i, (agent, _)) in attributions.iter().enumerate() {
        if !agents.contains(&agent.as_str()) {
            let why = format!("not an agent of arm {}", subject.arm_code);
            unknown.add(format!("attributions[{i}].agent_id"), why);
        }
    }
    unknown.or(())?;
    let period_start = match protocol.outcomes.adverse_event_reporting_starts {
        ReportingStart::Enrollment => subject
            .enrolled_at
            .and_then(|t| chrono::DateTime::from_timestamp(t.seconds, 0))
            .map(|d| d.date_naive()),
        ReportingStart::TreatmentStart => match api.deps.first_cycle_start(&call, &req.subject_id).await? {
            Some(date) => {
                Some(wire::date("start_date", Some(&date)).map_err(|e| AppError::internal(anyhow::anyhow!("{e:?}")))?)
            }
            None => None,
        },
    };
    if !safety::in_reporting_period(onset, period_start) {
        let starts = match protocol.outcomes.adverse_event_reporting_starts {
            ReportingStart::Enrollment => "enrollment",
            ReportingStart::TreatmentStart => "treatment_start",
        };
        let on = period_start.map_or_else(|| "not yet".to_owned(), |d| d.to_string());
        return Err(AppError::FailedPrecondition {
            reason: Reason::OnsetBeforeReportingPeriod.into(),
            message: format!(
                "onset {onset} is before the adverse-event reporting period, which starts at {starts} ({on}): \
                 record it as a baseline condition, not as an adverse event"
            ),
            metadata: vec![
                ("reporting_period_starts".into(), starts.into()),
                ("reporting_period_start_date".into(), on),
            ],
        });
    }
    let active = api
        .deps
        .active_treatment(&call, &req.subject_id, wire::to_date(onset))
        .await?;
    let expected = safety::is_expected(&protocol, &term);
    let kinds: Vec<Attribution> = attributions.iter().map(|(_, a)| *a).collect();
    let facts = safety::facts(req.grade as u8, expected, seriousness, &kinds);
    let due = safety::obligations(&protocol.reporting, &facts, aware);
    let audit_ctx = AuditContext::new(call, request_id);
    let attributions: BTreeMap<_, _> = attributions.iter().map(|(a, x)| (a.clone(), x.as_str())).collect();
    let event = adverse_event::Model {
        adverse_event_id: Uuid::new_v4().to_string(),
        subject_id: req.subject_id.clone(),
        trial_id: subject.trial_id.clone(),
        arm_code: subject.arm_code.clone(),
        site_code: subject.site_code.clone(),
        ctcae_term: term,
        ctcae_version: protocol.outcomes.ctcae_version.clone(),
        grade: req.grade,
        onset_on: onset,
        site_aware_at: aware,
        resolved_on: None,
        attributions: serde_json::to_string(&attributions).map_err(AppError::internal)?,
        seriousness: serde_json::to_string(&facts.seriousness).map_err(AppError::internal)?,
        expected,
        cycle_at_onset: active.cycle_number,
        agents_at_onset: serde_json::to_string(&active.agent_ids).map_err(AppError::internal)?,
        version: 1,
        recorded_at: trialops_platform::clock::now_stored(),
    };
    let obligations = new_obligations(&event, due, &[]);
    idempotency::execute(
        &api.db,
        "OutcomesService/RecordAdverseEvent",
        request_id,
        &req,
        move |tx| Box::pin(record_in(tx, audit_ctx, event, obligations)),
    )
    .await
}

/// The transaction: the event and its obligations stored and audited together.
async fn record_in(
    tx: &DatabaseTransaction,
    audit_ctx: AuditContext,
    event: adverse_event::Model,
    obligations: Vec<obligation::Model>,
) -> Result<pb::RecordAdverseEventResponse, AppError> {
    adverse_event::insert_with_obligations(tx, &event, &obligations).await?;
    let new = serde_json::json!({
        "event": audit::to_json(&event)?,
        "obligations": audit::to_json(&obligations)?,
    });
    let change = Change::created("adverse_event.recorded", "adverse_event", &event.adverse_event_id, new)
        .within(&event.trial_id, &event.site_code);
    audit::append(tx, &audit_ctx, change).await?;
    Ok(pb::RecordAdverseEventResponse {
        adverse_event: Some(convert::adverse_event(&event, &obligations)?),
    })
}

pub(super) async fn update(
    api: &OutcomesApi,
    request: Request<pb::UpdateAdverseEventRequest>,
) -> Result<pb::UpdateAdverseEventResponse, AppError> {
    let call = CallContext::of(&request)?;
    let req = request.into_inner();
    let (request_id, _, version, (), resolved, (), reason) = (
        wire::request_id("request_id", &req.request_id),
        required("adverse_event_id", &req.adverse_event_id),
        wire::etag("etag", &req.etag),
        ensure(
            (0..=5).contains(&req.grade),
            "grade",
            "0 (unchanged) or a CTCAE grade 1 to 5",
        ),
        fields::optional(req.resolved_on.as_ref(), |d| wire::date("resolved_on", Some(d))),
        ensure(
            req.grade != 0 || req.resolved_on.is_some(),
            "grade",
            "set grade or resolved_on",
        ),
        wire::text("reason", &req.reason, 1000),
    )
        .all()?;
    // Scoping before the idempotency record: a replay is authorized exactly as a first call.
    if let Some(found) = adverse_event::find(&api.db, &req.adverse_event_id).await? {
        call.require_visible(&found.site_code, "adverse event", &found.adverse_event_id)?;
    }
    let update = EventUpdate {
        adverse_event_id: req.adverse_event_id.clone(),
        version,
        grade: (req.grade != 0).then_some(req.grade),
        resolved,
        reason,
    };
    let viewer = call.clone();
    let audit_ctx = AuditContext::new(call, request_id);
    let protocols = api.protocols.clone();
    idempotency::execute(
        &api.db,
        "OutcomesService/UpdateAdverseEvent",
        request_id,
        &req,
        move |tx| Box::pin(update_in(tx, viewer, audit_ctx, protocols, update)),
    )
    .await
}

/// An UpdateAdverseEvent request, parsed.
struct EventUpdate {
    adverse_event_id: String,
    version: i32,
    grade: Option<i32>,
    resolved: Option<chrono::NaiveDate>,
    reason: String,
}

/// The transaction: the domain's decision on the event's course, the event saved, the
/// obligations a raised grade adds (due from now), audited.
async fn update_in(
    tx: &DatabaseTransaction,
    viewer: CallContext,
    audit_ctx: AuditContext,
    protocols: Arc<BTreeMap<String, Arc<Protocol>>>,
    update: EventUpdate,
) -> Result<pb::UpdateAdverseEventResponse, AppError> {
    let current = adverse_event::find(tx, &update.adverse_event_id)
        .await?
        .ok_or_else(|| AppError::NotFound {
            what: "adverse event",
            id: update.adverse_event_id.clone(),
        })?;
    viewer.require_visible(&current.site_code, "adverse event", &current.adverse_event_id)?;
    if current.version != update.version {
        return Err(AppError::Aborted(format!(
            "stale etag: the event is at etag {}",
            current.version
        )));
    }
    let course = EventCourse {
        grade: current.grade,
        onset_on: current.onset_on,
        resolved_on: current.resolved_on,
    };
    let course = update_course(course, update.grade, update.resolved).map_err(|refusal| match refusal {
        UpdateRefusal::ResolvedBeforeOnset => AppError::invalid("resolved_on", "must not be before the onset"),
        UpdateRefusal::ChangesNothing => {
            AppError::precondition(Reason::UpdateChangesNothing, "the values equal the recorded ones")
        }
    })?;
    let updated = adverse_event::Model {
        grade: course.grade,
        resolved_on: course.resolved_on,
        version: update.version + 1,
        ..current.clone()
    };
    adverse_event::save(tx, &updated).await?;
    let existing = obligation::of_event(tx, &current.adverse_event_id).await?;
    let protocol = protocols
        .get(&current.trial_id)
        .cloned()
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("no protocol")))?;
    let added = if updated.grade > current.grade {
        let due = safety::obligations(
            &protocol.reporting,
            &facts_of(&updated)?,
            trialops_platform::clock::now(),
        );
        new_obligations(&updated, due, &existing)
    } else {
        Vec::new()
    };
    obligation::insert_many(tx, &added).await?;
    let new = serde_json::json!({ "event": audit::to_json(&updated)?, "added_obligations": audit::to_json(&added)? });
    let (old, id) = (audit::to_json(&current)?, &current.adverse_event_id);
    audit::append(
        tx,
        &audit_ctx,
        Change::updated("adverse_event.updated", "adverse_event", id, old, new, &update.reason)
            .within(&current.trial_id, &current.site_code),
    )
    .await?;
    let all: Vec<_> = existing.into_iter().chain(added).collect();
    // Signatures of the event as it was show they no longer apply.
    let mut shown = [convert::adverse_event(&updated, &all)?];
    signatures::with_event_signatures(tx, std::slice::from_ref(&updated), &mut shown).await?;
    let [shown] = shown;
    Ok(pb::UpdateAdverseEventResponse {
        adverse_event: Some(shown),
    })
}

pub(super) async fn submitted(
    api: &OutcomesApi,
    request: Request<pb::RecordReportSubmittedRequest>,
) -> Result<pb::RecordReportSubmittedResponse, AppError> {
    let call = CallContext::of(&request)?;
    let req = request.into_inner();
    let (request_id, _, at) = (
        wire::request_id("request_id", &req.request_id),
        required("obligation_id", &req.obligation_id),
        wire::timestamp("submitted_at", req.submitted_at.as_ref()),
    )
        .all()?;
    // Scoping before the idempotency record: a replay is authorized exactly as a first call.
    if let Some(found) = obligation::find(&api.db, &req.obligation_id).await? {
        call.require_visible(&found.site_code, "reporting obligation", &found.obligation_id)?;
    }
    let viewer = call.clone();
    let audit_ctx = AuditContext::new(call, request_id);
    let obligation_id = req.obligation_id.clone();
    idempotency::execute(
        &api.db,
        "OutcomesService/RecordReportSubmitted",
        request_id,
        &req,
        move |tx| Box::pin(submitted_in(tx, viewer, audit_ctx, obligation_id, at)),
    )
    .await
}

/// The transaction: an open obligation closed with the submission time, audited.
async fn submitted_in(
    tx: &DatabaseTransaction,
    viewer: CallContext,
    audit_ctx: AuditContext,
    obligation_id: String,
    at: chrono::DateTime<Utc>,
) -> Result<pb::RecordReportSubmittedResponse, AppError> {
    let current = obligation::find(tx, &obligation_id)
        .await?
        .ok_or_else(|| AppError::NotFound {
            what: "reporting obligation",
            id: obligation_id.clone(),
        })?;
    viewer.require_visible(&current.site_code, "reporting obligation", &current.obligation_id)?;
    if !current.open {
        return Err(AppError::AlreadyExists {
            reason: Reason::ReportAlreadySubmitted.into(),
            message: "the report was already submitted".into(),
        });
    }
    let updated = obligation::Model {
        open: false,
        submitted_at: Some(at),
        ..current.clone()
    };
    obligation::save(tx, &updated).await?;
    let (old, new) = (audit::to_json(&current)?, audit::to_json(&updated)?);
    let trial_id = adverse_event::find(tx, &current.adverse_event_id)
        .await?
        .map(|event| event.trial_id)
        .unwrap_or_default();
    let change = Change::updated("report.submitted", "obligation", &updated.obligation_id, old, new, "")
        .within(&trial_id, &updated.site_code);
    audit::append(tx, &audit_ctx, change).await?;
    Ok(pb::RecordReportSubmittedResponse {
        obligation: Some(convert::obligation(&updated)),
    })
}

pub(super) async fn overdue(
    api: &OutcomesApi,
    request: Request<pb::ListOverdueReportsRequest>,
) -> Result<pb::ListOverdueReportsResponse, AppError> {
    let call = CallContext::of(&request)?;
    let req = request.into_inner();
    if !(0..=24 * 90).contains(&req.due_within_hours) {
        return Err(AppError::invalid("due_within_hours", "0 to 2160 hours"));
    }
    let horizon = trialops_platform::clock::now() + Duration::hours(i64::from(req.due_within_hours));
    let scope = format!("overdue|{}", req.due_within_hours);
    let page = pagination::page(req.page_size, &req.page_token, &scope)?;
    let after = match &page.after {
        None => None,
        Some(after) => {
            let not_ours = || AppError::invalid("page_token", "not a token this list issued");
            let (due, id) = after.split_once('|').ok_or_else(not_ours)?;
            let due: chrono::DateTime<Utc> = due.parse().map_err(|_| not_ours())?;
            Some((due, id))
        }
    };
    let site = call.site_scope.as_deref();
    let rows = obligation::due_by(&api.db, horizon, site, after, page.size + 1).await?;
    let (rows, next_page_token) = pagination::split(rows, &page, &scope, |o| {
        format!("{}|{}", o.due_at.to_rfc3339(), o.obligation_id)
    });
    Ok(pb::ListOverdueReportsResponse {
        obligations: rows.iter().map(convert::obligation).collect(),
        next_page_token,
    })
}

/// GetAdverseEvent: one adverse event the caller's site sees, with its obligations.
pub(super) async fn get(
    api: &OutcomesApi,
    request: Request<pb::GetAdverseEventRequest>,
) -> Result<pb::GetAdverseEventResponse, AppError> {
    let call = CallContext::of(&request)?;
    let req = request.into_inner();
    required("adverse_event_id", &req.adverse_event_id)?;
    let not_found = || AppError::NotFound {
        what: "adverse event",
        id: req.adverse_event_id.clone(),
    };
    let event = adverse_event::find(&api.db, &req.adverse_event_id)
        .await?
        .ok_or_else(not_found)?;
    call.require_visible(&event.site_code, "adverse event", &event.adverse_event_id)?;
    let obligations = obligation::of_event(&api.db, &event.adverse_event_id).await?;
    let mut shown = [convert::adverse_event(&event, &obligations)?];
    signatures::with_event_signatures(&api.db, std::slice::from_ref(&event), &mut shown).await?;
    let [shown] = shown;
    Ok(pb::GetAdverseEventResponse {
        adverse_event: Some(shown),
    })
}

/// ListAdverseEvents: a subject's adverse events (those of the caller's site, for a site-bound
/// caller) in onset order.
pub(super) async fn list(
    api: &OutcomesApi,
    request: Request<pb::ListAdverseEventsRequest>,
) -> Result<pb::ListAdverseEventsResponse, AppError> {
    let call = CallContext::of(&request)?;
    let req = request.into_inner();
    wire::parsed("subject_id", SubjectId::parse(&req.subject_id))?;
    let scope = format!("adverse-events|{}", req.subject_id);
    let page = pagination::page(req.page_size, &req.page_token, &scope)?;
    let after = match page.after.as_deref() {
        None => None,
        Some(key) => Some(
            key.split_once('|')
                .and_then(|(onset, id)| Some((onset.parse::<NaiveDate>().ok()?, id)))
                .ok_or_else(|| AppError::invalid("page_token", "not a token this list issued"))?,
        ),
    };
    let site = call.site_scope.as_deref();
    let rows = adverse_event::of_subject(&api.db, &req.subject_id, site, after, page.size + 1).await?;
    let (rows, next_page_token) = pagination::split(rows, &page, &scope, |e| {
        format!("{}|{}", e.onset_on, e.adverse_event_id)
    });
    let mut adverse_events = Vec::with_capacity(rows.len());
    for event in &rows {
        let obligations = obligation::of_event(&api.db, &event.adverse_event_id).await?;
        adverse_events.push(convert::adverse_event(event, &obligations)?);
    }
    signatures::with_event_signatures(&api.db, &rows, &mut adverse_events).await?;
    Ok(pb::ListAdverseEventsResponse {
        adverse_events,
        next_page_token,
    })
}
