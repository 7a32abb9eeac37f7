//! Enrolled subjects over gRPC: filtered pages, the status lifecycle with etags, corrections
//! that keep the arm and the history.

// Test code, helpers included, unwraps: a failure is a test failure with the value shown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use tonic::Code;
use trialops_platform::testing::Backend;
use trialops_platform::{audit_events, backend_tests};
use trialops_proto::enrollment::v1 as pb;

backend_tests!(
    subjects_filter_and_page,
    status_changes_follow_the_lifecycle_and_etags,
    corrections_keep_the_arm_and_the_history,
);

async fn subjects_filter_and_page(backend: Backend) {
    let (_db, server) = start(backend).await;
    let mut c = client(&server).await;
    register_site(&mut c, "COG-101").await;
    register_site(&mut c, "COG-202").await;
    for i in 0..7 {
        let site = if i % 2 == 0 { "COG-101" } else { "COG-202" };
        enroll(
            &mut c,
            site,
            &format!("SCR-{i}"),
            strata("no_prior_irinotecan_temozolomide", "amplified"),
        )
        .await;
    }
    let list = |site: &str, arm: &str, token: String, size: i32| pb::ListSubjectsRequest {
        trial_id: "ANBL1221".into(),
        site_code: site.into(),
        arm_code: arm.into(),
        status: 0,
        page_size: size,
        page_token: token,
    };
    let p1 = c
        .list_subjects(list("COG-101", "", String::new(), 3))
        .await
        .unwrap()
        .into_inner();
    let p2 = c
        .list_subjects(list("COG-101", "", p1.next_page_token.clone(), 3))
        .await
        .unwrap()
        .into_inner();
    let ids: Vec<_> = p1
        .subjects
        .iter()
        .chain(&p2.subjects)
        .map(|s| s.subject_id.as_str())
        .collect();
    assert_eq!(
        ids,
        ["ANBL1221-0001", "ANBL1221-0003", "ANBL1221-0005", "ANBL1221-0007"]
    );
    assert!(p2.next_page_token.is_empty());
    // A token is bound to its filters.
    let err = c
        .list_subjects(list("COG-202", "", p1.next_page_token, 3))
        .await
        .expect_err("accepted");
    assert_eq!(violated_fields(&err), ["page_token"]);

    let everyone = all_subjects(&mut c).await;
    for arm in ["A", "B"] {
        let listed = c
            .list_subjects(list("", arm, String::new(), 100))
            .await
            .unwrap()
            .into_inner()
            .subjects;
        let expected: Vec<_> = everyone.iter().filter(|s| s.arm_code == arm).cloned().collect();
        assert_eq!(listed, expected);
    }
    let err = c
        .list_subjects(list("", "Z", String::new(), 10))
        .await
        .expect_err("accepted");
    assert_eq!(violated_fields(&err), ["arm_code"]);
    server.stop().await;
}

