//! Conversions between dosing proto messages and the store's records.

use rust_decimal::Decimal;
use trialops_domain::dosing::bsa::MOSTELLER;
use trialops_domain::dosing::dose::AppliedBasis;
use trialops_domain::protocol::{DoseBasis, Protocol};
use trialops_platform::AppError;
use trialops_platform::convert::{to_date, to_decimal, to_timestamp};
use trialops_proto::dosing::v1 as pb;

use super::protocol_agent;
use crate::store::{administration, cycle, dose, plan, plan_agent};

/// A decimal as the store keeps it (canonical text).
pub fn stored(value: Decimal) -> String {
    value.normalize().to_string()
}

/// A stored decimal; a malformed one is an internal error.
pub fn parse(text: &str) -> Result<Decimal, AppError> {
    text.parse()
        .map_err(|_| AppError::internal(anyhow::anyhow!("stored decimal {text:?} is malformed")))
}

/// The stored name of how a dose was derived.
pub fn basis_name(basis: AppliedBasis) -> &'static str {
    match basis {
        AppliedBasis::PerM2 => "per_m2",
        AppliedBasis::SmallChildPerKg => "small_child_per_kg",
        AppliedBasis::PerKg => "per_kg",
        AppliedBasis::Flat => "flat",
    }
}

fn basis(b: DoseBasis) -> pb::DoseBasis {
    match b {
        DoseBasis::PerM2 => pb::DoseBasis::PerM2,
        DoseBasis::PerKg => pb::DoseBasis::PerKg,
        DoseBasis::Flat => pb::DoseBasis::Flat,
    }
}

/// The wire form of a plan.
pub fn plan(
    protocol: &Protocol,
    p: &plan::Model,
    agents: &[plan_agent::Model],
    cycles_started: i32,
) -> pb::TreatmentPlan {
    let planned = agents
        .iter()
        .filter_map(|a| {
            let agent = protocol_agent(protocol, &p.arm_code, &a.agent_id)?;
            let dose = agent.dose_levels.iter().find(|l| l.level == a.dose_level)?.dose;
            Some(pb::PlannedAgent {
                agent_id: a.agent_id.clone(),
                dose_level: a.dose_level,
                protocol_dose: Some(to_decimal(dose)),
                basis: basis(agent.basis) as i32,
                dose_unit: agent.unit.clone(),
                route: agent.route.clone(),
                cycle_days: agent.days.iter().map(|d| *d as i32).collect(),
                discontinued: a.discontinued,
                discontinued_reason: a.discontinued_reason.clone(),
            })
        })
        .collect();
    pb::TreatmentPlan {
        subject_id: p.subject_id.clone(),
        trial_id: p.trial_id.clone(),
        arm_code: p.arm_code.clone(),
        agents: planned,
        cycles_started,
        maximum_cycles: protocol.treatment.maximum_cycles as i32,
        etag: p.version.to_string(),
    }
}

/// The wire form of a cycle with its doses.
pub fn cycle(c: &cycle::Model, doses: &[dose::Model]) -> Result<pb::Cycle, AppError> {
    let doses = doses
        .iter()
        .map(|d| {
            Ok(pb::DoseCalculation {
                agent_id: d.agent_id.clone(),
                dose_level: d.dose_level,
                formula: d.formula.clone(),
                calculated_dose: Some(to_decimal(parse(&d.calculated)?)),
                rounded_dose: Some(to_decimal(parse(&d.rounded)?)),
                dose_unit: d.unit.clone(),
                small_child_rule_applied: d.basis == basis_name(AppliedBasis::SmallChildPerKg),
            })
        })
        .collect::<Result<_, AppError>>()?;
    Ok(pb::Cycle {
        subject_id: c.subject_id.clone(),
        cycle_number: c.cycle_number,
        start_date: Some(to_date(c.start_date)),
        height_cm: Some(to_decimal(parse(&c.height_cm)?)),
        weight_kg: Some(to_decimal(parse(&c.weight_kg)?)),
        bsa_m2: Some(trialops_proto::common::v1::Decimal {
            value: c.bsa_m2.clone(),
        }),
        doses,
        delay_days: c.delay_days,
        bsa_formula: MOSTELLER.to_owned(),
        implausible_measurements_confirmed: c.implausible_confirmed,
    })
}

/// Stored name of an administration status.
pub fn status_name(s: pb::AdministrationStatus) -> &'static str {
    match s {
        pb::AdministrationStatus::Unspecified | pb::AdministrationStatus::Planned => "planned",
        pb::AdministrationStatus::Given => "given",
        pb::AdministrationStatus::PartiallyGiven => "partially_given",
        pb::AdministrationStatus::Held => "held",
        pb::AdministrationStatus::NotGiven => "not_given",
    }
}

fn status_of(name: &str) -> pb::AdministrationStatus {
    match name {
        "given" => pb::AdministrationStatus::Given,
        "partially_given" => pb::AdministrationStatus::PartiallyGiven,
        "held" => pb::AdministrationStatus::Held,
        "not_given" => pb::AdministrationStatus::NotGiven,
        _ => pb::AdministrationStatus::Planned,
    }
}

/// The wire form of an administration.
pub fn administration(a: &administration::Model) -> Result<pb::Administration, AppError> {
    Ok(pb::Administration {
        administration_id: a.administration_id.clone(),
        subject_id: a.subject_id.clone(),
        site_code: a.site_code.clone(),
        cycle_number: a.cycle_number,
        agent_id: a.agent_id.clone(),
        planned_on: Some(to_date(a.planned_on)),
        prescribed_dose: Some(to_decimal(parse(&a.prescribed_dose)?)),
        dose_unit: a.unit.clone(),
        status: status_of(&a.status) as i32,
        actual_dose: if a.actual_dose.is_empty() {
            None
        } else {
            Some(to_decimal(parse(&a.actual_dose)?))
        },
        started_at: a.started_at.map(to_timestamp),
        ended_at: a.ended_at.map(to_timestamp),
        deviation_flagged: a.deviation_flagged,
        reason: a.reason.clone(),
        etag: a.version.to_string(),
        cycle_day: a.cycle_day,
    })
}
