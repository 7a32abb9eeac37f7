//! StartCycle and GetCycle.
//!
//! StartCycle: enrollment must say the subject is on protocol therapy; counts below the
//! protocol's minimums refuse the start and record it (the delay); then, in one transaction,
//! the cycle must be the next one, within the maximum, not early and not delayed beyond the
//! protocol's limit; BSA is computed and checked against the previous cycle; each active
//! agent's dose is calculated at its current level; the calendar of administrations is written.

use chrono::SubsecRound;
use rust_decimal::Decimal;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};
use tonic::Request;
use trialops_domain::dosing::cycle::{calendar, delay_days, due_date, implausible_changes, unmet_start_criteria};
use trialops_domain::dosing::dose::{Body, daily_dose};
use trialops_platform::audit::{self, AuditContext, Change};
use trialops_platform::auth::CallContext;
use trialops_platform::database::begin_write;
use trialops_platform::{AppError, Violations, convert as wire, idempotency};
use trialops_proto::dosing::v1 as pb;
use uuid::Uuid;

use super::{DosingApi, convert, load_plan, protocol_agent};
use crate::error::*;
use crate::store::{administration, cycle, dose, start_attempt};

pub(super) async fn start(
    api: &DosingApi,
    request: Request<pb::StartCycleRequest>,
) -> Result<pb::StartCycleResponse, AppError> {
    let call = CallContext::of(&request)?;
    let req = request.into_inner();
    let mut v = Violations::new();
    let request_id = v.take(wire::request_id("request_id", &req.request_id));
    v.check(!req.subject_id.is_empty(), "subject_id", "required");
    v.check(req.cycle_number >= 1, "cycle_number", "must be 1 or more");
    let start_date = v.take(wire::date("planned_start_date", req.planned_start_date.as_ref()));
    // Physical limits: outside them a value is a typing or unit error, never a patient.
    let height = v.take(wire::decimal_in(
        "height_cm",
        req.height_cm.as_ref(),
        Decimal::from(30),
        Decimal::from(250),
        "cm",
    ));
    let weight = v.take(wire::decimal_in(
        "weight_kg",
        req.weight_kg.as_ref(),
        Decimal::new(5, 1),
        Decimal::from(250),
        "kg",
    ));
    let anc = v.take(wire::decimal_in(
        "anc_per_ul",
        req.anc_per_ul.as_ref(),
        Decimal::ZERO,
        Decimal::from(100_000),
        "/uL",
    ));
    let platelets = v.take(wire::decimal_in(
        "platelets_per_ul",
        req.platelets_per_ul.as_ref(),
        Decimal::ZERO,
        Decimal::from(2_000_000),
        "/uL",
    ));
    let measured_at = v.take(wire::timestamp("measured_at", req.measured_at.as_ref()));
    let (Some(request_id), Some(start_date), Some(measured_at)) = (request_id, start_date, measured_at) else {
        return Err(v.into_error());
    };
    let (Some(height), Some(weight), Some(anc), Some(platelets)) = (height, weight, anc, platelets) else {
        return Err(v.into_error());
    };
    v.finish()?;

    let subject = api.enrollment.subject_on_therapy(&call, &req.subject_id).await?;
    let protocol = api.protocol(&subject.trial_id)?;
    let rules = protocol.treatment.clone();
    let audit_ctx = AuditContext::new(call, request_id);

    let unmet = unmet_start_criteria(&rules.cycle_start, anc, platelets);
    if !unmet.is_empty() {
        let detail = unmet
            .iter()
            .map(|u| format!("{} {} < minimum {}", u.measure, u.value, u.minimum))
            .collect::<Vec<_>>()
            .join("; ");
        let attempt = start_attempt::Model {
            request_id: request_id.to_string(),
            subject_id: req.subject_id.clone(),
            cycle_number: req.cycle_number,
            planned_start_date: start_date,
            anc_per_ul: convert::stored(anc),
            platelets_per_ul: convert::stored(platelets),
            measured_at,
            detail: detail.clone(),
            recorded_at: trialops_platform::clock::now().trunc_subsecs(6),
        };
        record_refused_start(api, &audit_ctx, attempt).await?;
        let mut metadata: Vec<(String, String)> = Vec::new();
        for u in &unmet {
            metadata.push((u.measure.to_owned(), u.value.to_string()));
            metadata.push((format!("min_{}", u.measure), u.minimum.to_string()));
        }
        metadata.push(("delay_step_days".into(), rules.cycle_start.delay_step_days.to_string()));
        metadata.push(("max_delay_days".into(), rules.cycle_start.max_delay_days.to_string()));
        return Err(AppError::FailedPrecondition {
            reason: CYCLE_START_CRITERIA_NOT_MET,
            message: format!(
                "cycle {} cannot start: {detail}; the delay is recorded; \
                 re-check counts in {} days (at most {} days of delay)",
                req.cycle_number, rules.cycle_start.delay_step_days, rules.cycle_start.max_delay_days
            ),
            metadata,
        });
    }

    idempotency::execute(
        &api.db,
        "DosingService/StartCycle",
        request_id,
        &req.clone(),
        move |tx| {
            Box::pin(async move {
                let (plan, agents) = load_plan(tx, &req.subject_id).await?;
                let previous_cycles = cycle::Entity::find()
                    .filter(cycle::Column::SubjectId.eq(req.subject_id.as_str()))
                    .order_by_asc(cycle::Column::CycleNumber)
                    .all(tx)
                    .await?;
                let expected = previous_cycles.len() as i32 + 1;
                if req.cycle_number != expected {
                    return Err(AppError::FailedPrecondition {
                        reason: CYCLE_OUT_OF_SEQUENCE,
                        message: format!("the next cycle of {} is {expected}", req.subject_id),
                        metadata: vec![("expected_cycle_number".into(), expected.to_string())],
                    });
                }
                if req.cycle_number as u32 > rules.maximum_cycles {
                    return Err(AppError::precondition(
                        MAXIMUM_CYCLES_REACHED,
                        format!("the protocol allows at most {} cycles", rules.maximum_cycles),
                    ));
                }
                let previous = previous_cycles.last();
                let delay = match previous {
                    Some(p) => {
                        let due = due_date(p.start_date, &rules)
                            .ok_or_else(|| AppError::invalid("planned_start_date", "out of range"))?;
                        if start_date < due {
                            return Err(AppError::FailedPrecondition {
                                reason: CYCLE_STARTS_TOO_EARLY,
                                message: format!(
                                    "cycle {} is due on {due} ({} days after cycle {} began)",
                                    req.cycle_number, rules.cycle_length_days, p.cycle_number
                                ),
                                metadata: vec![("due_date".into(), due.to_string())],
                            });
                        }
                        delay_days(due, start_date)
                    }
                    None => 0,
                };
                if delay > i64::from(rules.cycle_start.max_delay_days) {
                    return Err(AppError::precondition(
                        CYCLE_DELAY_EXCEEDED,
                        format!(
                            "cycle {} would start {delay} days late; the protocol allows {}: \
                         the subject goes off protocol therapy (record it in enrollment)",
                            req.cycle_number, rules.cycle_start.max_delay_days
                        ),
                    ));
                }
                let body = Body::measured(height, weight, rules.bsa_decimals)
                    .ok_or_else(|| AppError::invalid("height_cm", "no BSA for these values"))?;
                let bsa = body.bsa_m2;
                let previous_measures = match previous {
                    Some(p) => Some((convert::parse(&p.height_cm)?, convert::parse(&p.bsa_m2)?)),
                    None => None,
                };
                let implausible = implausible_changes(&rules, previous_measures, height, bsa);
                if !implausible.is_empty() && !req.confirm_implausible_measurements {
                    return Err(AppError::FailedPrecondition {
                        reason: IMPLAUSIBLE_MEASUREMENT_NEEDS_CONFIRMATION,
                        message: format!(
                            "{}; check the measurements, then send confirm_implausible_measurements",
                            implausible.join("; ")
                        ),
                        metadata: vec![("bsa_m2".into(), bsa.to_string())],
                    });
                }

                let mut doses = Vec::new();
                let mut active = Vec::new();
                for (position, pa) in agents.iter().enumerate().filter(|(_, a)| !a.discontinued) {
                    let agent = protocol_agent(&protocol, &plan.arm_code, &pa.agent_id).ok_or_else(|| {
                        AppError::internal(anyhow::anyhow!("agent {} not in the protocol", pa.agent_id))
                    })?;
                    let calc = daily_dose(&rules, agent, pa.dose_level, &body).map_err(|e| {
                        AppError::precondition(
                            DOSE_NOT_PREPARABLE,
                            format!("{e}; a pharmacist must prepare this dose another way"),
                        )
                    })?;
                    doses.push(dose::Model {
                        id: format!("{}|{}|{}", req.subject_id, req.cycle_number, agent.id),
                        subject_id: req.subject_id.clone(),
                        cycle_number: req.cycle_number,
                        agent_id: agent.id.clone(),
                        dose_level: pa.dose_level,
                        protocol_dose: convert::stored(calc.protocol_dose),
                        basis: convert::basis_name(calc.basis).to_owned(),
                        formula: calc.formula.clone(),
                        calculated: convert::stored(calc.calculated),
                        rounded: convert::stored(calc.rounded.dose),
                        unit: calc.unit.clone(),
                        position: position as i32,
                    });
                    active.push(agent);
                }
                let record = cycle::Model {
                    id: format!("{}|{}", req.subject_id, req.cycle_number),
                    subject_id: req.subject_id.clone(),
                    cycle_number: req.cycle_number,
                    start_date,
                    height_cm: convert::stored(height),
                    weight_kg: convert::stored(weight),
                    bsa_m2: bsa.to_string(),
                    anc_per_ul: convert::stored(anc),
                    platelets_per_ul: convert::stored(platelets),
                    measured_at,
                    delay_days: delay as i32,
                    implausible_confirmed: !implausible.is_empty(),
                    created_at: trialops_platform::clock::now().trunc_subsecs(6),
                };
                let administrations: Vec<administration::Model> = calendar(active.iter().copied(), start_date)
                    .into_iter()
                    .filter_map(|p| {
                        let dose = doses.iter().find(|d| d.agent_id == p.agent_id)?;
                        Some(administration::Model {
                            administration_id: Uuid::new_v4().to_string(),
                            subject_id: req.subject_id.clone(),
                            site_code: plan.site_code.clone(),
                            cycle_number: req.cycle_number,
                            agent_id: p.agent_id.clone(),
                            cycle_day: p.day as i32,
                            planned_on: p.date,
                            worklist_key: format!(
                                "{}|{}|{:03}|{}|{:02}",
                                p.date, req.subject_id, req.cycle_number, p.agent_id, p.day
                            ),
                            prescribed_dose: dose.rounded.clone(),
                            unit: dose.unit.clone(),
                            status: "planned".into(),
                            actual_dose: String::new(),
                            started_at: None,
                            ended_at: None,
                            deviation_flagged: false,
                            reason: String::new(),
                            version: 1,
                        })
                    })
                    .collect();
                cycle::Entity::insert(cycle::ActiveModel::from(record.clone()))
                    .exec_without_returning(tx)
                    .await?;
                dose::Entity::insert_many(doses.iter().cloned().map(dose::ActiveModel::from))
                    .exec_without_returning(tx)
                    .await?;
                administration::Entity::insert_many(
                    administrations.iter().cloned().map(administration::ActiveModel::from),
                )
                .exec_without_returning(tx)
                .await?;
                audit::append(
                    tx,
                    &audit_ctx,
                    Change {
                        action: "cycle.started",
                        entity_type: "cycle",
                        entity_id: &record.id,
                        old: None,
                        new: serde_json::json!({
                            "cycle": audit::to_json(&record)?,
                            "doses": audit::to_json(&doses)?,
                            "implausible_confirmed": implausible,
                        }),
                        reason: "",
                    },
                )
                .await?;
                tracing::info!(
                    cycle = req.cycle_number,
                    administrations = administrations.len(),
                    "cycle started"
                );
                Ok(pb::StartCycleResponse {
                    cycle: Some(convert::cycle(&record, &doses)?),
                })
            })
        },
    )
    .await
}

