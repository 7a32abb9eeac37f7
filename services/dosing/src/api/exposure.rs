//! GetCumulativeExposure and ListExposures: per agent, the total delivered and planned, and dose
//! intensity (delivered ÷ planned, where planned is the sum of prescribed doses of started
//! cycles); cycles started and completed (every administration recorded); whether any protocol
//! therapy was given. A page of subjects costs four queries, whatever its size.
//!
//! GetActiveTreatment: the cycle running on a date and its agents.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rust_decimal::{Decimal, RoundingStrategy};
use sea_orm::ConnectionTrait;
use tonic::Request;
use trialops_platform::identity::auth::CallContext;
use trialops_platform::wire::convert::to_decimal;
use trialops_platform::wire::fields::{AllFields, required};
use trialops_platform::{AppError, wire::convert as wire, wire::pagination};
use trialops_proto::dosing::v1 as pb;

use super::DosingApi;
use crate::store::{administration, cycle, plan, plan_agent};

/// Delivered and planned totals.
#[derive(Default)]
struct Totals {
    delivered: Decimal,
    planned: Decimal,
}

/// One agent's totals, overall and per protocol version (in order of first use, with the cycles).
struct AgentTotals {
    unit: String,
    all: Totals,
    by_version: Vec<(String, BTreeSet<i32>, Totals)>,
}

/// The exposure of one subject from its plan's agents, its started cycles and its
/// administrations.
fn summarize(
    subject_id: &str,
    agents: &[&plan_agent::Model],
    cycles: &[&cycle::Model],
    rows: &[&administration::Dosed],
) -> Result<pb::GetCumulativeExposureResponse, AppError> {
    let version_of: BTreeMap<i32, &str> = cycles
        .iter()
        .map(|c| (c.cycle_number, c.protocol_version.as_str()))
        .collect();
    let mut totals: BTreeMap<&str, AgentTotals> = BTreeMap::new();
    let mut open_cycles = BTreeSet::new();
    let mut received = false;
    let mut ordered: Vec<&&administration::Dosed> = rows.iter().collect();
    ordered.sort_by_key(|a| a.cycle_number);
    for a in ordered {
        let entry = totals.entry(a.agent_id.as_str()).or_insert_with(|| AgentTotals {
            unit: a.unit.clone(),
            all: Totals::default(),
            by_version: Vec::new(),
        });
        let version = version_of.get(&a.cycle_number).copied().unwrap_or_default();
        let position = match entry.by_version.iter().position(|(v, _, _)| v == version) {
            Some(i) => i,
            None => {
                entry
                    .by_version
                    .push((version.to_owned(), BTreeSet::new(), Totals::default()));
                entry.by_version.len() - 1
            }
        };
        let (_, version_cycles, version_totals) = &mut entry.by_version[position];
        version_cycles.insert(a.cycle_number);
        let planned = wire::from_stored("administrations.prescribed_dose", &a.prescribed_dose)?;
        entry.all.planned += planned;
        version_totals.planned += planned;
        if !a.actual_dose.is_empty() {
            let given = wire::from_stored("administrations.actual_dose", &a.actual_dose)?;
            entry.all.delivered += given;
            version_totals.delivered += given;
            received |= given > Decimal::ZERO;
        }
        if a.status.is_open() {
            open_cycles.insert(a.cycle_number);
        }
    }
    let per_agent = agents
        .iter()
        .filter_map(|pa| {
            let t = totals.get(pa.agent_id.as_str())?;
            let intensity = if t.all.planned.is_zero() {
                Decimal::ZERO
            } else {
                (t.all.delivered / t.all.planned).round_dp_with_strategy(4, RoundingStrategy::MidpointAwayFromZero)
            };
            Some(pb::AgentExposure {
                agent_id: pa.agent_id.clone(),
                delivered_total: Some(to_decimal(t.all.delivered)),
                planned_total: Some(to_decimal(t.all.planned)),
                dose_unit: t.unit.clone(),
                dose_intensity: Some(to_decimal(intensity)),
                by_protocol_version: t
                    .by_version
                    .iter()
                    .map(|(version, cycles, v)| pb::VersionExposure {
                        protocol_version: version.clone(),
                        cycles: i32::try_from(cycles.len()).unwrap_or(i32::MAX),
                        delivered_total: Some(to_decimal(v.delivered)),
                        planned_total: Some(to_decimal(v.planned)),
                    })
                    .collect(),
            })
        })
        .collect();
    let cycles_with_rows: BTreeSet<i32> = rows.iter().map(|a| a.cycle_number).collect();
    let completed = cycles_with_rows.difference(&open_cycles).count();
    Ok(pb::GetCumulativeExposureResponse {
        subject_id: subject_id.to_owned(),
        cycles_started: i32::try_from(cycles.len()).unwrap_or(i32::MAX),
        cycles_completed: i32::try_from(completed).unwrap_or(i32::MAX),
        agents: per_agent,
        received_protocol_therapy: received,
    })
}

