//! Enrollment's audit trail over gRPC: it verifies, and detects tampering.

// Test code, helpers included, unwraps: a failure is a test failure with the value shown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use sea_orm::{ConnectionTrait, Database, TransactionTrait};
use trialops_platform::testing::Backend;
use trialops_platform::{audit_events, backend_tests};
use trialops_proto::enrollment::v1 as pb;

backend_tests!(audit_trail_verifies_and_detects_tampering,);

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

    let events = audit_events!(c, pb);
    assert_eq!(events.iter().map(|e| e.sequence).collect::<Vec<_>>(), [1, 2, 3, 4]);
    // Each entry is a leaf of the log: its leaf hash is recomputed from what the list shows, and
    // entries written since the log began carry no chain hashes.
    for e in &events {
        let fields = trialops_platform::records::log::LeafFields::of_wire(e).unwrap();
        assert_eq!(
            trialops_platform::records::log::hex_of(&fields.leaf_hash()),
            e.leaf_hash
        );
        assert_eq!((e.previous_hash.as_str(), e.hash.as_str()), ("", ""));
    }
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

    conn.execute_unprepared("UPDATE audit_events SET reason = '' WHERE sequence = 2")
        .await
        .unwrap();
    assert!(verify(&mut c).await.intact);

    // Moving an entry to another site (which would show it to that site's WatchEvents
    // subscribers) breaks its hash as well.
    conn.execute_unprepared("UPDATE audit_events SET site_code = 'COG-202' WHERE sequence = 3")
        .await
        .unwrap();
    let moved = verify(&mut c).await;
    assert_eq!((moved.intact, moved.first_broken_sequence), (false, 3), "{moved:?}");
    conn.execute_unprepared("UPDATE audit_events SET site_code = 'COG-101' WHERE sequence = 3")
        .await
        .unwrap();
    assert!(verify(&mut c).await.intact);

    // Deleting the last entry is detected too (the log's head remembers it).
    conn.execute_unprepared("DELETE FROM audit_events WHERE sequence = 4")
        .await
        .unwrap();
    let truncated = verify(&mut c).await;
    assert!(!truncated.intact);
    assert_eq!(truncated.first_broken_sequence, 4);
    conn.close().await.unwrap();
    server.stop().await;
}

/// No row every write must lock: while another write's transaction is held open (it has appended
/// its audit entry through the platform, as every write does, and changed a site), two enrollments commit; the held
/// write's entry, committed last, takes the next position after theirs. PostgreSQL only: SQLite
/// allows one writer at a time by design.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrollments_commit_while_another_write_is_held_open() {
    let Some(db) = trialops_platform::testing::postgres_only().await else {
        return;
    };
    let server = start_on(&db.url).await;
    let mut c = client(&server).await;
    for site in ["COG-101", "COG-202"] {
        register_site(&mut c, site).await;
    }
    let before = audit_count(&mut c).await;

    let conn = Database::connect(&db.url).await.unwrap();
    let held = conn.begin().await.unwrap();
    // The held write appends its entry the way every write does.
    let ctx = trialops_platform::records::audit::AuditContext::refused(None, "");
    let change = trialops_platform::records::audit::Change::created(
        "site.renamed",
        "site",
        "COG-202",
        serde_json::json!({ "name": "Renamed" }),
    );
    trialops_platform::records::audit::append(&held, &ctx, change)
        .await
        .unwrap();
    held.execute_unprepared("UPDATE sites SET name = 'Renamed' WHERE site_code = 'COG-202'")
        .await
        .unwrap();

    let strata = || strata("no_prior_irinotecan_temozolomide", "amplified");
    for candidate in ["HELD-1", "HELD-2"] {
        let enrolled = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            enroll(&mut c, "COG-101", candidate, strata()),
        )
        .await;
        assert!(enrolled.is_ok(), "{candidate} waited for the open transaction");
    }
    let events = audit_events!(c, pb);
    assert_eq!(events.len(), before + 6, "both enrollments are in the log");
    assert!(events.iter().all(|e| e.action != "site.renamed"));

    held.commit().await.unwrap();
    let events = audit_events!(c, pb);
    let last = events.last().unwrap();
    assert_eq!(
        (last.action.as_str(), last.sequence),
        ("site.renamed", before as i64 + 7)
    );
    conn.close().await.unwrap();
    server.stop().await;
}
