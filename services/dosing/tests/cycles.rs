//! Cycles over gRPC: doses and calendars checked against hand-computed values, counts that
//! refuse a start and record the delay, implausible measurements, the small-child rule, the
//! maximum number of cycles.

// Test code, helpers included, unwraps: a failure is a test failure with the value shown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use tonic::Code;
use trialops_platform::{audit_events, backend_tests};
use trialops_proto::dosing::v1 as pb;

backend_tests!(
    four_year_old_is_dosed_and_scheduled_by_hand_values,
    low_counts_refuse_and_record_the_delay,
    implausible_changes_need_confirmation,
    small_child_rule_and_bad_inputs,
    the_maximum_number_of_cycles_is_enforced,
);

async fn four_year_old_is_dosed_and_scheduled_by_hand_values(backend: Backend) {
    let s = stack(backend).await;
    let mut d = s.dosing().await;
    // Both arms' regimens, end to end, every run.
    let (on_a, on_b) = s.subjects_on_both_arms().await;
    assert_eq!((on_a.arm_code.as_str(), on_b.arm_code.as_str()), ("A", "B"));
    for plan in [on_a, on_b] {
        four_year_old_on_one_arm(&mut d, &plan).await;
    }
    s.stop().await;
}

async fn low_counts_refuse_and_record_the_delay(backend: Backend) {
    let s = stack(backend).await;
    let (mut d, plan) = s.first_cycle().await;
    // Cycle 2 is due on 26 January; ANC 600 < 750 refuses it and names values and thresholds.
    let err = d
        .start_cycle(start(&plan.subject_id, 2, date(2026, 1, 26), "102", "16", "600"))
        .await
        .expect_err("started with ANC 600");
    assert_refused(&err, Code::FailedPrecondition, "CYCLE_START_CRITERIA_NOT_MET");
    assert_eq!(
        (
            metadata(&err, "anc_per_ul").as_str(),
            metadata(&err, "min_anc_per_ul").as_str()
        ),
        ("600", "750")
    );
    let refused = audit_events!(d, pb, "cycle", format!("{}|2", plan.subject_id));
    assert_eq!(
        refused.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
        ["cycle.start_refused"]
    );
    assert_eq!(
        d.get_cycle(pb::GetCycleRequest {
            subject_id: plan.subject_id.clone(),
            cycle_number: 2
        })
        .await
        .err()
        .map(|e| e.code()),
        Some(Code::NotFound)
    );
    // Too early (day 20), then a week later than due: started with a 7-day delay.
    let early = d
        .start_cycle(start(&plan.subject_id, 2, date(2026, 1, 25), "102", "16", "900"))
        .await
        .err();
    assert_eq!(early.map(|e| reason(&e)).as_deref(), Some("CYCLE_STARTS_TOO_EARLY"));
    let late = d
        .start_cycle(start(&plan.subject_id, 2, date(2026, 2, 24), "102", "16", "900"))
        .await
        .err();
    assert_eq!(
        late.map(|e| reason(&e)).as_deref(),
        Some("CYCLE_DELAY_EXCEEDED"),
        "29 days late > 28"
    );
    let cycle = d
        .start_cycle(start(&plan.subject_id, 2, date(2026, 2, 2), "102", "16", "900"))
        .await
        .unwrap()
        .into_inner()
        .cycle
        .unwrap_or_default();
    assert_eq!(cycle.delay_days, 7);
    let skipped = d
        .start_cycle(start(&plan.subject_id, 4, date(2026, 3, 2), "102", "16", "900"))
        .await
        .err();
    assert_eq!(
        skipped.map(|e| (reason(&e), metadata(&e, "expected_cycle_number"))),
        Some(("CYCLE_OUT_OF_SEQUENCE".into(), "3".into()))
    );
    s.stop().await;
}

