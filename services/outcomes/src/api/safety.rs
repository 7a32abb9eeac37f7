//! RecordAdverseEvent, UpdateAdverseEvent, RecordReportSubmitted and ListOverdueReports.
//!
//! Expectedness comes from the protocol's list, the cycle and agents at onset from dosing, and
//! the reporting obligations from the protocol's matrix, due from when the site became aware.
//! A grade raised by an update adds the obligations the new grade requires, due from the update.

use std::collections::BTreeMap;

use chrono::{Duration, Utc};
use sea_orm::sea_query::Condition;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use tonic::Request;
use trialops_domain::outcomes::safety::{self, Attribution};
use trialops_domain::protocol::{ReportingStart, Seriousness};
use trialops_platform::audit::{self, AuditContext, Change};
use trialops_platform::auth::CallContext;
use trialops_platform::{AppError, Violations, convert as wire, idempotency, pagination};
use trialops_proto::outcomes::v1 as pb;
use uuid::Uuid;

use super::{OutcomesApi, convert};
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
    let attributions: BTreeMap<String, String> =
        serde_json::from_str(&event.attributions).map_err(AppError::internal)?;
    let related = attributions
        .values()
        .any(|a| matches!(a.as_str(), "possible" | "probable" | "definite"));
    Ok(safety::EventFacts {
        grade: event.grade as u8,
        expected: event.expected,
        seriousness,
        related,
    })
}

pub(super) async fn record(
    api: &OutcomesApi,
    request: Request<pb::RecordAdverseEventRequest>,
) -> Result<pb::RecordAdverseEventResponse, AppError> {
    let call = CallContext::of(&request)?;
    let req = request.into_inner();
    let mut v = Violations::new();
    let request_id = v.take(wire::request_id("request_id", &req.request_id));
    v.check(!req.subject_id.is_empty(), "subject_id", "required");
    let term = v.take(wire::text("ctcae_term", &req.ctcae_term, 200));
    v.check((1..=5).contains(&req.grade), "grade", "CTCAE grade 1 to 5");
    let onset = v.take(wire::date("onset_on", req.onset_on.as_ref()));
    let aware = v.take(wire::timestamp("site_aware_at", req.site_aware_at.as_ref()));
    if let (Some(onset), Some(aware)) = (onset, aware) {
        v.check(
            aware.date_naive() >= onset - Duration::days(1),
            "site_aware_at",
            "must not be before the onset",
        );
    }
    v.take(wire::at_most("attributions", req.attributions.len(), MAX_ATTRIBUTIONS));
    v.take(wire::at_most("seriousness", req.seriousness.len(), MAX_SERIOUSNESS));
    let mut attributions: Vec<(String, Attribution)> = Vec::new();
    for (i, a) in req.attributions.iter().take(MAX_ATTRIBUTIONS).enumerate() {
        match convert::attribution(a.attribution) {
            Some(x) if !a.agent_id.is_empty() => attributions.push((a.agent_id.clone(), x)),
            Some(_) => v.add(format!("attributions[{i}].agent_id"), "required"),
            None => v.add(
                format!("attributions[{i}].attribution"),
                "one of UNRELATED, UNLIKELY, POSSIBLE, PROBABLE, DEFINITE",
            ),
        }
    }
    let mut seriousness = Vec::new();
    for (i, s) in req.seriousness.iter().take(MAX_SERIOUSNESS).enumerate() {
        match convert::seriousness(*s) {
            Some(x) => seriousness.push(x),
            None => v.add(format!("seriousness[{i}]"), "a seriousness criterion"),
        }
    }
    let (Some(request_id), Some(term), Some(onset), Some(aware)) = (request_id, term, onset, aware) else {
        return Err(v.into_error());
    };
    v.finish()?;

    let subject = api.deps.subject(&call, &req.subject_id).await?;
    let protocol = api.protocol(&subject.trial_id)?;
    let agents: Vec<&str> = protocol
        .regimens
        .iter()
        .find(|r| r.arm == subject.arm_code)
        .map(|r| r.agents.iter().map(|a| a.id.as_str()).collect())
        .unwrap_or_default();
    let mut v = Violations::new();
    for (i, (agent, _)) in attributions.iter().enumerate() {
        v.check(
            agents.contains(&agent.as_str()),
            format!("attributions[{i}].agent_id"),
            format!("not an agent of arm {}", subject.arm_code),
        );
    }
    v.finish()?;
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
    let ctcae_version = protocol.outcomes.ctcae_version.clone();
    idempotency::execute(
        &api.db,
        "OutcomesService/RecordAdverseEvent",
        request_id,
        &req.clone(),
        move |tx| {
            Box::pin(async move {
                let event = adverse_event::Model {
                    adverse_event_id: Uuid::new_v4().to_string(),
                    subject_id: req.subject_id.clone(),
                    trial_id: subject.trial_id.clone(),
                    arm_code: subject.arm_code.clone(),
                    site_code: subject.site_code.clone(),
                    ctcae_term: term,
                    ctcae_version,
                    grade: req.grade,
                    onset_on: onset,
                    site_aware_at: aware,
                    resolved_on: None,
                    attributions: serde_json::to_string(
                        &attributions
                            .iter()
                            .map(|(a, x)| (a.clone(), convert::attribution_name(*x)))
                            .collect::<BTreeMap<_, _>>(),
                    )
                    .map_err(AppError::internal)?,
                    seriousness: serde_json::to_string(&facts.seriousness).map_err(AppError::internal)?,
                    expected,
                    cycle_at_onset: active.cycle_number,
                    agents_at_onset: serde_json::to_string(&active.agent_ids).map_err(AppError::internal)?,
                    version: 1,
                    recorded_at: trialops_platform::clock::now(),
                };
                let obligations = new_obligations(&event, due, &[]);
                adverse_event::Entity::insert(adverse_event::ActiveModel::from(event.clone()))
                    .exec_without_returning(tx)
                    .await?;
                if !obligations.is_empty() {
                    obligation::Entity::insert_many(obligations.iter().cloned().map(obligation::ActiveModel::from))
                        .exec_without_returning(tx)
                        .await?;
                }
                audit::append(
                    tx,
                    &audit_ctx,
                    Change {
                        action: "adverse_event.recorded",
                        entity_type: "adverse_event",
                        entity_id: &event.adverse_event_id,
                        old: None,
                        new: serde_json::json!({
                            "event": audit::to_json(&event)?,
                            "obligations": audit::to_json(&obligations)?,
                        }),
                        reason: "",
                    },
                )
                .await?;
                Ok(pb::RecordAdverseEventResponse {
                    adverse_event: Some(convert::adverse_event(&event, &obligations)?),
                })
            })
        },
    )
    .await
}

