//! Enrollment at its edges, on SQLite and PostgreSQL: the one-day allowance for site-local dates
//! ahead of UTC, a restart with another randomization secret, and page tokens that were forged or
//! issued by another list.

// Test code, helpers included, unwraps: a failure is a test failure with the value shown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use tonic::Code;
use trialops_platform::backend_tests;
use trialops_platform::testing::{Backend, TestDatabase, TestTime, request_id, settings, violated_fields};
use trialops_proto::enrollment::v1 as pb;

backend_tests!(
    a_site_date_may_be_one_day_ahead_and_no_more,
    a_restart_with_another_secret_is_refused,
    page_tokens_work_only_for_the_list_that_issued_them,
);

async fn a_site_date_may_be_one_day_ahead_and_no_more(backend: Backend) {
    let (_db, server) = start(backend).await;
    let mut c = client(&server).await;
    register_site(&mut c, "COG-101").await;
    let time = TestTime::away_from_midnight().await;
    let screen = |id: &str, days: i64| pb::ScreenSubjectRequest {
        request_id: request_id(),
        trial_id: "ANBL1221".into(),
        site_code: "COG-101".into(),
        screening_id: id.into(),
        assessed_on: time.date(days),
        values: eligible_values(),
    };
    c.screen_subject(screen("SCR-1", 1))
        .await
        .expect("tomorrow (UTC) is today east of UTC");
    let err = c
        .screen_subject(screen("SCR-2", 2))
        .await
        .expect_err("a date two days ahead was accepted");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&err), ["assessed_on"]);
    server.stop().await;
}

async fn a_restart_with_another_secret_is_refused(backend: Backend) {
    let db = TestDatabase::create(backend)
        .await
        .unwrap_or_else(|| panic!("{backend:?}"));
    let server = start_on(&db.url).await;
    let mut c = client(&server).await;
    register_site(&mut c, "COG-101").await;
    let first = enroll(
        &mut c,
        "COG-101",
        "SCR-1",
        strata("no_prior_irinotecan_temozolomide", "amplified"),
    )
    .await;
    server.stop().await;

    let other = trialops_enrollment::Options {
        randomization_secret: Some(b"another secret, also thirty-two bytes or more".to_vec()),
        ..Default::default()
    };
    let refused = trialops_enrollment::build(settings(&db.url), Default::default(), other)
        .await
        .err();
    let message = refused.map(|e| format!("{e:#}")).unwrap_or_default();
    assert!(
        message.contains("the randomization secret is not the one trial ANBL1221 started with"),
        "started with another secret: {message:?}"
    );

    // The original secret starts, and the sequence goes on where it stopped.
    let server = start_on(&db.url).await;
    let mut c = client(&server).await;
    let second = enroll(
        &mut c,
        "COG-101",
        "SCR-2",
        strata("no_prior_irinotecan_temozolomide", "amplified"),
    )
    .await;
    assert_eq!(
        (first.subject_id.as_str(), second.subject_id.as_str()),
        ("ANBL1221-0001", "ANBL1221-0002")
    );
    server.stop().await;
}

async fn page_tokens_work_only_for_the_list_that_issued_them(backend: Backend) {
    let (_db, server) = start(backend).await;
    let mut c = client(&server).await;
    for site in ["COG-101", "COG-202"] {
        register_site(&mut c, site).await;
    }
    for n in 1..=2 {
        enroll(
            &mut c,
            "COG-101",
            &format!("SCR-{n}"),
            strata("no_prior_irinotecan_temozolomide", "amplified"),
        )
        .await;
    }
    let subjects = |token: &str, site: &str| pb::ListSubjectsRequest {
        trial_id: "ANBL1221".into(),
        site_code: site.into(),
        page_size: 1,
        page_token: token.into(),
        ..Default::default()
    };
    let first = c.list_subjects(subjects("", "COG-101")).await.unwrap().into_inner();
    assert_eq!(first.subjects.len(), 1);
    let token = first.next_page_token;
    assert!(!token.is_empty());

    // Reused with other filters, on another list, or made up: refused, naming page_token.
    let hex = |text: &str| text.bytes().map(|b| format!("{b:02x}")).collect::<String>();
    let forged = [
        "not a token".to_owned(),
        hex("ANBL1221-0001"),
        hex("000000000000\nANBL1221-0001"),
    ];
    let mut refusals = vec![
        c.list_subjects(subjects(&token, "COG-202")).await.err(),
        c.list_sites(pb::ListSitesRequest {
            page_size: 1,
            page_token: token.clone(),
        })
        .await
        .err(),
    ];
    for f in &forged {
        refusals.push(c.list_subjects(subjects(f, "COG-101")).await.err());
    }
    assert_eq!(refusals.len(), 5);
    for (n, err) in refusals.into_iter().enumerate() {
        let err = err.unwrap_or_else(|| panic!("token {n} was accepted"));
        assert_eq!(err.code(), Code::InvalidArgument, "token {n}");
        assert_eq!(violated_fields(&err), ["page_token"], "token {n}");
    }

    // The real token, with the filters it was issued for, goes on to the second subject.
    let second = c.list_subjects(subjects(&token, "COG-101")).await.unwrap().into_inner();
    assert_eq!(
        second
            .subjects
            .iter()
            .map(|s| s.subject_id.as_str())
            .collect::<Vec<_>>(),
        ["ANBL1221-0002"]
    );
    assert!(second.next_page_token.is_empty());
    server.stop().await;
}
