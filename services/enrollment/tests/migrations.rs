//! A migration that alters a table runs on a database that already holds clinical data, on
//! SQLite and PostgreSQL: the enrolled subjects and the audit trail survive it intact, and the
//! service writes again afterwards; the hash-chained trail of an earlier release moves into the
//! transparency log.

// Test code, helpers included, unwraps: a failure is a test failure with the value shown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use sea_orm::{ConnectionTrait, Database};
use trialops_platform::backend_tests;
use trialops_proto::enrollment::v1 as pb;

backend_tests!(
    adding_the_audit_column_keeps_existing_records,
    a_later_releases_migrations_do_not_stop_this_release,
    the_hash_chained_trail_moves_into_the_transparency_log
);

const ACTOR_VIA: &str = "m20261127_000001_platform_audit_actor_via";

async fn verified(c: &mut Client) -> trialops_proto::common::v1::AuditVerification {
    c.verify_audit_trail(pb::VerifyAuditTrailRequest {})
        .await
        .unwrap()
        .into_inner()
        .verification
        .unwrap_or_default()
}

async fn adding_the_audit_column_keeps_existing_records(backend: Backend) {
    let db = TestDatabase::create(backend)
        .await
        .unwrap_or_else(|| panic!("{backend:?}"));
    let server = start_on(&db.url).await;
    let mut c = client(&server).await;
    register_site(&mut c, "COG-101").await;
    let strata = || strata("no_prior_irinotecan_temozolomide", "amplified");
    let first = enroll(&mut c, "COG-101", "SCR-1", strata()).await;
    let before = verified(&mut c).await;
    assert!(before.intact && before.events_checked == 4, "{before:?}");
    server.stop().await;

    // Back to the schema before the migration: the column gone, the migration not recorded.
    let conn = Database::connect(&db.url).await.unwrap();
    for sql in [
        "ALTER TABLE audit_events DROP COLUMN actor_via".to_owned(),
        format!("DELETE FROM seaql_migrations WHERE version = '{ACTOR_VIA}'"),
    ] {
        conn.execute_unprepared(&sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    conn.close().await.unwrap();

    // The service migrates at start over the existing rows.
    let server = start_on(&db.url).await;
    let mut c = client(&server).await;
    let after = verified(&mut c).await;
    assert_eq!(
        (after.intact, after.events_checked),
        (true, before.events_checked),
        "{after:?}"
    );
    let subject = c
        .get_subject(pb::GetSubjectRequest {
            subject_id: first.subject_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .subject
        .unwrap_or_default();
    assert_eq!(
        (subject.arm_code.as_str(), subject.site_code.as_str()),
        (first.arm_code.as_str(), "COG-101")
    );
    let second = enroll(&mut c, "COG-101", "SCR-2", strata()).await;
    assert_eq!(second.subject_id, "ANBL1221-0002");
    let grown = verified(&mut c).await;
    assert!(
        grown.intact && grown.events_checked > before.events_checked,
        "{grown:?}"
    );
    let conn = Database::connect(&db.url).await.unwrap();
    let applied = conn
        .query_one_raw(sea_orm::Statement::from_string(
            conn.get_database_backend(),
            format!("SELECT COUNT(*) AS n FROM seaql_migrations WHERE version = '{ACTOR_VIA}'"),
        ))
        .await
        .unwrap()
        .and_then(|row| row.try_get::<i64>("", "n").ok());
    assert_eq!(applied, Some(1), "the migration is recorded again");
    conn.close().await.unwrap();
    server.stop().await;
}

/// An upgrade's migration Job ran a newer release's migrations (here: one that adds a table and
/// a nullable column, as the expand-only rule allows). This release's replicas must still start,
/// whatever `migrate_on_start` says, and serve; its `migrate` is a no-op. This is what an old pod
/// that restarts, scales up or comes back in a rollback meets.
async fn a_later_releases_migrations_do_not_stop_this_release(backend: Backend) {
    use trialops_platform::config::settings::MigrateOnStart;
    let db = TestDatabase::create(backend)
        .await
        .unwrap_or_else(|| panic!("{backend:?}"));
    let server = start_on(&db.url).await;
    let mut c = client(&server).await;
    register_site(&mut c, "COG-101").await;
    let strata = || strata("no_prior_irinotecan_temozolomide", "amplified");
    enroll(&mut c, "COG-101", "SCR-1", strata()).await;
    server.stop().await;

    let conn = Database::connect(&db.url).await.unwrap();
    for sql in [
        "CREATE TABLE later_release_notes (id INTEGER PRIMARY KEY, note TEXT NOT NULL)",
        "ALTER TABLE subjects ADD COLUMN later_release_flag TEXT",
        "INSERT INTO seaql_migrations (version, applied_at) VALUES ('m29991231_000001_a_later_release', 0)",
    ] {
        conn.execute_unprepared(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    let state = trialops_platform::records::database::schema_state::<trialops_enrollment::Migrator>(&conn)
        .await
        .unwrap();
    assert!(state.pending.is_empty(), "{state:?}");
    assert_eq!(state.newer, ["m29991231_000001_a_later_release"]);
    let applied = trialops_platform::records::database::migrate::<trialops_enrollment::Migrator>(&conn)
        .await
        .expect("the older release's migrate refused");
    assert_eq!(applied, 0);
    conn.close().await.unwrap();

    for (n, mode) in [MigrateOnStart::Never, MigrateOnStart::Always, MigrateOnStart::Auto]
        .into_iter()
        .enumerate()
    {
        let mut s = trialops_platform::testing::settings(&db.url);
        s.migrate_on_start = mode;
        let server = start_with(s).await;
        let mut c = client(&server).await;
        let subject = enroll(&mut c, "COG-101", &format!("SCR-{}", n + 2), strata()).await;
        assert_eq!(subject.subject_id, format!("ANBL1221-{:04}", n + 2), "{mode:?}");
        let trail = verified(&mut c).await;
        assert!(trail.intact, "{mode:?}: {trail:?}");
        server.stop().await;
    }
}

/// The previous release's hash-chained entries, inserted as it wrote them (its chain formula,
/// written out again here, not the service's code): `[sequence, occurred_at, actor, actor_role,
/// actor_site, action, entity_type, entity_id, old_value, new_value, reason, request_id, trace_id,
/// previous_hash]`, hashed as compact JSON with SHA-256.
async fn chained_entries(conn: &sea_orm::DatabaseConnection, n: i64, break_at: Option<i64>) {
    use sha2::Digest;
    let mut previous = "0".repeat(64);
    for sequence in 1..=n {
        let at = format!("2026-11-2{sequence}T08:00:00.000000Z");
        let new = format!("{{\"site_code\":\"COG-10{sequence}\"}}");
        let fields = serde_json::json!([
            sequence,
            at,
            "admin-1",
            "administrator",
            "",
            "site.registered",
            "site",
            format!("COG-10{sequence}"),
            "",
            new,
            "",
            format!("00000000-0000-4000-8000-00000000000{sequence}"),
            "",
            previous,
        ]);
        let hash = hex::encode(sha2::Sha256::digest(fields.to_string().as_bytes()));
        let stored_reason = if break_at == Some(sequence) { "edited" } else { "" };
        let sql = format!(
            "INSERT INTO audit_events (sequence, occurred_at, actor, actor_role, actor_site, action, entity_type, \
             entity_id, old_value, new_value, reason, request_id, trace_id, previous_hash, hash) VALUES ({sequence}, \
             '{at}', 'admin-1', 'administrator', '', 'site.registered', 'site', 'COG-10{sequence}', '', '{new}', \
             '{stored_reason}', '00000000-0000-4000-8000-00000000000{sequence}', '', '{previous}', '{hash}')"
        );
        conn.execute_unprepared(&sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        previous = hash;
    }
    conn.execute_unprepared(&format!(
        "UPDATE audit_chain_head SET last_sequence = {n}, last_hash = '{previous}'"
    ))
    .await
    .unwrap();
}

/// The migration to the transparency log carries a hash-chained trail over: every entry keeps
/// its sequence and chain hashes, the log verifies, and new entries continue after them. A
/// broken chain stops the migration instead of being carried into a log that would vouch for it.
async fn the_hash_chained_trail_moves_into_the_transparency_log(backend: Backend) {
    use sea_orm_migration::MigratorTrait;
    for broken in [false, true] {
        let db = TestDatabase::create(backend)
            .await
            .unwrap_or_else(|| panic!("{backend:?}"));
        let conn = Database::connect(&db.url).await.unwrap();
        // The platform's migrations before the log: the chained trail and its head.
        trialops_enrollment::Migrator::up(&conn, Some(4)).await.unwrap();
        chained_entries(&conn, 3, broken.then_some(2)).await;
        let migrated = trialops_enrollment::Migrator::up(&conn, None).await;
        if broken {
            let error = migrated.unwrap_err().to_string();
            assert!(error.contains("entry 2 does not verify"), "{error}");
            continue;
        }
        migrated.unwrap();
        // The sites those entries registered (their table is the service's, created after).
        for n in 1..=3 {
            conn.execute_unprepared(&format!(
                "INSERT INTO sites (site_code, name, registered_at) \
                 VALUES ('COG-10{n}', 'Hospital', '2026-11-2{n}T08:00:00Z')"
            ))
            .await
            .unwrap();
        }
        conn.close().await.unwrap();

        let server = start_on(&db.url).await;
        let mut c = client(&server).await;
        let carried = verified(&mut c).await;
        assert_eq!((carried.intact, carried.events_checked), (true, 3), "{carried:?}");
        let events = trialops_platform::audit_events!(c, pb);
        assert_eq!(events.iter().map(|e| e.sequence).collect::<Vec<_>>(), [1, 2, 3]);
        assert!(events.iter().all(|e| e.hash.len() == 64 && e.leaf_hash.len() == 64));
        assert_eq!(events[0].previous_hash, "0".repeat(64));
        register_site(&mut c, "COG-201").await;
        let grown = verified(&mut c).await;
        assert_eq!((grown.intact, grown.events_checked), (true, 4), "{grown:?}");
        let events = trialops_platform::audit_events!(c, pb);
        assert_eq!((events[3].sequence, events[3].hash.as_str()), (4, ""));
        // An edited carried entry is found by its leaf.
        let conn = Database::connect(&db.url).await.unwrap();
        conn.execute_unprepared("UPDATE audit_events SET reason = 'edited' WHERE sequence = 2")
            .await
            .unwrap();
        let edited = verified(&mut c).await;
        assert_eq!((edited.intact, edited.first_broken_sequence), (false, 2), "{edited:?}");
        conn.close().await.unwrap();
        server.stop().await;
    }
}

/// PostgreSQL keeps deleted rows until a vacuum, and the audit queue deletes every row it
/// integrates: the migrated queue is vacuumed after a thousand dead rows, whatever its size.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_queue_is_vacuumed_after_a_thousand_dead_rows_on_postgres() {
    let Some(db) = trialops_platform::testing::postgres_only().await else {
        return;
    };
    let server = start_on(&db.url).await;
    server.stop().await;
    let conn = Database::connect(&db.url).await.unwrap();
    let options = conn
        .query_one_raw(sea_orm::Statement::from_string(
            conn.get_database_backend(),
            "SELECT array_to_string(reloptions, ',') AS options FROM pg_class \
             WHERE relname = 'audit_pending' AND relnamespace = to_regnamespace(current_schema())::oid",
        ))
        .await
        .unwrap()
        .and_then(|row| row.try_get::<String>("", "options").ok())
        .unwrap_or_default();
    conn.close().await.unwrap();
    for option in [
        "autovacuum_vacuum_scale_factor=0",
        "autovacuum_vacuum_threshold=1000",
        "autovacuum_vacuum_insert_scale_factor=0",
        "autovacuum_vacuum_insert_threshold=1000",
    ] {
        assert!(options.split(',').any(|o| o == option), "{option} in {options:?}");
    }
}
