//! The audit trail as a transparency log, through `trialops audit`: checkpoints saved outside the
//! database prove, against the running service, that its log still holds them unchanged. Each
//! way someone with write access to the database could rewrite history is tried on a fresh
//! enrollment service, after a checkpoint was saved, and `trialops audit verify` must name it:
//! an edited entry, a deleted middle entry, a deleted last entry, the last entry deleted and the
//! log rebuilt without it, an entry edited and the whole tree rebuilt, two entries swapped, a
//! subject's arm edited in its table, and a subject inserted without any entry. The proofs the
//! service serves are checked with the RFC 9162 algorithms of `tlog_tiles`.

// Test code, helpers included, unwraps: a failure is a test failure with the value shown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;

use sea_orm::{ConnectionTrait, Database, TransactionTrait};
use trialops_enrollment::testing::{client, enroll_as};
use trialops_platform::backend_tests;
use trialops_platform::records::log::{self, LeafFields};
use trialops_platform::testing::{
    Backend, RunningServer, TestDatabase, jwt_settings, jwt_token, settings, with_bearer,
};
use trialops_proto::enrollment::v1 as pb;

backend_tests!(
    an_untouched_log_verifies_and_its_proofs_check,
    entries_integrated_over_several_passes_make_the_rfc_6962_tree,
    each_kind_of_tampering_is_found_from_a_saved_checkpoint
);

fn admin() -> String {
    jwt_token("auditor-1", "administrator", None)
}

/// A fresh enrollment service with 1 + 3×3 = 10 audit entries (a site, then three screened and
/// enrolled candidates), and checkpoints saved into `dir` at 4 and at 10 entries.
async fn logged(backend: Backend, dir: &Path) -> (TestDatabase, RunningServer) {
    let db = TestDatabase::create(backend).await.unwrap();
    let server = trialops_enrollment::testing::start_with(jwt_settings(settings(&db.url))).await;
    let mut c = client(&server).await;
    let site = pb::RegisterSiteRequest {
        site_code: "COG-101".into(),
        name: "Hospital COG-101".into(),
        request_id: trialops_platform::testing::request_id(),
        ..Default::default()
    };
    c.register_site(with_bearer(site, &admin())).await.unwrap();
    let coordinator = jwt_token("coordinator-1", "site_coordinator", Some("COG-101"));
    for (k, candidate) in ["T1", "T2", "T3"].into_iter().enumerate() {
        enroll_as(&mut c, &coordinator, "COG-101", candidate).await;
        if k == 0 {
            save(&server, dir);
        }
    }
    save(&server, dir);
    (db, server)
}

fn trialops(server: &RunningServer, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_trialops"))
        .args(["--enrollment", &server.url(), "--token", &admin()])
        .args(args)
        .env_remove("TRIALOPS_TOKEN")
        .output()
        .unwrap()
}