pub(super) async fn update(
    api: &OutcomesApi,
    request: Request<pb::UpdateAdverseEventRequest>,
) -> Result<pb::UpdateAdverseEventResponse, AppError> {
    let call = CallContext::of(&request)?;
    let req = request.into_inner();
    let mut v = Violations::new();
    let request_id = v.take(wire::request_id("request_id", &req.request_id));
    v.check(!req.adverse_event_id.is_empty(), "adverse_event_id", "required");
    let version = v.take(wire::etag("etag", &req.etag));
    v.check(
        (0..=5).contains(&req.grade),
        "grade",
        "0 (unchanged) or a CTCAE grade 1 to 5",
    );
    let resolved = match &req.resolved_on {
        None => None,
        Some(d) => v.take(wire::date("resolved_on", Some(d))),
    };
    v.check(
        req.grade != 0 || req.resolved_on.is_some(),
        "grade",
        "set grade or resolved_on",
    );
    let reason = v.take(wire::text("reason", &req.reason, 1000));
    let (Some(request_id), Some(version), Some(reason)) = (request_id, version, reason) else {
        return Err(v.into_error());
    };
    v.finish()?;
    // Scoping before the idempotency record: a replay is authorized exactly as a first call.
    if let Some(found) = adverse_event::Entity::find_by_id(req.adverse_event_id.clone())
        .one(&api.db)
        .await?
    {
        call.require_visible(&found.site_code, "adverse event", &found.adverse_event_id)?;
    }
    let viewer = call.clone();
    let audit_ctx = AuditContext::new(call, request_id);
    let protocols = api.protocols.clone();
    idempotency::execute(
        &api.db,
        "OutcomesService/UpdateAdverseEvent",
        request_id,
        &req.clone(),
        move |tx| {
            Box::pin(async move {
                let current = adverse_event::Entity::find_by_id(req.adverse_event_id.clone())
                    .one(tx)
                    .await?
                    .ok_or_else(|| AppError::NotFound {
                        what: "adverse event",
                        id: req.adverse_event_id.clone(),
                    })?;
                viewer.require_visible(&current.site_code, "adverse event", &current.adverse_event_id)?;
                if current.version != version {
                    return Err(AppError::Aborted(format!(
                        "stale etag: the event is at etag {}",
                        current.version
                    )));
                }
                if let Some(r) = resolved
                    && r < current.onset_on
                {
                    return Err(AppError::invalid("resolved_on", "must not be before the onset"));
                }
                let mut updated = current.clone();
                if req.grade != 0 {
                    updated.grade = req.grade;
                }
                if resolved.is_some() {
                    updated.resolved_on = resolved;
                }
                if updated == current {
                    return Err(AppError::precondition(
                        Reason::UpdateChangesNothing,
                        "the values equal the recorded ones",
                    ));
                }
                updated.version = version + 1;
                adverse_event::ActiveModel::from(updated.clone())
                    .reset_all()
                    .update(tx)
                    .await?;
                let existing = obligation::Entity::find()
                    .filter(obligation::Column::AdverseEventId.eq(current.adverse_event_id.as_str()))
                    .all(tx)
                    .await?;
                let protocol = protocols
                    .get(&current.trial_id)
                    .cloned()
                    .ok_or_else(|| AppError::internal(anyhow::anyhow!("no protocol")))?;
                let added = if updated.grade > current.grade {
                    let now = trialops_platform::clock::now();
                    let due = safety::obligations(&protocol.reporting, &facts_of(&updated)?, now);
                    new_obligations(&updated, due, &existing)
                } else {
                    Vec::new()
                };
                if !added.is_empty() {
                    obligation::Entity::insert_many(added.iter().cloned().map(obligation::ActiveModel::from))
                        .exec_without_returning(tx)
                        .await?;
                }
                audit::append(
                    tx,
                    &audit_ctx,
                    Change {
                        action: "adverse_event.updated",
                        entity_type: "adverse_event",
                        entity_id: &current.adverse_event_id,
                        old: Some(audit::to_json(&current)?),
                        new: serde_json::json!({
                            "event": audit::to_json(&updated)?,
                            "added_obligations": audit::to_json(&added)?,
                        }),
                        reason: &reason,
                    },
                )
                .await?;
                let all: Vec<_> = existing.into_iter().chain(added).collect();
                Ok(pb::UpdateAdverseEventResponse {
                    adverse_event: Some(convert::adverse_event(&updated, &all)?),
                })
            })
        },
    )
    .await
}

