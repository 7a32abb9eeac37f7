//! StartCycle and GetCycle.
//!
//! StartCycle: enrollment must say the subject is on protocol therapy; counts below the
//! protocol's minimums refuse the start and record it (the delay); then, in one transaction,
//! the cycle must be the next one, within the maximum, not early and not delayed beyond the
//! protocol's limit; BSA is computed and checked against the previous cycle; each active
//! agent's dose is calculated at its current level; the calendar of administrations is written.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use sea_orm::{ConnectionTrait, DatabaseTransaction};
use tonic::Request;
use trialops_domain::dosing::administration::AdministrationStatus;
use trialops_domain::dosing::cycle::{
    PreviousCycle, StartRefusal, calendar, check_start, implausible_changes, unmet_start_criteria,
};
use trialops_domain::dosing::dose::{Body, daily_dose};
use trialops_domain::identifiers::SubjectId;
use trialops_domain::protocol::{Agent, Protocol, TreatmentRules};
use trialops_platform::AppError;
use trialops_platform::identity::auth::CallContext;
use trialops_platform::records::audit::{self, AuditContext, Change};
use trialops_platform::records::database::begin_write;
use trialops_platform::records::idempotency::{self, RequestId};
use trialops_platform::wire::convert as wire;
use trialops_platform::wire::fields::{AllFields, ensure, required};
use trialops_proto::dosing::v1 as pb;
use uuid::Uuid;

use super::{DosingApi, convert, load_plan, protocol_agent};
use crate::error::Reason;
use crate::store::{administration, cycle, dose, plan, plan_agent, start_attempt};

/// A StartCycle request, parsed: every field present, valid and typed. Physical limits bound
/// the measurements: outside them a value is a typing or unit error, never a patient.
struct StartCycle {
    request_id: RequestId,
    subject_id: SubjectId,
    number: i32,
    start_date: NaiveDate,
    height_cm: Decimal,
    weight_kg: Decimal,
    anc_per_ul: Decimal,
    platelets_per_ul: Decimal,
    measured_at: DateTime<Utc>,
    confirm_implausible: bool,
}

impl StartCycle {
    /// The command, or INVALID_ARGUMENT naming every bad field.
    fn parse(req: &pb::StartCycleRequest) -> Result<StartCycle, AppError> {
        let measure = |field: &str, value, min, max, unit| wire::decimal_in(field, value, min, max, unit);
        let (request_id, subject_id, (), start_date, height_cm, weight_kg, anc_per_ul, platelets_per_ul, measured_at) =
            (
                wire::request_id("request_id", &req.request_id),
                wire::parsed("subject_id", SubjectId::parse(&req.subject_id)),
                ensure(req.cycle_number >= 1, "cycle_number", "must be 1 or more"),
                wire::date("planned_start_date", req.planned_start_date.as_ref()),
                measure(
                    "height_cm",
                    req.height_cm.as_ref(),
                    Decimal::from(30),
                    Decimal::from(250),
                    "cm",
                ),
                measure(
                    "weight_kg",
                    req.weight_kg.as_ref(),
                    Decimal::new(5, 1),
                    Decimal::from(250),
                    "kg",
                ),
                measure(
                    "anc_per_ul",
                    req.anc_per_ul.as_ref(),
                    Decimal::ZERO,
                    Decimal::from(100_000),
                    "/uL",
                ),
                measure(
                    "platelets_per_ul",
                    req.platelets_per_ul.as_ref(),
                    Decimal::ZERO,
                    Decimal::from(2_000_000),
                    "/uL",
                ),
                wire::timestamp("measured_at", req.measured_at.as_ref()),
            )
                .all()?;
        Ok(StartCycle {
            request_id,
            subject_id,
            number: req.cycle_number,
            start_date,
            height_cm,
            weight_kg,
            anc_per_ul,
            platelets_per_ul,
            measured_at,
            confirm_implausible: req.confirm_implausible_measurements,
        })
    }
}

