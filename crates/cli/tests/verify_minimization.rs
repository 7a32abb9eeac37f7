//! `trialops verify-allocation` on a trial allocated by minimization, offline: an export of 120
//! allocations computed by the independent Python implementation
//! (tools/reference/randomization_v1.py, fixture `minimization_vectors[0]`) is proven from the
//! revealed key and the protocol file; a steered child and a withheld allocation are named and
//! refused with exit 1.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

use trialops_domain::randomization::{Method, TrialKey, commitment};

/// ANBL1221 allocated by minimization with MYCN status weighted 2 (the fixture's parameters).
fn definition() -> String {
    trialops_domain::protocol::ANBL1221_TOML.replace(
        "block_multipliers = [1, 2]",
        "method = \"minimization\"\n\n[randomization.minimization]\nimbalance = \"range\"\n\
         preferred_arm_probability = \"0.8\"\nweights = { mycn_status = \"2\" }",
    )
}

fn verify(dir: &Path, export: &serde_json::Value, key: &str, commitment: &str) -> std::process::Output {
    let file = dir.join("allocations.json");
    std::fs::write(&file, export.to_string()).unwrap();
    Command::new(env!("CARGO_BIN_EXE_trialops"))
        .arg("verify-allocation")
        .arg("--allocations")
        .arg(&file)
        .arg("--protocol")
        .arg(dir.join("protocol.toml"))
        .args(["--key", key, "--commitment", commitment])
        .output()
        .unwrap()
}

#[test]
fn a_minimized_trial_is_proven_offline_and_a_steered_child_is_named() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("protocol.toml"), definition()).unwrap();
    let fixture: serde_json::Value =
        serde_json::from_str(include_str!("../../domain/tests/fixtures/randomization_v1.json")).unwrap();
    let vector = &fixture["minimization_vectors"][0];
    let method = Method::from_protocol(&trialops_domain::protocol::load(&definition()).unwrap()).unwrap();
    assert_eq!(Some(method.parameters().as_str()), vector["parameters"].as_str());
    let key = TrialKey::derive(&(0u8..32).collect::<Vec<_>>(), "ANBL1221");
    let committed = commitment("ANBL1221", &method, &key);
    let allocations: Vec<serde_json::Value> = vector["allocations"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, a)| {
            serde_json::json!({
                "subject_id": format!("ANBL1221-{:04}", i + 1),
                "stratum": a["stratum"],
                "position": i,
                "arm_code": a["arm"],
            })
        })
        .collect();
    let export = |allocations: Vec<serde_json::Value>| {
        serde_json::json!({
            "trial_id": "ANBL1221",
            "allocation_parameters": method.parameters(),
            "allocation_commitment": committed,
            "allocations": allocations,
        })
    };

    let proven = verify(dir.path(), &export(allocations.clone()), &key.reveal(), &committed);
    let said = String::from_utf8_lossy(&proven.stdout);
    assert!(
        proven.status.success() && said.contains("proven: all 120 allocations of ANBL1221 in 6 strata"),
        "{said}{}",
        String::from_utf8_lossy(&proven.stderr)
    );

    // Child 31 moved to the other arm: every later arm is judged on the record as it stands,
    // and the first that does not follow is child 31's.
    let mut steered = allocations.clone();
    let arm = steered[30]["arm_code"].as_str().unwrap().to_owned();
    steered[30]["arm_code"] = (if arm == "A" { "B" } else { "A" }).into();
    let caught = verify(dir.path(), &export(steered), &key.reveal(), &committed);
    let said = String::from_utf8_lossy(&caught.stderr);
    assert!(
        !caught.status.success() && said.contains("NOT PROVEN: ANBL1221-0031"),
        "{said}"
    );

    // An allocation withheld from the export: its position is missing.
    let mut withheld = allocations;
    withheld.remove(50);
    let caught = verify(dir.path(), &export(withheld), &key.reveal(), &committed);
    let said = String::from_utf8_lossy(&caught.stderr);
    assert!(
        !caught.status.success() && said.contains("position 50 is missing"),
        "{said}"
    );
}