pub(super) async fn submitted(
    api: &OutcomesApi,
    request: Request<pb::RecordReportSubmittedRequest>,
) -> Result<pb::RecordReportSubmittedResponse, AppError> {
    let call = CallContext::of(&request)?;
    let req = request.into_inner();
    let mut v = Violations::new();
    let request_id = v.take(wire::request_id("request_id", &req.request_id));
    v.check(!req.obligation_id.is_empty(), "obligation_id", "required");
    let at = v.take(wire::timestamp("submitted_at", req.submitted_at.as_ref()));
    let (Some(request_id), Some(at)) = (request_id, at) else {
        return Err(v.into_error());
    };
    v.finish()?;
    // Scoping before the idempotency record: a replay is authorized exactly as a first call.
    if let Some(found) = obligation::Entity::find_by_id(req.obligation_id.clone())
        .one(&api.db)
        .await?
    {
        call.require_visible(&found.site_code, "reporting obligation", &found.obligation_id)?;
    }
    let viewer = call.clone();
    let audit_ctx = AuditContext::new(call, request_id);
    idempotency::execute(
        &api.db,
        "OutcomesService/RecordReportSubmitted",
        request_id,
        &req.clone(),
        move |tx| {
            Box::pin(async move {
                let current = obligation::Entity::find_by_id(req.obligation_id.clone())
                    .one(tx)
                    .await?
                    .ok_or_else(|| AppError::NotFound {
                        what: "reporting obligation",
                        id: req.obligation_id.clone(),
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
                obligation::ActiveModel::from(updated.clone())
                    .reset_all()
                    .update(tx)
                    .await?;
                audit::append(
                    tx,
                    &audit_ctx,
                    Change {
                        action: "report.submitted",
                        entity_type: "obligation",
                        entity_id: &updated.obligation_id,
                        old: Some(audit::to_json(&current)?),
                        new: audit::to_json(&updated)?,
                        reason: "",
                    },
                )
                .await?;
                Ok(pb::RecordReportSubmittedResponse {
                    obligation: Some(convert::obligation(&updated)),
                })
            })
        },
    )
    .await
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
    let mut query = obligation::Entity::find()
        .filter(obligation::Column::Open.eq(true))
        .filter(obligation::Column::DueAt.lte(horizon))
        .order_by_asc(obligation::Column::DueAt)
        .order_by_asc(obligation::Column::ObligationId);
    if let Some(own) = &call.site_scope {
        query = query.filter(obligation::Column::SiteCode.eq(own.as_str()));
    }
    if let Some(after) = &page.after {
        let (due, id) = after
            .split_once('|')
            .ok_or_else(|| AppError::invalid("page_token", "not a token this list issued"))?;
        let due: chrono::DateTime<Utc> = due
            .parse()
            .map_err(|_| AppError::invalid("page_token", "not a token this list issued"))?;
        query = query.filter(
            Condition::any().add(obligation::Column::DueAt.gt(due)).add(
                Condition::all()
                    .add(obligation::Column::DueAt.eq(due))
                    .add(obligation::Column::ObligationId.gt(id)),
            ),
        );
    }
    let rows = query.limit(page.size + 1).all(&api.db).await?;
    let (rows, next_page_token) = pagination::split(rows, &page, &scope, |o| {
        format!("{}|{}", o.due_at.to_rfc3339(), o.obligation_id)
    });
    Ok(pb::ListOverdueReportsResponse {
        obligations: rows.iter().map(convert::obligation).collect(),
        next_page_token,
    })
}
