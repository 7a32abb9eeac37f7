//! CreateTreatmentPlan, GetTreatmentPlan, ApplyDoseModification and DiscontinueAgent.
//!
//! Dose modifications take effect from the next cycle (StartCycle doses each agent at its
//! current level); a discontinuation from the next administration (the agent's planned and held
//! administrations are closed as not given). Nothing already given is ever rewritten.

use std::sync::Arc;
use trialops_domain::dosing::administration::AdministrationStatus;

use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter};
use tonic::Request;
use trialops_domain::dosing::dose::{ModificationError, check_modification};
use trialops_domain::protocol::Protocol;
use trialops_platform::audit::{self, AuditContext, Change};
use trialops_platform::auth::CallContext;
use trialops_platform::{AppError, Violations, convert as wire, idempotency};
use trialops_proto::dosing::v1 as pb;

use super::{DosingApi, convert, load_plan, protocol_agent};
use crate::error::Reason;
use crate::store::{administration, cycle, plan, plan_agent};

async fn cycles_started<C: ConnectionTrait>(conn: &C, subject_id: &str) -> Result<i32, AppError> {
    let n = cycle::Entity::find()
        .filter(cycle::Column::SubjectId.eq(subject_id))
        .count(conn)
        .await?;
    Ok(i32::try_from(n).unwrap_or(i32::MAX))
}

pub(super) async fn create(
    api: &DosingApi,
    request: Request<pb::CreateTreatmentPlanRequest>,
) -> Result<pb::CreateTreatmentPlanResponse, AppError> {
    let call = CallContext::of(&request)?;
    let req = request.into_inner();
    let mut v = Violations::new();
    let request_id = v.take(wire::request_id("request_id", &req.request_id));
    v.check(!req.subject_id.is_empty(), "subject_id", "required");
    let Some(request_id) = request_id else {
        return Err(v.into_error());
    };
    v.finish()?;

    let subject = api.enrollment.subject_on_therapy(&call, &req.subject_id).await?;
    let protocol = api.protocol(&subject.trial_id)?;
    let regimen = protocol
        .regimens
        .iter()
        .find(|r| r.arm == subject.arm_code)
        .cloned()
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("arm {} has no regimen", subject.arm_code)))?;
    let audit_ctx = AuditContext::new(call, request_id);
    idempotency::execute(
        &api.db,
        "DosingService/CreateTreatmentPlan",
        request_id,
        &req.clone(),
        move |tx| {
            Box::pin(async move {
                if plan::Entity::find_by_id(req.subject_id.clone())
                    .one(tx)
                    .await?
                    .is_some()
                {
                    return Err(AppError::AlreadyExists {
                        reason: Reason::TreatmentPlanExists.into(),
                        message: format!("subject {} already has a treatment plan", req.subject_id),
                    });
                }
                let record = plan::Model {
                    subject_id: req.subject_id.clone(),
                    trial_id: subject.trial_id.clone(),
                    arm_code: subject.arm_code.clone(),
                    site_code: subject.site_code.clone(),
                    created_at: trialops_platform::clock::now(),
                    version: 1,
                };
                plan::Entity::insert(plan::ActiveModel::from(record.clone()))
                    .exec_without_returning(tx)
                    .await?;
                let agents: Vec<plan_agent::Model> = regimen
                    .agents
                    .iter()
                    .enumerate()
                    .map(|(i, a)| plan_agent::Model {
                        id: format!("{}|{}", req.subject_id, a.id),
                        subject_id: req.subject_id.clone(),
                        agent_id: a.id.clone(),
                        dose_level: 0,
                        discontinued: false,
                        discontinued_reason: String::new(),
                        position: i as i32,
                    })
                    .collect();
                plan_agent::Entity::insert_many(agents.iter().cloned().map(plan_agent::ActiveModel::from))
                    .exec_without_returning(tx)
                    .await?;
                audit::append(
                tx,
                &audit_ctx,
                Change {
                    action: "plan.created",
                    entity_type: "plan",
                    entity_id: &record.subject_id,
                    old: None,
                    new: serde_json::json!({ "plan": audit::to_json(&record)?, "agents": audit::to_json(&agents)? }),
                    reason: "",
                },
            )
            .await?;
                Ok(pb::CreateTreatmentPlanResponse {
                    plan: Some(convert::plan(&protocol, &record, &agents, 0)),
                })
            })
        },
    )
    .await
}

pub(super) async fn get(
    api: &DosingApi,
    request: Request<pb::GetTreatmentPlanRequest>,
) -> Result<pb::GetTreatmentPlanResponse, AppError> {
    let call = CallContext::of(&request)?;
    let req = request.into_inner();
    if req.subject_id.is_empty() {
        return Err(AppError::invalid("subject_id", "required"));
    }
    let (found, agents) = load_plan(&api.db, &req.subject_id).await.map_err(|e| match e {
        AppError::FailedPrecondition { .. } => AppError::NotFound {
            what: "treatment plan",
            id: req.subject_id.clone(),
        },
        other => other,
    })?;
    call.require_visible(&found.site_code, "treatment plan", &found.subject_id)?;
    let protocol = api.protocol(&found.trial_id)?;
    let started = cycles_started(&api.db, &req.subject_id).await?;
    Ok(pb::GetTreatmentPlanResponse {
        plan: Some(convert::plan(&protocol, &found, &agents, started)),
    })
}