/// The exposures of `subject_ids` in four queries.
async fn exposures<C: ConnectionTrait>(
    conn: &C,
    subject_ids: &[String],
) -> Result<Vec<pb::GetCumulativeExposureResponse>, AppError> {
    let plan::ExposureRows {
        agents,
        cycles,
        administrations: rows,
    } = plan::exposure_rows(conn, subject_ids).await?;
    // Each subject's rows, in the order read: one pass over each set, not one per subject.
    type Rows<'a> = (
        Vec<&'a plan_agent::Model>,
        Vec<&'a cycle::Model>,
        Vec<&'a administration::Dosed>,
    );
    let mut of: HashMap<&str, Rows> = subject_ids.iter().map(|id| (id.as_str(), Rows::default())).collect();
    for a in &agents {
        if let Some(rows) = of.get_mut(a.subject_id.as_str()) {
            rows.0.push(a);
        }
    }
    for c in &cycles {
        if let Some(rows) = of.get_mut(c.subject_id.as_str()) {
            rows.1.push(c);
        }
    }
    for a in &rows {
        if let Some(rows) = of.get_mut(a.subject_id.as_str()) {
            rows.2.push(a);
        }
    }
    subject_ids
        .iter()
        .map(|id| {
            let (mine, started, administered) = of.get(id.as_str()).cloned().unwrap_or_default();
            summarize(id, &mine, &started, &administered)
        })
        .collect()
}

pub(super) async fn cumulative(
    api: &DosingApi,
    request: Request<pb::GetCumulativeExposureRequest>,
) -> Result<pb::GetCumulativeExposureResponse, AppError> {
    let call = CallContext::of(&request)?;
    let req = request.into_inner();
    if req.subject_id.is_empty() {
        return Err(AppError::invalid("subject_id", "required"));
    }
    let Some(found) = plan::find(&api.db, &req.subject_id).await? else {
        return Err(AppError::NotFound {
            what: "treatment plan",
            id: req.subject_id,
        });
    };
    call.require_visible(&found.site_code, "treatment plan", &found.subject_id)?;
    exposures(&api.db, std::slice::from_ref(&req.subject_id))
        .await?
        .pop()
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("no exposure computed")))
}

pub(super) async fn list(
    api: &DosingApi,
    request: Request<pb::ListExposuresRequest>,
) -> Result<pb::ListExposuresResponse, AppError> {
    let req = request.into_inner();
    if req.trial_id.is_empty() {
        return Err(AppError::invalid("trial_id", "required"));
    }
    let scope = format!("exposures|{}", req.trial_id);
    let page = pagination::page(req.page_size, &req.page_token, &scope)?;
    let plans = plan::of_trial(&api.db, &req.trial_id, page.after.as_deref(), page.size + 1).await?;
    let (plans, next_page_token) = pagination::split(plans, &page, &scope, |p| p.subject_id.clone());
    let ids: Vec<String> = plans.into_iter().map(|p| p.subject_id).collect();
    let exposures = if ids.is_empty() {
        Vec::new()
    } else {
        exposures(&api.db, &ids).await?
    };
    Ok(pb::ListExposuresResponse {
        exposures,
        next_page_token,
    })
}

pub(super) async fn active(
    api: &DosingApi,
    request: Request<pb::GetActiveTreatmentRequest>,
) -> Result<pb::GetActiveTreatmentResponse, AppError> {
    let call = CallContext::of(&request)?;
    let req = request.into_inner();
    let (_, on) = (
        required("subject_id", &req.subject_id),
        wire::date("on_date", req.on_date.as_ref()),
    )
        .all()?;
    if super::plan_hidden_from(&api.db, &call, &req.subject_id).await? {
        // Another site's subject reads as one without treatment.
        return Ok(pb::GetActiveTreatmentResponse::default());
    }
    let Some((running, agent_ids)) = cycle::running_on(&api.db, &req.subject_id, on).await? else {
        return Ok(pb::GetActiveTreatmentResponse::default());
    };
    Ok(pb::GetActiveTreatmentResponse {
        cycle_number: running.cycle_number,
        agent_ids,
    })
}
