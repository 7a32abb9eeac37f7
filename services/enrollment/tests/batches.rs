//! A trial's enrollments that arrive while another of its enrollments is being written are
//! written together, in one transaction: the test holds the lock the enrollments need (the
//! subject-number counter's row on PostgreSQL, the database's write lock on SQLite), sends four
//! enrollments, lets go, and counts the batches in `trialops_write_batch_size`. One test in its
//! own binary: the metric is per process, and the backends run one after the other.

// Test code, helpers included, unwraps: a failure is a test failure with the value shown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use trialops_platform::server::metrics::batches;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrollments_waiting_for_the_lock_commit_together() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let Some(db) = TestDatabase::create(backend).await else {
            eprintln!("{backend:?}: skipped, not configured");
            continue;
        };
        let server = start_on(&db.url).await;
        let mut c = client(&server).await;
        register_site(&mut c, "COG-101").await;
        let mixed = || strata("no_prior_irinotecan_temozolomide", "amplified");
        enroll(&mut c, "COG-101", "SCR-0", mixed()).await;
        for i in 1..=4 {
            screen(&mut c, "COG-101", &format!("SCR-{i}"), eligible_values()).await;
        }

        let held = HeldEnrollments::hold(&db.url, "ANBL1221").await;
        let (batches_before, writes_before) = batches();
        let mut calls = tokio::task::JoinSet::new();
        for i in 1..=4 {
            let mut c = client(&server).await;
            calls.spawn(async move {
                c.enroll_subject(enroll_request("COG-101", &format!("SCR-{i}"), mixed()))
                    .await
            });
        }
        // Every call is queued or waiting on the held lock well before it is let go.
        tokio::time::sleep(Duration::from_millis(500)).await;
        held.release().await;
        for answer in calls.join_all().await {
            answer.unwrap();
        }
        let (batches_after, writes_after) = batches();
        let (batches, writes) = (batches_after - batches_before, writes_after - writes_before);
        eprintln!("{backend:?}: 4 enrollments in {batches} batches");
        assert_eq!(writes, 4, "{backend:?}");
        // The first call's batch waits on the lock; the three behind it share the next one.
        assert!((1..=2).contains(&batches), "{backend:?}: {batches} batches");
        assert_eq!(all_subjects(&mut c).await.len(), 5, "{backend:?}");
        server.stop().await;
    }
}
