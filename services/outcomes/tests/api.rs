//! The outcomes service over gRPC with real enrollment and dosing servers, SQLite and PostgreSQL.

// Test code, helpers included, unwraps: a failure is a test failure with the value shown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use tonic::Code;
use trialops_platform::backend_tests;
use trialops_proto::outcomes::v1 as pb;

backend_tests!(
    assessments_derive_inrc_responses,
    adverse_events_have_deadlines_and_overdue_reports,
    response_rate_interim_survival_and_report,
    dosing_down_is_unavailable_and_writes_nothing,
);

fn resp(r: pb::Response) -> i32 {
    r as i32
}

async fn assessments_derive_inrc_responses(backend: Backend) {
    let s = stack(backend).await;
    let mut o = s.outcomes().await;
    let subject = s.subject("SCR-1", true).await;
    let id = subject.subject_id.as_str();

    let early = o
        .record_response_assessment(assessment(id, 2, true, ("30", true), ("20", 4, false), "4"))
        .await
        .err();
    assert_eq!(early.map(|e| reason(&e)).as_deref(), Some("NO_BASELINE_ASSESSMENT"));
    // Baseline: primary 50 mm avid; metastases sum 40 mm, Curie 10; marrow 30%.
    let baseline = o
        .record_response_assessment(assessment(id, 0, true, ("50", true), ("40", 10, false), "30"))
        .await
        .unwrap()
        .into_inner()
        .assessment
        .unwrap_or_default();
    assert_eq!(baseline.overall_response, resp(pb::Response::Unspecified));
    let again = o
        .record_response_assessment(assessment(id, 0, true, ("50", true), ("40", 10, false), "30"))
        .await
        .err();
    assert_eq!(again.map(|e| reason(&e)).as_deref(), Some("BASELINE_EXISTS"));

    // After cycle 2: primary 30 (-40%) PR; metastases 20 (-50%), Curie 4/10 = 0.4: PR;
    // marrow 30% -> 4%: MD. Overall PR.
    let c2 = o
        .record_response_assessment(assessment(id, 2, true, ("30", true), ("20", 4, false), "4"))
        .await
        .unwrap()
        .into_inner()
        .assessment
        .unwrap_or_default();
    assert_eq!(
        (
            c2.primary_tumour_response,
            c2.metastases_response,
            c2.bone_marrow_response,
            c2.overall_response
        ),
        (
            resp(pb::Response::Pr),
            resp(pb::Response::Pr),
            resp(pb::Response::Md),
            resp(pb::Response::Pr)
        )
    );
    // After cycle 4: primary 8 mm, uptake resolved; metastases resolved; marrow clear: CR.
    let c4 = o
        .record_response_assessment(assessment(id, 4, true, ("8", false), ("0", 0, true), "0"))
        .await
        .unwrap()
        .into_inner()
        .assessment
        .unwrap_or_default();
    assert_eq!(c4.overall_response, resp(pb::Response::Cr));

    // Site review: an override keeps the derived response beside it and needs a reason.
    o.record_response_assessment(assessment(id, 0, false, ("50", true), ("40", 10, false), "30"))
        .await
        .unwrap();
    let mut overridden = assessment(id, 2, false, ("30", true), ("20", 4, false), "4");
    overridden.override_overall_response = pb::Response::Sd as i32;
    let err = o
        .record_response_assessment(overridden.clone())
        .await
        .expect_err("accepted");
    assert_eq!(violated_fields(&err), ["override_reason"]);
    overridden.override_reason = "marrow sample inadequate; residual disease suspected".into();
    let site = o
        .record_response_assessment(overridden)
        .await
        .unwrap()
        .into_inner()
        .assessment
        .unwrap_or_default();
    assert_eq!(
        (site.derived_overall_response, site.overall_response),
        (resp(pb::Response::Pr), resp(pb::Response::Sd))
    );

    let listed = o
        .list_response_assessments(pb::ListResponseAssessmentsRequest {
            subject_id: id.into(),
            page_size: 2,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.assessments.len(), 2);
    assert!(!listed.next_page_token.is_empty());
    assert_eq!(
        (listed.best_central_response, listed.best_site_response),
        (resp(pb::Response::Cr), resp(pb::Response::Sd))
    );

    let mut bad = assessment(id, 6, true, ("30", true), ("20", 4, false), "120");
    bad.assessed_on = s.time.date(30);
    if let Some(m) = bad.metastases.as_mut() {
        m.curie_segment_scores = vec![1; 9];
    }
    let err = o.record_response_assessment(bad).await.expect_err("accepted");
    assert_eq!(
        violated_fields(&err),
        [
            "assessed_on",
            "metastases.curie_segment_scores",
            "bone_marrow.tumour_infiltration_percent"
        ]
    );
    s.stop().await;
}

async fn adverse_events_have_deadlines_and_overdue_reports(backend: Backend) {
    let s = stack(backend).await;
    let mut o = s.outcomes().await;
    let subject = s.subject("SCR-1", true).await;
    let event = |term: &str, grade: i32, aware_hours_ago: i64, agent: &str| pb::RecordAdverseEventRequest {
        request_id: request_id(),
        subject_id: subject.subject_id.clone(),
        ctcae_term: term.into(),
        grade,
        // Onset on the day the site became aware, but not before the reporting period (from the
        // enrollment today, one day of slack): valid at any time of day.
        onset_on: Some(trialops_platform::wire::convert::to_date(
            s.time.hours_ago(aware_hours_ago).date_naive().max(s.time.day(-1)),
        )),
        site_aware_at: s.time.ago(aware_hours_ago),
        attributions: vec![pb::AgentAttribution {
            agent_id: agent.into(),
            attribution: pb::Attribution::Possible as i32,
        }],
        seriousness: vec![],
    };
    // Grade 4 neutropenia, the site aware for 30 hours: the 24-hour notification is overdue.
    let neutropenia = o
        .record_adverse_event(event("Neutrophil count decreased", 4, 30, "temozolomide"))
        .await
        .unwrap()
        .into_inner()
        .adverse_event
        .unwrap_or_default();
    assert!(neutropenia.expected);
    assert_eq!(neutropenia.cycle_at_onset, 1);
    assert!(neutropenia.agents_at_onset.contains(&"temozolomide".to_owned()));
    let kinds: Vec<_> = neutropenia.obligations.iter().map(|x| x.kind.as_str()).collect();
    assert_eq!(kinds, ["notification_24h", "full_report_5_day"]);

    let overdue = |o: &mut Outcomes, hours: i32| {
        let mut o = o.clone();
        async move {
            o.list_overdue_reports(pb::ListOverdueReportsRequest {
                due_within_hours: hours,
                page_size: 100,
                page_token: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
            .obligations
            .into_iter()
            .map(|x| x.kind)
            .collect::<Vec<_>>()
        }
    };
    assert_eq!(overdue(&mut o, 0).await, ["notification_24h"]);
    assert_eq!(overdue(&mut o, 24 * 5).await, ["notification_24h", "full_report_5_day"]);
    let notice = neutropenia.obligations[0].obligation_id.clone();
    let submit = pb::RecordReportSubmittedRequest {
        request_id: request_id(),
        obligation_id: notice.clone(),
        submitted_at: s.time.ago(0),
    };
    o.record_report_submitted(submit).await.unwrap();
    assert!(overdue(&mut o, 0).await.is_empty());
    let twice = o
        .record_report_submitted(pb::RecordReportSubmittedRequest {
            request_id: request_id(),
            obligation_id: notice,
            submitted_at: s.time.ago(0),
        })
        .await
        .err();
    assert_eq!(twice.map(|e| reason(&e)).as_deref(), Some("REPORT_ALREADY_SUBMITTED"));

    // An unexpected grade 2 event needs no report until its grade rises to 4.
    let seizure = o
        .record_adverse_event(event("Seizure", 2, 1, "irinotecan"))
        .await
        .unwrap()
        .into_inner()
        .adverse_event
        .unwrap_or_default();
    assert!(!seizure.expected && seizure.obligations.is_empty());
    let update = |etag: &str| pb::UpdateAdverseEventRequest {
        request_id: request_id(),
        adverse_event_id: seizure.adverse_event_id.clone(),
        etag: etag.into(),
        grade: 4,
        resolved_on: None,
        reason: "status epilepticus".into(),
    };
    let raised = o
        .update_adverse_event(update(&seizure.etag))
        .await
        .unwrap()
        .into_inner()
        .adverse_event
        .unwrap_or_default();
    assert_eq!(raised.grade, 4);
    let kinds: Vec<_> = raised.obligations.iter().map(|x| x.kind.as_str()).collect();
    // CTEP-AERS grade 4: 24 h + 5 days. No IND report: no seriousness criterion was marked
    // (life-threatening under 21 CFR 312.32 is the investigator's call, not inferred from grade).
    assert_eq!(kinds, ["notification_24h", "full_report_5_day"]);
    assert_eq!(
        o.update_adverse_event(update(&seizure.etag))
            .await
            .err()
            .map(|e| e.code()),
        Some(Code::Aborted)
    );
    let history = o
        .list_audit_events(pb::ListAuditEventsRequest {
            entity_type: "adverse_event".into(),
            entity_id: seizure.adverse_event_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .events;
    assert_eq!(
        history.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
        ["adverse_event.recorded", "adverse_event.updated"]
    );
    assert!(history[1].old_value_json.contains("\"grade\":2"));
    assert_eq!(history[1].reason, "status epilepticus");

    let wrong_agent = o
        .record_adverse_event(event("Nausea", 1, 1, "cisplatin"))
        .await
        .expect_err("accepted");
    assert_eq!(violated_fields(&wrong_agent), ["attributions[0].agent_id"]);
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
    s.stop().await;
}

async fn dosing_down_is_unavailable_and_writes_nothing(backend: Backend) {
    let s = stack(backend).await;
    let mut o = s.outcomes().await;
    let subject = s.subject("SCR-1", true).await;
    let before = o
        .list_audit_events(pb::ListAuditEventsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .events
        .len();
    let Stack { time, mut set } = s;
    set.stop_one(Service::Dosing).await;
    let err = o
        .record_adverse_event(pb::RecordAdverseEventRequest {
            request_id: request_id(),
            subject_id: subject.subject_id.clone(),
            ctcae_term: "Fever".into(),
            grade: 2,
            onset_on: time.date(0),
            site_aware_at: time.ago(0),
            attributions: vec![],
            seriousness: vec![],
        })
        .await
        .expect_err("recorded without dosing");
    assert_eq!(err.code(), Code::Unavailable);
    let after = o
        .list_audit_events(pb::ListAuditEventsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .events
        .len();
    assert_eq!(after, before);
    set.stop().await;
}