pub(super) async fn start(
    api: &DosingApi,
    request: Request<pb::StartCycleRequest>,
) -> Result<pb::StartCycleResponse, AppError> {
    let call = CallContext::of(&request)?;
    let req = request.into_inner();
    let command = StartCycle::parse(&req)?;
    let subject = api.enrollment.subject_on_therapy(&call, &command.subject_id).await?;
    // Dosed under the protocol version in force on the cycle's day 1.
    let protocol = api
        .enrollment
        .protocol_on(&call, &subject.trial_id, command.start_date)
        .await?;
    let audit_ctx = AuditContext::new(call, command.request_id);
    let scope = (subject.trial_id.as_str(), subject.site_code.as_str());
    refuse_unmet_counts(api, &audit_ctx, &command, &protocol.treatment, scope).await?;
    idempotency::execute(
        &api.db,
        "DosingService/StartCycle",
        command.request_id,
        &req,
        move |tx| Box::pin(start_in(tx, audit_ctx, protocol, command)),
    )
    .await
}

/// Counts below the protocol's minimums refuse the start; the refusal is recorded (the delay)
/// in its own transaction, so it stays recorded although the start is refused.
async fn refuse_unmet_counts(
    api: &DosingApi,
    audit_ctx: &AuditContext,
    command: &StartCycle,
    rules: &TreatmentRules,
    (trial_id, site_code): (&str, &str),
) -> Result<(), AppError> {
    let unmet = unmet_start_criteria(&rules.cycle_start, command.anc_per_ul, command.platelets_per_ul);
    if unmet.is_empty() {
        return Ok(());
    }
    let detail: Vec<String> = unmet
        .iter()
        .map(|u| format!("{} {} < minimum {}", u.measure, u.value, u.minimum))
        .collect();
    let detail = detail.join("; ");
    let attempt = start_attempt::Model {
        request_id: command.request_id.to_string(),
        subject_id: command.subject_id.to_string(),
        cycle_number: command.number,
        planned_start_date: command.start_date,
        anc_per_ul: wire::to_stored(command.anc_per_ul),
        platelets_per_ul: wire::to_stored(command.platelets_per_ul),
        measured_at: command.measured_at,
        detail: detail.clone(),
        recorded_at: trialops_platform::clock::now_stored(),
    };
    record_refused_start(api, audit_ctx, attempt, (trial_id, site_code)).await?;
    let mut metadata: Vec<(String, String)> = Vec::new();
    for u in &unmet {
        metadata.push((u.measure.to_owned(), u.value.to_string()));
        metadata.push((format!("min_{}", u.measure), u.minimum.to_string()));
    }
    let (step, max) = (rules.cycle_start.delay_step_days, rules.cycle_start.max_delay_days);
    metadata.push(("delay_step_days".into(), step.to_string()));
    metadata.push(("max_delay_days".into(), max.to_string()));
    Err(AppError::FailedPrecondition {
        reason: Reason::CycleStartCriteriaNotMet.into(),
        message: format!(
            "cycle {} cannot start: {detail}; the delay is recorded; \
             re-check counts in {step} days (at most {max} days of delay)",
            command.number
        ),
        metadata,
    })
}

/// The transaction: the schedule's decision, BSA and its plausibility, the doses and the
/// calendar, stored and audited together.
async fn start_in(
    tx: &DatabaseTransaction,
    audit_ctx: AuditContext,
    protocol: Arc<Protocol>,
    command: StartCycle,
) -> Result<pb::StartCycleResponse, AppError> {
    let rules = &protocol.treatment;
    let (plan, agents) = load_plan(tx, &command.subject_id).await?;
    let started = cycle::for_subject(tx, &command.subject_id).await?;
    let previous = started.last();
    let last = previous.map(|p| PreviousCycle {
        number: p.cycle_number.max(0) as u32,
        start_date: p.start_date,
    });
    let start = check_start(
        rules,
        started.len() as u32,
        last,
        command.number as u32,
        command.start_date,
    )
    .map_err(|refusal| start_refused(refusal, &command, rules))?;
    let body = Body::measured(command.height_cm, command.weight_kg, rules.bsa_decimals)
        .ok_or_else(|| AppError::invalid("height_cm", "no BSA for these values"))?;
    let implausible = plausibility(rules, previous, &command, body.bsa_m2)?;
    let (doses, active) = prescribe(&protocol, &plan, &agents, &command, &body)?;
    let record = cycle::Model {
        id: format!("{}|{}", command.subject_id, command.number),
        subject_id: command.subject_id.to_string(),
        cycle_number: command.number,
        start_date: command.start_date,
        height_cm: wire::to_stored(command.height_cm),
        weight_kg: wire::to_stored(command.weight_kg),
        bsa_m2: body.bsa_m2.to_string(),
        anc_per_ul: wire::to_stored(command.anc_per_ul),
        platelets_per_ul: wire::to_stored(command.platelets_per_ul),
        measured_at: command.measured_at,
        delay_days: start.delay_days as i32,
        implausible_confirmed: !implausible.is_empty(),
        created_at: trialops_platform::clock::now_stored(),
        protocol_version: protocol.trial.protocol_version.clone(),
    };
    let administrations = schedule(&plan, &command, &active, &doses);
    cycle::insert_started(tx, &record, &doses, &administrations).await?;
    let new = serde_json::json!({
        "cycle": audit::to_json(&record)?,
        "doses": audit::to_json(&doses)?,
        "implausible_confirmed": implausible,
    });
    let change = Change::created("cycle.started", "cycle", &record.id, new).within(&plan.trial_id, &plan.site_code);
    audit::append(tx, &audit_ctx, change).await?;
    tracing::info!(
        cycle = command.number,
        administrations = administrations.len(),
        "cycle started"
    );
    Ok(pb::StartCycleResponse {
        cycle: Some(convert::cycle(&record, &doses)?),
    })
}

