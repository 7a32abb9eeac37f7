//! WatchEvents over gRPC with verified tokens: a subscriber whose connection is dropped
//! mid-stream resumes from its cursor and gets every later change once, with no gap; changes
//! written by several callers at once all arrive, once, in commit order; each caller receives
//! only what its role and site may read; a subscriber that stops reading is told to resume
//! instead of being buffered without bound. What arrives is compared with the audit trail as
//! ListAuditEvents lists it, never with the stream's own figures.

// Test code, helpers included, unwraps: a failure is a test failure with the value shown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;
use tonic::Code;
use tonic::codec::Streaming;
use trialops_platform::backend_tests;
use trialops_platform::testing::{jwt_settings, jwt_token, settings, with_bearer};
use trialops_proto::common::v1::{AuditEvent, ChangeEvent};
use trialops_proto::enrollment::v1 as pb;

backend_tests!(
    a_dropped_subscriber_resumes_from_its_cursor_without_gap_or_repeat,
    concurrent_writers_arrive_once_in_commit_order,
    callers_receive_only_what_their_role_and_site_read,
    a_subscriber_that_stops_reading_is_told_to_resume,
    a_server_stops_with_a_subscriber_connected
);

fn admin() -> String {
    jwt_token("admin-1", "administrator", None)
}

fn coordinator(site: &str) -> String {
    jwt_token(&format!("coord-{site}"), "site_coordinator", Some(site))
}

async fn start_secured(
    backend: Backend,
    tune: impl FnOnce(&mut trialops_platform::Settings),
) -> (TestDatabase, RunningServer) {
    let db = TestDatabase::create(backend).await.unwrap();
    let mut s = jwt_settings(settings(&db.url));
    s.watch_poll_interval_ms = 20;
    tune(&mut s);
    let server = start_with(s).await;
    (db, server)
}

async fn register(c: &mut Client, site: &str) {
    let request = pb::RegisterSiteRequest {
        site_code: site.into(),
        name: format!("Site {site}"),
        request_id: trialops_platform::testing::request_id(),
        ..Default::default()
    };
    c.register_site(with_bearer(request, &admin())).await.unwrap();
}

async fn watch(
    c: &mut Client,
    token: &str,
    request: pb::WatchEventsRequest,
) -> Result<Streaming<pb::WatchEventsResponse>, tonic::Status> {
    c.watch_events(with_bearer(request, token))
        .await
        .map(tonic::Response::into_inner)
}

/// The next `n` events, waiting at most 20 s for them.
async fn take(stream: &mut Streaming<pb::WatchEventsResponse>, n: usize) -> Vec<ChangeEvent> {
    let mut out = Vec::new();
    while out.len() < n {
        let next = tokio::time::timeout(Duration::from_secs(20), stream.message())
            .await
            .unwrap_or_else(|_| panic!("only {} of {n} events arrived", out.len()));
        match next.unwrap() {
            Some(message) => out.push(message.event.unwrap()),
            None => panic!("the stream ended after {} of {n} events", out.len()),
        }
    }
    out
}

/// Whether another event arrives within `wait`.
async fn quiet_for(stream: &mut Streaming<pb::WatchEventsResponse>, wait: Duration) -> bool {
    tokio::time::timeout(wait, stream.message()).await.is_err()
}

/// The whole trail, as ListAuditEvents lists it to an administrator.
async fn trail(c: &mut Client) -> Vec<AuditEvent> {
    trialops_platform::audit_events!(c, pb, "", "", bearer: &admin())
}

fn sequences(events: &[ChangeEvent]) -> Vec<i64> {
    events.iter().map(|e| e.entry.as_ref().unwrap().sequence).collect()
}