/// Common checks of a plan change: request id, subject, etag, agent, reason.
struct PlanChange {
    request_id: uuid::Uuid,
    version: i32,
    reason: String,
}

fn check_change(
    request_id: &str,
    subject_id: &str,
    etag: &str,
    agent_id: &str,
    reason: &str,
    v: &mut Violations,
) -> Option<PlanChange> {
    let request_id = v.take(wire::request_id("request_id", request_id));
    v.check(!subject_id.is_empty(), "subject_id", "required");
    v.check(!agent_id.is_empty(), "agent_id", "required");
    let version = v.take(wire::etag("etag", etag));
    let reason = v.take(wire::text("reason", reason, 1000));
    Some(PlanChange {
        request_id: request_id?,
        version: version?,
        reason: reason?,
    })
}

/// ABORTED unless the plan is still at the version the caller read.
fn require_version(found: &plan::Model, expected: i32) -> Result<(), AppError> {
    if found.version != expected {
        return Err(AppError::Aborted(format!(
            "stale etag: the plan is at etag {}; read it again and retry",
            found.version
        )));
    }
    Ok(())
}

/// Bumps the plan's version if it is still `expected`; ABORTED otherwise.
async fn bump_plan<C: ConnectionTrait>(conn: &C, found: &plan::Model, expected: i32) -> Result<plan::Model, AppError> {
    require_version(found, expected)?;
    let result = plan::Entity::update_many()
        .col_expr(plan::Column::Version, sea_orm::sea_query::Expr::value(expected + 1))
        .filter(plan::Column::SubjectId.eq(found.subject_id.as_str()))
        .filter(plan::Column::Version.eq(expected))
        .exec(conn)
        .await?;
    if result.rows_affected != 1 {
        return Err(AppError::Aborted(
            "the plan changed since it was read; read it again and retry".into(),
        ));
    }
    Ok(plan::Model {
        version: expected + 1,
        ..found.clone()
    })
}

fn active_agent<'a>(agents: &'a [plan_agent::Model], agent_id: &str) -> Result<&'a plan_agent::Model, AppError> {
    let agent = agents
        .iter()
        .find(|a| a.agent_id == agent_id)
        .ok_or_else(|| AppError::invalid("agent_id", "not an agent of this subject's regimen"))?;
    if agent.discontinued {
        return Err(AppError::precondition(
            Reason::AgentDiscontinued,
            format!("{agent_id} was discontinued: {}", agent.discontinued_reason),
        ));
    }
    Ok(agent)
}

/// A plan loaded for a change to one of its agents: the etag is current (checked first: the
/// caller decided on what it read) and the agent is active.
struct AgentChange {
    found: plan::Model,
    agents: Vec<plan_agent::Model>,
    protocol: Arc<Protocol>,
    current: plan_agent::Model,
}

async fn load_for_change<C: ConnectionTrait>(
    conn: &C,
    viewer: &CallContext,
    protocols: &std::collections::BTreeMap<String, Arc<Protocol>>,
    subject_id: &str,
    agent_id: &str,
    version: i32,
) -> Result<AgentChange, AppError> {
    let (found, agents) = load_plan(conn, subject_id).await?;
    if !viewer.sees_site(&found.site_code) {
        return Err(super::no_plan(subject_id));
    }
    let protocol = protocols
        .get(&found.trial_id)
        .cloned()
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("no protocol for trial {}", found.trial_id)))?;
    require_version(&found, version)?;
    let current = active_agent(&agents, agent_id)?.clone();
    Ok(AgentChange {
        found,
        agents,
        protocol,
        current,
    })
}

/// Writes the changed agent, bumps the plan's version and returns the plan as it now is.
async fn save_change<C: ConnectionTrait>(
    conn: &C,
    change: &AgentChange,
    version: i32,
    updated: &plan_agent::Model,
) -> Result<pb::TreatmentPlan, AppError> {
    let updated_plan = bump_plan(conn, &change.found, version).await?;
    plan_agent::ActiveModel::from(updated.clone())
        .reset_all()
        .update(conn)
        .await?;
    let agents: Vec<_> = change
        .agents
        .iter()
        .map(|a| if a.id == updated.id { updated.clone() } else { a.clone() })
        .collect();
    let started = cycles_started(conn, &change.found.subject_id).await?;
    Ok(convert::plan(&change.protocol, &updated_plan, &agents, started))
}

