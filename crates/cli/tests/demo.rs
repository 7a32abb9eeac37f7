//! `trialops demo` as CI runs it: a fixed seed, the JSON report checked against the published
//! ANBL1221 result and against exact intervals computed independently, and the same seed giving
//! the same report.

// Test code, helpers included, unwraps: a failure is a test failure with the value shown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

fn demo(seed: &str) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_trialops"))
        .args(["demo", "--json", "--seed", seed])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

fn number(v: &serde_json::Value) -> f64 {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not a number: {v}"))
}

#[test]
fn the_replay_reproduces_anbl1221_and_is_repeatable() {
    let report = demo("12");
    let arm = |code: &str| {
        report["responses"]
            .as_array()
            .and_then(|rows| rows.iter().find(|r| r["arm"] == code))
            .cloned()
            .unwrap_or_else(|| panic!("no response row for arm {code}: {report}"))
    };
    // Published (Mody et al., Lancet Oncol 2017): dinutuximab arm 9 of 17, temsirolimus 1 of 18.
    // Exact (Clopper-Pearson) 95% bounds from scipy.stats.beta.ppf, not from trialops:
    // 9/17 -> 0.278118, 0.770167; 1/18 -> 0.001406, 0.272944.
    for (code, responders, evaluable, lower, upper) in [("B", 9, 17, 0.278, 0.770), ("A", 1, 18, 0.001, 0.273)] {
        let row = arm(code);
        assert_eq!(row["responders"], responders, "arm {code}");
        assert_eq!(row["evaluable"], evaluable, "arm {code}");
        assert_eq!(
            format!("{:.3}", number(&row["ci_lower"])),
            format!("{lower:.3}"),
            "arm {code}"
        );
        assert_eq!(
            format!("{:.3}", number(&row["ci_upper"])),
            format!("{upper:.3}"),
            "arm {code}"
        );
    }
    // Best responses: 4 CR + 5 PR on B, 1 PR on A.
    assert_eq!((arm("B")["cr"].clone(), arm("B")["pr"].clone()), (4.into(), 5.into()));
    assert_eq!((arm("A")["cr"].clone(), arm("A")["pr"].clone()), (0.into(), 1.into()));

    // What the replay did: 35 enrolled with this seed, screen failures, delays, reductions.
    let run = &report["run"];
    assert_eq!(run["enrolled"], 35, "{run}");
    assert_eq!(run["screen_failures"], 3, "{run}");
    for key in [
        "cycle_delays",
        "dose_modifications",
        "adverse_events_recorded",
        "administrations_recorded",
    ] {
        assert!(run[key].as_u64().unwrap_or(0) > 0, "{key}: {run}");
    }
    // Every change is in an intact audit trail.
    let trails = run["audit_trails"].as_array().cloned().unwrap_or_default();
    assert_eq!(trails.len(), 3, "{run}");
    for t in &trails {
        assert_eq!(t["intact"], true, "{t}");
        assert!(t["entries"].as_i64().unwrap_or(0) > 35, "{t}");
    }
    // Enrollment by arm and stratum adds up; exposure, severe events and survival per arm.
    let enrolled: u64 = report["enrollment"]
        .as_array()
        .map(|rows| rows.iter().filter_map(|r| r["subjects"].as_u64()).sum())
        .unwrap_or(0);
    assert_eq!(enrolled, 35);
    for section in ["exposure", "survival"] {
        let arms: Vec<&serde_json::Value> = report[section]
            .as_array()
            .map(|rows| rows.iter().map(|r| &r["arm"]).collect())
            .unwrap_or_default();
        assert_eq!(arms.len(), 2, "{section}: {report}");
    }
    assert!(!report["severe_adverse_events"].as_array().is_none_or(Vec::is_empty));

    // 27 sites; the dinutuximab dose revision recorded on day 150 of accrual (31 October 2013)
    // takes effect 14 days later, 3 June 2013 + 164 days = 14 November 2013. Arm B's
    // dinutuximab is split between version 1.0 (25 mg/m2/day) and 2.0 (17.5).
    // The central reviewer signs every assessment; investigators sign each end of treatment
    // (progression during therapy), so there are more signatures than assessments.
    let (signatures, assessments) = (
        run["electronic_signatures"].as_u64().unwrap_or(0),
        run["response_assessments"].as_u64().unwrap_or(0),
    );
    assert!(assessments > 35 && signatures > assessments, "{run}");
    assert_eq!(run["sites"], 27, "{run}");
    assert_eq!(run["protocol_amendment"]["effective_on"], "2013-11-14", "{run}");
    let exposure_b = report["exposure"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["arm"] == "B"))
        .cloned()
        .unwrap_or_default();
    let dinutuximab: Vec<(String, u64)> = exposure_b["by_protocol_version"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .filter(|r| r["agent"] == "dinutuximab")
                .map(|r| {
                    (
                        r["protocol_version"].as_str().unwrap_or("").to_owned(),
                        r["subjects"].as_u64().unwrap_or(0),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        dinutuximab.iter().map(|(v, _)| v.as_str()).collect::<Vec<_>>(),
        ["1.0", "2.0"],
        "{exposure_b}"
    );
    assert!(dinutuximab.iter().all(|(_, subjects)| *subjects > 0), "{exposure_b}");

    // Every write the replay called sent at most 8 SQL statements (transaction control aside),
    // EnrollSubject at most 7, as the services' own per-call metric counted them.
    let statements = report["run"]["database_statements"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for (method, budget) in [
        ("EnrollSubject", 7),
        ("ScreenSubject", 8),
        ("RegisterSite", 8),
        ("ChangeSubjectStatus", 8),
        ("CreateTreatmentPlan", 8),
        ("StartCycle", 8),
        ("RecordAdministration", 8),
        ("ApplyDoseModification", 8),
        ("RecordAdverseEvent", 8),
        ("RecordFollowUp", 8),
        ("RecordResponseAssessment", 8),
        ("SignResponseAssessment", 8),
        ("SignEndOfTreatment", 8),
    ] {
        let figures = statements
            .iter()
            .find(|f| f["method"] == method)
            .unwrap_or_else(|| panic!("no statement figures for {method}: {statements:?}"));
        assert!(figures["calls"].as_u64().unwrap_or(0) > 0, "{figures}");
        let at_most = figures["at_most"].as_u64().unwrap_or(u64::MAX);
        assert!(at_most <= budget, "{method} over {budget} statements: {figures}");
    }

    // The same seed replays the same trial (how many statements the reads took may differ: the
    // audit log's sequencer runs on its own schedule).
    let without_statements = |mut report: serde_json::Value| {
        report["run"]
            .as_object_mut()
            .map(|run| run.remove("database_statements"));
        report
    };
    assert_eq!(without_statements(demo("12")), without_statements(report));
}
