//! A subject's medication record over gRPC: GetAdministration and ListSubjectAdministrations
//! (all, or only the recorded ones, paged), checked against the site's worklist; unknown ids and
//! subjects without a plan. Callers of another site: `crates/cli/tests/fhir.rs`, with tokens.

// Test code, helpers included, unwraps: a failure is a test failure with the value shown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use tonic::Code;
use trialops_platform::backend_tests;
use trialops_proto::dosing::v1 as pb;

backend_tests!(a_subjects_medication_record_matches_the_worklist);

/// Every page of a subject's administrations, `size` at a time.
async fn record(d: &mut Dosing, subject: &str, recorded_only: bool, size: i32) -> Vec<pb::Administration> {
    let mut out = Vec::new();
    let mut token = String::new();
    loop {
        let page = d
            .list_subject_administrations(pb::ListSubjectAdministrationsRequest {
                subject_id: subject.into(),
                recorded_only,
                page_size: size,
                page_token: token,
            })
            .await
            .unwrap()
            .into_inner();
        assert!(page.administrations.len() <= size as usize);
        out.extend(page.administrations);
        if page.next_page_token.is_empty() {
            return out;
        }
        token = page.next_page_token;
    }
}

async fn a_subjects_medication_record_matches_the_worklist(backend: Backend) {
    let s = stack(backend).await;
    let (mut d, plan) = s.first_cycle().await;
    // Cycle 1 from 5 January 2026: its calendar on the site's worklist for the month.
    let worklist: Vec<pb::Administration> = administrations(&mut d, date(2026, 1, 1), date(2026, 1, 31))
        .await
        .into_iter()
        .filter(|a| a.subject_id == plan.subject_id)
        .collect();
    assert!(worklist.len() > 5, "{}", worklist.len());

    // Two temozolomide doses given, the third held.
    let tmz: Vec<&pb::Administration> = worklist.iter().filter(|a| a.agent_id == "temozolomide").collect();
    let now = chrono::Utc::now().timestamp();
    let at = |s: i64| Some(prost_types::Timestamp { seconds: s, nanos: 0 });
    for a in &tmz[..2] {
        d.record_administration(pb::RecordAdministrationRequest {
            request_id: request_id(),
            administration_id: a.administration_id.clone(),
            status: pb::AdministrationStatus::Given as i32,
            actual_dose: dec("65"),
            started_at: at(now - 7200),
            ended_at: at(now - 7000),
            ..Default::default()
        })
        .await
        .unwrap();
    }
    d.record_administration(pb::RecordAdministrationRequest {
        request_id: request_id(),
        administration_id: tmz[2].administration_id.clone(),
        status: pb::AdministrationStatus::Held as i32,
        reason: "vomiting".into(),
        ..Default::default()
    })
    .await
    .unwrap();

    // All of them, three at a time: the worklist's administrations of the subject, in its order.
    let all = record(&mut d, &plan.subject_id, false, 3).await;
    let ids = |list: &[pb::Administration]| list.iter().map(|a| a.administration_id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&all), ids(&worklist));
    // Only the recorded ones: the three just recorded, with their statuses.
    let recorded = record(&mut d, &plan.subject_id, true, 50).await;
    let expected: Vec<(String, i32)> = vec![
        (tmz[0].administration_id.clone(), pb::AdministrationStatus::Given as i32),
        (tmz[1].administration_id.clone(), pb::AdministrationStatus::Given as i32),
        (tmz[2].administration_id.clone(), pb::AdministrationStatus::Held as i32),
    ];
    let got: Vec<(String, i32)> = recorded
        .iter()
        .map(|a| (a.administration_id.clone(), a.status))
        .collect();
    assert_eq!(got, expected);

    // One by id: what the list shows.
    let one = d
        .get_administration(pb::GetAdministrationRequest {
            administration_id: tmz[0].administration_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .administration
        .unwrap();
    assert_eq!(one, recorded[0]);
    assert_eq!(one.actual_dose.unwrap().value, "65");
    let unknown = d
        .get_administration(pb::GetAdministrationRequest {
            administration_id: "00000000-0000-4000-8000-000000000000".into(),
        })
        .await
        .unwrap_err();
    assert_refused(&unknown, Code::NotFound, "NOT_FOUND");
    let empty = d
        .get_administration(pb::GetAdministrationRequest::default())
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&empty), ["administration_id"]);

    // A subject enrolled without a plan has no administrations yet.
    let mut e = s.enrollment().await;
    let strata = enrollment::strata("no_prior_irinotecan_temozolomide", "amplified");
    let planless = enrollment::enroll(&mut e, "COG-101", "SCR-NOPLAN", strata).await;
    assert!(record(&mut d, &planless.subject_id, false, 10).await.is_empty());

    s.stop().await;
}
