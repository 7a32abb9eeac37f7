//! One agent's daily dose for one cycle: protocol dose at the agent's current level × BSA (or ×
//! weight ÷ divisor under the small-child rule, or × weight, or flat), then the protocol's
//! rounding. The result keeps the inputs, the formula, the calculated and the rounded dose.

use rust_decimal::{Decimal, RoundingStrategy};

use super::rounding::{self, Rounded};
use crate::protocol::{Agent, BsaCompared, DoseBasis, TreatmentRules};

/// Decimal places the calculated (unrounded) dose is kept and shown to.
pub const CALCULATED_DECIMALS: u32 = 4;

/// How the dose was derived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppliedBasis {
    /// Dose per m² × BSA.
    PerM2,
    /// Dose per m² ÷ divisor × weight (small-child rule).
    SmallChildPerKg,
    /// Dose per kg × weight.
    PerKg,
    /// Flat dose.
    Flat,
}

/// A calculated and rounded daily dose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dose {
    /// Agent.
    pub agent_id: String,
    /// Dose level used.
    pub dose_level: i32,
    /// The protocol dose at that level, per the agent's basis.
    pub protocol_dose: Decimal,
    /// How it was applied.
    pub basis: AppliedBasis,
    /// The calculation in words and numbers, for the pharmacist's check.
    pub formula: String,
    /// The dose before rounding, to [`CALCULATED_DECIMALS`] places, or more where fewer would
    /// seem to round to another dose than the rounded one.
    pub calculated: Decimal,
    /// The dose to prepare.
    pub rounded: Rounded,
    /// Dose unit.
    pub unit: String,
}

/// Why a dose cannot be calculated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DoseError {
    /// The agent has no such dose level.
    #[error("{agent} has no dose level {level}")]
    UnknownLevel {
        /// Agent.
        agent: String,
        /// Level asked for.
        level: i32,
    },
    /// The rounding rule cannot produce a dose.
    #[error("{agent}: the rounding rule cannot prepare {calculated} {unit}")]
    NotPreparable {
        /// Agent.
        agent: String,
        /// Calculated dose.
        calculated: Decimal,
        /// Unit.
        unit: String,
    },
    /// Rounding moves the dose too far from the calculated one.
    #[error("{agent}: rounding {calculated} {unit} to {rounded} {unit} deviates {percent}% (limit {limit}%)")]
    RoundingDeviation {
        /// Agent.
        agent: String,
        /// Calculated dose.
        calculated: Decimal,
        /// Rounded dose.
        rounded: Decimal,
        /// Unit.
        unit: String,
        /// Deviation in percent.
        percent: Decimal,
        /// Protocol limit in percent.
        limit: Decimal,
    },
    /// Arithmetic overflow (inputs far outside any human range).
    #[error("{0}: dose arithmetic overflowed")]
    Overflow(String),
    /// The protocol compares the measured BSA, and only the rounded one was given.
    #[error("the protocol compares the measured BSA with the small-child threshold: height and weight are needed")]
    MeasuredBsaUnknown,
}

/// Whether the small-child rule applies: BSA or weight below the protocol's thresholds.
pub fn small_child(rules: &TreatmentRules, body: &Body) -> Result<bool, DoseError> {
    Ok(bsa_below(rules, body)? || body.weight_kg < rules.small_child_rule.weight_below_kg)
}

/// Whether the BSA the protocol compares is below the small-child threshold.
fn bsa_below(rules: &TreatmentRules, body: &Body) -> Result<bool, DoseError> {
    let threshold = rules.small_child_rule.bsa_below_m2;
    Ok(match rules.small_child_rule.bsa_compared {
        BsaCompared::Rounded => body.bsa_m2 < threshold,
        // √(h·w/3600) < t exactly when h·w/3600 < t² (both sides positive), in exact decimals.
        BsaCompared::Measured => {
            let squared = body.measured_bsa_squared.ok_or(DoseError::MeasuredBsaUnknown)?;
            squared < threshold * threshold
        }
    })
}

/// A child's size as the doses use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Body {
    /// BSA rounded per protocol, m²: the doses are calculated from it.
    pub bsa_m2: Decimal,
    /// Weight, kg.
    pub weight_kg: Decimal,
    /// The measured BSA squared (height × weight / 3600, exact); `None` when only the rounded
    /// BSA is known.
    pub measured_bsa_squared: Option<Decimal>,
}