/// The schedule's refusal as the caller gets it.
fn start_refused(refusal: StartRefusal, command: &StartCycle, rules: &TreatmentRules) -> AppError {
    let number = command.number;
    match refusal {
        StartRefusal::OutOfSequence { expected } => AppError::FailedPrecondition {
            reason: Reason::CycleOutOfSequence.into(),
            message: format!("the next cycle of {} is {expected}", command.subject_id),
            metadata: vec![("expected_cycle_number".into(), expected.to_string())],
        },
        StartRefusal::MaximumReached { maximum } => AppError::precondition(
            Reason::MaximumCyclesReached,
            format!("the protocol allows at most {maximum} cycles"),
        ),
        StartRefusal::TooEarly { due, previous } => AppError::FailedPrecondition {
            reason: Reason::CycleStartsTooEarly.into(),
            message: format!(
                "cycle {number} is due on {due} ({} days after cycle {previous} began)",
                rules.cycle_length_days
            ),
            metadata: vec![("due_date".into(), due.to_string())],
        },
        StartRefusal::DelayExceeded { delay_days, maximum } => AppError::precondition(
            Reason::CycleDelayExceeded,
            format!(
                "cycle {number} would start {delay_days} days late; the protocol allows {maximum}: \
                 the subject goes off protocol therapy (record it in enrollment)"
            ),
        ),
        StartRefusal::DateOutOfRange => AppError::invalid("planned_start_date", "out of range"),
    }
}

/// The measurements that need a pharmacist's confirmation; unconfirmed ones refuse the start.
fn plausibility(
    rules: &TreatmentRules,
    previous: Option<&cycle::Model>,
    command: &StartCycle,
    bsa: Decimal,
) -> Result<Vec<String>, AppError> {
    let previous_measures = match previous {
        Some(p) => Some((
            wire::from_stored("cycles.height_cm", &p.height_cm)?,
            wire::from_stored("cycles.bsa_m2", &p.bsa_m2)?,
        )),
        None => None,
    };
    let implausible = implausible_changes(rules, previous_measures, command.height_cm, bsa);
    if implausible.is_empty() || command.confirm_implausible {
        return Ok(implausible);
    }
    Err(AppError::FailedPrecondition {
        reason: Reason::ImplausibleMeasurementNeedsConfirmation.into(),
        message: format!(
            "{}; check the measurements, then send confirm_implausible_measurements",
            implausible.join("; ")
        ),
        metadata: vec![("bsa_m2".into(), bsa.to_string())],
    })
}

