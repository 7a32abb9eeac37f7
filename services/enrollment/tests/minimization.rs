//! Minimization over gRPC, on a trial whose protocol selects it (ANBL1221's definition as trial
//! MINI1, Pocock–Simon over both factors, MYCN status weighted 2, range, preferred arm 0.8). Two
//! servers on one database and many clients enrolling at once, as permuted blocks are tested:
//! subject numbers unique and gap-free, the trial's positions 0 … n − 1 each once, and every arm
//! the one minimization gives after every earlier allocation — checked with the revealed key by
//! trialops' verifier and by the independent Python implementation — so no two enrollments were
//! judged on the same counts. Runs on SQLite and PostgreSQL.

// Test code, helpers included, unwraps: a failure is a test failure with the value shown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::*;
use trialops_domain::randomization::{self, Method, TrialKey};
use trialops_platform::backend_tests;
use trialops_platform::testing::{Backend, settings};
use trialops_proto::enrollment::v1 as pb;

backend_tests!(two_servers_minimize_concurrently);

const TRIAL: &str = "MINI1";
const CLIENTS: usize = 8;
const PER_CLIENT: usize = 5;

/// ANBL1221's definition as MINI1, allocated by minimization.
fn definition() -> String {
    trialops_domain::protocol::ANBL1221_TOML
        .replace("id = \"ANBL1221\"", &format!("id = \"{TRIAL}\""))
        .replace(
            "block_multipliers = [1, 2]",
            "method = \"minimization\"\n\n[randomization.minimization]\nimbalance = \"range\"\n\
             preferred_arm_probability = \"0.8\"\nweights = { mycn_status = \"2\" }",
        )
}

async fn two_servers_minimize_concurrently(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("mini1.toml"), definition()).unwrap();
    let db = TestDatabase::create(backend).await.unwrap();
    let mut s = settings(&db.url);
    s.protocol_dir = Some(dir.path().to_owned());
    let first = start_with(s.clone()).await;
    let second = start_with(s).await;
    let mut admin = client(&first).await;
    register_site(&mut admin, "COG-101").await;
    let published = admin
        .get_trial(pb::GetTrialRequest { trial_id: TRIAL.into() })
        .await
        .unwrap()
        .into_inner()
        .trial
        .unwrap();
    assert!(
        published.allocation_parameters.starts_with("minimization/v1;"),
        "{}",
        published.allocation_parameters
    );

    // Half the clients on each server; both values of prior therapy, all three of MYCN status.
    let subjects = enroll_concurrently((&first, &second), TRIAL, (CLIENTS, PER_CLIENT), |c, i| {
        let prior = if (c + i) % 2 == 0 {
            "prior_irinotecan_temozolomide"
        } else {
            "no_prior_irinotecan_temozolomide"
        };
        (prior, ["amplified", "not_amplified", "unknown"][(c * 7 + i) % 3])
    })
    .await;
    let total = CLIENTS * PER_CLIENT;
    let mut ids: Vec<_> = subjects.iter().map(|s| s.subject_id.clone()).collect();
    ids.sort();
    let expected: Vec<_> = (1..=total).map(|n| format!("{TRIAL}-{n:04}")).collect();
    assert_eq!(ids, expected);

    // Accrual closed, the key revealed, the allocations exported.
    admin
        .close_accrual(pb::CloseAccrualRequest {
            request_id: request_id(),
            trial_id: TRIAL.into(),
            site_code: String::new(),
            reason: "enrollment complete".into(),
        })
        .await
        .unwrap();
    let revealed = admin
        .reveal_allocation_key(pb::RevealAllocationKeyRequest {
            request_id: request_id(),
            trial_id: TRIAL.into(),
            reason: "allocation audit".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let exported = admin
        .list_allocations(pb::ListAllocationsRequest {
            trial_id: TRIAL.into(),
            page_size: 100,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .allocations;
    assert_eq!(exported.len(), total);
    // Positions run over the trial: subject number n took position n − 1.
    for a in &exported {
        let number: i64 = a.subject_id.trim_start_matches("MINI1-").parse().unwrap();
        assert_eq!(a.position, number - 1, "{a:?}");
    }
    let recorded = recorded(&exported);
    let definition = trialops_domain::protocol::load(&definition()).unwrap();
    let method = Method::from_protocol(&definition).unwrap();
    let key = TrialKey::from_revealed(&revealed.allocation_key).unwrap();
    assert_eq!(key.reveal(), TrialKey::derive(SECRET, TRIAL).reveal());
    let strata_seen = randomization::verify(TRIAL, &method, &key, &published.allocation_commitment, &recorded);
    assert_eq!(strata_seen, Ok(6), "every arm follows from the ones before it");

    // The independent implementation proves the same export.
    let export = serde_json::json!({
        "trial_id": TRIAL,
        "allocation_parameters": published.allocation_parameters,
        "allocation_commitment": published.allocation_commitment,
        "allocations": exported.iter().map(|a| serde_json::json!({
            "subject_id": a.subject_id,
            "stratum": a.stratum,
            "position": a.position,
            "arm_code": a.arm_code,
        })).collect::<Vec<_>>(),
    });
    let file = dir.path().join("allocations.json");
    std::fs::write(&file, export.to_string()).unwrap();
    let reference = std::process::Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools/reference/randomization_v1.py"))
        .arg("--verify-export")
        .arg(&file)
        .args([&revealed.allocation_key, &published.allocation_commitment])
        .output()
        .unwrap();
    assert!(
        reference.status.success(),
        "{}{}",
        String::from_utf8_lossy(&reference.stdout),
        String::from_utf8_lossy(&reference.stderr)
    );

    // Balance where minimization aims it: the margins of each factor value, and the trial. With
    // p = 0.8 a margin drifts like Efron's biased coin, whose chance of reaching 6 apart is a
    // few in ten thousand per step.
    let mut margins: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for a in &exported {
        for level in a.stratum.split('|').chain(["trial"]) {
            let m = margins.entry(level.to_owned()).or_default();
            if a.arm_code == "A" {
                m.0 += 1;
            } else {
                m.1 += 1;
            }
        }
    }
    for (level, (a, b)) in &margins {
        assert!((a - b).abs() <= 5, "{level}: {a} on A, {b} on B");
    }
    first.stop().await;
    second.stop().await;
}
