//! Enrollment and randomization over gRPC: one allocation per request id, refusals that write
//! nothing, and the allocation summary against the reproducible sequence.

// Test code, helpers included, unwraps: a failure is a test failure with the value shown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use tonic::Code;
use trialops_domain::protocol;
use trialops_domain::randomization::{BlockScheme, Sequence, TrialKey};
use trialops_platform::backend_tests;
use trialops_platform::testing::Backend;
use trialops_proto::enrollment::v1 as pb;

backend_tests!(
    enrollment_randomizes_once_per_request_id,
    refusals_write_nothing,
    allocation_summary_and_reproducible_sequence,
);

async fn enrollment_randomizes_once_per_request_id(backend: Backend) {
    let (_db, server) = start(backend).await;
    let mut c = client(&server).await;
    register_site(&mut c, "COG-101").await;
    screen(&mut c, "COG-101", "SCR-1", eligible_values()).await;
    let req = enroll_request(
        "COG-101",
        "SCR-1",
        strata("no_prior_irinotecan_temozolomide", "amplified"),
    );
    let first = c
        .enroll_subject(req.clone())
        .await
        .unwrap()
        .into_inner()
        .subject
        .unwrap_or_default();
    assert_eq!(first.subject_id, "ANBL1221-0001");
    assert!(["A", "B"].contains(&first.arm_code.as_str()));
    assert_eq!(first.status, pb::SubjectStatus::OnProtocolTherapy as i32);
    assert_eq!(first.strata, first.randomized_strata);

    // The client retries after a timeout: same subject, same arm, nothing new written.
    let audit_before = audit_count(&mut c).await;
    let replay = c
        .enroll_subject(req.clone())
        .await
        .unwrap()
        .into_inner()
        .subject
        .unwrap_or_default();
    assert_eq!(replay, first);
    assert_eq!(audit_count(&mut c).await, audit_before);
    assert_eq!(all_subjects(&mut c).await.len(), 1);

    // The same request id with another request is refused; a new id for the same candidate too.
    let mut changed = req.clone();
    changed.strata = strata("no_prior_irinotecan_temozolomide", "not_amplified");
    let err = c.enroll_subject(changed).await.expect_err("accepted");
    assert_refused(&err, Code::AlreadyExists, "REQUEST_ID_REUSED");
    let err = c
        .enroll_subject(pb::EnrollSubjectRequest {
            request_id: request_id(),
            ..req
        })
        .await
        .expect_err("accepted");
    assert_refused(&err, Code::AlreadyExists, "SUBJECT_ALREADY_ENROLLED");

    let got = c
        .get_subject(pb::GetSubjectRequest {
            subject_id: first.subject_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.subject, Some(first));
    let err = c
        .get_subject(pb::GetSubjectRequest {
            subject_id: "ANBL1221-9999".into(),
        })
        .await
        .expect_err("found");
    assert_eq!(err.code(), Code::NotFound);

    // An admissible enrollment under a request id another method stored (found when the id is
    // claimed, after the enrollment was judged and numbered): refused, nothing written, and the
    // next enrollment takes the number it would have taken.
    let screening = pb::ScreenSubjectRequest {
        values: eligible_values(),
        ..screen_request("COG-101", "SCR-2")
    };
    c.screen_subject(screening.clone()).await.unwrap();
    let audit_before = audit_count(&mut c).await;
    let reused = pb::EnrollSubjectRequest {
        request_id: screening.request_id.clone(),
        ..enroll_request("COG-101", "SCR-2", strata("prior_irinotecan_temozolomide", "amplified"))
    };
    let err = c.enroll_subject(reused.clone()).await.expect_err("accepted");
    assert_refused(&err, Code::AlreadyExists, "REQUEST_ID_REUSED");
    assert_eq!(audit_count(&mut c).await, audit_before);
    assert_eq!(all_subjects(&mut c).await.len(), 1);
    let second = c
        .enroll_subject(pb::EnrollSubjectRequest {
            request_id: request_id(),
            ..reused
        })
        .await
        .unwrap()
        .into_inner()
        .subject
        .unwrap_or_default();
    assert_eq!(second.subject_id, "ANBL1221-0002");
    server.stop().await;
}

async fn refusals_write_nothing(backend: Backend) {
    let (_db, server) = start(backend).await;
    let mut c = client(&server).await;
    register_site(&mut c, "COG-101").await;
    register_site(&mut c, "COG-202").await;
    screen(
        &mut c,
        "COG-101",
        "SCR-LOW",
        values_with(dec("platelets_per_ul", "50000")),
    )
    .await;
    screen(&mut c, "COG-101", "SCR-OK", eligible_values()).await;
    let before = audit_count(&mut c).await;
    let s = || strata("prior_irinotecan_temozolomide", "not_amplified");

    let err = c
        .enroll_subject(enroll_request("COG-101", "SCR-LOW", s()))
        .await
        .expect_err("enrolled");
    assert_refused(&err, Code::FailedPrecondition, "SUBJECT_INELIGIBLE");
    assert_eq!(metadata(&err, "failed_criteria"), "platelets");
    assert!(
        err.message()
            .contains("platelets_per_ul = 50000 /uL; required >= 75000 /uL"),
        "{}",
        err.message()
    );

    let err = c
        .enroll_subject(enroll_request("COG-101", "SCR-NEVER", s()))
        .await
        .expect_err("enrolled");
    assert_refused(&err, Code::FailedPrecondition, "SUBJECT_NOT_SCREENED");

    let err = c
        .enroll_subject(enroll_request("COG-202", "SCR-OK", s()))
        .await
        .expect_err("enrolled");
    assert_refused(&err, Code::FailedPrecondition, "SCREENED_AT_ANOTHER_SITE");

    let mut old_form = enroll_request("COG-101", "SCR-OK", s());
    old_form.consent = Some(pb::Consent {
        signed_on: today(),
        form_version: "0.9".into(),
    });
    let err = c.enroll_subject(old_form).await.expect_err("enrolled");
    assert_refused(&err, Code::FailedPrecondition, "CONSENT_FORM_VERSION_NOT_ACCEPTED");

    // An old screening: 22 days before today exceeds the 21-day window.
    let old = chrono::Utc::now().date_naive() - chrono::Days::new(22);
    use chrono::Datelike;
    c.screen_subject(pb::ScreenSubjectRequest {
        assessed_on: date(old.year(), old.month() as i32, old.day() as i32),
        ..screen_request("COG-101", "SCR-OLD")
    })
    .await
    .unwrap();
    let before_old = audit_count(&mut c).await;
    let err = c
        .enroll_subject(enroll_request("COG-101", "SCR-OLD", s()))
        .await
        .expect_err("enrolled");
    assert_refused(&err, Code::FailedPrecondition, "SCREENING_EXPIRED");

    assert!(
        all_subjects(&mut c).await.is_empty(),
        "a refused enrollment left a subject"
    );
    assert_eq!(audit_count(&mut c).await, before_old);
    assert_eq!(before_old, before + 1, "only the old screening was recorded");
    let summary = c
        .get_allocation_summary(pb::GetAllocationSummaryRequest {
            trial_id: "ANBL1221".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(summary.total_subjects, 0);

    // After the refusals the first subject still gets number 0001: no number was consumed.
    let subject = c
        .enroll_subject(enroll_request("COG-101", "SCR-OK", s()))
        .await
        .unwrap()
        .into_inner()
        .subject
        .unwrap_or_default();
    assert_eq!(subject.subject_id, "ANBL1221-0001");
    server.stop().await;
}

async fn allocation_summary_and_reproducible_sequence(backend: Backend) {
    let (_db, server) = start(backend).await;
    let mut c = client(&server).await;
    register_site(&mut c, "COG-101").await;
    let amplified = strata("no_prior_irinotecan_temozolomide", "amplified");
    let other = strata("prior_irinotecan_temozolomide", "not_amplified");
    let mut enrolled = Vec::new();
    for i in 0..10 {
        let s = if i < 6 { amplified.clone() } else { other.clone() };
        enrolled.push(enroll(&mut c, "COG-101", &format!("SCR-{i}"), s).await);
    }
    // An auditor with the secret reproduces every arm from the stratum's sequence.
    let p = protocol::anbl1221().unwrap();
    let key = TrialKey::derive(SECRET, "ANBL1221");
    let scheme = BlockScheme::from_protocol(&p).unwrap();
    let seq_a: Vec<_> = Sequence::new(
        &key,
        &scheme,
        "prior_therapy=no_prior_irinotecan_temozolomide|mycn_status=amplified",
    )
    .take(6)
    .into_iter()
    .map(|a| a.arm_code)
    .collect();
    let seq_b: Vec<_> = Sequence::new(
        &key,
        &scheme,
        "prior_therapy=prior_irinotecan_temozolomide|mycn_status=not_amplified",
    )
    .take(4)
    .into_iter()
    .map(|a| a.arm_code)
    .collect();
    let arms: Vec<_> = enrolled.iter().map(|s| s.arm_code.clone()).collect();
    assert_eq!(arms[..6], seq_a[..]);
    assert_eq!(arms[6..], seq_b[..]);

    let summary = c
        .get_allocation_summary(pb::GetAllocationSummaryRequest {
            trial_id: "ANBL1221".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(summary.total_subjects, 10);
    for (stratum, arms) in [(&amplified, &arms[..6]), (&other, &arms[6..])] {
        for arm in ["A", "B"] {
            let expected = arms.iter().filter(|a| *a == arm).count() as i64;
            let row = summary
                .counts
                .iter()
                .find(|r| &r.stratum == stratum && r.arm_code == arm);
            assert_eq!(row.map_or(0, |r| r.subjects), expected, "{stratum:?} {arm}");
        }
    }
    server.stop().await;
}