async fn a_dropped_subscriber_resumes_from_its_cursor_without_gap_or_repeat(backend: Backend) {
    let (_db, server) = start_secured(backend, |_| {}).await;
    let mut c = client(&server).await;
    for site in ["COG-101", "COG-202"] {
        register(&mut c, site).await;
    }
    enroll_as(&mut c, &coordinator("COG-101"), "COG-101", "W1").await;

    // A subscriber on its own connection reads three events, then the connection goes away.
    let cursor = {
        let mut own = connect(&server.url()).await;
        let mut stream = watch(&mut own, &admin(), pb::WatchEventsRequest::default())
            .await
            .unwrap();
        let first = take(&mut stream, 3).await;
        assert_eq!(sequences(&first), [1, 2, 3]);
        assert_eq!(first[0].event_id, "enrollment/1");
        assert_eq!(first[0].entry.as_ref().unwrap().action, "site.registered");
        first[2].cursor.clone()
    };
    // Changes while nobody listens.
    enroll_as(&mut c, &coordinator("COG-202"), "COG-202", "W2").await;
    enroll_as(&mut c, &coordinator("COG-101"), "COG-101", "W3").await;

    let all = trail(&mut c).await;
    let mut own = connect(&server.url()).await;
    let request = pb::WatchEventsRequest {
        cursor: cursor.clone(),
        ..Default::default()
    };
    let mut stream = watch(&mut own, &admin(), request).await.unwrap();
    let resumed = take(&mut stream, all.len() - 3).await;
    let expected: Vec<AuditEvent> = all[3..].to_vec();
    let got: Vec<AuditEvent> = resumed.iter().map(|e| e.entry.clone().unwrap()).collect();
    assert_eq!(got, expected, "every entry after the cursor, once, in order");
    assert!(quiet_for(&mut stream, Duration::from_millis(300)).await, "nothing more");
    // Each event carries its record's trial and site: W1, W2, W3 were enrolled at these sites.
    let enrolled: Vec<(&str, &str)> = resumed
        .iter()
        .filter(|e| e.entry.as_ref().unwrap().action == "subject.enrolled")
        .map(|e| (e.trial_id.as_str(), e.site_code.as_str()))
        .collect();
    assert_eq!(
        enrolled,
        [
            ("ANBL1221", "COG-101"),
            ("ANBL1221", "COG-202"),
            ("ANBL1221", "COG-101")
        ]
    );
    // A later change reaches the open stream.
    enroll_as(&mut c, &coordinator("COG-202"), "COG-202", "W4").await;
    let live = take(&mut stream, 3).await;
    assert_eq!(
        sequences(&live),
        [all.len() as i64 + 1, all.len() as i64 + 2, all.len() as i64 + 3]
    );

    // A cursor is the issuing service's and nothing else.
    let bad = pb::WatchEventsRequest {
        cursor: "not-a-cursor".into(),
        ..Default::default()
    };
    let err = watch(&mut own, &admin(), bad).await.unwrap_err();
    assert_refused(&err, Code::InvalidArgument, "INVALID_ARGUMENT");
    assert_eq!(violated_fields(&err), ["cursor"]);
    let both = pb::WatchEventsRequest {
        cursor,
        from_now: true,
        ..Default::default()
    };
    let err = watch(&mut own, &admin(), both).await.unwrap_err();
    assert_eq!(violated_fields(&err), ["from_now"]);
}