fn save(server: &RunningServer, dir: &Path) {
    let out = trialops(
        server,
        &[
            "audit",
            "checkpoint",
            "--service",
            "enrollment",
            "--save",
            dir.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// `audit verify`'s success and its output.
fn verify(server: &RunningServer, dir: &Path) -> (bool, String) {
    let out = trialops(
        server,
        &[
            "audit",
            "verify",
            "--service",
            "enrollment",
            "--checkpoints",
            dir.to_str().unwrap(),
        ],
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

async fn sql(db: &TestDatabase, statements: &[&str]) {
    let conn = Database::connect(&db.url).await.unwrap();
    let tx = conn.begin().await.unwrap();
    for statement in statements {
        tx.execute_unprepared(statement)
            .await
            .unwrap_or_else(|e| panic!("{statement}: {e}"));
    }
    tx.commit().await.unwrap();
    conn.close().await.unwrap();
}

const COLUMNS: &str = "occurred_at, actor, actor_role, actor_site, actor_via, action, entity_type, entity_id, \
                       old_value, new_value, reason, request_id, trace_id, trial_id, site_code";

/// Someone rebuilds the whole log from the entries up to `keep` (as edited before), the way the
/// service would have built it: the tree, the head and the checkpoints recomputed or removed.
async fn rebuild(db: &TestDatabase, keep: i64, before: &[&str], drop_checkpoints: bool) {
    let copy = format!(
        "INSERT INTO audit_pending ({COLUMNS}) SELECT {COLUMNS} FROM audit_events \
         WHERE sequence <= {keep} ORDER BY sequence"
    );
    let empty = log::hex_of(&tlog_empty());
    let reset = format!("UPDATE audit_log_head SET tree_size = 0, root_hash = '{empty}'");
    let mut statements: Vec<&str> = before.to_vec();
    statements.extend([
        copy.as_str(),
        "DELETE FROM audit_events",
        "DELETE FROM audit_tree_hashes",
        reset.as_str(),
    ]);
    if drop_checkpoints {
        statements.push("DELETE FROM audit_checkpoints");
    }
    sql(db, &statements).await;
}

fn tlog_empty() -> log::Hash {
    log::root_of(&[])
}

/// RFC 6962 MTH by its definition (section 2.1), over leaf hashes.
fn mth(leaves: &[log::Hash]) -> log::Hash {
    match leaves.len() {
        0 => tlog_empty(),
        1 => leaves[0],
        n => {
            // The largest power of two smaller than n.
            let mut k = 1;
            while k * 2 < n {
                k *= 2;
            }
            tlog_tiles::node_hash(mth(&leaves[..k]), mth(&leaves[k..]))
        }
    }
}

/// On SQLite a pass integrates a few dozen entries so that writers are not held up behind it;
/// four times the ten entries pending at once take several passes there (one on PostgreSQL),
/// and the log they make is the one tree over all forty, in the order they were committed.
async fn entries_integrated_over_several_passes_make_the_rfc_6962_tree(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (db, server) = logged(backend, dir.path()).await;
    server.stop().await;
    let copy = format!("INSERT INTO audit_pending ({COLUMNS}) SELECT {COLUMNS} FROM audit_events ORDER BY sequence");
    let empty = log::hex_of(&tlog_empty());
    let reset = format!("UPDATE audit_log_head SET tree_size = 0, root_hash = '{empty}'");
    let mut statements = vec![copy.as_str(); 4];
    statements.extend([
        "DELETE FROM audit_events",
        "DELETE FROM audit_tree_hashes",
        reset.as_str(),
    ]);
    sql(&db, &statements).await;

    let conn = Database::connect(&db.url).await.unwrap();
    assert_eq!(log::integrate(&conn).await.unwrap(), 40);
    assert_eq!(log::integrate(&conn).await.unwrap(), 0, "nothing is left pending");
    let rows = conn
        .query_all_raw(sea_orm::Statement::from_string(
            conn.get_database_backend(),
            "SELECT sequence, action, entity_id, leaf_hash FROM audit_events ORDER BY sequence",
        ))
        .await
        .unwrap();
    assert_eq!(rows.len(), 40);
    let mut leaves = Vec::new();
    for (k, row) in rows.iter().enumerate() {
        let sequence: i64 = row.try_get("", "sequence").unwrap();
        assert_eq!(sequence, k as i64 + 1, "positions run without a gap");
        let leaf: String = row.try_get("", "leaf_hash").unwrap();
        leaves.push(log::Hash(hex::decode(leaf).unwrap().try_into().unwrap()));
    }
    // The pending copies went in as four runs of the ten entries, and came out in that order.
    let order: Vec<(String, String)> = rows
        .iter()
        .map(|r| (r.try_get("", "action").unwrap(), r.try_get("", "entity_id").unwrap()))
        .collect();
    assert_eq!(order[..10], order[10..20]);
    assert_eq!(order[..10], order[30..]);
    let head = conn
        .query_one_raw(sea_orm::Statement::from_string(
            conn.get_database_backend(),
            "SELECT tree_size, root_hash FROM audit_log_head",
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(head.try_get::<i64>("", "tree_size").unwrap(), 40);
    assert_eq!(
        head.try_get::<String>("", "root_hash").unwrap(),
        log::hex_of(&mth(&leaves))
    );
    conn.close().await.unwrap();
}

async fn an_untouched_log_verifies_and_its_proofs_check(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (_db, server) = logged(backend, dir.path()).await;
    let (ok, text) = verify(&server, dir.path());
    assert!(ok, "{text}");
    assert!(
        text.contains("intact: 10 entries, 2 saved checkpoints consistent"),
        "{text}"
    );

    // The service's proofs, checked with the RFC 9162 algorithms against the saved checkpoint.
    let vkey = std::fs::read_to_string(dir.path().join("enrollment.vkey")).unwrap();
    let note = std::fs::read_to_string(dir.path().join("enrollment-10.checkpoint")).unwrap();
    let checkpoint = log::verify_note(&note, &vkey).unwrap();
    let old = log::verify_note(
        &std::fs::read_to_string(dir.path().join("enrollment-4.checkpoint")).unwrap(),
        &vkey,
    )
    .unwrap();
    let mut c = client(&server).await;
    for sequence in 1..=10 {
        let proof = c
            .get_inclusion_proof(with_bearer(
                pb::GetInclusionProofRequest {
                    sequence,
                    tree_size: 10,
                },
                &admin(),
            ))
            .await
            .unwrap()
            .into_inner();
        let entry = proof.entry.unwrap();
        let leaf = LeafFields::of_wire(&entry).unwrap().leaf_hash();
        assert_eq!(log::hex_of(&leaf), entry.leaf_hash);
        let path: Vec<log::Hash> = proof
            .proof
            .iter()
            .map(|h| log::Hash(h.as_slice().try_into().unwrap()))
            .collect();
        tlog_tiles::check_record(&path, 10, checkpoint.root, (sequence - 1) as u64, leaf)
            .unwrap_or_else(|e| panic!("entry {sequence}: {e}"));
        let wrong = tlog_tiles::check_record(&path, 10, checkpoint.root, (sequence % 10) as u64, leaf);
        assert!(wrong.is_err(), "a proof for entry {sequence} proves no other position");
    }
    let consistency = c
        .get_consistency_proof(with_bearer(
            pb::GetConsistencyProofRequest {
                old_size: 4,
                new_size: 10,
            },
            &admin(),
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(log::consistent(old, checkpoint, &consistency.proof));
    let swapped = log::Verified {
        size: 4,
        root: checkpoint.root,
    };
    assert!(!log::consistent(swapped, checkpoint, &consistency.proof));
    // Sizes beyond the latest checkpoint are refused, naming the field.
    let status = c
        .get_consistency_proof(with_bearer(
            pb::GetConsistencyProofRequest {
                old_size: 4,
                new_size: 11,
            },
            &admin(),
        ))
        .await
        .unwrap_err();
    assert_eq!(trialops_platform::testing::violated_fields(&status), ["new_size"]);
    // A site coordinator may not read the log's proofs.
    let status = c
        .get_checkpoint(with_bearer(
            pb::GetCheckpointRequest {},
            &jwt_token("coordinator-1", "site_coordinator", Some("COG-101")),
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::PermissionDenied);
}

async fn each_kind_of_tampering_is_found_from_a_saved_checkpoint(backend: Backend) {
    struct Case {
        name: &'static str,
        found: &'static str,
    }
    let cases = [
        Case {
            name: "edit",
            found: "entry 5 is not what",
        },
        Case {
            name: "delete middle",
            found: "entry 5 is missing",
        },
        Case {
            name: "delete last",
            found: "entry 10 is missing",
        },
        Case {
            name: "delete last and rebuild",
            found: "the log was cut short",
        },
        Case {
            name: "edit and rebuild",
            found: "the log was rewritten: its first 10 entries are not those",
        },
        Case {
            name: "edit and rebuild, the checkpoints kept",
            found: "AUDIT_LOG_INCONSISTENT",
        },
        Case {
            name: "swap",
            found: "entry 5 is not what",
        },
        Case {
            name: "arm edited in the subjects table",
            found: "record differs from its trail: subject/ANBL1221-0002: arm_code",
        },
        Case {
            name: "subject inserted without an entry",
            found: "record differs from its trail: subject/ANBL1221-0009: no audit entry",
        },
    ];
    for case in cases {
        let dir = tempfile::tempdir().unwrap();
        let (db, server) = logged(backend, dir.path()).await;
        assert!(verify(&server, dir.path()).0, "{}: intact before", case.name);
        let edit = "UPDATE audit_events SET reason = 'rewritten' WHERE sequence = 5";
        match case.name {
            "edit" => sql(&db, &[edit]).await,
            "delete middle" => sql(&db, &["DELETE FROM audit_events WHERE sequence = 5"]).await,
            "delete last" => sql(&db, &["DELETE FROM audit_events WHERE sequence = 10"]).await,
            "delete last and rebuild" => rebuild(&db, 9, &[], true).await,
            "edit and rebuild" => rebuild(&db, 10, &[edit], true).await,
            "edit and rebuild, the checkpoints kept" => rebuild(&db, 10, &[edit], false).await,
            "swap" => {
                // Entries 5 and 6 trade places: every column but the position moves.
                let mut statements = vec!["UPDATE audit_events SET sequence = -5 WHERE sequence = 5".to_owned()];
                statements.push("UPDATE audit_events SET sequence = 5 WHERE sequence = 6".to_owned());
                statements.push("UPDATE audit_events SET sequence = 6 WHERE sequence = -5".to_owned());
                let statements: Vec<&str> = statements.iter().map(String::as_str).collect();
                sql(&db, &statements).await;
            }
            "arm edited in the subjects table" => {
                let other = "UPDATE subjects SET arm_code = CASE WHEN arm_code = 'A' THEN 'B' ELSE 'A' END \
                             WHERE subject_id = 'ANBL1221-0002'";
                sql(&db, &[other]).await;
            }
            "subject inserted without an entry" => {
                let columns = "trial_id, site_code, arm_code, strata, randomized_stratum, consent_signed_on, \
                               consent_form_version, status, status_reason, status_effective_on, enrolled_at, \
                               updated_at, version, randomized_in_error, randomized_in_error_reason";
                let insert = format!(
                    "INSERT INTO subjects (subject_id, subject_number, screening_id, {columns}) \
                     SELECT 'ANBL1221-0009', 9, 'T9', {columns} FROM subjects WHERE subject_id = 'ANBL1221-0001'"
                );
                sql(&db, &[&insert]).await;
            }
            other => panic!("{other}"),
        }
        let (ok, text) = verify(&server, dir.path());
        assert!(!ok, "{}: not found\n{text}", case.name);
        assert!(text.contains(case.found), "{}: {text}", case.name);
        if case.name == "edit and rebuild" {
            assert!(
                text.contains("positions 5..=10"),
                "the saved checkpoint of 4 still holds: {text}"
            );
        }
        server.stop().await;
    }
}
