//! Protocol amendments: which version of a trial's definition is in force on a date, and whether a
//! proposed version may follow the ones recorded without invalidating data already collected.
//!
//! A trial's first version is in force from the start; each amendment from its effective date
//! on. A record keeps the version in force on its own clinical date (a cycle's day 1, a
//! screening's or an assessment's date), so a late entry for an earlier date is judged by the
//! version that governed that date.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;

use super::{Protocol, ProtocolProblem};

/// A recorded version as the schedule needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activation {
    /// The definition's `trial.protocol_version`.
    pub version: String,
    /// First day it is in force; `None` for the first version (in force from the start).
    pub effective_on: Option<NaiveDate>,
}

/// The version in force on `date`: the latest (in activation order) whose effective date is on or
/// before it. Activations are in the order they were recorded, each effective later than the one
/// before, so the answer is unique. `None` only when nothing is recorded.
pub fn in_force_on(activations: &[Activation], date: NaiveDate) -> Option<&Activation> {
    activations
        .iter()
        .rev()
        .find(|a| a.effective_on.is_none_or(|from| from <= date))
}

/// What recorded data an amendment must not invalidate.
#[derive(Debug, Clone, Default)]
pub struct RecordedData {
    /// Subjects enrolled, per arm code.
    pub subjects_by_arm: BTreeMap<String, u64>,
}

impl RecordedData {
    fn enrolled(&self) -> u64 {
        self.subjects_by_arm.values().sum()
    }
}

/// What is wrong with the amendment itself: `proposed` must be this trial's (whose newest version
/// is `current`), under a version not among `recorded_versions`, effective `effective_on` after
/// `today` (tomorrow at the earliest: what was done today was done under the version in force
/// when it was done) and after `latest_effective_on`, the latest version's date. Each problem
/// names the field at fault (`trial.…` of the definition, or `effective_on`).
pub fn request_problems(
    current: &Protocol,
    proposed: &Protocol,
    recorded_versions: &[&str],
    (effective_on, latest_effective_on, today): (NaiveDate, Option<NaiveDate>, NaiveDate),
) -> Vec<ProtocolProblem> {
    let mut problems = Vec::new();
    let mut refuse = |field: &str, message: String| {
        problems.push(ProtocolProblem {
            field: field.to_owned(),
            message,
        })
    };
    if proposed.trial.id != current.trial.id {
        refuse(
            "trial.id",
            format!("{:?} is not this trial ({:?})", proposed.trial.id, current.trial.id),
        );
    }
    if recorded_versions.contains(&proposed.trial.protocol_version.as_str()) {
        refuse(
            "trial.protocol_version",
            format!(
                "version {:?} is already recorded; an amendment needs a new version",
                proposed.trial.protocol_version
            ),
        );
    }
    if effective_on <= today {
        refuse(
            "effective_on",
            format!(
                "{effective_on} is not after today ({today}): an amendment takes effect tomorrow at the earliest, \
                 as records made today were judged by the version in force"
            ),
        );
    }
    if let Some(latest) = latest_effective_on.filter(|latest| effective_on <= *latest) {
        refuse(
            "effective_on",
            format!("{effective_on} is not after {latest}, when the latest version takes effect"),
        );
    }
    problems
}

/// What recorded data `proposed` would invalidate if it followed `current`, the newest version:
/// an arm, agent, dose basis or unit, or dose level subjects are on; once enrollment began, the
/// arms and ratios, strata or randomization the allocation sequence depends on, and the
/// two-stage design. Each conflict
/// names the field of the proposed definition at fault.
pub fn data_conflicts(current: &Protocol, proposed: &Protocol, data: &RecordedData) -> Vec<ProtocolProblem> {
    let mut problems = Vec::new();
    let mut refuse = |field: &str, message: String| {
        problems.push(ProtocolProblem {
            field: field.to_owned(),
            message,
        })
    };
    for (arm, &subjects) in data.subjects_by_arm.iter().filter(|(_, n)| **n > 0) {
        arm_keeps_its_subjects(current, proposed, arm, subjects, &mut refuse);
    }
    let enrolled = data.enrolled();
    if enrolled > 0 {
        let after = format!("enrollment began ({enrolled} subjects enrolled)");
        let arms = |p: &Protocol| -> Vec<(String, u32)> {
            p.arms.iter().map(|a| (a.code.clone(), a.allocation_ratio)).collect()
        };
        if arms(current) != arms(proposed) {
            refuse(
                "arms",
                format!(
                    "the arms and their allocation ratios cannot change after {after}: \
                     the allocation sequence depends on them"
                ),
            );
        }
        if current.strata != proposed.strata {
            refuse(
                "strata",
                format!("the stratification factors and their values cannot change after {after}"),
            );
        }
        if current.randomization != proposed.randomization {
            refuse(
                "randomization",
                format!("the allocation method and its parameters cannot change after {after}"),
            );
        }
        if current.outcomes.simon != proposed.outcomes.simon {
            refuse(
                "outcomes.simon",
                format!("the two-stage design cannot change after {after}: its error rates hold only as planned"),
            );
        }
    }
    problems
}

