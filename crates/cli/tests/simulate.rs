//! `trialops simulate-allocation` as a statistician runs it before go-live: a protocol file with
//! fixed blocks of 2 gives the closed-form guess rate of 3/4 (Blackwell and Hodges) and never
//! lets a stratum drift more than one apart; bad options are refused naming the option.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

fn trialops(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_trialops"))
        .args(args)
        .output()
        .unwrap()
}

/// `definition` written to a file and simulated with `args`, as JSON.
fn simulated(definition: &str, args: &[&str]) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("protocol.toml");
    std::fs::write(&file, definition).unwrap();
    let mut all = vec!["simulate-allocation", "--json", "--protocol", file.to_str().unwrap()];
    all.extend_from_slice(args);
    let out = trialops(&all);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn a_protocol_file_with_blocks_of_two() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("blocks-of-two.toml");
    let definition =
        trialops_domain::protocol::ANBL1221_TOML.replace("block_multipliers = [1, 2]", "block_multipliers = [1]");
    std::fs::write(&file, definition).unwrap();
    let out = trialops(&[
        "simulate-allocation",
        "--json",
        "--protocol",
        file.to_str().unwrap(),
        "--subjects",
        "1000",
        "--runs",
        "100",
        "--seed",
        "4",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (report["runs"].as_u64(), report["subjects"].as_u64()),
        (Some(100), Some(1000))
    );
    assert_eq!(report["strata"], 6);
    let rate = report["correct_guess_rate"].as_f64().unwrap();
    // 100,000 guesses: a standard error near 0.0014 around 3/4.
    assert!((rate - 0.75).abs() < 0.006, "{rate}");
    assert_eq!(report["stratum_running_imbalance"]["max"], 1.0);

    // The table reads the same figures.
    let text = trialops(&[
        "simulate-allocation",
        "--protocol",
        file.to_str().unwrap(),
        "--runs",
        "50",
    ]);
    let text = String::from_utf8_lossy(&text.stdout).to_string();
    assert!(text.contains("50 runs of 35 subjects over 6 strata"), "{text}");
    assert!(text.contains("guesses the next one right"), "{text}");
}

#[test]
fn bad_options_are_refused() {
    let out = trialops(&["simulate-allocation", "--subjects", "0"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--subjects"));
    let out = trialops(&["simulate-allocation", "--protocol", "/no/such/protocol.toml"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/no/such/protocol.toml"));
}

/// A protocol selecting minimization, with one value per factor: every subject shares every
/// value, so Pocock–Simon with two arms at 1:1 is Efron's biased coin, and an observer guessing
/// the preferred arm is right 1/2 + (2p − 1)/(4p) of the time: 0.6875 at p = 0.8.
#[test]
fn a_protocol_file_with_minimization() {
    let definition = trialops_domain::protocol::ANBL1221_TOML
        .replace(
            "block_multipliers = [1, 2]",
            "method = \"minimization\"\n[randomization.minimization]\nimbalance = \"variance\"\n\
             preferred_arm_probability = \"0.8\"",
        )
        .replace(
            r#"values = ["prior_irinotecan_temozolomide", "no_prior_irinotecan_temozolomide"]"#,
            r#"values = ["any"]"#,
        )
        .replace(
            r#"values = ["amplified", "not_amplified", "unknown"]"#,
            r#"values = ["any"]"#,
        );
    let report = simulated(&definition, &["--subjects", "1000", "--runs", "100"]);
    assert_eq!(
        report["allocation_parameters"],
        "minimization/v1;arms=A:1,B:1;factors=prior_therapy:1,mycn_status:1;imbalance=variance;p=0.8"
    );
    assert_eq!(report["strata"], 1);
    let rate = report["correct_guess_rate"].as_f64().unwrap();
    assert!((rate - 0.6875).abs() < 0.006, "{rate}");
}