async fn status_changes_follow_the_lifecycle_and_etags(backend: Backend) {
    let (_db, server) = start(backend).await;
    let mut c = client(&server).await;
    register_site(&mut c, "COG-101").await;
    let s = enroll(
        &mut c,
        "COG-101",
        "SCR-1",
        strata("no_prior_irinotecan_temozolomide", "amplified"),
    )
    .await;
    let change = |etag: &str, to: pb::SubjectStatus| pb::ChangeSubjectStatusRequest {
        request_id: request_id(),
        subject_id: s.subject_id.clone(),
        etag: etag.into(),
        new_status: to as i32,
        reason: "progressive disease after cycle 4".into(),
        effective_on: today(),
    };
    let err = c
        .change_subject_status(change(&s.etag, pb::SubjectStatus::OffStudy))
        .await
        .expect_err("accepted");
    assert_refused(&err, Code::FailedPrecondition, "INVALID_STATUS_TRANSITION");
    let off = c
        .change_subject_status(change(&s.etag, pb::SubjectStatus::OffProtocolTherapy))
        .await
        .unwrap()
        .into_inner()
        .subject
        .unwrap_or_default();
    assert_eq!(off.status, pb::SubjectStatus::OffProtocolTherapy as i32);
    assert_eq!(off.status_reason, "progressive disease after cycle 4");
    assert_ne!(off.etag, s.etag);
    // The stale etag is refused and changes nothing.
    let err = c
        .change_subject_status(change(&s.etag, pb::SubjectStatus::Withdrawn))
        .await
        .expect_err("accepted");
    assert_eq!(err.code(), Code::Aborted);
    let done = c
        .change_subject_status(change(&off.etag, pb::SubjectStatus::OffStudy))
        .await
        .unwrap()
        .into_inner()
        .subject
        .unwrap_or_default();
    let err = c
        .change_subject_status(change(&done.etag, pb::SubjectStatus::Withdrawn))
        .await
        .expect_err("accepted");
    assert_eq!(reason(&err), "INVALID_STATUS_TRANSITION");

    let mut missing = change("", pb::SubjectStatus::Unspecified);
    missing.reason = " ".into();
    missing.effective_on = None;
    let err = c.change_subject_status(missing).await.expect_err("accepted");
    assert_eq!(violated_fields(&err), ["etag", "new_status", "reason", "effective_on"]);
    let mut unknown = change("1", pb::SubjectStatus::Withdrawn);
    unknown.subject_id = "ANBL1221-0404".into();
    assert_eq!(
        c.change_subject_status(unknown).await.err().map(|e| e.code()),
        Some(Code::NotFound)
    );

    // The lifecycle read back, one change per page, oldest first; refused changes are not in it.
    let page = |token: String| pb::ListStatusChangesRequest {
        trial_id: "ANBL1221".into(),
        page_size: 1,
        page_token: token,
    };
    let mut changes = Vec::new();
    let mut token = String::new();
    loop {
        let r = c.list_status_changes(page(token)).await.unwrap().into_inner();
        assert!(r.changes.len() <= 1);
        changes.extend(r.changes);
        if r.next_page_token.is_empty() {
            break;
        }
        token = r.next_page_token;
    }
    let statuses: Vec<i32> = changes.iter().map(|c| c.status).collect();
    assert_eq!(
        statuses,
        [
            pb::SubjectStatus::OffProtocolTherapy as i32,
            pb::SubjectStatus::OffStudy as i32
        ]
    );
    assert!(changes.iter().all(|x| x.subject_id == s.subject_id
        && x.reason == "progressive disease after cycle 4"
        && x.effective_on == today()));
    let unknown_trial = c
        .list_status_changes(pb::ListStatusChangesRequest {
            trial_id: "NO-SUCH-TRIAL".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(unknown_trial.code(), Code::NotFound);
    let bad_token = c.list_status_changes(page("not-a-token".into())).await.unwrap_err();
    assert_eq!(violated_fields(&bad_token), ["page_token"]);
    server.stop().await;
}

async fn corrections_keep_the_arm_and_the_history(backend: Backend) {
    let (_db, server) = start(backend).await;
    let mut c = client(&server).await;
    register_site(&mut c, "COG-101").await;
    let s = enroll(
        &mut c,
        "COG-101",
        "SCR-1",
        strata("no_prior_irinotecan_temozolomide", "amplified"),
    )
    .await;
    let correction = pb::CorrectSubjectRequest {
        request_id: request_id(),
        subject_id: s.subject_id.clone(),
        etag: s.etag.clone(),
        reason: "MYCN result from the reference laboratory".into(),
        consent: None,
        strata: vec![pb::StratumValue {
            factor_id: "mycn_status".into(),
            value: "not_amplified".into(),
        }],
    };
    let fixed = c
        .correct_subject(correction.clone())
        .await
        .unwrap()
        .into_inner()
        .subject
        .unwrap_or_default();
    assert_eq!(fixed.arm_code, s.arm_code, "a correction never changes the arm");
    assert_eq!(fixed.randomized_strata, s.randomized_strata);
    assert_eq!(
        fixed.strata,
        strata("no_prior_irinotecan_temozolomide", "not_amplified")
    );

    let history = audit_events!(c, pb, "subject", s.subject_id.clone());
    let actions: Vec<_> = history.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["subject.enrolled", "subject.randomized", "subject.corrected"]);
    let last = &history[2];
    assert_eq!(last.reason, "MYCN result from the reference laboratory");
    assert!(
        last.old_value_json.contains("mycn_status=amplified"),
        "{}",
        last.old_value_json
    );
    assert!(last.new_value_json.contains("mycn_status=not_amplified"));
    assert_eq!(last.actor, "local-developer");

    // Repeating the same correction changes nothing and is refused; no reason is refused.
    let again = pb::CorrectSubjectRequest {
        request_id: request_id(),
        etag: fixed.etag.clone(),
        ..correction.clone()
    };
    assert_eq!(
        c.correct_subject(again).await.err().map(|e| reason(&e)).as_deref(),
        Some("CORRECTION_CHANGES_NOTHING")
    );
    let no_reason = pb::CorrectSubjectRequest {
        request_id: request_id(),
        etag: fixed.etag.clone(),
        reason: String::new(),
        ..correction.clone()
    };
    assert_eq!(
        violated_fields(&c.correct_subject(no_reason).await.expect_err("accepted")),
        ["reason"]
    );
    let bad_value = pb::CorrectSubjectRequest {
        request_id: request_id(),
        etag: fixed.etag.clone(),
        strata: vec![pb::StratumValue {
            factor_id: "mycn_status".into(),
            value: "maybe".into(),
        }],
        ..correction
    };
    assert_eq!(
        violated_fields(&c.correct_subject(bad_value).await.expect_err("accepted")),
        ["strata[0].value"]
    );
    server.stop().await;
}
