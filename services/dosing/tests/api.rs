//! The dosing service over gRPC, with a real enrollment server, on SQLite and PostgreSQL.

// Test code, helpers included, unwraps: a failure is a test failure with the value shown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use tonic::Code;
use trialops_platform::backend_tests;
use trialops_proto::dosing::v1 as pb;
use trialops_proto::enrollment::v1 as epb;

backend_tests!(
    plans_follow_enrollment,
    four_year_old_is_dosed_and_scheduled_by_hand_values,
    low_counts_refuse_and_record_the_delay,
    implausible_changes_need_confirmation,
    small_child_rule_and_bad_inputs,
    administrations_are_recorded_once_and_corrected_with_a_reason,
    modifications_apply_from_the_next_cycle_and_never_rewrite_given_doses,
    the_maximum_number_of_cycles_is_enforced,
    enrollment_down_is_unavailable_and_writes_nothing,
);

async fn plans_follow_enrollment(backend: Backend) {
    let s = stack(backend).await;
    let mut d = s.dosing().await;
    let err = d
        .create_treatment_plan(pb::CreateTreatmentPlanRequest {
            request_id: request_id(),
            subject_id: "ANBL1221-0099".into(),
        })
        .await
        .expect_err("planned an unknown subject");
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (Code::FailedPrecondition, "SUBJECT_NOT_ENROLLED")
    );

    let plan = s.subject_with_plan("SCR-1").await;
    let mut e = s.enrollment().await;
    let subject = e
        .get_subject(epb::GetSubjectRequest {
            subject_id: plan.subject_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .subject
        .unwrap_or_default();
    assert_eq!(
        plan.arm_code, subject.arm_code,
        "the plan takes the arm enrollment randomized"
    );
    let expected_agents: &[&str] = if plan.arm_code == "A" {
        &["temozolomide", "irinotecan", "temsirolimus"]
    } else {
        &["temozolomide", "irinotecan", "dinutuximab", "sargramostim"]
    };
    assert_eq!(
        plan.agents.iter().map(|a| a.agent_id.as_str()).collect::<Vec<_>>(),
        expected_agents
    );
    assert!(plan.agents.iter().all(|a| a.dose_level == 0));
    assert_eq!(plan.maximum_cycles, 17);

    let again = d
        .create_treatment_plan(pb::CreateTreatmentPlanRequest {
            request_id: request_id(),
            subject_id: plan.subject_id.clone(),
        })
        .await
        .expect_err("planned twice");
    assert_eq!(
        (again.code(), reason(&again).as_str()),
        (Code::AlreadyExists, "TREATMENT_PLAN_EXISTS")
    );

    // Off protocol therapy in enrollment: no new cycle.
    e.change_subject_status(epb::ChangeSubjectStatusRequest {
        request_id: request_id(),
        subject_id: plan.subject_id.clone(),
        etag: subject.etag,
        new_status: epb::SubjectStatus::OffProtocolTherapy as i32,
        reason: "parental decision".into(),
        effective_on: enrollment::today(),
    })
    .await
    .unwrap();
    let err = d
        .start_cycle(start(&plan.subject_id, 1, date(2026, 1, 5), "102", "16", "1000"))
        .await
        .expect_err("started off therapy");
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (Code::FailedPrecondition, "SUBJECT_NOT_ON_PROTOCOL_THERAPY")
    );
    s.stop().await;
}

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

