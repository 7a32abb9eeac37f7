//! The enrollment API end to end over gRPC, on SQLite and (when configured) PostgreSQL.

// Test code, helpers included, unwraps: a failure is a test failure with the value shown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use sea_orm::{ConnectionTrait, Database};
use tonic::Code;
use trialops_domain::protocol;
use trialops_domain::randomization::{BlockScheme, Sequence, TrialKey};
use trialops_platform::backend_tests;
use trialops_platform::testing::Backend;
use trialops_proto::enrollment::v1 as pb;

backend_tests!(
    trials_and_sites,
    screening_reports_every_criterion,
    bad_input_names_every_field,
    enrollment_randomizes_once_per_request_id,
    refusals_write_nothing,
    subjects_filter_and_page,
    status_changes_follow_the_lifecycle_and_etags,
    corrections_keep_the_arm_and_the_history,
    allocation_summary_and_reproducible_sequence,
    audit_trail_verifies_and_detects_tampering,
);

async fn trials_and_sites(backend: Backend) {
    let (_db, server) = start(backend).await;
    let mut c = client(&server).await;
    let trials = c
        .list_trials(pb::ListTrialsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        trials.trials.iter().map(|t| t.trial_id.as_str()).collect::<Vec<_>>(),
        ["ANBL1221"]
    );
    let trial = c
        .get_trial(pb::GetTrialRequest {
            trial_id: "ANBL1221".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .trial
        .unwrap_or_default();
    assert_eq!(trial.arms.len(), 2);
    assert_eq!(trial.eligibility_criteria.len(), 10);
    let anc = trial
        .screening_variables
        .iter()
        .find(|v| v.variable_id == "anc_per_ul")
        .cloned()
        .unwrap_or_default();
    assert_eq!((anc.unit.as_str(), anc.kind), ("/uL", pb::VariableKind::Decimal as i32));
    let err = c
        .get_trial(pb::GetTrialRequest {
            trial_id: "NOPE".into(),
        })
        .await
        .expect_err("found");
    assert_eq!(err.code(), Code::NotFound);

    // Registration is idempotent on the request id; a second registration of the code is refused.
    let req = pb::RegisterSiteRequest {
        request_id: request_id(),
        site_code: "COG-101".into(),
        name: "Children's Hospital".into(),
    };
    let first = c.register_site(req.clone()).await.unwrap().into_inner();
    let replay = c.register_site(req.clone()).await.unwrap().into_inner();
    assert_eq!(first, replay);
    let again = pb::RegisterSiteRequest {
        request_id: request_id(),
        ..req.clone()
    };
    let err = c.register_site(again).await.expect_err("registered twice");
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (Code::AlreadyExists, "SITE_ALREADY_REGISTERED")
    );
    let reused = pb::RegisterSiteRequest {
        site_code: "COG-102".into(),
        ..req
    };
    let err = c.register_site(reused).await.expect_err("request id reused");
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (Code::AlreadyExists, "REQUEST_ID_REUSED")
    );

    for code in ["COG-103", "COG-102", "AB"] {
        register_site(&mut c, code).await;
    }
    let page1 = c
        .list_sites(pb::ListSitesRequest {
            page_size: 2,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let page2 = c
        .list_sites(pb::ListSitesRequest {
            page_size: 2,
            page_token: page1.next_page_token.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let codes: Vec<_> = page1
        .sites
        .iter()
        .chain(&page2.sites)
        .map(|s| s.site_code.as_str())
        .collect();
    assert_eq!(codes, ["AB", "COG-101", "COG-102", "COG-103"]);
    assert!(page2.next_page_token.is_empty());
    server.stop().await;
}

async fn screening_reports_every_criterion(backend: Backend) {
    let (_db, server) = start(backend).await;
    let mut c = client(&server).await;
    register_site(&mut c, "COG-101").await;
    let ok = screen(&mut c, "COG-101", "SCR-1", eligible_values()).await;
    assert!(ok.eligible);
    assert_eq!(ok.attempt, 1);
    assert!(
        ok.criteria
            .iter()
            .all(|r| r.outcome == pb::CriterionOutcome::Met as i32)
    );

    // ANC 600 < 750 and no cardiac function supplied.
    let mut values: Vec<_> = values_with(dec("anc_per_ul", "600"));
    values.retain(|v| v.variable_id != "shortening_fraction_percent");
    let failed = screen(&mut c, "COG-101", "SCR-2", values).await;
    assert!(!failed.eligible);
    let by_id = |id: &str| {
        failed
            .criteria
            .iter()
            .find(|r| r.criterion_id == id)
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(by_id("anc").outcome, pb::CriterionOutcome::NotMet as i32);
    assert_eq!(by_id("anc").detail, "anc_per_ul = 600 /uL; required >= 750 /uL");
    assert_eq!(by_id("cardiac").outcome, pb::CriterionOutcome::MissingData as i32);
    assert_eq!(by_id("platelets").outcome, pb::CriterionOutcome::Met as i32);

    // A re-screening after recovery is a new attempt; the first stays recorded.
    let again = screen(&mut c, "COG-101", "SCR-2", eligible_values()).await;
    assert_eq!((again.attempt, again.eligible), (2, true));

    let unregistered = pb::ScreenSubjectRequest {
        request_id: request_id(),
        trial_id: "ANBL1221".into(),
        site_code: "COG-999".into(),
        screening_id: "SCR-3".into(),
        assessed_on: today(),
        values: eligible_values(),
    };
    let err = c.screen_subject(unregistered).await.expect_err("unregistered site");
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (Code::FailedPrecondition, "SITE_NOT_REGISTERED")
    );
    server.stop().await;
}

async fn bad_input_names_every_field(backend: Backend) {
    let (_db, server) = start(backend).await;
    let mut c = client(&server).await;
    register_site(&mut c, "COG-101").await;
    let before = audit_count(&mut c).await;
    let bad = pb::ScreenSubjectRequest {
        request_id: "not-a-uuid".into(),
        trial_id: "ANBL1221".into(),
        site_code: "cog 101".into(),
        screening_id: "Jane Doe".into(),
        assessed_on: date(2025, 2, 30),
        values: vec![
            dec("anc", "1000"),
            dec("anc_per_ul", "1e3"),
            yes("platelets_per_ul", true),
            dec("alt_u_l", "-4"),
            pb::ScreeningValue {
                variable_id: "histology_confirmed".into(),
                value: None,
            },
        ],
    };
    let err = c.screen_subject(bad).await.expect_err("accepted");
    assert_eq!(
        violated_fields(&err),
        [
            "request_id",
            "site_code",
            "screening_id",
            "assessed_on",
            "values[1].decimal_value",
            "values[4]",
            "values[0].variable_id",
            "values[2].value",
            "values[3].value",
        ]
    );
    let future = pb::ScreenSubjectRequest {
        request_id: request_id(),
        trial_id: "ANBL1221".into(),
        site_code: "COG-101".into(),
        screening_id: "SCR-1".into(),
        assessed_on: date(2999, 1, 1),
        values: vec![dec("alt_u_l", "-4")],
    };
    let err = c.screen_subject(future).await.expect_err("accepted");
    assert_eq!(violated_fields(&err), ["assessed_on", "values[0].value"]);

    let mut enroll = enroll_request(
        "COG-101",
        "SCR-1",
        vec![pb::StratumValue {
            factor_id: "mycn".into(),
            value: "amplified".into(),
        }],
    );
    enroll.consent = Some(pb::Consent {
        signed_on: date(2024, 13, 1),
        form_version: String::new(),
    });
    let err = c.enroll_subject(enroll).await.expect_err("accepted");
    assert_eq!(
        violated_fields(&err),
        [
            "consent.signed_on",
            "consent.form_version",
            "strata[0].factor_id",
            "strata",
            "strata"
        ]
    );
    assert_eq!(
        audit_count(&mut c).await,
        before,
        "a refused request wrote to the audit trail"
    );
    server.stop().await;
}

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
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (Code::AlreadyExists, "REQUEST_ID_REUSED")
    );
    let err = c
        .enroll_subject(pb::EnrollSubjectRequest {
            request_id: request_id(),
            ..req
        })
        .await
        .expect_err("accepted");
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (Code::AlreadyExists, "SUBJECT_ALREADY_ENROLLED")
    );

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
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (Code::FailedPrecondition, "SUBJECT_INELIGIBLE")
    );
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
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (Code::FailedPrecondition, "SUBJECT_NOT_SCREENED")
    );

    let err = c
        .enroll_subject(enroll_request("COG-202", "SCR-OK", s()))
        .await
        .expect_err("enrolled");
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (Code::FailedPrecondition, "SCREENED_AT_ANOTHER_SITE")
    );

    let mut old_form = enroll_request("COG-101", "SCR-OK", s());
    old_form.consent = Some(pb::Consent {
        signed_on: today(),
        form_version: "0.9".into(),
    });
    let err = c.enroll_subject(old_form).await.expect_err("enrolled");
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (Code::FailedPrecondition, "CONSENT_FORM_VERSION_NOT_ACCEPTED")
    );

    // An old screening: 22 days before today exceeds the 21-day window.
    let old = chrono::Utc::now().date_naive() - chrono::Days::new(22);
    use chrono::Datelike;
    c.screen_subject(pb::ScreenSubjectRequest {
        request_id: request_id(),
        trial_id: "ANBL1221".into(),
        site_code: "COG-101".into(),
        screening_id: "SCR-OLD".into(),
        assessed_on: date(old.year(), old.month() as i32, old.day() as i32),
        values: eligible_values(),
    })
    .await
    .unwrap();
    let before_old = audit_count(&mut c).await;
    let err = c
        .enroll_subject(enroll_request("COG-101", "SCR-OLD", s()))
        .await
        .expect_err("enrolled");
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (Code::FailedPrecondition, "SCREENING_EXPIRED")
    );

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
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (Code::FailedPrecondition, "INVALID_STATUS_TRANSITION")
    );
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

    let history = c
        .list_audit_events(pb::ListAuditEventsRequest {
            entity_type: "subject".into(),
            entity_id: s.subject_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .events;
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

async fn audit_trail_verifies_and_detects_tampering(backend: Backend) {
    let (db, server) = start(backend).await;
    let mut c = client(&server).await;
    register_site(&mut c, "COG-101").await;
    enroll(
        &mut c,
        "COG-101",
        "SCR-1",
        strata("no_prior_irinotecan_temozolomide", "amplified"),
    )
    .await;
    let verify = |c: &mut Client| {
        let mut c = c.clone();
        async move {
            c.verify_audit_trail(pb::VerifyAuditTrailRequest {})
                .await
                .unwrap()
                .into_inner()
                .verification
                .unwrap_or_default()
        }
    };
    let ok = verify(&mut c).await;
    assert!(ok.intact, "{ok:?}");
    assert_eq!(ok.events_checked, 4, "site, screening, enrolled, randomized");

    let events = c
        .list_audit_events(pb::ListAuditEventsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .events;
    assert_eq!(events.iter().map(|e| e.sequence).collect::<Vec<_>>(), [1, 2, 3, 4]);
    assert!(events.windows(2).all(|w| w[1].previous_hash == w[0].hash));
    assert!(events.iter().all(|e| !e.request_id.is_empty()));

    // Someone edits entry 2 directly in the database: verification names it.
    let conn = Database::connect(&db.url).await.unwrap();
    conn.execute_unprepared("UPDATE audit_events SET reason = 'edited' WHERE sequence = 2")
        .await
        .unwrap();
    let broken = verify(&mut c).await;
    assert!(!broken.intact);
    assert_eq!(
        (broken.first_broken_sequence, broken.problem.as_str()),
        (2, "hash does not match the entry's content")
    );

    // Deleting the last entry is detected too (the chain head remembers it).
    conn.execute_unprepared("UPDATE audit_events SET reason = '' WHERE sequence = 2")
        .await
        .unwrap();
    assert!(verify(&mut c).await.intact);
    conn.execute_unprepared("DELETE FROM audit_events WHERE sequence = 4")
        .await
        .unwrap();
    let truncated = verify(&mut c).await;
    assert!(!truncated.intact);
    assert_eq!(truncated.first_broken_sequence, 4);
    conn.close().await.unwrap();
    server.stop().await;
}
