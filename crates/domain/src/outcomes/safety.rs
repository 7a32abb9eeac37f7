//! Adverse-event rules: expectedness from the protocol's list, relatedness from attributions,
//! and the reporting obligations the protocol's expedited-reporting matrix creates.

use chrono::{DateTime, Duration, NaiveDate, Utc};

use crate::protocol::{Protocol, ReportingRule, Seriousness};

/// Whether an event with onset `onset` (a site-local date) falls in the reporting period that
/// starts on `start` (a UTC date, or `None` when it has not started, e.g. no cycle yet for a
/// period starting with treatment). A site's date may be one day off the UTC date of the same
/// moment, so an onset the day before `start` still counts.
pub fn in_reporting_period(onset: NaiveDate, start: Option<NaiveDate>) -> bool {
    start.is_some_and(|start| onset >= start - Duration::days(1))
}

/// Attribution of an event to an agent (NCI scale).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Attribution {
    /// Unrelated.
    Unrelated,
    /// Unlikely.
    Unlikely,
    /// Possible.
    Possible,
    /// Probable.
    Probable,
    /// Definite.
    Definite,
}

impl Attribution {
    /// Every attribution, from unrelated to definite.
    pub const ALL: [Attribution; 5] = [
        Attribution::Unrelated,
        Attribution::Unlikely,
        Attribution::Possible,
        Attribution::Probable,
        Attribution::Definite,
    ];

    /// The stored name, for example "possible".
    pub fn as_str(self) -> &'static str {
        match self {
            Attribution::Unrelated => "unrelated",
            Attribution::Unlikely => "unlikely",
            Attribution::Possible => "possible",
            Attribution::Probable => "probable",
            Attribution::Definite => "definite",
        }
    }

    /// The attribution with this stored name.
    pub fn parse(name: &str) -> Option<Attribution> {
        Self::ALL.into_iter().find(|a| a.as_str() == name)
    }
}

/// What the rules need to know about an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventFacts {
    /// CTCAE grade, 1 to 5.
    pub grade: u8,
    /// On the protocol's expected-event list.
    pub expected: bool,
    /// Seriousness criteria met (grade 5 always includes death).
    pub seriousness: Vec<Seriousness>,
    /// Possibly, probably or definitely related to at least one agent.
    pub related: bool,
}

/// A reporting obligation with its deadline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Obligation {
    /// Kind, for example "notification_24h".
    pub kind: String,
    /// Deadline.
    pub due_at: DateTime<Utc>,
    /// The rule that created it.
    pub rule: String,
}

/// Whether `term` is on the protocol's expected-event list (case-insensitive).
pub fn is_expected(protocol: &Protocol, term: &str) -> bool {
    protocol
        .outcomes
        .expected_adverse_events
        .iter()
        .any(|t| t.eq_ignore_ascii_case(term.trim()))
}

/// Related when any agent's attribution is possible or stronger.
pub fn related(attributions: &[Attribution]) -> bool {
    attributions.iter().any(|a| *a >= Attribution::Possible)
}

/// The facts of an event: grade 5 adds death to the seriousness criteria.
pub fn facts(grade: u8, expected: bool, mut seriousness: Vec<Seriousness>, attributions: &[Attribution]) -> EventFacts {
    if grade == 5 && !seriousness.contains(&Seriousness::Death) {
        seriousness.push(Seriousness::Death);
    }
    seriousness.sort();
    seriousness.dedup();
    EventFacts {
        grade,
        expected,
        seriousness,
        related: related(attributions),
    }
}

fn matches(rule: &ReportingRule, e: &EventFacts) -> bool {
    let serious = !e.seriousness.is_empty();
    rule.min_grade.is_none_or(|g| e.grade >= g)
        && rule.max_grade.is_none_or(|g| e.grade <= g)
        && rule.expected.is_none_or(|x| x == e.expected)
        && rule.serious.is_none_or(|s| s == serious)
        && rule.related.is_none_or(|r| r == e.related)
        && (rule.seriousness_any.is_empty() || rule.seriousness_any.iter().any(|s| e.seriousness.contains(s)))
}

/// The obligations of an event the site became aware of at `aware_at`: every matching rule's,
/// one per kind (the earliest deadline), skipping rules whose `unless` kinds are already due.
pub fn obligations(rules: &[ReportingRule], event: &EventFacts, aware_at: DateTime<Utc>) -> Vec<Obligation> {
    let mut out: Vec<Obligation> = Vec::new();
    let matching: Vec<&ReportingRule> = rules.iter().filter(|r| matches(r, event)).collect();
    let kinds: Vec<&str> = matching
        .iter()
        .filter(|r| r.unless.is_empty())
        .flat_map(|r| r.obligations.iter().map(|o| o.kind.as_str()))
        .collect();
    for rule in matching {
        if rule.unless.iter().any(|k| kinds.contains(&k.as_str())) {
            continue;
        }
        for o in &rule.obligations {
            let due_at = aware_at + Duration::hours(i64::from(o.hours));
            match out.iter_mut().find(|x| x.kind == o.kind) {
                Some(existing) if existing.due_at <= due_at => {}
                Some(existing) => {
                    *existing = Obligation {
                        kind: o.kind.clone(),
                        due_at,
                        rule: rule.name.clone(),
                    }
                }
                None => out.push(Obligation {
                    kind: o.kind.clone(),
                    due_at,
                    rule: rule.name.clone(),
                }),
            }
        }
    }
    out.sort_by(|a, b| a.due_at.cmp(&b.due_at).then(a.kind.cmp(&b.kind)));
    out
}

/// What an update of an adverse event may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventCourse {
    /// CTCAE grade, 1 to 5.
    pub grade: i32,
    /// Onset date.
    pub onset_on: NaiveDate,
    /// Resolution date, if resolved.
    pub resolved_on: Option<NaiveDate>,
}

/// Why an update is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateRefusal {
    /// The resolution would be before the onset.
    ResolvedBeforeOnset,
    /// The update changes neither grade nor resolution.
    ChangesNothing,
}

/// The event's course after an update setting `grade` (when given) and `resolved_on` (when
/// given): never resolved before its onset, and never an update that changes nothing.
pub fn update_course(
    current: EventCourse,
    grade: Option<i32>,
    resolved_on: Option<NaiveDate>,
) -> Result<EventCourse, UpdateRefusal> {
    if resolved_on.is_some_and(|r| r < current.onset_on) {
        return Err(UpdateRefusal::ResolvedBeforeOnset);
    }
    let updated = EventCourse {
        grade: grade.unwrap_or(current.grade),
        resolved_on: resolved_on.or(current.resolved_on),
        ..current
    };
    if updated == current {
        return Err(UpdateRefusal::ChangesNothing);
    }
    Ok(updated)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_attribution_names() {
        let names: Vec<&str> = Attribution::ALL.iter().map(|a| a.as_str()).collect();
        assert_eq!(names, ["unrelated", "unlikely", "possible", "probable", "definite"]);
        for a in Attribution::ALL {
            assert_eq!(Attribution::parse(a.as_str()), Some(a));
        }
        assert_eq!(Attribution::parse("Possible"), None);
        assert_eq!(Attribution::parse("related"), None);
    }

    #[test]
    fn related_from_possible_upwards() {
        // NCI attribution scale: possible, probable and definite count as related.
        assert!(!related(&[Attribution::Unrelated, Attribution::Unlikely]));
        assert!(related(&[Attribution::Unlikely, Attribution::Possible]));
        assert!(related(&[Attribution::Definite]));
        assert!(!related(&[]));
    }
}