pub(super) async fn modify(
    api: &DosingApi,
    request: Request<pb::ApplyDoseModificationRequest>,
) -> Result<pb::ApplyDoseModificationResponse, AppError> {
    let call = CallContext::of(&request)?;
    let req = request.into_inner();
    let mut v = Violations::new();
    let checked = check_change(
        &req.request_id,
        &req.subject_id,
        &req.etag,
        &req.agent_id,
        &req.reason,
        &mut v,
    );
    let Some(checked) = checked else {
        return Err(v.into_error());
    };
    v.finish()?;
    if super::plan_hidden_from(&api.db, &call, &req.subject_id).await? {
        return Err(super::no_plan(&req.subject_id));
    }
    let viewer = call.clone();
    let audit_ctx = AuditContext::new(call, checked.request_id);
    let protocols = api.protocols.clone();
    idempotency::execute(
        &api.db,
        "DosingService/ApplyDoseModification",
        checked.request_id,
        &req.clone(),
        move |tx| {
            Box::pin(async move {
                let change =
                    load_for_change(tx, &viewer, &protocols, &req.subject_id, &req.agent_id, checked.version).await?;
                let agent = protocol_agent(&change.protocol, &change.found.arm_code, &req.agent_id)
                    .ok_or_else(|| AppError::invalid("agent_id", "not an agent of this subject's regimen"))?;
                check_modification(agent, change.current.dose_level, req.dose_level).map_err(|e| match e {
                    ModificationError::UnknownLevel { .. } => AppError::invalid("dose_level", e.to_string()),
                    ModificationError::NoChange { .. } => {
                        AppError::precondition(Reason::DoseLevelUnchanged, e.to_string())
                    }
                    ModificationError::ReEscalationNotAllowed { .. } => {
                        AppError::precondition(Reason::DoseReEscalationNotAllowed, e.to_string())
                    }
                })?;
                let updated = plan_agent::Model {
                    dose_level: req.dose_level,
                    ..change.current.clone()
                };
                let plan = save_change(tx, &change, checked.version, &updated).await?;
                audit::append(
                    tx,
                    &audit_ctx,
                    Change {
                        action: "plan.dose_modified",
                        entity_type: "plan",
                        entity_id: &change.found.subject_id,
                        old: Some(audit::to_json(&change.current)?),
                        new: serde_json::json!({
                            "agent": audit::to_json(&updated)?,
                            "adverse_event_id": req.adverse_event_id,
                        }),
                        reason: &checked.reason,
                    },
                )
                .await?;
                Ok(pb::ApplyDoseModificationResponse { plan: Some(plan) })
            })
        },
    )
    .await
}

pub(super) async fn discontinue(
    api: &DosingApi,
    request: Request<pb::DiscontinueAgentRequest>,
) -> Result<pb::DiscontinueAgentResponse, AppError> {
    let call = CallContext::of(&request)?;
    let req = request.into_inner();
    let mut v = Violations::new();
    let checked = check_change(
        &req.request_id,
        &req.subject_id,
        &req.etag,
        &req.agent_id,
        &req.reason,
        &mut v,
    );
    let Some(checked) = checked else {
        return Err(v.into_error());
    };
    v.finish()?;
    if super::plan_hidden_from(&api.db, &call, &req.subject_id).await? {
        return Err(super::no_plan(&req.subject_id));
    }
    let viewer = call.clone();
    let audit_ctx = AuditContext::new(call, checked.request_id);
    let protocols = api.protocols.clone();
    idempotency::execute(
        &api.db,
        "DosingService/DiscontinueAgent",
        checked.request_id,
        &req.clone(),
        move |tx| {
            Box::pin(async move {
                let change =
                    load_for_change(tx, &viewer, &protocols, &req.subject_id, &req.agent_id, checked.version).await?;
                let updated = plan_agent::Model {
                    discontinued: true,
                    discontinued_reason: checked.reason.clone(),
                    ..change.current.clone()
                };
                let plan = save_change(tx, &change, checked.version, &updated).await?;
                // Close what is still open for the agent; given doses stay as recorded.
                let open = administration::Entity::find()
                    .filter(administration::Column::SubjectId.eq(req.subject_id.as_str()))
                    .filter(administration::Column::AgentId.eq(req.agent_id.as_str()))
                    .filter(administration::Column::Status.is_in(open_statuses()))
                    .all(tx)
                    .await?;
                let closed: Vec<String> = open.iter().map(|a| a.administration_id.clone()).collect();
                for a in open {
                    let closed_record = administration::Model {
                        status: AdministrationStatus::NotGiven.as_str().into(),
                        reason: format!("agent discontinued: {}", checked.reason),
                        version: a.version + 1,
                        ..a
                    };
                    administration::ActiveModel::from(closed_record)
                        .reset_all()
                        .update(tx)
                        .await?;
                }
                audit::append(
                tx,
                &audit_ctx,
                Change {
                    action: "plan.agent_discontinued",
                    entity_type: "plan",
                    entity_id: &change.found.subject_id,
                    old: Some(audit::to_json(&change.current)?),
                    new: serde_json::json!({ "agent": audit::to_json(&updated)?, "closed_administrations": closed }),
                    reason: &checked.reason,
                },
            )
            .await?;
                Ok(pb::DiscontinueAgentResponse { plan: Some(plan) })
            })
        },
    )
    .await
}

/// The stored names of the statuses still waiting to be given.
fn open_statuses() -> impl Iterator<Item = &'static str> {
    AdministrationStatus::ALL
        .into_iter()
        .filter(|s| s.is_open())
        .map(AdministrationStatus::as_str)
}
