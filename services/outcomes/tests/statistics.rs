//! Endpoint statistics over gRPC: response rates, the Simon interim, survival and the trial
//! report.

// Test code, helpers included, unwraps: a failure is a test failure with the value shown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use trialops_platform::backend_tests;
use trialops_proto::outcomes::v1 as pb;

backend_tests!(
    response_rate_interim_survival_and_report,
    a_report_without_a_known_trial_is_refused_before_other_services_are_asked,
);

/// The report reads the other services at once; a request without a trial, or for a trial
/// this service has no protocol of, is answered by outcomes alone, even with the others down.
async fn a_report_without_a_known_trial_is_refused_before_other_services_are_asked(backend: Backend) {
    let mut s = stack(backend).await;
    s.set.stop_one(Service::Enrollment).await;
    s.set.stop_one(Service::Dosing).await;
    let mut o = s.outcomes().await;
    let report = |trial_id: &str| pb::GetTrialReportRequest {
        trial_id: trial_id.into(),
        confidence_level: None,
    };
    let status = o.get_trial_report(report("")).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    assert_eq!(violated_fields(&status), ["trial_id"]);
    let status = o.get_trial_report(report("NO-SUCH-TRIAL")).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::NotFound, "{status:?}");
    // A known trial needs the others: their absence is UNAVAILABLE, never a partial report.
    let status = o.get_trial_report(report("ANBL1221")).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    s.stop().await;
}

