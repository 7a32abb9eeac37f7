//! The ANBL1221 expedited-reporting matrix (CTEP-AERS pattern and FDA IND rules of TRIAL.md),
//! event by event, with deadlines counted from when the site became aware.

// Test code, helpers included, unwraps: a failure is a test failure with the value shown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, TimeZone, Utc};
use trialops_domain::outcomes::safety::{Attribution, facts, is_expected, obligations};
use trialops_domain::protocol::{self, Seriousness::*};

fn aware() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 9, 30, 0).single().unwrap_or_default()
}

fn kinds_and_hours(
    grade: u8,
    expected: bool,
    serious: Vec<trialops_domain::protocol::Seriousness>,
    attributions: &[Attribution],
) -> Vec<(String, i64)> {
    let p = protocol::anbl1221().unwrap();
    obligations(&p.reporting, &facts(grade, expected, serious, attributions), aware())
        .into_iter()
        .map(|o| (o.kind, (o.due_at - aware()).num_hours()))
        .collect()
}

fn pairs(items: &[(&str, i64)]) -> Vec<(String, i64)> {
    items.iter().map(|(k, h)| ((*k).to_owned(), *h)).collect()
}

#[test]
fn grade_4_needs_24_hour_notice_and_a_5_day_report() {
    // Expected grade 4 neutropenia, not serious otherwise, unrelated: CTEP-AERS 24 h + 5 days.
    assert_eq!(
        kinds_and_hours(4, true, vec![], &[Attribution::Unrelated]),
        pairs(&[("notification_24h", 24), ("full_report_5_day", 120)])
    );
}

#[test]
fn unexpected_grade_3_with_hospitalisation_is_expedited() {
    assert_eq!(
        kinds_and_hours(3, false, vec![Hospitalisation], &[Attribution::Unlikely]),
        pairs(&[("notification_24h", 24), ("full_report_5_day", 120)])
    );
    // The same but expected: a serious event, 10-day report.
    assert_eq!(
        kinds_and_hours(3, true, vec![Hospitalisation], &[Attribution::Unlikely]),
        pairs(&[("full_report_10_day", 240)])
    );
}

#[test]
fn fatal_unexpected_suspected_reaction_adds_ind_reports() {
    // Grade 5 implies death; unexpected and possibly related: CTEP-AERS 24 h + 5 days, IND 7 and
    // 15 days; the 10-day report is covered by the 5-day one.
    assert_eq!(
        kinds_and_hours(5, false, vec![], &[Attribution::Unrelated, Attribution::Possible]),
        pairs(&[
            ("notification_24h", 24),
            ("full_report_5_day", 120),
            ("ind_safety_report_7_day", 168),
            ("ind_safety_report_15_day", 360)
        ])
    );
}

#[test]
fn mild_expected_events_need_no_expedited_report() {
    assert!(kinds_and_hours(2, true, vec![], &[Attribution::Probable]).is_empty());
    assert!(
        kinds_and_hours(3, false, vec![], &[Attribution::Definite]).is_empty(),
        "not serious, grade 3"
    );
}

#[test]
fn expectedness_comes_from_the_protocol_list() {
    let p = protocol::anbl1221().unwrap();
    assert!(is_expected(&p, "Neutrophil count decreased"));
    assert!(is_expected(&p, "diarrhea"));
    assert!(!is_expected(&p, "Seizure"));
}

#[test]
fn the_reporting_period_starts_where_the_protocol_says() {
    use trialops_domain::outcomes::safety::in_reporting_period;
    let day = |d: u32| chrono::NaiveDate::from_ymd_opt(2026, 3, d).unwrap_or_default();
    // From 10 March: the 9th still counts (a site's date may be a day off UTC), the 6th not.
    assert!(in_reporting_period(day(10), Some(day(10))));
    assert!(in_reporting_period(day(9), Some(day(10))));
    assert!(!in_reporting_period(day(8), Some(day(10))));
    assert!(!in_reporting_period(day(6), Some(day(10))));
    // A period that has not started (no cycle yet, for one starting with treatment).
    assert!(!in_reporting_period(day(10), None));
}

mod event_updates {
    use chrono::NaiveDate;
    use trialops_domain::outcomes::safety::{EventCourse, UpdateRefusal, update_course};

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 4, d).unwrap()
    }

    #[test]
    fn a_grade_or_a_resolution_changes_the_course_and_nothing_else_does() {
        let current = EventCourse {
            grade: 2,
            onset_on: day(10),
            resolved_on: None,
        };
        let raised = update_course(current, Some(3), None).unwrap();
        assert_eq!((raised.grade, raised.resolved_on), (3, None));
        // Resolved on the day of onset is allowed; the day before is not.
        assert_eq!(
            update_course(current, None, Some(day(10))).unwrap().resolved_on,
            Some(day(10))
        );
        assert_eq!(
            update_course(current, Some(3), Some(day(9))),
            Err(UpdateRefusal::ResolvedBeforeOnset)
        );
        assert_eq!(
            update_course(current, Some(2), None),
            Err(UpdateRefusal::ChangesNothing)
        );
        let resolved = EventCourse {
            resolved_on: Some(day(12)),
            ..current
        };
        assert_eq!(
            update_course(resolved, None, Some(day(12))),
            Err(UpdateRefusal::ChangesNothing)
        );
        assert_eq!(
            update_course(resolved, None, Some(day(14))).unwrap().resolved_on,
            Some(day(14))
        );
    }
}