async fn low_counts_refuse_and_record_the_delay(backend: Backend) {
    let s = stack(backend).await;
    let mut d = s.dosing().await;
    let plan = s.subject_with_plan("SCR-1").await;
    d.start_cycle(start(&plan.subject_id, 1, date(2026, 1, 5), "102", "16", "1000"))
        .await
        .unwrap();
    // Cycle 2 is due on 26 January; ANC 600 < 750 refuses it and names values and thresholds.
    let err = d
        .start_cycle(start(&plan.subject_id, 2, date(2026, 1, 26), "102", "16", "600"))
        .await
        .expect_err("started with ANC 600");
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (Code::FailedPrecondition, "CYCLE_START_CRITERIA_NOT_MET")
    );
    assert_eq!(
        (
            metadata(&err, "anc_per_ul").as_str(),
            metadata(&err, "min_anc_per_ul").as_str()
        ),
        ("600", "750")
    );
    let refused = d
        .list_audit_events(pb::ListAuditEventsRequest {
            entity_type: "cycle".into(),
            entity_id: format!("{}|2", plan.subject_id),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .events;
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
    let mut d = s.dosing().await;
    let plan = s.subject_with_plan("SCR-1").await;
    d.start_cycle(start(&plan.subject_id, 1, date(2026, 1, 5), "102", "16", "1000"))
        .await
        .unwrap();
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

async fn administrations_are_recorded_once_and_corrected_with_a_reason(backend: Backend) {
    let s = stack(backend).await;
    let mut d = s.dosing().await;
    let plan = s.subject_with_plan("SCR-1").await;
    d.start_cycle(start(&plan.subject_id, 1, date(2026, 1, 5), "102", "16", "1000"))
        .await
        .unwrap();
    let tmz: Vec<_> = administrations(&mut d, date(2026, 1, 5), date(2026, 1, 9))
        .await
        .into_iter()
        .filter(|a| a.agent_id == "temozolomide")
        .collect();
    assert_eq!(tmz.len(), 5);
    let now = chrono::Utc::now().timestamp();
    let given = |id: &str, dose: &str| pb::RecordAdministrationRequest {
        request_id: request_id(),
        administration_id: id.to_owned(),
        status: pb::AdministrationStatus::Given as i32,
        actual_dose: dec(dose),
        started_at: Some(prost_types::Timestamp {
            seconds: now - 7200,
            nanos: 0,
        }),
        ended_at: Some(prost_types::Timestamp {
            seconds: now - 7000,
            nanos: 0,
        }),
        ..Default::default()
    };
    let first = d
        .record_administration(given(&tmz[0].administration_id, "65"))
        .await
        .unwrap()
        .into_inner()
        .administration
        .unwrap_or_default();
    assert_eq!(first.status, pb::AdministrationStatus::Given as i32);
    assert!(!first.deviation_flagged);
    let twice = d
        .record_administration(given(&tmz[0].administration_id, "65"))
        .await
        .expect_err("recorded twice");
    assert_eq!(
        (twice.code(), reason(&twice).as_str()),
        (Code::AlreadyExists, "ADMINISTRATION_ALREADY_RECORDED")
    );
    // A correction needs the etag and a reason; the audit trail keeps the first value.
    let mut correction = given(&tmz[0].administration_id, "60");
    correction.etag = first.etag.clone();
    correction.correction_reason = "the capsule count was misread".into();
    let corrected = d
        .record_administration(correction)
        .await
        .unwrap()
        .into_inner()
        .administration
        .unwrap_or_default();
    assert_eq!(corrected.actual_dose.unwrap_or_default().value, "60");
    let history = d
        .list_audit_events(pb::ListAuditEventsRequest {
            entity_type: "administration".into(),
            entity_id: first.administration_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .events;
    assert_eq!(
        history.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
        ["administration.recorded", "administration.corrected"]
    );
    assert_eq!(history[1].reason, "the capsule count was misread");
    assert!(
        history[1].old_value_json.contains("\"actual_dose\":\"65\""),
        "{}",
        history[1].old_value_json
    );

    // 55 mg against 65 prescribed deviates 15.38% > 10%: flagged.
    let low = d
        .record_administration(given(&tmz[1].administration_id, "55"))
        .await
        .unwrap()
        .into_inner()
        .administration
        .unwrap_or_default();
    assert!(low.deviation_flagged);
    // Held needs a reason; then it can still be given.
    let mut held = pb::RecordAdministrationRequest {
        request_id: request_id(),
        administration_id: tmz[2].administration_id.clone(),
        status: pb::AdministrationStatus::Held as i32,
        ..Default::default()
    };
    assert_eq!(
        violated_fields(&d.record_administration(held.clone()).await.expect_err("accepted")),
        ["reason"]
    );
    held.reason = "vomiting".into();
    d.record_administration(held).await.unwrap();
    d.record_administration(given(&tmz[2].administration_id, "65"))
        .await
        .unwrap();

    // Exposure by hand: temozolomide planned 5 x 65 = 325 mg; delivered 60 + 55 + 65 = 180 mg;
    // intensity 180 / 325 = 0.553846... -> 0.5538.
    let exposure = d
        .get_cumulative_exposure(pb::GetCumulativeExposureRequest {
            subject_id: plan.subject_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let t = exposure
        .agents
        .iter()
        .find(|a| a.agent_id == "temozolomide")
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        (
            t.planned_total.unwrap_or_default().value,
            t.delivered_total.unwrap_or_default().value,
            t.dose_intensity.unwrap_or_default().value
        ),
        ("325".to_owned(), "180".to_owned(), "0.5538".to_owned())
    );
    assert_eq!((exposure.cycles_started, exposure.cycles_completed), (1, 0));
    assert!(exposure.received_protocol_therapy);

    // The trial-wide list gives the same exposure, with untreated subjects marked so.
    let untreated = s.subject_with_plan("SCR-2").await;
    let listed = d
        .list_exposures(pb::ListExposuresRequest {
            trial_id: "ANBL1221".into(),
            page_size: 1,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.exposures, std::slice::from_ref(&exposure));
    let rest = d
        .list_exposures(pb::ListExposuresRequest {
            trial_id: "ANBL1221".into(),
            page_size: 1,
            page_token: listed.next_page_token,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rest.exposures.len(), 1);
    assert_eq!(rest.exposures[0].subject_id, untreated.subject_id);
    assert!(!rest.exposures[0].received_protocol_therapy);

    // On 7 January cycle 1 (from 5 January) is running; on 1 January nothing was.
    let active = d
        .get_active_treatment(pb::GetActiveTreatmentRequest {
            subject_id: plan.subject_id.clone(),
            on_date: date(2026, 1, 7),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(active.cycle_number, 1);
    assert_eq!(
        active.agent_ids[..2],
        ["temozolomide".to_owned(), "irinotecan".to_owned()]
    );
    let before = d
        .get_active_treatment(pb::GetActiveTreatmentRequest {
            subject_id: plan.subject_id.clone(),
            on_date: date(2026, 1, 1),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((before.cycle_number, before.agent_ids.len()), (0, 0));
    s.stop().await;
}

async fn modifications_apply_from_the_next_cycle_and_never_rewrite_given_doses(backend: Backend) {
    let s = stack(backend).await;
    let mut d = s.dosing().await;
    let plan = s.subject_with_plan("SCR-1").await;
    d.start_cycle(start(&plan.subject_id, 1, date(2026, 1, 5), "102", "16", "1000"))
        .await
        .unwrap();
    let cycle1 = administrations(&mut d, date(2026, 1, 5), date(2026, 1, 16)).await;
    let iri_day1 = cycle1
        .iter()
        .find(|a| a.agent_id == "irinotecan" && a.cycle_day == 1)
        .cloned()
        .unwrap_or_default();
    let now = chrono::Utc::now().timestamp();
    d.record_administration(pb::RecordAdministrationRequest {
        request_id: request_id(),
        administration_id: iri_day1.administration_id.clone(),
        status: pb::AdministrationStatus::Given as i32,
        actual_dose: dec("33.5"),
        started_at: Some(prost_types::Timestamp {
            seconds: now - 7200,
            nanos: 0,
        }),
        ended_at: Some(prost_types::Timestamp {
            seconds: now - 1800,
            nanos: 0,
        }),
        ..Default::default()
    })
    .await
    .unwrap();

    let modify = |etag: &str, level: i32| pb::ApplyDoseModificationRequest {
        request_id: request_id(),
        subject_id: plan.subject_id.clone(),
        etag: etag.to_owned(),
        agent_id: "temozolomide".into(),
        dose_level: level,
        reason: "grade 4 neutropenia".into(),
        adverse_event_id: "AE-7".into(),
    };
    let reduced = d
        .apply_dose_modification(modify(&plan.etag, -1))
        .await
        .unwrap()
        .into_inner()
        .plan
        .unwrap_or_default();
    let tmz = reduced
        .agents
        .iter()
        .find(|a| a.agent_id == "temozolomide")
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        (tmz.dose_level, tmz.protocol_dose.unwrap_or_default().value.as_str()),
        (-1, "75")
    );
    let stale = d.apply_dose_modification(modify(&plan.etag, -1)).await.err();
    assert_eq!(stale.map(|e| e.code()), Some(Code::Aborted));
    let up = d
        .apply_dose_modification(modify(&reduced.etag, 0))
        .await
        .expect_err("re-escalated");
    assert_eq!(reason(&up), "DOSE_RE_ESCALATION_NOT_ALLOWED");

    // Irinotecan stops: its open administrations close; the given one stays as recorded.
    let stopped = d
        .discontinue_agent(pb::DiscontinueAgentRequest {
            request_id: request_id(),
            subject_id: plan.subject_id.clone(),
            etag: reduced.etag.clone(),
            agent_id: "irinotecan".into(),
            reason: "grade 3 diarrhoea despite loperamide".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .plan
        .unwrap_or_default();
    assert!(
        stopped
            .agents
            .iter()
            .any(|a| a.agent_id == "irinotecan" && a.discontinued)
    );
    let after = administrations(&mut d, date(2026, 1, 5), date(2026, 1, 16)).await;
    let iri: Vec<_> = after.iter().filter(|a| a.agent_id == "irinotecan").collect();
    assert_eq!(
        iri.iter()
            .filter(|a| a.status == pb::AdministrationStatus::Given as i32)
            .count(),
        1
    );
    assert_eq!(
        iri.iter()
            .filter(|a| a.status == pb::AdministrationStatus::NotGiven as i32)
            .count(),
        4
    );
    let tmz_cycle1: Vec<_> = after
        .iter()
        .filter(|a| a.agent_id == "temozolomide")
        .map(|a| a.prescribed_dose.clone().unwrap_or_default().value)
        .collect();
    assert_eq!(tmz_cycle1, ["65"; 5], "the current cycle keeps its prescriptions");

    // Cycle 2: temozolomide at 75 mg/m2 x 0.67 = 50.25 -> 50 mg; no irinotecan.
    let cycle2 = d
        .start_cycle(start(&plan.subject_id, 2, date(2026, 1, 26), "102", "16", "1000"))
        .await
        .unwrap()
        .into_inner()
        .cycle
        .unwrap_or_default();
    assert_eq!(rounded(&cycle2)[0], ("temozolomide".to_owned(), "50".to_owned()));
    assert!(cycle2.doses.iter().all(|x| x.agent_id != "irinotecan"));
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

async fn enrollment_down_is_unavailable_and_writes_nothing(backend: Backend) {
    let s = stack(backend).await;
    let mut d = s.dosing().await;
    let plan = s.subject_with_plan("SCR-1").await;
    let before = d
        .list_audit_events(pb::ListAuditEventsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .events
        .len();
    let Stack { mut set } = s;
    set.stop_one(Service::Enrollment).await;
    let err = d
        .start_cycle(start(&plan.subject_id, 1, date(2026, 1, 5), "102", "16", "1000"))
        .await
        .expect_err("started without enrollment");
    assert_eq!((err.code(), reason(&err).as_str()), (Code::Unavailable, "UNAVAILABLE"));
    assert!(
        !err.message().contains("127.0.0.1"),
        "no internals in the message: {}",
        err.message()
    );
    let after = d
        .list_audit_events(pb::ListAuditEventsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .events
        .len();
    assert_eq!(after, before);
    assert_eq!(
        d.get_cycle(pb::GetCycleRequest {
            subject_id: plan.subject_id.clone(),
            cycle_number: 1
        })
        .await
        .err()
        .map(|e| e.code()),
        Some(Code::NotFound)
    );
    set.stop().await;
}
