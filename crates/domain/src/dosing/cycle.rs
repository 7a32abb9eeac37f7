//! Cycle rules: the blood counts needed to start a cycle, delays, plausibility of a cycle's
//! measurements against the previous cycle, and the calendar of administrations.

use chrono::{Days, NaiveDate};
use rust_decimal::Decimal;

use super::dose::deviation_percent;
use crate::protocol::{Agent, CycleStartCriteria, TreatmentRules};

/// A cycle-start criterion that is not met.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unmet {
    /// What was measured, for example "anc_per_ul".
    pub measure: &'static str,
    /// The value measured.
    pub value: Decimal,
    /// The protocol's minimum.
    pub minimum: Decimal,
}

/// The counts below the protocol's minimums; empty when the cycle may start.
pub fn unmet_start_criteria(c: &CycleStartCriteria, anc_per_ul: Decimal, platelets_per_ul: Decimal) -> Vec<Unmet> {
    let mut unmet = Vec::new();
    if anc_per_ul < c.min_anc_per_ul {
        unmet.push(Unmet {
            measure: "anc_per_ul",
            value: anc_per_ul,
            minimum: c.min_anc_per_ul,
        });
    }
    if platelets_per_ul < c.min_platelets_per_ul {
        unmet.push(Unmet {
            measure: "platelets_per_ul",
            value: platelets_per_ul,
            minimum: c.min_platelets_per_ul,
        });
    }
    unmet
}

/// An administration recorded as given before the protocol allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GivenTooEarly {
    /// Its planned day.
    pub planned_on: NaiveDate,
    /// The earliest day it may be recorded as given.
    pub earliest: NaiveDate,
}

/// Whether an administration planned on `planned_on` may be recorded as given on `started_on`:
/// not more than the protocol's `earliest_administration_days_before_planned` days before its
/// planned day. A later day is a delay, which the record shows, never a refusal.
pub fn check_given_on(
    planned_on: NaiveDate,
    started_on: NaiveDate,
    rules: &TreatmentRules,
) -> Result<(), GivenTooEarly> {
    let earliest = planned_on
        .checked_sub_days(Days::new(u64::from(rules.earliest_administration_days_before_planned)))
        .unwrap_or(NaiveDate::MIN);
    if started_on < earliest {
        return Err(GivenTooEarly { planned_on, earliest });
    }
    Ok(())
}

/// When a cycle is due: the previous cycle's day 1 plus the cycle length.
pub fn due_date(previous_start: NaiveDate, rules: &TreatmentRules) -> Option<NaiveDate> {
    previous_start.checked_add_days(Days::new(u64::from(rules.cycle_length_days)))
}

/// What StartCycle knows of the subject's last started cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PreviousCycle {
    /// Its number.
    pub number: u32,
    /// Its day 1.
    pub start_date: NaiveDate,
}

/// A start the schedule allows, with its delay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Start {
    /// Days late against the due date (0 for cycle 1 and on time).
    pub delay_days: i64,
}

/// Why the schedule refuses a cycle start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartRefusal {
    /// Not the next cycle.
    OutOfSequence {
        /// The number the next cycle has.
        expected: u32,
    },
    /// Past the protocol's maximum number of cycles.
    MaximumReached {
        /// The protocol's maximum [configurable].
        maximum: u32,
    },
    /// Before the previous cycle has run its length.
    TooEarly {
        /// The first allowed day 1.
        due: NaiveDate,
        /// The previous cycle's number.
        previous: u32,
    },
    /// Later than the protocol's maximum delay: off protocol therapy per protocol.
    DelayExceeded {
        /// Days late.
        delay_days: i64,
        /// The protocol's maximum delay [configurable].
        maximum: u32,
    },
    /// The due date cannot be represented (a start date near the end of the calendar).
    DateOutOfRange,
}

/// Whether cycle `number` may start on `start`, after `started` cycles of which `previous` is
/// the last: the next in sequence, within the maximum, not before the previous cycle has run
/// its length, and at most the maximum delay after that.
pub fn check_start(
    rules: &TreatmentRules,
    started: u32,
    previous: Option<PreviousCycle>,
    number: u32,
    start: NaiveDate,
) -> Result<Start, StartRefusal> {
    let expected = started + 1;
    if number != expected {
        return Err(StartRefusal::OutOfSequence { expected });
    }
    if number > rules.maximum_cycles {
        return Err(StartRefusal::MaximumReached {
            maximum: rules.maximum_cycles,
        });
    }
    let delay = match previous {
        None => 0,
        Some(p) => {
            let due = due_date(p.start_date, rules).ok_or(StartRefusal::DateOutOfRange)?;
            if start < due {
                return Err(StartRefusal::TooEarly {
                    due,
                    previous: p.number,
                });
            }
            delay_days(due, start)
        }
    };
    let maximum = rules.cycle_start.max_delay_days;
    if delay > i64::from(maximum) {
        return Err(StartRefusal::DelayExceeded {
            delay_days: delay,
            maximum,
        });
    }
    Ok(Start { delay_days: delay })
}

/// Days a start is late against its due date (0 when on time or early).
pub fn delay_days(due: NaiveDate, start: NaiveDate) -> i64 {
    (start - due).num_days().max(0)
}

/// Measurements that need a pharmacist's explicit confirmation before dosing, each explained.
pub fn implausible_changes(
    rules: &TreatmentRules,
    previous: Option<(Decimal, Decimal)>,
    height_cm: Decimal,
    bsa_m2: Decimal,
) -> Vec<String> {
    let mut reasons = Vec::new();
    if let Some((previous_height, previous_bsa)) = previous {
        if let Some(change) = deviation_percent(previous_bsa, bsa_m2)
            && change > rules.max_bsa_change_percent
        {
            reasons.push(format!(
                "BSA changed {change}% since the previous cycle ({previous_bsa} -> {bsa_m2} m2; limit {}%)",
                rules.max_bsa_change_percent
            ));
        }
        // Children do not shrink: a drop of more than 2 cm is most likely a measuring or typing error.
        if previous_height - height_cm > Decimal::from(2) {
            reasons.push(format!("height fell from {previous_height} cm to {height_cm} cm"));
        }
    }
    reasons
}

/// One planned administration of a cycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    /// Agent.
    pub agent_id: String,
    /// Day of the cycle, 1-based.
    pub day: u32,
    /// Calendar date.
    pub date: NaiveDate,
}

/// The calendar of a cycle starting on `start` for the given agents, in date then agent order.
pub fn calendar<'a>(agents: impl IntoIterator<Item = &'a Agent>, start: NaiveDate) -> Vec<Planned> {
    let mut planned: Vec<Planned> = agents
        .into_iter()
        .flat_map(|agent| {
            agent.days.iter().filter_map(move |day| {
                let date = start.checked_add_days(Days::new(u64::from(day.saturating_sub(1))))?;
                Some(Planned {
                    agent_id: agent.id.clone(),
                    day: *day,
                    date,
                })
            })
        })
        .collect();
    planned.sort_by(|a, b| a.date.cmp(&b.date).then(a.agent_id.cmp(&b.agent_id)));
    planned
}