impl Body {
    /// From height and weight: the rounded BSA and the exact measured one.
    pub fn measured(height_cm: Decimal, weight_kg: Decimal, decimals: u32) -> Option<Body> {
        Some(Body {
            bsa_m2: super::bsa::mosteller(height_cm, weight_kg, decimals)?,
            weight_kg,
            measured_bsa_squared: super::bsa::bsa_squared(height_cm, weight_kg),
        })
    }

    /// From an already rounded BSA and the weight (no height: protocols comparing the measured
    /// BSA refuse it).
    pub fn from_rounded(bsa_m2: Decimal, weight_kg: Decimal) -> Body {
        Body {
            bsa_m2,
            weight_kg,
            measured_bsa_squared: None,
        }
    }
}

/// |a − b| ÷ b × 100, to 2 decimals; `None` when b is 0.
pub fn deviation_percent(reference: Decimal, value: Decimal) -> Option<Decimal> {
    if reference.is_zero() {
        return None;
    }
    let pct = ((value - reference).abs() / reference).checked_mul(Decimal::ONE_HUNDRED)?;
    Some(pct.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero))
}

/// The calculated dose as shown beside the rounded one: to [`CALCULATED_DECIMALS`] places, or to
/// as many more as it takes for the stated rounding of the shown value to give the rounded dose.
/// 10.94998 mg rounds to 10.9 mg (1 decimal, half up); shown as 10.95 it would seem to round to
/// 11.0, so it is shown as 10.94998.
fn shown(exact: Decimal, rule: &crate::protocol::Rounding, unit: &str, rounded: Decimal) -> Decimal {
    let at = |places: u32| exact.round_dp_with_strategy(places, RoundingStrategy::MidpointAwayFromZero);
    (CALCULATED_DECIMALS..=12)
        .map(at)
        .find(|value| rounding::round(*value, rule, unit).is_some_and(|r| r.dose == rounded))
        .unwrap_or(exact)
        .normalize()
}

/// √`squared` to 4 places, for reading only (the decision compares squares exactly).
fn shown_root(squared: Decimal) -> Decimal {
    use rust_decimal::MathematicalOps;
    squared
        .sqrt()
        .map_or(squared, |r| {
            r.round_dp_with_strategy(4, RoundingStrategy::MidpointAwayFromZero)
        })
        .normalize()
}

/// The protocol dose of `agent` at `level`.
pub fn level_dose(agent: &Agent, level: i32) -> Result<Decimal, DoseError> {
    agent
        .dose_levels
        .iter()
        .find(|l| l.level == level)
        .map(|l| l.dose)
        .ok_or_else(|| DoseError::UnknownLevel {
            agent: agent.id.clone(),
            level,
        })
}

