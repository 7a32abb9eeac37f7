//! A training trial beside a production one on the same service: it says it is training (its
//! id, its subjects' ids, `TrialSummary.training`), and WatchEvents leaves its changes out of a
//! subscription to every trial, delivering them only to one that asks for the training trial.
//! What arrives is compared with the audit trail as ListAuditEvents lists it. SQLite and
//! PostgreSQL.

// Test code, helpers included, unwraps: a failure is a test failure with the value shown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use tonic::codec::Streaming;
use trialops_domain::protocol::ANBL1221_TOML;
use trialops_platform::testing::settings;
use trialops_platform::{audit_events, backend_tests};
use trialops_proto::common::v1::ChangeEvent;
use trialops_proto::enrollment::v1 as pb;

backend_tests!(training_data_never_reaches_a_production_subscriber,);

const TRAINING: &str = "ANBL1221TRAINING";

async fn take(stream: &mut Streaming<pb::WatchEventsResponse>, n: usize) -> Vec<ChangeEvent> {
    let mut out = Vec::new();
    while out.len() < n {
        let next = tokio::time::timeout(Duration::from_secs(20), stream.message())
            .await
            .unwrap_or_else(|_| panic!("only {} of {n} events arrived", out.len()));
        out.push(next.unwrap().unwrap().event.unwrap());
    }
    out
}

async fn enroll_in(c: &mut Client, trial: &str, screening: &str) -> pb::Subject {
    c.screen_subject(pb::ScreenSubjectRequest {
        trial_id: trial.into(),
        ..screen_request("COG-101", screening)
    })
    .await
    .unwrap();
    let mut request = enroll_request(
        "COG-101",
        screening,
        strata("no_prior_irinotecan_temozolomide", "amplified"),
    );
    request.trial_id = trial.into();
    c.enroll_subject(request).await.unwrap().into_inner().subject.unwrap()
}

async fn training_data_never_reaches_a_production_subscriber(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let training = ANBL1221_TOML
        .replacen("id = \"ANBL1221\"", &format!("id = \"{TRAINING}\""), 1)
        .replacen(
            "protocol_version = \"2.0\"",
            "protocol_version = \"2.0\"\ntraining = true",
            1,
        );
    std::fs::write(dir.path().join("training.toml"), training).unwrap();
    let db = TestDatabase::create(backend).await.unwrap();
    let mut s = settings(&db.url);
    s.protocol_dir = Some(dir.path().to_path_buf());
    s.watch_poll_interval_ms = 20;
    let server = start_with(s).await;
    let mut c = client(&server).await;

    let trials = c
        .list_trials(pb::ListTrialsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .trials;
    let flags: Vec<(&str, bool)> = trials.iter().map(|t| (t.trial_id.as_str(), t.training)).collect();
    assert_eq!(flags, [("ANBL1221", false), (TRAINING, true)]);

    register_site(&mut c, "COG-101").await;
    let production = enroll_in(&mut c, "ANBL1221", "SCR-1").await;
    let practice = enroll_in(&mut c, TRAINING, "SCR-T1").await;
    assert_eq!(production.subject_id, "ANBL1221-0001");
    assert_eq!(practice.subject_id, format!("{TRAINING}-0001"));

    // The trail holds both trials' entries; count each from it.
    let trail = audit_events!(c, pb, "", "");
    let of_training = trail.iter().filter(|e| e.trial_id == TRAINING).count();
    assert!(of_training >= 3, "screening, enrollment and allocation: {trail:?}");
    let others = trail.len() - of_training;

    // Every trial: all but the training trial's, then nothing more.
    let mut all = c
        .watch_events(pb::WatchEventsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let received = take(&mut all, others).await;
    assert!(received.iter().all(|e| e.trial_id != TRAINING), "{received:?}");
    let more = tokio::time::timeout(Duration::from_secs(1), all.message()).await;
    assert!(
        more.is_err(),
        "a training change reached the production subscriber: {more:?}"
    );

    // Asking for the training trial: exactly its changes.
    let mut practice_only = c
        .watch_events(pb::WatchEventsRequest {
            trial_id: TRAINING.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let received = take(&mut practice_only, of_training).await;
    assert!(received.iter().all(|e| e.trial_id == TRAINING), "{received:?}");
    drop((all, practice_only));
    server.stop().await;
}