async fn response_rate_interim_survival_and_report(backend: Backend) {
    let s = stack(backend).await;
    let mut o = s.outcomes().await;
    let mut subjects = Vec::new();
    // T1 CR, T2 SD, T3 PR after cycle 6 (central review); U responds but was never treated.
    for (name, treated, primary, mets, marrow) in [
        ("T1", true, ("8", false), ("0", 0, true), "0"),
        ("T2", true, ("45", true), ("38", 9, false), "25"),
        ("T3", true, ("30", true), ("20", 4, false), "4"),
        ("U", false, ("8", false), ("0", 0, true), "0"),
    ] {
        let subject = s.subject(&format!("SCR-{name}"), treated).await;
        o.record_response_assessment(assessment(
            &subject.subject_id,
            0,
            true,
            ("50", true),
            ("40", 10, false),
            "30",
        ))
        .await
        .unwrap();
        o.record_response_assessment(assessment(&subject.subject_id, 6, true, primary, mets, marrow))
            .await
            .unwrap();
        subjects.push((name, subject, treated, name == "T1" || name == "T3"));
    }
    let rates = o
        .get_response_rate(pb::GetResponseRateRequest {
            trial_id: "ANBL1221".into(),
            confidence_level: dec("0.95"),
        })
        .await
        .unwrap()
        .into_inner()
        .arms;
    for arm in ["A", "B"] {
        let evaluable: Vec<_> = subjects
            .iter()
            .filter(|(_, s, treated, _)| s.arm_code == arm && *treated)
            .collect();
        let responders = evaluable.iter().filter(|(_, _, _, responded)| *responded).count() as u64;
        let row = rates.iter().find(|r| r.arm_code == arm).cloned().unwrap_or_default();
        assert_eq!(
            (row.responders as u64, row.evaluable as usize),
            (responders, evaluable.len()),
            "arm {arm}"
        );
        // Exact 95% Clopper-Pearson bounds for every split three evaluable subjects can give,
        // computed by hand from the binomial sums (bisection of P(X >= x) = 0.025 and
        // P(X <= x) = 0.025; closed forms where x = 0 or n, e.g. 1 - 0.025^(1/3) = 0.707598).
        let reference = [
            ((1, 0), (0.0, 0.975)),
            ((1, 1), (0.025, 1.0)),
            ((2, 0), (0.0, 0.841886)),
            ((2, 1), (0.012579, 0.987421)),
            ((2, 2), (0.158114, 1.0)),
            ((3, 0), (0.0, 0.707598)),
            ((3, 1), (0.008404, 0.905701)),
            ((3, 2), (0.094299, 0.991596)),
            ((3, 3), (0.292402, 1.0)),
        ];
        let Some((_, (lower, upper))) = reference
            .iter()
            .find(|((n, x), _)| (*n, *x) == (evaluable.len(), responders))
        else {
            assert!(
                evaluable.is_empty(),
                "arm {arm}: no reference for {responders}/{}",
                evaluable.len()
            );
            continue;
        };
        let bound = |d: Option<trialops_proto::common::v1::Decimal>| {
            d.unwrap_or_default().value.parse::<f64>().unwrap_or(f64::NAN)
        };
        let (got_lower, got_upper) = (bound(row.ci_lower), bound(row.ci_upper));
        assert!(
            (got_lower - lower).abs() <= 1.5e-6 && (got_upper - upper).abs() <= 1.5e-6,
            "arm {arm}: ({got_lower}, {got_upper}) vs hand-computed ({lower}, {upper})"
        );
    }

    let interim = o
        .evaluate_simon_interim(pb::EvaluateSimonInterimRequest {
            trial_id: "ANBL1221".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(interim.design.map(|d| (d.r1, d.n1, d.r, d.n)), Some((1, 10, 5, 29)));
    assert_eq!(
        interim.arms.iter().map(|a| a.assessed).sum::<i32>(),
        3,
        "the untreated subject is not evaluable"
    );
    assert!(
        interim
            .arms
            .iter()
            .all(|a| a.decision == pb::InterimDecision::EnrollingStageOne as i32)
    );

    let design = o
        .compute_simon_design(pb::ComputeSimonDesignRequest {
            p0: dec("0.10"),
            p1: dec("0.30"),
            alpha: dec("0.05"),
            beta: dec("0.20"),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(design.optimal.map(|d| (d.r1, d.n1, d.r, d.n)), Some((1, 10, 5, 29)));
    assert_eq!(design.minimax.map(|d| (d.r1, d.n1, d.r, d.n)), Some((1, 15, 5, 25)));
    let bad = o
        .compute_simon_design(pb::ComputeSimonDesignRequest {
            p0: dec("0.3"),
            p1: dec("0.1"),
            alpha: dec("0.05"),
            beta: dec("0.2"),
        })
        .await
        .err();
    assert_eq!(bad.map(|e| violated_fields(&e)), Some(vec!["p1".to_owned()]));

    // T2 dies (follow-up today); a grade 3 diarrhoea for T1.
    let (_, t1, _, _) = &subjects[0];
    let (_, t2, _, _) = &subjects[1];
    o.record_follow_up(pb::RecordFollowUpRequest {
        request_id: request_id(),
        subject_id: t2.subject_id.clone(),
        last_contact_on: s.time.date(0),
        vital_status: pb::VitalStatus::Dead as i32,
        progression_on: None,
        second_malignancy_on: None,
    })
    .await
    .unwrap();
    o.record_adverse_event(pb::RecordAdverseEventRequest {
        request_id: request_id(),
        subject_id: t1.subject_id.clone(),
        ctcae_term: "Diarrhea".into(),
        grade: 3,
        onset_on: s.time.date(0),
        site_aware_at: s.time.ago(0),
        attributions: vec![pb::AgentAttribution {
            agent_id: "irinotecan".into(),
            attribution: pb::Attribution::Probable as i32,
        }],
        seriousness: vec![],
    })
    .await
    .unwrap();

    let os = o
        .get_survival_analysis(pb::GetSurvivalAnalysisRequest {
            trial_id: "ANBL1221".into(),
            endpoint: pb::SurvivalEndpoint::Os as i32,
        })
        .await
        .unwrap()
        .into_inner();
    let deaths: i32 = os.curves.iter().flat_map(|c| c.points.iter().map(|p| p.events)).sum();
    assert_eq!(deaths, 1);

    let report = o
        .get_trial_report(pb::GetTrialReportRequest {
            trial_id: "ANBL1221".into(),
            confidence_level: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(report.enrollment.iter().map(|c| c.subjects).sum::<i64>(), 4);
    assert_eq!(report.exposure.iter().map(|e| e.treated_subjects).sum::<i32>(), 3);
    assert_eq!(
        report.responses.iter().map(|r| r.cr).sum::<i32>(),
        1,
        "U's CR is not evaluable"
    );
    assert_eq!(report.responses.iter().map(|r| r.pr + r.sd).sum::<i32>(), 2);
    assert_eq!(report.severe_events.len(), 1);
    assert_eq!(
        (
            report.severe_events[0].ctcae_term.as_str(),
            report.severe_events[0].arm_code.as_str(),
            report.severe_events[0].events
        ),
        ("Diarrhea", t1.arm_code.as_str(), 1)
    );
    let deaths_by_arm: i32 = report
        .survival
        .iter()
        .filter(|x| x.arm_code == t2.arm_code)
        .map(|x| x.deaths)
        .sum();
    assert_eq!(deaths_by_arm, 1);

    // T3 (a PR) is found ineligible after allocation: marked randomized in error. Intention to
    // treat keeps it; per protocol its arm has one evaluable subject and one responder fewer.
    let (_, t3, _, _) = &subjects[2];
    let mut e = enrollment::connect(&s.set.url(Service::Enrollment)).await;
    let mark = |etag: &str| trialops_proto::enrollment::v1::MarkRandomizedInErrorRequest {
        request_id: request_id(),
        subject_id: t3.subject_id.clone(),
        etag: etag.into(),
        reason: "ineligible: bilirubin above the limit at screening".into(),
    };
    let marked = e
        .mark_randomized_in_error(mark(&t3.etag))
        .await
        .unwrap()
        .into_inner()
        .subject
        .unwrap();
    assert!(marked.randomized_in_error);
    assert_eq!(marked.arm_code, t3.arm_code, "the arm never changes");
    let again = e.mark_randomized_in_error(mark(&marked.etag)).await.unwrap_err();
    assert_refused(&again, tonic::Code::FailedPrecondition, "ALREADY_RANDOMIZED_IN_ERROR");
    // T1 is unblinded in an emergency: the report lists who, why and when.
    let unblinding = e
        .unblind_subject(trialops_proto::enrollment::v1::UnblindSubjectRequest {
            request_id: request_id(),
            subject_id: t1.subject_id.clone(),
            reason: "grade 4 diarrhea: the treating physician needs the agents".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .unblinding
        .unwrap();
    let report = o
        .get_trial_report(pb::GetTrialReportRequest {
            trial_id: "ANBL1221".into(),
            confidence_level: None,
        })
        .await
        .unwrap()
        .into_inner();
    let figures = |rows: &[pb::ArmResponseTable], arm: &str| {
        let r = rows.iter().find(|r| r.arm_code == arm).cloned().unwrap_or_default();
        let rate = r.rate.unwrap_or_default();
        (rate.evaluable, rate.responders)
    };
    for arm in ["A", "B"] {
        // By hand from the subjects above: evaluable = treated on the arm, responders = T1, T3.
        let on_arm = |exclude_t3: bool| {
            subjects
                .iter()
                .filter(|(name, s, treated, _)| s.arm_code == arm && *treated && !(exclude_t3 && *name == "T3"))
                .fold((0, 0), |(n, r), (_, _, _, responded)| {
                    (n + 1, r + i32::from(*responded))
                })
        };
        assert_eq!(
            figures(&report.responses, arm),
            on_arm(false),
            "intention to treat, arm {arm}"
        );
        assert_eq!(
            figures(&report.per_protocol_responses, arm),
            on_arm(true),
            "per protocol, arm {arm}"
        );
    }
    let unblinded: Vec<_> = report
        .emergency_unblindings
        .iter()
        .map(|u| {
            (
                u.subject_id.as_str(),
                u.arm_code.as_str(),
                u.reason.as_str(),
                u.unblinded_by.as_str(),
                u.unblinded_at,
            )
        })
        .collect();
    assert_eq!(
        unblinded,
        [(
            t1.subject_id.as_str(),
            t1.arm_code.as_str(),
            "grade 4 diarrhea: the treating physician needs the agents",
            unblinding.unblinded_by.as_str(),
            unblinding.unblinded_at
        )]
    );
    let listed: Vec<(&str, &str)> = report
        .randomized_in_error
        .iter()
        .map(|r| (r.subject_id.as_str(), r.reason.as_str()))
        .collect();
    assert_eq!(
        listed,
        [(
            t3.subject_id.as_str(),
            "ineligible: bilirubin above the limit at screening"
        )]
    );
    s.stop().await;
}