/// An arm with subjects stays, and so do its agents with their units and bases and every dose
/// level a subject's plan may be at.
fn arm_keeps_its_subjects(
    current: &Protocol,
    proposed: &Protocol,
    arm: &str,
    subjects: u64,
    refuse: &mut impl FnMut(&str, String),
) {
    if proposed.arm(arm).is_none() {
        refuse(
            "arms",
            format!("arm {arm} has {subjects} subjects enrolled; an amendment cannot remove it"),
        );
        return;
    }
    let regimen = |p: &Protocol| p.regimens.iter().find(|r| r.arm == arm).map(|r| r.agents.clone());
    let (Some(before), after) = (regimen(current), regimen(proposed).unwrap_or_default()) else {
        return;
    };
    for agent in &before {
        let field = format!("regimens[arm {arm}].agents");
        let Some(new) = after.iter().find(|a| a.id == agent.id) else {
            refuse(
                &field,
                format!(
                    "agent {} of arm {arm} ({subjects} subjects) cannot be removed: their plans give it",
                    agent.id
                ),
            );
            continue;
        };
        if (new.basis, new.unit.as_str()) != (agent.basis, agent.unit.as_str()) {
            refuse(
                &format!("{field}[{}]", agent.id),
                format!(
                    "agent {} of arm {arm} keeps its dose basis and unit ({:?}, {}): \
                     doses already given are summed with later ones",
                    agent.id, agent.basis, agent.unit
                ),
            );
        }
        let levels = |a: &super::Agent| a.dose_levels.iter().map(|l| l.level).collect::<BTreeSet<_>>();
        let missing: Vec<String> = levels(agent)
            .difference(&levels(new))
            .map(ToString::to_string)
            .collect();
        if !missing.is_empty() {
            refuse(
                &format!("{field}[{}].dose_levels", agent.id),
                format!(
                    "agent {} of arm {arm} keeps dose levels {} (subjects' plans may be at them); \
                     change their doses instead",
                    agent.id,
                    missing.join(", ")
                ),
            );
        }
    }
    let added: Vec<&str> = after
        .iter()
        .filter(|a| !before.iter().any(|b| b.id == a.id))
        .map(|a| a.id.as_str())
        .collect();
    if !added.is_empty() {
        refuse(
            &format!("regimens[arm {arm}].agents"),
            format!(
                "arm {arm} has {subjects} subjects whose plans do not give {}; \
                 an agent cannot be added to an arm with subjects",
                added.join(", ")
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{anbl1221, load};

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default()
    }

    fn activation(version: &str, from: Option<NaiveDate>) -> Activation {
        Activation {
            version: version.to_owned(),
            effective_on: from,
        }
    }

    #[test]
    fn the_version_in_force_is_the_latest_effective_on_or_before_the_date() {
        let versions = [
            activation("1.0", None),
            activation("2.0", Some(day(2014, 3, 1))),
            activation("3.0", Some(day(2015, 1, 1))),
        ];
        let on = |d| in_force_on(&versions, d).map(|a| a.version.as_str());
        assert_eq!(on(day(2013, 6, 3)), Some("1.0"));
        assert_eq!(on(day(2014, 2, 28)), Some("1.0"));
        assert_eq!(on(day(2014, 3, 1)), Some("2.0"));
        assert_eq!(on(day(2014, 12, 31)), Some("2.0"));
        assert_eq!(on(day(2015, 1, 1)), Some("3.0"));
        assert_eq!(in_force_on(&[], day(2015, 1, 1)), None);
    }

    fn amended(edit: impl FnOnce(&mut Protocol)) -> Protocol {
        let mut p = anbl1221().unwrap_or_else(|e| panic!("{e}"));
        p.trial.protocol_version = "3.0".into();
        edit(&mut p);
        p
    }

    fn with_subjects(a: u64, b: u64) -> RecordedData {
        RecordedData {
            subjects_by_arm: [("A".to_owned(), a), ("B".to_owned(), b)].into_iter().collect(),
        }
    }

    fn fields(problems: &[ProtocolProblem]) -> Vec<&str> {
        problems.iter().map(|p| p.field.as_str()).collect()
    }

    #[test]
    fn a_dose_change_is_accepted_with_subjects_on_every_arm() {
        let current = anbl1221().unwrap_or_else(|e| panic!("{e}"));
        let proposed = amended(|p| {
            for agent in p.regimens.iter_mut().flat_map(|r| r.agents.iter_mut()) {
                if agent.id == "dinutuximab" {
                    agent.dose_levels[0].dose = rust_decimal::Decimal::new(15, 0);
                }
            }
        });
        let found = data_conflicts(&current, &proposed, &with_subjects(3, 4));
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn removing_an_arm_with_subjects_is_refused_and_without_subjects_before_enrollment_is_not() {
        let current = anbl1221().unwrap_or_else(|e| panic!("{e}"));
        let proposed = amended(|p| {
            p.arms.retain(|a| a.code == "A");
            p.regimens.retain(|r| r.arm == "A");
        });
        let found = data_conflicts(&current, &proposed, &with_subjects(0, 2));
        assert!(
            found.iter().any(|p| p.message.contains("arm B has 2 subjects")),
            "{found:?}"
        );
        assert!(fields(&found).contains(&"arms"));
        let found = data_conflicts(&current, &proposed, &with_subjects(0, 0));
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn strata_and_randomization_are_fixed_once_enrollment_began() {
        let current = anbl1221().unwrap_or_else(|e| panic!("{e}"));
        let proposed = amended(|p| {
            p.strata[1].values.pop();
            p.randomization.block_multipliers = vec![1, 2, 3];
            p.outcomes.simon = None;
        });
        let found = data_conflicts(&current, &proposed, &with_subjects(1, 0));
        assert_eq!(fields(&found), ["strata", "randomization", "outcomes.simon"]);
        assert!(data_conflicts(&current, &proposed, &with_subjects(0, 0)).is_empty());
    }

    #[test]
    fn agents_units_and_dose_levels_of_arms_with_subjects_stay() {
        let current = anbl1221().unwrap_or_else(|e| panic!("{e}"));
        let proposed = amended(|p| {
            let b = &mut p.regimens[1].agents;
            b.retain(|a| a.id != "sargramostim");
            b[0].dose_levels.retain(|l| l.level == 0);
            b[1].unit = "ug".into();
        });
        let found = data_conflicts(&current, &proposed, &with_subjects(0, 5));
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(found.iter().any(|p| {
            p.message
                .contains("agent sargramostim of arm B (5 subjects) cannot be removed")
        }));
        assert!(found.iter().any(|p| p.field.ends_with("[temozolomide].dose_levels")));
        assert!(found.iter().any(|p| p.field.ends_with("[irinotecan]")));
        // Arm A has no subjects: the same edits there are free.
        assert!(
            data_conflicts(&current, &proposed, &with_subjects(5, 0))
                .iter()
                .all(|p| !p.field.contains("arm A"))
        );
    }

    #[test]
    fn the_version_must_be_new_the_trial_the_same_and_the_date_not_past_nor_before_the_latest() {
        let current = anbl1221().unwrap_or_else(|e| panic!("{e}"));
        let proposed = amended(|p| {
            p.trial.id = "OTHER".into();
            p.trial.protocol_version = "2.0".into();
        });
        let dates = (day(2014, 2, 1), Some(day(2014, 2, 10)), day(2014, 2, 5));
        let found = request_problems(&current, &proposed, &["2.0"], dates);
        assert_eq!(
            fields(&found),
            ["trial.id", "trial.protocol_version", "effective_on", "effective_on"]
        );
        assert!(found[2].message.contains("not after today"));
        assert!(found[3].message.contains("2014-02-10"));
        // The boundary: today is refused, tomorrow is the earliest.
        let ok = amended(|_| {});
        let on = |effective| request_problems(&current, &ok, &["2.0"], (effective, None, day(2014, 2, 5)));
        assert_eq!(fields(&on(day(2014, 2, 5))), ["effective_on"]);
        assert!(on(day(2014, 2, 6)).is_empty());
    }

    #[test]
    fn the_bundled_definition_before_the_dose_revision_differs_only_there() {
        let before = load(&super::super::anbl1221_before_dose_revision()).unwrap_or_else(|e| panic!("{e}"));
        let mut after = anbl1221().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (
                before.trial.protocol_version.as_str(),
                after.trial.protocol_version.as_str()
            ),
            ("1.0", "2.0")
        );
        let dinutuximab = |p: &Protocol| {
            p.regimens
                .iter()
                .flat_map(|r| &r.agents)
                .find(|a| a.id == "dinutuximab")
                .map(|a| a.dose_levels[0].dose.to_string())
        };
        assert_eq!(dinutuximab(&before).as_deref(), Some("25"));
        assert_eq!(dinutuximab(&after).as_deref(), Some("17.5"));
        for agent in after.regimens.iter_mut().flat_map(|r| r.agents.iter_mut()) {
            if agent.id == "dinutuximab" {
                agent.dose_levels[0].dose = rust_decimal::Decimal::new(25, 0);
            }
        }
        after.trial.protocol_version = "1.0".into();
        assert_eq!(before, after);
        let found = data_conflicts(
            &before,
            &anbl1221().unwrap_or_else(|e| panic!("{e}")),
            &with_subjects(9, 9),
        );
        assert!(found.is_empty(), "{found:?}");
    }
}
