//! CreateTreatmentPlan, GetTreatmentPlan, ApplyDoseModification and DiscontinueAgent.
//!
//! Dose modifications take effect from the next cycle (StartCycle doses each agent at its
//! current level); a discontinuation from the next administration (the agent's planned and held
//! administrations are closed as not given). Nothing already given is ever rewritten.

use std::collections::BTreeMap;
use std::sync::Arc;

use sea_orm::{ConnectionTrait, DatabaseTransaction};
use tonic::Request;
use trialops_domain::dosing::administration::AdministrationStatus;
use trialops_domain::dosing::dose::{ModificationError, check_modification};
use trialops_domain::identifiers::SubjectId;
use trialops_domain::protocol::Protocol;
use trialops_platform::AppError;
use trialops_platform::identity::auth::CallContext;
use trialops_platform::records::audit::{self, AuditContext, Change};
use trialops_platform::records::idempotency::{self, RequestId};
use trialops_platform::wire::convert as wire;
use trialops_platform::wire::fields::{AllFields, required};
use trialops_proto::dosing::v1 as pb;

use super::{DosingApi, convert, load_plan, protocol_agent};
use crate::error::Reason;
use crate::store::{administration, cycle, plan, plan_agent};

async fn cycles_started<C: ConnectionTrait>(conn: &C, subject_id: &str) -> Result<i32, AppError> {
    let n = cycle::count_for_subject(conn, subject_id).await?;
    Ok(i32::try_from(n).unwrap_or(i32::MAX))
}

pub(super) async fn create(
    api: &DosingApi,
    request: Request<pb::CreateTreatmentPlanRequest>,
) -> Result<pb::CreateTreatmentPlanResponse, AppError> {
    let call = CallContext::of(&request)?;
    let req = request.into_inner();
    let (request_id, _) = (
        wire::request_id("request_id", &req.request_id),
        wire::parsed("subject_id", SubjectId::parse(&req.subject_id)),
    )
        .all()?;

    let subject = api.enrollment.subject_on_therapy(&call, &req.subject_id).await?;
    let protocol = api.protocol_today(&call, &subject.trial_id).await?;
    let regimen = protocol
        .regimens
        .iter()
        .find(|r| r.arm == subject.arm_code)
        .cloned()
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("arm {} has no regimen", subject.arm_code)))?;
    let audit_ctx = AuditContext::new(call, request_id);
    let record = plan::Model {
        subject_id: req.subject_id.clone(),
        trial_id: subject.trial_id.clone(),
        arm_code: subject.arm_code.clone(),
        site_code: subject.site_code.clone(),
        created_at: trialops_platform::clock::now_stored(),
        version: 1,
    };
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
    idempotency::execute(
        &api.db,
        "DosingService/CreateTreatmentPlan",
        request_id,
        &req,
        move |tx| Box::pin(create_in(tx, audit_ctx, protocol, record, agents)),
    )
    .await
}

/// The transaction: one plan per subject, stored with its agents and audited.
async fn create_in(
    tx: &DatabaseTransaction,
    audit_ctx: AuditContext,
    protocol: Arc<Protocol>,
    record: plan::Model,
    agents: Vec<plan_agent::Model>,
) -> Result<pb::CreateTreatmentPlanResponse, AppError> {
    if plan::find(tx, &record.subject_id).await?.is_some() {
        return Err(AppError::AlreadyExists {
            reason: Reason::TreatmentPlanExists.into(),
            message: format!("subject {} already has a treatment plan", record.subject_id),
        });
    }
    plan::insert_with_agents(tx, &record, &agents).await?;
    let new = serde_json::json!({ "plan": audit::to_json(&record)?, "agents": audit::to_json(&agents)? });
    audit::append(
        tx,
        &audit_ctx,
        Change::created("plan.created", "plan", &record.subject_id, new).within(&record.trial_id, &record.site_code),
    )
    .await?;
    Ok(pb::CreateTreatmentPlanResponse {
        plan: Some(convert::plan(&protocol, &record, &agents, 0)),
    })
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
    let protocol = api.protocol_today(&call, &found.trial_id).await?;
    let started = cycles_started(&api.db, &req.subject_id).await?;
    Ok(pb::GetTreatmentPlanResponse {
        plan: Some(convert::plan(&protocol, &found, &agents, started)),
    })
}

/// What every plan change carries: request id, subject, etag, agent and reason.
struct PlanChange {
    request_id: RequestId,
    version: i32,
    reason: String,
}

