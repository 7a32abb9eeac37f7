//! Site scoping in outcomes, with the three services in JWT mode: investigators of another site
//! see no overdue reports, adverse events or assessments of this site's subject, and cannot
//! change them; the subject's own site can. Central reviewers are blinded to allocation.

// Test code, helpers included, unwraps: a failure is a test failure with the value shown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use tonic::Code;
use trialops_platform::backend_tests;
use trialops_platform::testing::{jwt_settings, jwt_token, with_bearer};
use trialops_proto::dosing::v1 as dpb;
use trialops_proto::enrollment::v1 as epb;
use trialops_proto::outcomes::v1 as pb;

backend_tests!(another_sites_callers_see_nothing);

fn token(role: &str, site: &str) -> String {
    jwt_token(&format!("{role}@{site}"), role, Some(site))
}

async fn another_sites_callers_see_nothing(backend: Backend) {
    let time = TestTime::away_from_midnight().await;
    let set = TestStack::start(backend, |_, s| *s = jwt_settings(s.clone())).await;
    let mut e = enrollment::connect(&set.url(Service::Enrollment)).await;
    let mut d =
        trialops_proto::dosing::v1::dosing_service_client::DosingServiceClient::connect(set.url(Service::Dosing))
            .await
            .unwrap();
    let mut o = trialops_proto::outcomes::v1::outcomes_service_client::OutcomesServiceClient::connect(
        set.url(Service::Outcomes),
    )
    .await
    .unwrap();
    let admin = token("administrator", "HQ");
    let (coordinator, investigator, pharmacist) = (
        token("site_coordinator", "COG-101"),
        token("investigator", "COG-101"),
        token("pharmacist", "COG-101"),
    );
    let elsewhere = token("investigator", "COG-202");

    e.register_site(with_bearer(
        epb::RegisterSiteRequest {
            request_id: request_id(),
            site_code: "COG-101".into(),
            name: "A".into(),
            ..Default::default()
        },
        &admin,
    ))
    .await
    .unwrap();
    let subject = enrollment::enroll_as(&mut e, &coordinator, "COG-101", "SCR-1").await;
    d.create_treatment_plan(with_bearer(
        dpb::CreateTreatmentPlanRequest {
            request_id: request_id(),
            subject_id: subject.subject_id.clone(),
        },
        &pharmacist,
    ))
    .await
    .unwrap();

    // This site's investigator records a grade 4 event, the site aware 30 hours ago.
    let event = pb::RecordAdverseEventRequest {
        request_id: request_id(),
        subject_id: subject.subject_id.clone(),
        ctcae_term: "Neutrophil count decreased".into(),
        grade: 4,
        // Onset on the day the site became aware, but not before the reporting period (from the
        // enrollment today, one day of slack): valid at any time of day.
        onset_on: Some(trialops_platform::wire::convert::to_date(
            time.hours_ago(30).date_naive().max(time.day(-1)),
        )),
        site_aware_at: time.ago(30),
        attributions: vec![],
        seriousness: vec![],
    };
    let recorded = o
        .record_adverse_event(with_bearer(event.clone(), &investigator))
        .await
        .unwrap()
        .into_inner()
        .adverse_event
        .unwrap_or_default();
    let overdue = |token: String| {
        let mut o = o.clone();
        async move {
            o.list_overdue_reports(with_bearer(
                pb::ListOverdueReportsRequest {
                    due_within_hours: 0,
                    page_size: 50,
                    page_token: String::new(),
                },
                &token,
            ))
            .await
            .unwrap()
            .into_inner()
            .obligations
            .len()
        }
    };
    assert_eq!(overdue(investigator.clone()).await, 1);
    assert_eq!(
        overdue(elsewhere.clone()).await,
        0,
        "another site's overdue reports are not listed"
    );

    let update = pb::UpdateAdverseEventRequest {
        request_id: request_id(),
        adverse_event_id: recorded.adverse_event_id.clone(),
        etag: recorded.etag.clone(),
        grade: 3,
        resolved_on: None,
        reason: "regraded".into(),
    };
    assert_eq!(
        o.update_adverse_event(with_bearer(update, &elsewhere))
            .await
            .err()
            .map(|e| e.code()),
        Some(Code::NotFound)
    );
    let submit = pb::RecordReportSubmittedRequest {
        request_id: request_id(),
        obligation_id: recorded.obligations[0].obligation_id.clone(),
        submitted_at: time.ago(0),
    };
    assert_eq!(
        o.record_report_submitted(with_bearer(submit.clone(), &elsewhere))
            .await
            .err()
            .map(|e| e.code()),
        Some(Code::NotFound)
    );
    let list = pb::ListResponseAssessmentsRequest {
        subject_id: subject.subject_id.clone(),
        page_size: 10,
        page_token: String::new(),
    };
    assert_eq!(
        o.list_response_assessments(with_bearer(list.clone(), &elsewhere))
            .await
            .err()
            .map(|e| e.code()),
        Some(Code::NotFound)
    );
    let err = o
        .record_adverse_event(with_bearer(
            pb::RecordAdverseEventRequest {
                request_id: request_id(),
                ..event
            },
            &elsewhere,
        ))
        .await
        .err();
    assert_eq!(
        err.map(|e| reason(&e)).as_deref(),
        Some("SUBJECT_NOT_ENROLLED"),
        "enrollment hides the subject"
    );

    // The subject's own site can.
    assert!(
        o.list_response_assessments(with_bearer(list, &investigator))
            .await
            .is_ok()
    );
    assert!(
        o.record_report_submitted(with_bearer(submit, &investigator))
            .await
            .is_ok()
    );

    // Central review is blinded to allocation: no arm in the subject or the subject list, no
    // filtering by arm, no treatment (the agents name the arm); recording an assessment (which
    // reads the subject through enrollment with the reviewer's token) works. The statistician
    // sees the arm.
    let reviewer = jwt_token("reviewer-1", "central_reviewer", None);
    let statistician = jwt_token("statistician-1", "statistician", None);
    let get = |token: &str| {
        with_bearer(
            epb::GetSubjectRequest {
                subject_id: subject.subject_id.clone(),
            },
            token,
        )
    };
    let blinded = e
        .get_subject(get(&reviewer))
        .await
        .unwrap()
        .into_inner()
        .subject
        .unwrap_or_default();
    assert_eq!(
        (blinded.subject_id.as_str(), blinded.arm_code.as_str()),
        (subject.subject_id.as_str(), "")
    );
    let open = e
        .get_subject(get(&statistician))
        .await
        .unwrap()
        .into_inner()
        .subject
        .unwrap_or_default();
    assert_eq!(open.arm_code, subject.arm_code);
    assert!(!subject.arm_code.is_empty());
    let list = |arm: &str| {
        with_bearer(
            epb::ListSubjectsRequest {
                trial_id: "ANBL1221".into(),
                arm_code: arm.into(),
                page_size: 50,
                ..Default::default()
            },
            &reviewer,
        )
    };
    let listed = e.list_subjects(list("")).await.unwrap().into_inner().subjects;
    assert_eq!(listed.len(), 1);
    assert!(listed.iter().all(|s| s.arm_code.is_empty()));
    let by_arm = e.list_subjects(list(&subject.arm_code)).await.err();
    assert_eq!(by_arm.map(|e| e.code()), Some(Code::PermissionDenied));
    let exposure = d
        .get_cumulative_exposure(with_bearer(
            dpb::GetCumulativeExposureRequest {
                subject_id: subject.subject_id.clone(),
            },
            &reviewer,
        ))
        .await
        .err();
    assert_eq!(exposure.map(|e| e.code()), Some(Code::PermissionDenied));
    let baseline = assessment(&subject.subject_id, 0, true, ("50", true), ("40", 10, false), "30");
    o.record_response_assessment(with_bearer(baseline, &reviewer))
        .await
        .unwrap();

    set.stop().await;
}