/// Records a refused start in its own transaction (once per request id) with its audit entry.
async fn record_refused_start(
    api: &DosingApi,
    ctx: &AuditContext,
    attempt: start_attempt::Model,
) -> Result<(), AppError> {
    let tx = begin_write(&api.db).await?;
    let inserted = start_attempt::Entity::insert(start_attempt::ActiveModel::from(attempt.clone()))
        .on_conflict_do_nothing_on([start_attempt::Column::RequestId])
        .exec_without_returning(&tx)
        .await?;
    if matches!(inserted, sea_orm::TryInsertResult::Inserted(1)) {
        let entity_id = format!("{}|{}", attempt.subject_id, attempt.cycle_number);
        audit::append(
            &tx,
            ctx,
            Change {
                action: "cycle.start_refused",
                entity_type: "cycle",
                entity_id: &entity_id,
                old: None,
                new: audit::to_json(&attempt)?,
                reason: &attempt.detail,
            },
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

async fn cycle_with_doses<C: ConnectionTrait>(conn: &C, subject_id: &str, number: i32) -> Result<pb::Cycle, AppError> {
    let found = cycle::Entity::find_by_id(format!("{subject_id}|{number}"))
        .one(conn)
        .await?
        .ok_or_else(|| AppError::NotFound {
            what: "cycle",
            id: format!("{subject_id} cycle {number}"),
        })?;
    let doses = dose::Entity::find()
        .filter(dose::Column::SubjectId.eq(subject_id))
        .filter(dose::Column::CycleNumber.eq(number))
        .order_by_asc(dose::Column::Position)
        .all(conn)
        .await?;
    convert::cycle(&found, &doses)
}

pub(super) async fn get(
    api: &DosingApi,
    request: Request<pb::GetCycleRequest>,
) -> Result<pb::GetCycleResponse, AppError> {
    let call = CallContext::of(&request)?;
    let req = request.into_inner();
    let mut v = Violations::new();
    v.check(!req.subject_id.is_empty(), "subject_id", "required");
    v.check(req.cycle_number >= 1, "cycle_number", "must be 1 or more");
    v.finish()?;
    if let Some(plan) = crate::store::plan::Entity::find_by_id(req.subject_id.clone())
        .one(&api.db)
        .await?
    {
        call.require_visible(&plan.site_code, "cycle", &req.subject_id)?;
    }
    Ok(pb::GetCycleResponse {
        cycle: Some(cycle_with_doses(&api.db, &req.subject_id, req.cycle_number).await?),
    })
}