async fn concurrent_writers_arrive_once_in_commit_order(backend: Backend) {
    let (_db, server) = start_secured(backend, |_| {}).await;
    let mut c = client(&server).await;
    for site in ["COG-101", "COG-202", "COG-303"] {
        register(&mut c, site).await;
    }
    let mut own = connect(&server.url()).await;
    let request = pb::WatchEventsRequest {
        from_now: true,
        ..Default::default()
    };
    let mut stream = watch(&mut own, &admin(), request).await.unwrap();
    // Six callers at three sites, three candidates each, at once: 18 enrollments of three entries.
    let writers: Vec<_> = (0..6)
        .map(|w| {
            let url = server.url();
            tokio::spawn(async move {
                let site = ["COG-101", "COG-202", "COG-303"][w % 3];
                let mut c = connect(&url).await;
                for k in 0..3 {
                    enroll_as(&mut c, &coordinator(site), site, &format!("C{w}-{k}")).await;
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    let all = trail(&mut c).await;
    assert_eq!(all.len(), 3 + 18 * 3);
    let got = take(&mut stream, 18 * 3).await;
    assert!(quiet_for(&mut stream, Duration::from_millis(300)).await, "nothing more");
    let entries: Vec<AuditEvent> = got.iter().map(|e| e.entry.clone().unwrap()).collect();
    assert_eq!(entries, all[3..].to_vec(), "each change once, in commit order");
    let ids: BTreeSet<&str> = got.iter().map(|e| e.event_id.as_str()).collect();
    assert_eq!(ids.len(), got.len(), "event ids are unique");
}

async fn callers_receive_only_what_their_role_and_site_read(backend: Backend) {
    let (_db, server) = start_secured(backend, |_| {}).await;
    let mut c = client(&server).await;
    for site in ["COG-101", "COG-202"] {
        register(&mut c, site).await;
    }
    enroll_as(&mut c, &coordinator("COG-101"), "COG-101", "V1").await;
    enroll_as(&mut c, &coordinator("COG-202"), "COG-202", "V2").await;
    // A refused call is in the trail (entity type "rpc"): a coordinator may not register sites.
    let refused = pb::RegisterSiteRequest {
        site_code: "COG-909".into(),
        name: "Site".into(),
        request_id: trialops_platform::testing::request_id(),
        ..Default::default()
    };
    let err = c
        .register_site(with_bearer(refused, &coordinator("COG-101")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    // The refusal is written by a background writer: wait until the trail has it.
    let mut all = trail(&mut c).await;
    for _ in 0..100 {
        if all.iter().any(|e| e.entity_type == "rpc") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        all = trail(&mut c).await;
    }
    let refusals = all.iter().filter(|e| e.entity_type == "rpc").count();
    assert_eq!(refusals, 1);

    // The administrator receives everything, refusals included.
    let mut stream = watch(&mut c, &admin(), pb::WatchEventsRequest::default())
        .await
        .unwrap();
    assert_eq!(take(&mut stream, all.len()).await.len(), all.len());
    assert!(quiet_for(&mut stream, Duration::from_millis(200)).await);

    // A coordinator of COG-101 receives COG-101's records only: its screening and two subject
    // entries, not the other site's, not the site registrations of others, not the refusal.
    let token = coordinator("COG-101");
    let mut stream = watch(&mut c, &token, pb::WatchEventsRequest::default()).await.unwrap();
    let own = take(&mut stream, 4).await;
    assert!(
        quiet_for(&mut stream, Duration::from_millis(300)).await,
        "nothing of other sites"
    );
    let actions: Vec<&str> = own.iter().map(|e| e.entry.as_ref().unwrap().action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "site.registered",
            "screening.recorded",
            "subject.enrolled",
            "subject.randomized"
        ]
    );
    assert!(own.iter().all(|e| e.site_code == "COG-101"));
    // Asking for another site is refused, naming the field.
    let other = pb::WatchEventsRequest {
        site_code: "COG-202".into(),
        ..Default::default()
    };
    let err = watch(&mut c, &token, other).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert!(err.message().contains("site_code"), "{}", err.message());
    // Refused calls are not a coordinator's to read.
    let rpc = pb::WatchEventsRequest {
        entity_types: vec!["rpc".into()],
        ..Default::default()
    };
    assert_eq!(
        watch(&mut c, &token, rpc).await.unwrap_err().code(),
        Code::PermissionDenied
    );

    // A central reviewer, blinded, receives the subjects without their arms.
    let reviewer = jwt_token("reviewer-1", "central_reviewer", None);
    let subjects = pb::WatchEventsRequest {
        entity_types: vec!["subject".into()],
        trial_id: "ANBL1221".into(),
        ..Default::default()
    };
    let mut stream = watch(&mut c, &reviewer, subjects).await.unwrap();
    let seen = take(&mut stream, 4).await;
    assert!(quiet_for(&mut stream, Duration::from_millis(200)).await);
    for event in &seen {
        let entry = event.entry.as_ref().unwrap();
        let stored = all.iter().find(|e| e.sequence == entry.sequence).unwrap();
        assert!(stored.new_value_json.contains("\"arm_code\""), "the trail has the arm");
        assert!(!entry.new_value_json.contains("arm_code"), "{}", entry.new_value_json);
        let value: serde_json::Value = serde_json::from_str(&entry.new_value_json).unwrap();
        assert!(value.get("subject_id").is_some(), "the rest stays");
    }
    // A trial filter that matches nothing delivers nothing.
    let none = pb::WatchEventsRequest {
        trial_id: "OTHER".into(),
        ..Default::default()
    };
    let mut stream = watch(&mut c, &admin(), none).await.unwrap();
    assert!(quiet_for(&mut stream, Duration::from_millis(300)).await);
}

async fn a_subscriber_that_stops_reading_is_told_to_resume(backend: Backend) {
    let (_db, server) = start_secured(backend, |s| {
        s.watch_slow_subscriber_ms = 200;
        s.watch_buffer_events = 8;
    })
    .await;
    let mut c = client(&server).await;
    register(&mut c, "COG-101").await;
    for k in 0..100 {
        enroll_as(&mut c, &coordinator("COG-101"), "COG-101", &format!("L{k}")).await;
    }
    let all = trail(&mut c).await;
    assert_eq!(all.len(), 1 + 100 * 3);
    // 301 events of about 1 KB fill a connection whose flow-control windows are HTTP/2's
    // smallest default (64 KiB) and the server's buffer of 8 long before they are all read.
    let channel = tonic::transport::Endpoint::from_shared(server.url())
        .unwrap()
        .initial_stream_window_size(65_535)
        .initial_connection_window_size(65_535)
        .connect()
        .await
        .unwrap();
    let mut own = pb::enrollment_service_client::EnrollmentServiceClient::new(channel);
    let mut stream = watch(&mut own, &admin(), pb::WatchEventsRequest::default())
        .await
        .unwrap();
    let first = take(&mut stream, 1).await;
    // Stop reading well past the server's patience.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut received = first;
    let status = loop {
        match tokio::time::timeout(Duration::from_secs(20), stream.message())
            .await
            .unwrap()
        {
            Ok(Some(message)) => received.push(message.event.unwrap()),
            Ok(None) => panic!("the stream ended without telling the subscriber to resume"),
            Err(status) => break status,
        }
    };
    assert_refused(&status, Code::Aborted, "SUBSCRIBER_TOO_SLOW");
    assert!(received.len() < all.len(), "the slow subscriber was not waited for");
    // The events before the end came in order, and resume_cursor is the last one's cursor.
    assert_eq!(sequences(&received), (1..=received.len() as i64).collect::<Vec<_>>());
    let resume = metadata(&status, "resume_cursor");
    assert_eq!(resume, received.last().unwrap().cursor);
    // Resuming there delivers exactly the rest.
    let request = pb::WatchEventsRequest {
        cursor: resume,
        ..Default::default()
    };
    let mut stream = watch(&mut own, &admin(), request).await.unwrap();
    let rest = take(&mut stream, all.len() - received.len()).await;
    let entries: Vec<AuditEvent> = received.iter().chain(&rest).map(|e| e.entry.clone().unwrap()).collect();
    assert_eq!(entries, all);
}

/// A server asked to stop while a subscriber is connected stops within its grace period: the
/// open stream neither holds the audit writer nor the database open forever.
async fn a_server_stops_with_a_subscriber_connected(backend: Backend) {
    let (_db, server) = start_secured(backend, |s| s.shutdown_grace_seconds = 1).await;
    let mut c = client(&server).await;
    register(&mut c, "COG-101").await;
    let request = pb::WatchEventsRequest {
        from_now: true,
        ..Default::default()
    };
    let mut stream = watch(&mut c, &admin(), request).await.unwrap();
    assert!(
        quiet_for(&mut stream, Duration::from_millis(200)).await,
        "nothing new yet"
    );
    let stopped = tokio::time::timeout(Duration::from_secs(15), server.stop()).await;
    assert!(stopped.is_ok(), "the server did not stop with a subscriber connected");
    drop(stream);
}
