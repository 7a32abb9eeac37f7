//! A flood of calls without valid credentials cannot grow the database, on SQLite and
//! PostgreSQL, in JWT mode: they reach the audit trail as one entry per source and reason with a
//! count, while each refusal of an authenticated caller keeps its own entry.

// Test code, helpers included, unwraps: a failure is a test failure with the value shown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use trialops_platform::backend_tests;
use trialops_platform::testing::{jwt_settings, jwt_token, settings, with_bearer};
use trialops_proto::enrollment::v1 as pb;

backend_tests!(unauthenticated_calls_are_counted_not_written_one_by_one);

async fn unauthenticated_calls_are_counted_not_written_one_by_one(backend: Backend) {
    let db = TestDatabase::create(backend)
        .await
        .unwrap_or_else(|| panic!("{backend:?}"));
    let server = start_with(jwt_settings(settings(&db.url))).await;
    let c = client(&server).await;
    let flood = 3000;
    // In waves of 50 at once: a flood, within what one test connection carries under a loaded
    // CI machine.
    for wave in 0..flood / 50 {
        let mut calls = tokio::task::JoinSet::new();
        for n in wave * 50..(wave + 1) * 50 {
            let mut c = c.clone();
            calls.spawn(async move {
                let request = pb::ListSitesRequest::default();
                // Half without a token, half with one that does not verify: two reasons.
                let answer = if n % 2 == 0 {
                    c.list_sites(request).await
                } else {
                    c.list_sites(with_bearer(request, "not.a.token")).await
                };
                answer.err().map(|e| e.code())
            });
        }
        while let Some(code) = calls.join_next().await {
            assert_eq!(code.unwrap(), Some(tonic::Code::Unauthenticated));
        }
    }
    // Known callers refused: one entry each.
    let pharmacist = jwt_token("pharmacist-3", "pharmacist", Some("COG-101"));
    for _ in 0..3 {
        let mut c = c.clone();
        let refused = c
            .register_site(with_bearer(
                pb::RegisterSiteRequest {
                    request_id: request_id(),
                    site_code: "COG-101".into(),
                    name: "Children's Hospital".into(),
                    ..Default::default()
                },
                &pharmacist,
            ))
            .await
            .err()
            .map(|e| e.code());
        assert_eq!(refused, Some(tonic::Code::PermissionDenied));
    }
    // Stopping writes the current window out; the next start reads the trail.
    server.stop().await;
    let server = start_with(jwt_settings(settings(&db.url))).await;
    let mut c = client(&server).await;
    let admin = jwt_token("admin", "administrator", None);
    let events = trialops_platform::audit_events!(c, pb, "rpc", "", bearer: &admin);
    let aggregated: Vec<_> = events
        .iter()
        .filter(|e| e.action == "calls.refused_unauthenticated")
        .collect();
    let one_by_one = events.iter().filter(|e| e.action == "call.refused").count();
    assert_eq!(aggregated.len(), 2, "one entry per source and reason: {aggregated:?}");
    assert_eq!(one_by_one, 3, "authenticated refusals keep an entry each");
    assert_eq!(events.len(), 5, "the flood left five entries in all");
    let mut counted = 0;
    for e in &aggregated {
        assert_eq!(e.entity_id, "127.0.0.1");
        let value: serde_json::Value = serde_json::from_str(&e.new_value_json).unwrap();
        assert_eq!(
            value["first_method"],
            "/trialops.enrollment.v1.EnrollmentService/ListSites"
        );
        counted += value["count"].as_u64().unwrap_or(0);
    }
    assert_eq!(counted, flood);
    let trail = c
        .verify_audit_trail(with_bearer(pb::VerifyAuditTrailRequest {}, &admin))
        .await
        .unwrap()
        .into_inner()
        .verification
        .unwrap_or_default();
    assert!(trail.intact, "{trail:?}");
    server.stop().await;
}
