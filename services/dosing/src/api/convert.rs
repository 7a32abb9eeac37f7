//! Conversions between dosing proto messages and the store's records.

use trialops_domain::dosing::administration::AdministrationStatus;
use trialops_domain::dosing::bsa::MOSTELLER;
use trialops_domain::dosing::dose::AppliedBasis;
use trialops_domain::protocol::{DoseBasis, Protocol};
use trialops_platform::AppError;
use trialops_platform::wire::convert::{from_stored, to_date, to_decimal, to_timestamp};
use trialops_proto::dosing::v1 as pb;

use super::protocol_agent;
use crate::store::{administration, cycle, dose, plan, plan_agent};

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
                calculated_dose: Some(to_decimal(from_stored("doses.calculated", &d.calculated)?)),
                rounded_dose: Some(to_decimal(from_stored("doses.rounded", &d.rounded)?)),
                dose_unit: d.unit.clone(),
                small_child_rule_applied: d.basis == basis_name(AppliedBasis::SmallChildPerKg),
            })
        })
        .collect::<Result<_, AppError>>()?;
    Ok(pb::Cycle {
        subject_id: c.subject_id.clone(),
        cycle_number: c.cycle_number,
        start_date: Some(to_date(c.start_date)),
        height_cm: Some(to_decimal(from_stored("cycles.height_cm", &c.height_cm)?)),
        weight_kg: Some(to_decimal(from_stored("cycles.weight_kg", &c.weight_kg)?)),
        bsa_m2: Some(trialops_proto::common::v1::Decimal {
            value: c.bsa_m2.clone(),
        }),
        doses,
        delay_days: c.delay_days,
        bsa_formula: MOSTELLER.to_owned(),
        implausible_measurements_confirmed: c.implausible_confirmed,
        protocol_version: c.protocol_version.clone(),
    })
}

/// The domain status a recorded wire status means (UNSPECIFIED is still planned).
pub fn status_from_wire(s: pb::AdministrationStatus) -> AdministrationStatus {
    match s {
        pb::AdministrationStatus::Unspecified | pb::AdministrationStatus::Planned => AdministrationStatus::Planned,
        pb::AdministrationStatus::Given => AdministrationStatus::Given,
        pb::AdministrationStatus::PartiallyGiven => AdministrationStatus::PartiallyGiven,
        pb::AdministrationStatus::Held => AdministrationStatus::Held,
        pb::AdministrationStatus::NotGiven => AdministrationStatus::NotGiven,
    }
}

/// The wire form of a status.
fn status_to_wire(s: AdministrationStatus) -> pb::AdministrationStatus {
    match s {
        AdministrationStatus::Planned => pb::AdministrationStatus::Planned,
        AdministrationStatus::Given => pb::AdministrationStatus::Given,
        AdministrationStatus::PartiallyGiven => pb::AdministrationStatus::PartiallyGiven,
        AdministrationStatus::Held => pb::AdministrationStatus::Held,
        AdministrationStatus::NotGiven => pb::AdministrationStatus::NotGiven,
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
        prescribed_dose: Some(to_decimal(from_stored(
            "administrations.prescribed_dose",
            &a.prescribed_dose,
        )?)),
        dose_unit: a.unit.clone(),
        status: status_to_wire(a.status()?) as i32,
        actual_dose: if a.actual_dose.is_empty() {
            None
        } else {
            Some(to_decimal(from_stored("administrations.actual_dose", &a.actual_dose)?))
        },
        started_at: a.started_at.map(to_timestamp),
        ended_at: a.ended_at.map(to_timestamp),
        deviation_flagged: a.deviation_flagged,
        reason: a.reason.clone(),
        etag: a.version.to_string(),
        cycle_day: a.cycle_day,
    })
}