async fn implausible_changes_need_confirmation(backend: Backend) {
    let s = stack(backend).await;
    let (mut d, plan) = s.first_cycle().await;
    // 16 -> 20 kg: BSA sqrt(102 x 20 / 3600) = 0.7528 -> 0.75, up 11.94% from 0.67 (limit 10%).
    let mut req = start(&plan.subject_id, 2, date(2026, 1, 26), "102", "20", "1000");
    let err = d.start_cycle(req.clone()).await.expect_err("accepted");
    assert_eq!(reason(&err), "IMPLAUSIBLE_MEASUREMENT_NEEDS_CONFIRMATION");
    assert!(err.message().contains("BSA changed 11.94%"), "{}", err.message());
    req.request_id = request_id();
    req.confirm_implausible_measurements = true;
    let cycle = d.start_cycle(req).await.unwrap().into_inner().cycle.unwrap_or_default();
    assert!(cycle.implausible_measurements_confirmed);
    assert_eq!(cycle.bsa_m2.unwrap_or_default().value, "0.75");
    // Height falling by more than 2 cm is flagged too.
    let err = d
        .start_cycle(start(&plan.subject_id, 3, date(2026, 2, 16), "98", "20", "1000"))
        .await
        .err();
    assert!(err.is_some_and(|e| e.message().contains("height fell from 102 cm to 98 cm")));
    s.stop().await;
}

async fn small_child_rule_and_bad_inputs(backend: Backend) {
    let s = stack(backend).await;
    let mut d = s.dosing().await;
    let plan = s.subject_with_plan("SCR-1").await;
    // 75 cm, 10 kg: BSA 0.46 < 0.6 -> per kg: irinotecan 50 / 30 x 10 = 16.6667 -> 16.7 mg.
    let cycle = d
        .start_cycle(start(&plan.subject_id, 1, date(2026, 1, 5), "75", "10", "1000"))
        .await
        .unwrap()
        .into_inner()
        .cycle
        .unwrap_or_default();
    let iri = cycle
        .doses
        .iter()
        .find(|x| x.agent_id == "irinotecan")
        .cloned()
        .unwrap_or_default();
    assert!(iri.small_child_rule_applied);
    assert_eq!(iri.rounded_dose.unwrap_or_default().value, "16.7");
    assert_eq!(
        rounded(&cycle)[0],
        ("temozolomide".to_owned(), "35".to_owned()),
        "100 / 30 x 10 = 33.33 -> 35"
    );

    let mut bad = start(&plan.subject_id, 0, date(2026, 2, 30), "300", "0", "lots");
    bad.request_id = "again".into();
    bad.measured_at = None;
    let err = d.start_cycle(bad).await.expect_err("accepted");
    assert_eq!(
        violated_fields(&err),
        [
            "request_id",
            "cycle_number",
            "planned_start_date",
            "height_cm",
            "weight_kg",
            "anc_per_ul",
            "measured_at"
        ]
    );
    s.stop().await;
}

async fn the_maximum_number_of_cycles_is_enforced(backend: Backend) {
    let s = stack(backend).await;
    let mut d = s.dosing().await;
    let plan = s.subject_with_plan("SCR-1").await;
    let mut day1 = chrono::NaiveDate::from_ymd_opt(2026, 1, 5).unwrap_or_default();
    let as_date = |n: chrono::NaiveDate| {
        use chrono::Datelike;
        date(n.year(), n.month() as i32, n.day() as i32)
    };
    for cycle in 1..=17 {
        d.start_cycle(start(&plan.subject_id, cycle, as_date(day1), "102", "16", "1000"))
            .await
            .unwrap_or_else(|e| panic!("cycle {cycle}: {e}"));
        day1 += chrono::Duration::days(21);
    }
    let err = d
        .start_cycle(start(&plan.subject_id, 18, as_date(day1), "102", "16", "1000"))
        .await
        .err();
    assert_eq!(err.map(|e| reason(&e)).as_deref(), Some("MAXIMUM_CYCLES_REACHED"));
    s.stop().await;
}