impl PlanChange {
    /// The common fields, or INVALID_ARGUMENT naming every bad one.
    fn parse(request_id: &str, subject_id: &str, etag: &str, agent_id: &str, reason: &str) -> Result<Self, AppError> {
        let (request_id, _, _, version, reason) = (
            wire::request_id("request_id", request_id),
            wire::parsed("subject_id", SubjectId::parse(subject_id)),
            required("agent_id", agent_id),
            wire::etag("etag", etag),
            wire::text("reason", reason, 1000),
        )
            .all()?;
        Ok(PlanChange {
            request_id,
            version,
            reason,
        })
    }
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
    if !plan::bump_version(conn, &found.subject_id, expected).await? {
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
    protocols: &BTreeMap<String, Arc<Protocol>>,
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
    plan::save_agent(conn, updated).await?;
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
    let checked = PlanChange::parse(&req.request_id, &req.subject_id, &req.etag, &req.agent_id, &req.reason)?;
    let protocols = api.protocols_of_plan(&call, &req.subject_id).await?;
    let viewer = call.clone();
    let audit_ctx = AuditContext::new(call, checked.request_id);
    let (request_id, req_for_call) = (checked.request_id, req.clone());
    idempotency::execute(
        &api.db,
        "DosingService/ApplyDoseModification",
        request_id,
        &req,
        move |tx| Box::pin(modify_in(tx, viewer, audit_ctx, protocols, req_for_call, checked)),
    )
    .await
}

/// The transaction: the etag and the agent, the domain's check of the new level, the change
/// saved and audited (with the adverse event that caused it, when given).
async fn modify_in(
    tx: &DatabaseTransaction,
    viewer: CallContext,
    audit_ctx: AuditContext,
    protocols: Arc<BTreeMap<String, Arc<Protocol>>>,
    req: pb::ApplyDoseModificationRequest,
    checked: PlanChange,
) -> Result<pb::ApplyDoseModificationResponse, AppError> {
    let change = load_for_change(tx, &viewer, &protocols, &req.subject_id, &req.agent_id, checked.version).await?;
    let agent = protocol_agent(&change.protocol, &change.found.arm_code, &req.agent_id)
        .ok_or_else(|| AppError::invalid("agent_id", "not an agent of this subject's regimen"))?;
    check_modification(agent, change.current.dose_level, req.dose_level).map_err(|e| match e {
        ModificationError::UnknownLevel { .. } => AppError::invalid("dose_level", e.to_string()),
        ModificationError::NoChange { .. } => AppError::precondition(Reason::DoseLevelUnchanged, e.to_string()),
        ModificationError::ReEscalationNotAllowed { .. } => {
            AppError::precondition(Reason::DoseReEscalationNotAllowed, e.to_string())
        }
    })?;
    let updated = plan_agent::Model {
        dose_level: req.dose_level,
        ..change.current.clone()
    };
    let plan = save_change(tx, &change, checked.version, &updated).await?;
    let new = serde_json::json!({ "agent": audit::to_json(&updated)?, "adverse_event_id": req.adverse_event_id });
    let old = audit::to_json(&change.current)?;
    let entry = Change::updated(
        "plan.dose_modified",
        "plan",
        &change.found.subject_id,
        old,
        new,
        &checked.reason,
    )
    .within(&change.found.trial_id, &change.found.site_code);
    audit::append(tx, &audit_ctx, entry).await?;
    Ok(pb::ApplyDoseModificationResponse { plan: Some(plan) })
}

pub(super) async fn discontinue(
    api: &DosingApi,
    request: Request<pb::DiscontinueAgentRequest>,
) -> Result<pb::DiscontinueAgentResponse, AppError> {
    let call = CallContext::of(&request)?;
    let req = request.into_inner();
    let checked = PlanChange::parse(&req.request_id, &req.subject_id, &req.etag, &req.agent_id, &req.reason)?;
    let protocols = api.protocols_of_plan(&call, &req.subject_id).await?;
    let viewer = call.clone();
    let audit_ctx = AuditContext::new(call, checked.request_id);
    let (request_id, req_for_call) = (checked.request_id, req.clone());
    idempotency::execute(&api.db, "DosingService/DiscontinueAgent", request_id, &req, move |tx| {
        Box::pin(discontinue_in(tx, viewer, audit_ctx, protocols, req_for_call, checked))
    })
    .await
}

/// The transaction: the agent discontinued, what is still open for it closed as not given
/// (given doses stay as recorded), audited with the closed administrations.
async fn discontinue_in(
    tx: &DatabaseTransaction,
    viewer: CallContext,
    audit_ctx: AuditContext,
    protocols: Arc<BTreeMap<String, Arc<Protocol>>>,
    req: pb::DiscontinueAgentRequest,
    checked: PlanChange,
) -> Result<pb::DiscontinueAgentResponse, AppError> {
    let change = load_for_change(tx, &viewer, &protocols, &req.subject_id, &req.agent_id, checked.version).await?;
    let updated = plan_agent::Model {
        discontinued: true,
        discontinued_reason: checked.reason.clone(),
        ..change.current.clone()
    };
    let plan = save_change(tx, &change, checked.version, &updated).await?;
    let open = administration::open_of_agent(tx, &req.subject_id, &req.agent_id).await?;
    let closed: Vec<String> = open.iter().map(|a| a.administration_id.clone()).collect();
    for a in open {
        let closed_record = administration::Model {
            status: AdministrationStatus::NotGiven.as_str().into(),
            reason: format!("agent discontinued: {}", checked.reason),
            version: a.version + 1,
            ..a
        };
        administration::save(tx, &closed_record).await?;
    }
    let old = audit::to_json(&change.current)?;
    let new = serde_json::json!({ "agent": audit::to_json(&updated)?, "closed_administrations": closed });
    let entry = Change::updated(
        "plan.agent_discontinued",
        "plan",
        &change.found.subject_id,
        old,
        new,
        &checked.reason,
    )
    .within(&change.found.trial_id, &change.found.site_code);
    audit::append(tx, &audit_ctx, entry).await?;
    Ok(pb::DiscontinueAgentResponse { plan: Some(plan) })
}
