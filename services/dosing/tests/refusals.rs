//! Clinical refusals of the dosing service at their boundaries, on SQLite and PostgreSQL: the
//! cycle-start counts at, just below and just above the protocol's minimums (ANC 750/uL,
//! platelets 75,000/uL in the ANBL1221 definition), a cycle without a plan, a dose no capsule
//! can make up, and dose modifications that change nothing or touch a stopped agent.

mod common;

use common::*;
use tonic::Code;
use trialops_platform::backend_tests;
use trialops_proto::dosing::v1 as pb;

backend_tests!(
    cycle_start_counts_at_and_around_the_minimums,
    a_cycle_needs_a_treatment_plan,
    a_dose_the_capsules_cannot_make_up_is_refused,
    modifications_must_change_an_active_agent,
);

async fn cycle_start_counts_at_and_around_the_minimums(backend: Backend) {
    let s = stack(backend).await;
    let mut d = s.dosing().await;
    // (ANC /uL, platelets /uL, starts?, the count named as unmet)
    let cases = [
        ("750", "120000", true, ""),
        ("749", "120000", false, "anc_per_ul"),
        ("751", "120000", true, ""),
        ("1000", "75000", true, ""),
        ("1000", "74999", false, "platelets_per_ul"),
        ("1000", "75001", true, ""),
        ("749.9", "74999.9", false, "anc_per_ul"),
    ];
    for (n, (anc, platelets, starts, unmet)) in cases.into_iter().enumerate() {
        let plan = s.subject_with_plan(&format!("SCR-B{n}")).await;
        let mut request = start(&plan.subject_id, 1, date(2026, 1, 5), "102", "16", anc);
        request.platelets_per_ul = dec(platelets);
        let answer = d.start_cycle(request).await;
        let what = format!("ANC {anc}, platelets {platelets}");
        if starts {
            assert!(answer.is_ok(), "{what}: {answer:?}");
            continue;
        }
        let err = answer.err().unwrap_or_else(|| panic!("{what}: started"));
        assert_eq!(
            (err.code(), reason(&err).as_str()),
            (Code::FailedPrecondition, "CYCLE_START_CRITERIA_NOT_MET"),
            "{what}"
        );
        let minimum = if unmet == "anc_per_ul" { "750" } else { "75000" };
        assert_eq!(metadata(&err, &format!("min_{unmet}")), minimum, "{what}");
    }
    s.stop().await;
}

async fn a_cycle_needs_a_treatment_plan(backend: Backend) {
    let s = stack(backend).await;
    let mut d = s.dosing().await;
    let mut e = s.enrollment().await;
    enrollment::register_site(&mut e, "COG-101").await;
    let subject = enrollment::enroll(
        &mut e,
        "COG-101",
        "SCR-1",
        enrollment::strata("no_prior_irinotecan_temozolomide", "amplified"),
    )
    .await;
    let err = d
        .start_cycle(start(&subject.subject_id, 1, date(2026, 1, 5), "102", "16", "1000"))
        .await
        .err()
        .unwrap_or_else(|| panic!("a cycle started without a plan"));
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (Code::FailedPrecondition, "NO_TREATMENT_PLAN")
    );
    s.stop().await;
}

async fn a_dose_the_capsules_cannot_make_up_is_refused(backend: Backend) {
    let s = stack(backend).await;
    let mut d = s.dosing().await;
    let plan = s.subject_with_plan("SCR-1").await;
    // 45 cm, 2 kg: BSA sqrt(45 x 2 / 3600) = 0.158 m2 < 0.6, so per kg: temozolomide
    // 100 / 30 x 2 = 6.67 mg. The 5 mg capsule makes 5 or 10 mg: 25% and 50% from 6.67, both
    // beyond the protocol's 10% (by hand). Nothing is scheduled.
    let mut request = start(&plan.subject_id, 1, date(2026, 1, 5), "45", "2", "1000");
    request.confirm_implausible_measurements = true;
    let err = d
        .start_cycle(request)
        .await
        .err()
        .unwrap_or_else(|| panic!("a 6.67 mg capsule dose was accepted"));
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (Code::FailedPrecondition, "DOSE_NOT_PREPARABLE")
    );
    assert!(err.message().contains("temozolomide"), "{}", err.message());
    let cycle = d
        .get_cycle(pb::GetCycleRequest {
            subject_id: plan.subject_id.clone(),
            cycle_number: 1,
        })
        .await
        .err();
    assert_eq!(cycle.map(|e| e.code()), Some(Code::NotFound));
    assert!(
        administrations(&mut d, date(2026, 1, 1), date(2026, 1, 31))
            .await
            .is_empty()
    );
    s.stop().await;
}

async fn modifications_must_change_an_active_agent(backend: Backend) {
    let s = stack(backend).await;
    let mut d = s.dosing().await;
    let plan = s.subject_with_plan("SCR-1").await;
    let modify = |etag: &str, agent: &str, level: i32| pb::ApplyDoseModificationRequest {
        request_id: request_id(),
        subject_id: plan.subject_id.clone(),
        etag: etag.to_owned(),
        agent_id: agent.into(),
        dose_level: level,
        reason: "grade 4 neutropenia".into(),
        adverse_event_id: "AE-7".into(),
    };
    // Temozolomide is at its starting level 0.
    let same = d
        .apply_dose_modification(modify(&plan.etag, "temozolomide", 0))
        .await
        .err()
        .unwrap_or_else(|| panic!("a modification to the current level was accepted"));
    assert_eq!(
        (same.code(), reason(&same).as_str()),
        (Code::FailedPrecondition, "DOSE_LEVEL_UNCHANGED")
    );
    let stopped = d
        .discontinue_agent(pb::DiscontinueAgentRequest {
            request_id: request_id(),
            subject_id: plan.subject_id.clone(),
            etag: plan.etag.clone(),
            agent_id: "irinotecan".into(),
            reason: "grade 3 diarrhoea despite loperamide".into(),
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner()
        .plan
        .unwrap_or_default();
    let err = d
        .apply_dose_modification(modify(&stopped.etag, "irinotecan", -1))
        .await
        .err()
        .unwrap_or_else(|| panic!("a discontinued agent was modified"));
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (Code::FailedPrecondition, "AGENT_DISCONTINUED")
    );
    s.stop().await;
}
