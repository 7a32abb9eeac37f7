//! PostgreSQL going away and coming back, through a test-owned proxy that cuts every connection
//! and refuses new ones: calls answer UNAVAILABLE (never INTERNAL) before their deadline, nothing
//! is half written, a retry with the same request_id completes once the database is back, and
//! the pool serves again right after it accepts connections. PostgreSQL only (SQLite is a file).

// Test code, helpers included, unwraps: a failure is a test failure with the value shown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use sea_orm::{ConnectionTrait, Database};
use trialops_platform::testing::{FaultProxy, postgres_address, reason};
use trialops_proto::enrollment::v1 as pb;

async fn count(url: &str, sql: &str) -> i64 {
    let conn = Database::connect(url).await.unwrap();
    let n = conn
        .query_one_raw(sea_orm::Statement::from_string(
            conn.get_database_backend(),
            sql.to_owned(),
        ))
        .await
        .unwrap()
        .and_then(|row| row.try_get::<i64>("", "n").ok())
        .unwrap();
    conn.close().await.unwrap();
    n
}

fn with_deadline<T>(message: T, deadline: Duration) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(deadline);
    request
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_restart_is_unavailable_then_retried_to_completion() {
    let Some(db) = trialops_platform::testing::postgres_only().await else {
        return;
    };
    let proxy = FaultProxy::start(postgres_address(&db.url)).await;
    let mut settings = trialops_platform::testing::settings(&proxy.url(&db.url));
    settings.database_acquire_timeout_ms = 1000;
    let server = start_with(settings).await;
    let mut c = client(&server).await;
    register_site(&mut c, "COG-101").await;
    let strata = || strata("no_prior_irinotecan_temozolomide", "amplified");
    enroll(&mut c, "COG-101", "F-0", strata()).await;
    let subjects = || count(&db.url, "SELECT COUNT(*) AS n FROM subjects");
    // Queued and integrated entries in one statement, so one snapshot: the sequencer moves
    // entries from the queue into the log between two statements.
    let entries = || {
        count(
            &db.url,
            "SELECT (SELECT COUNT(*) FROM audit_pending) + (SELECT COUNT(*) FROM audit_events) AS n",
        )
    };
    let before = (subjects().await, entries().await);

    // The database goes away under four concurrent writers.
    proxy.cut();
    let deadline = Duration::from_secs(5);
    let requests: Vec<pb::EnrollSubjectRequest> = (1..=4)
        .map(|k| enroll_request("COG-101", &format!("F-{k}"), strata()))
        .collect();
    let mut calls = Vec::new();
    for request in requests.clone() {
        let mut c = c.clone();
        calls.push(tokio::spawn(async move {
            let started = Instant::now();
            let status = c.enroll_subject(with_deadline(request, deadline)).await.unwrap_err();
            (status, started.elapsed())
        }));
    }
    for call in calls {
        let (status, took) = call.await.unwrap();
        assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
        assert_eq!(reason(&status), "UNAVAILABLE");
        assert!(took < deadline, "answered within the deadline ({took:?})");
        eprintln!("UNAVAILABLE after {took:?}");
    }
    // Nothing was written.
    assert_eq!((subjects().await, entries().await), before);

    // Back: the same requests complete once, the pool serving again at once.
    proxy.restore();
    let restored = Instant::now();
    let first_success = loop {
        match c
            .screen_subject(with_deadline(screen_request("COG-101", "F-1"), deadline))
            .await
        {
            Ok(_) => break restored.elapsed(),
            Err(status) => {
                assert!(restored.elapsed() < Duration::from_secs(10), "{status:?}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    eprintln!("serving again {first_success:?} after the database came back");
    assert!(first_success < Duration::from_secs(2), "{first_success:?}");
    for (k, request) in requests.into_iter().enumerate() {
        if k > 0 {
            c.screen_subject(screen_request("COG-101", &format!("F-{}", k + 1)))
                .await
                .unwrap();
        }
        let first = c.enroll_subject(request.clone()).await.unwrap().into_inner();
        let again = c.enroll_subject(request).await.unwrap().into_inner();
        assert_eq!(first, again, "the retry with the same request_id answers the same");
    }
    assert_eq!(subjects().await, before.0 + 4);
    server.stop().await;
    drop(proxy);
}