/// A 102 cm, 16 kg child's first cycle on `plan`'s arm, from 5 January 2026.
async fn four_year_old_on_one_arm(d: &mut Dosing, plan: &pb::TreatmentPlan) {
    let req = start(&plan.subject_id, 1, date(2026, 1, 5), "102", "16", "1000");
    let cycle = d
        .start_cycle(req.clone())
        .await
        .unwrap()
        .into_inner()
        .cycle
        .unwrap_or_default();
    // BSA = sqrt(102 x 16 / 3600) = 0.6733 -> 0.67 m2 (hand calculation in crates/domain/tests/dosing.rs).
    assert_eq!(cycle.bsa_m2.clone().unwrap_or_default().value, "0.67");
    let pair = |a: &str, v: &str| (a.to_owned(), v.to_owned());
    let expected = if plan.arm_code == "A" {
        // 100 x 0.67 = 67 -> 65 (capsules); 50 x 0.67 = 33.5; 35 x 0.67 = 23.45 -> 23.5
        vec![
            pair("temozolomide", "65"),
            pair("irinotecan", "33.5"),
            pair("temsirolimus", "23.5"),
        ]
    } else {
        // ... 17.5 x 0.67 = 11.725 -> 11.7; 250 x 0.67 = 167.5 -> 170 ug
        vec![
            pair("temozolomide", "65"),
            pair("irinotecan", "33.5"),
            pair("dinutuximab", "11.7"),
            pair("sargramostim", "170"),
        ]
    };
    assert_eq!(rounded(&cycle), expected);
    assert!(
        cycle.doses[0].formula.starts_with("100 mg/m2 x 0.67 m2 = 67 mg"),
        "{}",
        cycle.doses[0].formula
    );
    assert_eq!(cycle.doses[0].calculated_dose.clone().unwrap_or_default().value, "67");
    assert_eq!(cycle.delay_days, 0);

    // A retry with the same request id returns the same cycle and schedules nothing twice.
    let replay = d.start_cycle(req).await.unwrap().into_inner().cycle.unwrap_or_default();
    assert_eq!(replay, cycle);

    // The calendar: day 1 is Monday 5 January 2026.
    let all: Vec<_> = administrations(d, date(2026, 1, 1), date(2026, 1, 31))
        .await
        .into_iter()
        .filter(|a| a.subject_id == plan.subject_id)
        .collect();
    let count = |agent: &str| all.iter().filter(|a| a.agent_id == agent).count();
    assert_eq!((count("temozolomide"), count("irinotecan")), (5, 5));
    if plan.arm_code == "A" {
        assert_eq!(all.len(), 12);
        let tem: Vec<_> = all
            .iter()
            .filter(|a| a.agent_id == "temsirolimus")
            .map(|a| a.planned_on.unwrap_or_default().day)
            .collect();
        assert_eq!(tem, [5, 12], "temsirolimus on days 1 and 8");
    } else {
        assert_eq!(all.len(), 21);
        let gm: Vec<_> = all
            .iter()
            .filter(|a| a.agent_id == "sargramostim")
            .map(|a| a.planned_on.unwrap_or_default().day)
            .collect();
        assert_eq!(gm, [10, 11, 12, 13, 14, 15, 16], "GM-CSF on days 6 to 12");
        let dinu = all
            .iter()
            .filter(|a| a.agent_id == "dinutuximab")
            .map(|a| a.cycle_day)
            .collect::<Vec<_>>();
        assert_eq!(dinu, [2, 3, 4, 5]);
    }
    assert!(
        all.windows(2)
            .all(|w| w[0].planned_on.unwrap_or_default().day <= w[1].planned_on.unwrap_or_default().day)
    );
    // Tomorrow's worklist, one day only.
    let one_day: Vec<_> = administrations(d, date(2026, 1, 6), date(2026, 1, 6))
        .await
        .into_iter()
        .filter(|a| a.subject_id == plan.subject_id)
        .collect();
    let expected_day2 = if plan.arm_code == "A" { 2 } else { 3 };
    assert_eq!(one_day.len(), expected_day2);
    assert!(
        one_day
            .iter()
            .all(|a| a.status == pb::AdministrationStatus::Planned as i32)
    );

    let got = d
        .get_cycle(pb::GetCycleRequest {
            subject_id: plan.subject_id.clone(),
            cycle_number: 1,
        })
        .await
        .unwrap()
        .into_inner()
        .cycle;
    assert_eq!(got, Some(cycle));
}