/// The daily dose of `agent` at `level` for a child of this `body`.
pub fn daily_dose(rules: &TreatmentRules, agent: &Agent, level: i32, body: &Body) -> Result<Dose, DoseError> {
    let (bsa_m2, weight_kg) = (body.bsa_m2, body.weight_kg);
    let per = level_dose(agent, level)?;
    let unit = &agent.unit;
    let overflow = || DoseError::Overflow(agent.id.clone());
    let (basis, exact, formula) = match agent.basis {
        DoseBasis::PerM2 if small_child(rules, body)? => {
            let divisor = rules.small_child_rule.per_kg_divisor;
            // Multiply before dividing so only one division rounds (at 28 significant digits).
            let exact = per
                .checked_mul(weight_kg)
                .and_then(|x| x.checked_div(divisor))
                .ok_or_else(overflow)?;
            // Name only the thresholds this child is below.
            let rule = &rules.small_child_rule;
            let mut below = Vec::new();
            if bsa_below(rules, body)? {
                below.push(match (rule.bsa_compared, body.measured_bsa_squared) {
                    (BsaCompared::Measured, Some(squared)) => {
                        format!("measured BSA {} m2 < {}", shown_root(squared), rule.bsa_below_m2)
                    }
                    _ => format!("BSA {bsa_m2} m2 < {}", rule.bsa_below_m2),
                });
            }
            if weight_kg < rule.weight_below_kg {
                below.push(format!("weight {weight_kg} kg < {}", rule.weight_below_kg));
            }
            let formula = format!(
                "{per} {unit}/m2 / {divisor} x {weight_kg} kg (small-child rule: {})",
                below.join(" and ")
            );
            (AppliedBasis::SmallChildPerKg, exact, formula)
        }
        DoseBasis::PerM2 => {
            let exact = per.checked_mul(bsa_m2).ok_or_else(overflow)?;
            (AppliedBasis::PerM2, exact, format!("{per} {unit}/m2 x {bsa_m2} m2"))
        }
        DoseBasis::PerKg => {
            let exact = per.checked_mul(weight_kg).ok_or_else(overflow)?;
            (AppliedBasis::PerKg, exact, format!("{per} {unit}/kg x {weight_kg} kg"))
        }
        DoseBasis::Flat => (AppliedBasis::Flat, per, format!("flat {per} {unit}")),
    };
    let rounded = rounding::round(exact, &agent.rounding, unit).ok_or_else(|| DoseError::NotPreparable {
        agent: agent.id.clone(),
        calculated: exact,
        unit: unit.clone(),
    })?;
    let calculated = shown(exact, &agent.rounding, unit, rounded.dose);
    let limit = rules.max_rounding_deviation_percent;
    match deviation_percent(exact, rounded.dose) {
        Some(percent) if percent <= limit => {}
        percent => {
            return Err(DoseError::RoundingDeviation {
                agent: agent.id.clone(),
                calculated,
                rounded: rounded.dose,
                unit: unit.clone(),
                percent: percent.unwrap_or(Decimal::ONE_HUNDRED),
                limit,
            });
        }
    }
    let made_of = if rounded.units.is_empty() {
        String::new()
    } else {
        let parts: Vec<String> = rounded
            .units
            .iter()
            .map(|(size, count)| format!("{count} x {} {unit}", size.normalize()))
            .collect();
        format!(" = {}", parts.join(" + "))
    };
    let formula = format!(
        "{formula} = {calculated} {unit}; rounded ({}) to {} {unit}{made_of}",
        rounded.rule,
        rounded.dose.normalize()
    );
    Ok(Dose {
        agent_id: agent.id.clone(),
        dose_level: level,
        protocol_dose: per,
        basis,
        formula,
        calculated,
        rounded,
        unit: unit.clone(),
    })
}

/// Why a dose modification is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModificationError {
    /// The level does not exist for the agent.
    #[error("{agent} has no dose level {level}")]
    UnknownLevel {
        /// Agent.
        agent: String,
        /// Level.
        level: i32,
    },
    /// The agent is already at that level.
    #[error("{agent} is already at dose level {level}")]
    NoChange {
        /// Agent.
        agent: String,
        /// Level.
        level: i32,
    },
    /// Raising the dose needs the protocol to allow re-escalation.
    #[error(
        "{agent}: dose level {to} ({to_dose}) is higher than level {from} ({from_dose}); \
         the protocol does not allow re-escalation"
    )]
    ReEscalationNotAllowed {
        /// Agent.
        agent: String,
        /// Current level.
        from: i32,
        /// Requested level.
        to: i32,
        /// Current dose.
        from_dose: Decimal,
        /// Requested dose.
        to_dose: Decimal,
    },
}

/// Checks a change of `agent` from dose level `from` to `to`. Raising the dose (by its value,
/// not its level number) is refused unless the protocol allows re-escalation for the agent.
pub fn check_modification(agent: &Agent, from: i32, to: i32) -> Result<(), ModificationError> {
    let unknown = |level| ModificationError::UnknownLevel {
        agent: agent.id.clone(),
        level,
    };
    let to_dose = level_dose(agent, to).map_err(|_| unknown(to))?;
    let from_dose = level_dose(agent, from).map_err(|_| unknown(from))?;
    if from == to {
        return Err(ModificationError::NoChange {
            agent: agent.id.clone(),
            level: to,
        });
    }
    if to_dose > from_dose && !agent.allow_re_escalation {
        return Err(ModificationError::ReEscalationNotAllowed {
            agent: agent.id.clone(),
            from,
            to,
            from_dose,
            to_dose,
        });
    }
    Ok(())
}