/// Each active agent's dose at its current level, and the protocol's agents in plan order.
fn prescribe<'p>(
    protocol: &'p Protocol,
    plan: &plan::Model,
    agents: &[plan_agent::Model],
    command: &StartCycle,
    body: &Body,
) -> Result<(Vec<dose::Model>, Vec<&'p Agent>), AppError> {
    let mut doses = Vec::new();
    let mut active = Vec::new();
    for (position, pa) in agents.iter().enumerate().filter(|(_, a)| !a.discontinued) {
        let agent = protocol_agent(protocol, &plan.arm_code, &pa.agent_id)
            .ok_or_else(|| AppError::internal(anyhow::anyhow!("agent {} not in the protocol", pa.agent_id)))?;
        let calc = daily_dose(&protocol.treatment, agent, pa.dose_level, body).map_err(|e| {
            AppError::precondition(
                Reason::DoseNotPreparable,
                format!("{e}; a pharmacist must prepare this dose another way"),
            )
        })?;
        doses.push(dose::Model {
            id: format!("{}|{}|{}", command.subject_id, command.number, agent.id),
            subject_id: command.subject_id.to_string(),
            cycle_number: command.number,
            agent_id: agent.id.clone(),
            dose_level: pa.dose_level,
            protocol_dose: wire::to_stored(calc.protocol_dose),
            basis: convert::basis_name(calc.basis).to_owned(),
            formula: calc.formula.clone(),
            calculated: wire::to_stored(calc.calculated),
            rounded: wire::to_stored(calc.rounded.dose),
            unit: calc.unit.clone(),
            position: position as i32,
        });
        active.push(agent);
    }
    Ok((doses, active))
}

/// The calendar of administrations of the active agents, each at its prescribed dose.
fn schedule(
    plan: &plan::Model,
    command: &StartCycle,
    active: &[&Agent],
    doses: &[dose::Model],
) -> Vec<administration::Model> {
    let (subject, number) = (&command.subject_id, command.number);
    calendar(active.iter().copied(), command.start_date)
        .into_iter()
        .filter_map(|p| {
            let dose = doses.iter().find(|d| d.agent_id == p.agent_id)?;
            Some(administration::Model {
                administration_id: Uuid::new_v4().to_string(),
                subject_id: subject.to_string(),
                site_code: plan.site_code.clone(),
                cycle_number: number,
                agent_id: p.agent_id.clone(),
                cycle_day: p.day as i32,
                planned_on: p.date,
                worklist_key: format!("{}|{subject}|{number:03}|{}|{:02}", p.date, p.agent_id, p.day),
                prescribed_dose: dose.rounded.clone(),
                unit: dose.unit.clone(),
                status: AdministrationStatus::Planned.as_str().into(),
                actual_dose: String::new(),
                started_at: None,
                ended_at: None,
                deviation_flagged: false,
                reason: String::new(),
                version: 1,
            })
        })
        .collect()
}

/// Records a refused start in its own transaction (once per request id) with its audit entry.
async fn record_refused_start(
    api: &DosingApi,
    ctx: &AuditContext,
    attempt: start_attempt::Model,
    (trial_id, site_code): (&str, &str),
) -> Result<(), AppError> {
    let tx = begin_write(&api.db).await?;
    if start_attempt::insert_once(&tx, &attempt).await? {
        let entity_id = format!("{}|{}", attempt.subject_id, attempt.cycle_number);
        let change = Change {
            action: "cycle.start_refused",
            entity_type: "cycle",
            entity_id: &entity_id,
            old: None,
            new: audit::to_json(&attempt)?,
            reason: &attempt.detail,
            trial_id,
            site_code,
        };
        audit::append(&tx, ctx, change).await?;
    }
    tx.commit().await?;
    Ok(())
}

async fn cycle_with_doses<C: ConnectionTrait>(conn: &C, subject_id: &str, number: i32) -> Result<pb::Cycle, AppError> {
    let (found, doses) = cycle::with_doses(conn, subject_id, number)
        .await?
        .ok_or_else(|| AppError::NotFound {
            what: "cycle",
            id: format!("{subject_id} cycle {number}"),
        })?;
    convert::cycle(&found, &doses)
}

pub(super) async fn get(
    api: &DosingApi,
    request: Request<pb::GetCycleRequest>,
) -> Result<pb::GetCycleResponse, AppError> {
    let call = CallContext::of(&request)?;
    let req = request.into_inner();
    (
        required("subject_id", &req.subject_id),
        ensure(req.cycle_number >= 1, "cycle_number", "must be 1 or more"),
    )
        .all()?;
    if let Some(plan) = plan::find(&api.db, &req.subject_id).await? {
        call.require_visible(&plan.site_code, "cycle", &req.subject_id)?;
    }
    Ok(pb::GetCycleResponse {
        cycle: Some(cycle_with_doses(&api.db, &req.subject_id, req.cycle_number).await?),
    })
}
