//! The SDTM and ODM exports of the trial `trialops demo` replays, as `demo --export-sdtm` writes
//! it and as `trialops export sdtm` / `export odm` read them again from `trialops up`: the datasets hold the replay's
//! subjects, administrations and adverse events, and the best overall responses give ANBL1221's
//! published 9 of 17 (dinutuximab) and 1 of 18; roles that may not export and unknown trials get
//! clear errors. With `TRIALOPS_SDTM_SAMPLES=DIR` the export is also written to DIR/demo for CI's
//! third-party validators (`scripts/check-sdtm.py --anbl1221-demo`).

// Test code, helpers included, unwraps: a failure is a test failure with the value shown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

/// A dataset's rows as objects keyed by variable name.
fn rows(dir: &Path, file: &str) -> Vec<BTreeMap<String, Value>> {
    let data: Value = serde_json::from_slice(&std::fs::read(dir.join(file)).unwrap()).unwrap();
    let columns: Vec<String> = data["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect();
    data["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            columns
                .iter()
                .cloned()
                .zip(r.as_array().unwrap().iter().cloned())
                .collect()
        })
        .collect()
}

fn token(dir: &Path, role: &str, extra: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_trialops"))
        .args(["token", "--role", role, "--data-dir"])
        .arg(dir)
        .args(extra)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn trialops(ports: [u16; 3], token: &str, args: &[&str]) -> Output {
    let urls = ports.map(|p| format!("http://127.0.0.1:{p}"));
    Command::new(env!("CARGO_BIN_EXE_trialops"))
        .args(["--enrollment", &urls[0], "--dosing", &urls[1], "--outcomes", &urls[2]])
        .args(["--token", token])
        .args(args)
        .env_remove("TRIALOPS_TOKEN")
        .output()
        .unwrap()
}

fn export(ports: [u16; 3], token: &str, trial: &str, out: &Path) -> Output {
    let out = out.to_string_lossy();
    trialops(ports, token, &["export", "sdtm", "--trial", trial, "--out", &out])
}

#[test]
fn the_demo_trial_exported_as_sdtm() {
    let data = tempfile::tempdir().unwrap();
    let exported = tempfile::tempdir().unwrap();
    let odm_dir = tempfile::tempdir().unwrap();
    let demo = Command::new(env!("CARGO_BIN_EXE_trialops"))
        .args(["demo", "--json", "--data-dir"])
        .arg(data.path())
        .arg("--export-sdtm")
        .arg(exported.path())
        .arg("--export-odm")
        .arg(odm_dir.path().join("anbl1221-odm.xml"))
        .output()
        .unwrap();
    assert!(demo.status.success(), "{}", String::from_utf8_lossy(&demo.stderr));
    let report: Value = serde_json::from_slice(&demo.stdout).unwrap();
    let run = &report["run"];
    let count = |key: &str| run[key].as_u64().unwrap() as usize;

    // One DM record per enrolled child; EX: every administration the replay recorded (all of
    // them given); AE: every adverse event.
    let dm = rows(exported.path(), "dm.json");
    assert_eq!(dm.len(), count("enrolled"));
    assert_eq!(
        rows(exported.path(), "ex.json").len(),
        count("administrations_recorded")
    );
    assert_eq!(rows(exported.path(), "ae.json").len(), count("adverse_events_recorded"));
    // Children withdrawn before treatment have no actual arm.
    let untreated = dm.iter().filter(|r| r["ACTARMCD"].is_null()).count();
    assert_eq!(untreated, count("withdrawn_before_treatment"), "{run}");

    // Best overall response by arm: ANBL1221's published 9/17 on dinutuximab (B), 1/18 (A).
    let arm: BTreeMap<String, String> = dm
        .iter()
        .map(|r| {
            (
                r["USUBJID"].as_str().unwrap().to_owned(),
                r["ARMCD"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let mut table: BTreeMap<String, (u32, u32)> = BTreeMap::new();
    for r in rows(exported.path(), "rs.json") {
        if r["RSTESTCD"] == "BESTRESP" {
            let cell = table.entry(arm[r["USUBJID"].as_str().unwrap()].clone()).or_default();
            cell.1 += 1;
            if matches!(r["RSSTRESC"].as_str(), Some("CR" | "PR")) {
                cell.0 += 1;
            }
        }
    }
    assert_eq!(table["B"], (9, 17));
    assert_eq!(table["A"], (1, 18));

    if let Ok(samples) = std::env::var("TRIALOPS_SDTM_SAMPLES") {
        let dir = Path::new(&samples).join("demo");
        std::fs::create_dir_all(&dir).unwrap();
        for entry in std::fs::read_dir(exported.path()).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
        }
        let expect = serde_json::json!({
            "subjects": count("enrolled"),
            "administrations_given": count("administrations_recorded"),
            "administrations_recorded": count("administrations_recorded"),
            "adverse_events": count("adverse_events_recorded"),
        });
        std::fs::write(dir.with_extension("expect.json"), expect.to_string()).unwrap();
    }

    // `trialops export sdtm` from the running services writes the same datasets.
    let mut command = common::up(data.path());
    command.stderr(std::process::Stdio::null());
    let common::Started { mut child, ports, .. } = common::start(command);
    let again = tempfile::tempdir().unwrap();
    let statistician = token(data.path(), "statistician", &[]);
    let out = export(ports, &statistician, "ANBL1221", again.path());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(
        listing.contains("dm.json") && listing.contains("define.xml"),
        "{listing}"
    );
    let names = |dir: &Path| {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    assert_eq!(names(again.path()), names(exported.path()));
    for file in ["dm.json", "ds.json", "ex.json", "ec.json", "ae.json", "rs.json"] {
        assert_eq!(rows(again.path(), file), rows(exported.path(), file), "{file}");
    }

    // A site coordinator may not export; an unknown trial is named. Nothing is written.
    let refused = tempfile::tempdir().unwrap();
    let coordinator = token(data.path(), "site_coordinator", &["--site", "COG-101"]);
    for (who, trial, expected) in [
        (&coordinator, "ANBL1221", "PermissionDenied"),
        (&statistician, "NO-SUCH-TRIAL", "NotFound"),
    ] {
        let out = export(ports, who, trial, refused.path());
        assert_eq!(out.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expected) && stderr.contains(trial), "{stderr}");
        assert!(names(refused.path()).is_empty());
    }

    // ODM with the audit trail: administrators only; to standard output or a file.
    let administrator = token(data.path(), "administrator", &[]);
    let odm = trialops(ports, &administrator, &["export", "odm", "--trial", "ANBL1221"]);
    assert!(odm.status.success(), "{}", String::from_utf8_lossy(&odm.stderr));
    let odm = String::from_utf8(odm.stdout).unwrap();
    assert!(odm.starts_with("<?xml"));
    assert_eq!(odm.matches("<SubjectData ").count(), count("enrolled"));
    let from_demo = std::fs::read_to_string(odm_dir.path().join("anbl1221-odm.xml")).unwrap();
    assert_eq!(
        from_demo.matches("<AuditRecord>").count(),
        odm.matches("<AuditRecord>").count()
    );
    // Every administration the replay recorded is there, as an Update after its planned Insert.
    assert_eq!(
        odm.matches("(administration.recorded)</SourceID>").count(),
        count("administrations_recorded")
    );
    let file = refused.path().join("anbl1221-odm.xml");
    let written = trialops(
        ports,
        &administrator,
        &["export", "odm", "--trial", "ANBL1221", "--out", &file.to_string_lossy()],
    );
    assert!(written.status.success(), "{}", String::from_utf8_lossy(&written.stderr));
    assert_eq!(
        std::fs::read_to_string(&file).unwrap().matches("<SubjectData ").count(),
        count("enrolled")
    );
    let denied = trialops(ports, &statistician, &["export", "odm", "--trial", "ANBL1221"]);
    assert_eq!(denied.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&denied.stderr).contains("PermissionDenied"));
    assert!(denied.stdout.is_empty(), "nothing is written on a refusal");
    if let Ok(samples) = std::env::var("TRIALOPS_SDTM_SAMPLES") {
        std::fs::write(Path::new(&samples).join("demo-odm.xml"), &odm).unwrap();
    }
    let _ = Command::new("kill").args(["-INT", &child.id().to_string()]).status();
    let _ = child.wait();
}
