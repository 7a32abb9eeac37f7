//! One child from screening to a recorded response through the hospital CLI, against the three
//! services run by `trialops up`, checking each service's view; and how a refused call reads.

// Test code, helpers included, unwraps: a failure is a test failure with the value shown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use chrono::Datelike;
use std::process::{Child, Command, Output, Stdio};

struct Up {
    child: Child,
    ports: [u16; 3],
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

fn trialops(up: &Up, args: &[&str]) -> Output {
    let urls = up.ports.map(|p| format!("http://127.0.0.1:{p}"));
    Command::new(env!("CARGO_BIN_EXE_trialops"))
        .args(["--enrollment", &urls[0], "--dosing", &urls[1], "--outcomes", &urls[2]])
        .args(args)
        .env_remove("TRIALOPS_TOKEN")
        .output()
        .unwrap()
}

/// Runs a command with `--json` and the token; panics with stderr on failure.
fn json(up: &Up, token: &str, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["--json", "--token", token];
    all.extend_from_slice(args);
    let out = trialops(up, &all);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

fn token(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_trialops"))
        .arg("token")
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The secret file of this test; tools/reference/randomization_v1.py has its vector.
const CLI_SECRET: &str = "trialops CLI test secret: thirty-two bytes or more";

/// The reference sequence of ANBL1221's no-prior-therapy, MYCN-amplified stratum under
/// [`CLI_SECRET`], from the independent implementation's vectors.
fn reference_arms() -> Vec<String> {
    let fixture: serde_json::Value =
        serde_json::from_str(include_str!("../../domain/tests/fixtures/randomization_v1.json")).unwrap();
    let secret_hex: String = CLI_SECRET.bytes().map(|b| format!("{b:02x}")).collect();
    let vector = fixture["vectors"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|v| {
            v["secret_hex"] == secret_hex.as_str()
                && v["stratum"] == "prior_therapy=no_prior_irinotecan_temozolomide|mycn_status=amplified"
        })
        .expect("no reference vector for the CLI secret");
    vector["allocations"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| a["arm"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// The agents of day 1 (TRIAL.md): temozolomide and irinotecan on both arms, temsirolimus on
/// arm A; dinutuximab starts on day 2.
fn day_one_agents(arm: &str) -> Vec<&'static str> {
    if arm == "A" {
        vec!["irinotecan", "temozolomide", "temsirolimus"]
    } else {
        vec!["irinotecan", "temozolomide"]
    }
}

/// `start-cycle` for cycle 1 of a 102 cm, 16 kg child with counts that allow it, from `today`.
fn start_cycle<'a>(subject: &'a str, measured_at: &'a str, today: &'a str) -> [&'a str; 17] {
    [
        "start-cycle",
        "--subject",
        subject,
        "--cycle",
        "1",
        "--height-cm",
        "102",
        "--weight-kg",
        "16",
        "--anc",
        "1000",
        "--platelets",
        "120000",
        "--measured-at",
        measured_at,
        "--start-date",
        today,
    ]
}

#[test]
fn one_child_from_screening_to_response_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    // A fixed randomization secret, whose stratum sequence the independent reference
    // implementation computed (tools/reference/randomization_v1.py): the first child's arm, and
    // the second's, are known before the run, and they differ, so both arms are covered.
    let secret = dir.path().join("randomization.secret");
    std::fs::write(&secret, CLI_SECRET).unwrap();
    let arms = reference_arms();
    let mut command = common::up(dir.path());
    command
        .env("TRIALOPS_RANDOMIZATION_SECRET_FILE", &secret)
        .stderr(Stdio::null());
    // `up` writes the development key, then binds the services, then prints their addresses.
    let common::Started { child, ports, .. } = common::start(command);
    let up = Up { child, ports };
    let admin = token(dir.path(), &["--role", "administrator"]);
    let trial = trialops(&up, &["--token", &admin, "trial"]);
    assert!(trial.status.success(), "{}", String::from_utf8_lossy(&trial.stderr));
    let coordinator = token(dir.path(), &["--role", "site_coordinator", "--site", "COG-101"]);
    let pharmacist = token(dir.path(), &["--role", "pharmacist", "--site", "COG-101"]);
    let reviewer = token(dir.path(), &["--role", "central_reviewer"]);
    // Every date and instant from one clock reading, and passed explicitly, so the test means the
    // same at any time of day (no command picks "today" on the other side of midnight).
    let now = chrono::Utc::now();
    let today = now.date_naive().to_string();
    let hour_ago = (now - chrono::Duration::hours(1)).to_rfc3339();
    let given_at = now.to_rfc3339();

    json(
        &up,
        &admin,
        &["register-site", "--site", "COG-101", "--name", "Children's Hospital"],
    );
    // An administrator closes the site to accrual and opens it again, each with a reason.
    let close = ["close-accrual", "--site", "COG-101", "--reason", "monitoring visit"];
    let closed = trialops(&up, &[&["--token", admin.as_str()][..], &close[..]].concat());
    assert!(closed.status.success(), "{}", String::from_utf8_lossy(&closed.stderr));
    assert_eq!(
        String::from_utf8_lossy(&closed.stdout).trim(),
        "accrual to site COG-101 of trial ANBL1221 is closed; 0 enrolled"
    );
    let again = trialops(&up, &[&["--token", admin.as_str()][..], &close[..]].concat());
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("ACCRUAL_ALREADY_CLOSED"));
    let opened = json(
        &up,
        &admin,
        &[
            "open-accrual",
            "--site",
            "COG-101",
            "--reason",
            "visit findings resolved",
        ],
    );
    assert_eq!(opened["accrual"]["open"], true, "{opened}");
    let values = [
        "histology_confirmed=true",
        "disease_status=first_recurrence",
        "measurable_tumour_mm=23",
        "measurable_tumour_avid=true",
        "anc_per_ul=1200",
        "platelets_per_ul=150000",
        "platelets_transfusion_independent=true",
        "bilirubin_mg_dl=0.6",
        "bilirubin_uln_mg_dl=1.0",
        "alt_u_l=40",
        "creatinine_within_age_sex_limit=true",
        "shortening_fraction_percent=34",
        "performance_score=80",
    ];
    let mut screen = vec!["screen", "--site", "COG-101", "--screening-id", "SCR-1"];
    for v in &values {
        screen.extend_from_slice(&["--value", v]);
    }
    let screened = json(&up, &coordinator, &screen);
    assert_eq!(screened["screening"]["eligible"], true, "{screened}");

    // A refused call: the code, the reason and each field to fix, exit status 1.
    let refused = trialops(
        &up,
        &[
            "--token",
            &coordinator,
            "enroll",
            "--site",
            "COG-101",
            "--screening-id",
            "SCR-1",
            "--consent-signed-on",
            &today,
            "--consent-form",
            "2.0",
            "--stratum",
            "prior_therapy=bogus",
        ],
    );
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("InvalidArgument"), "{stderr}");
    assert!(stderr.contains("field strata[0].value"), "{stderr}");
    assert!(
        stderr.contains("field strata: a value for \"mycn_status\" is required"),
        "{stderr}"
    );

    let enrolled = json(
        &up,
        &coordinator,
        &[
            "enroll",
            "--site",
            "COG-101",
            "--screening-id",
            "SCR-1",
            "--consent-signed-on",
            &today,
            "--consent-form",
            "2.0",
            "--stratum",
            "prior_therapy=no_prior_irinotecan_temozolomide",
            "--stratum",
            "mycn_status=amplified",
        ],
    );
    let subject_id = enrolled["subject"]["subject_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let arm = enrolled["subject"]["arm_code"].as_str().unwrap_or_default().to_owned();
    assert_eq!(subject_id, "ANBL1221-0001");
    assert_eq!(arm, arms[0], "the reference sequence's first arm: {enrolled}");

    json(&up, &pharmacist, &["plan", "--subject", &subject_id]);
    json(
        &up,
        &reviewer,
        &[
            "response",
            "--subject",
            &subject_id,
            "--after-cycle",
            "0",
            "--assessor",
            "central",
            "--primary-mm",
            "50",
            "--primary-avid",
            "--metastases-mm",
            "40",
            "--curie",
            "1,1,1,1,1,1,1,1,1,1",
            "--marrow-percent",
            "30",
        ],
    );
    // 102 cm, 16 kg: Mosteller BSA sqrt(102 x 16 / 3600) = 0.6733 -> 0.67 m2; temozolomide
    // 100 mg/m2 -> 67 mg, made up of 20 and 5 mg capsules -> 65 mg (by hand).
    let cycle = json(&up, &pharmacist, &start_cycle(&subject_id, &hour_ago, &today));
    assert_eq!(cycle["cycle"]["bsa_m2"]["value"], "0.67", "{cycle}");
    let temozolomide = cycle["cycle"]["doses"]
        .as_array()
        .and_then(|d| d.iter().find(|d| d["agent_id"] == "temozolomide"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(temozolomide["rounded_dose"]["value"], "65", "{cycle}");

    let worklist = json(&up, &pharmacist, &["worklist", "--site", "COG-101", "--from", &today]);
    let due: Vec<serde_json::Value> = worklist["administrations"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|a| a["subject_id"] == subject_id.as_str())
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    let mut agents: Vec<&str> = due.iter().filter_map(|a| a["agent_id"].as_str()).collect();
    agents.sort_unstable();
    assert_eq!(agents, day_one_agents(&arm), "{worklist}");
    for a in &due {
        let recorded = json(
            &up,
            &pharmacist,
            &[
                "administer",
                "--administration",
                a["administration_id"].as_str().unwrap_or_default(),
                "--dose",
                a["prescribed_dose"]["value"].as_str().unwrap_or_default(),
                "--started-at",
                &given_at,
                "--ended-at",
                &given_at,
            ],
        );
        assert_eq!(
            recorded["administration"]["status"], "ADMINISTRATION_STATUS_GIVEN",
            "{recorded}"
        );
        assert!(
            recorded["administration"].get("deviation_flagged").is_none(),
            "{recorded}"
        );
    }
    let response = json(
        &up,
        &reviewer,
        &[
            "response",
            "--subject",
            &subject_id,
            "--after-cycle",
            "1",
            "--assessor",
            "central",
            "--primary-mm",
            "30",
            "--primary-avid",
            "--metastases-mm",
            "20",
            "--curie",
            "1,1,1,1,0,0,0,0,0,0",
            "--marrow-percent",
            "4",
        ],
    );
    assert_eq!(response["assessment"]["overall_response"], "RESPONSE_PR", "{response}");
    let assessment_id = response["assessment"]["assessment_id"].as_str().unwrap().to_owned();
    signatures_through_the_cli(&up, dir.path(), &coordinator, &assessment_id);

    // Each service's view of the child.
    let view = json(&up, &coordinator, &["subject", &subject_id]);
    assert_eq!(view["enrollment"]["arm_code"], arm.as_str(), "{view}");
    assert_eq!(
        view["enrollment"]["status"], "SUBJECT_STATUS_ON_PROTOCOL_THERAPY",
        "{view}"
    );
    assert_eq!(view["dosing"]["arm_code"], arm.as_str(), "{view}");
    assert_eq!(view["dosing"]["cycles_started"], 1, "{view}");
    assert_eq!(view["outcomes"]["best_central_response"], "RESPONSE_PR", "{view}");
    assert_eq!(
        view["outcomes"]["assessments"].as_array().map(Vec::len),
        Some(2),
        "{view}"
    );

    // A table by default.
    let table = trialops(&up, &["--token", &coordinator, "subject", &subject_id]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.contains("best central-review response: PR"), "{text}");

    // A second child in the same stratum lands on the other arm, whose regimen the pharmacy
    // sees on its worklist.
    let mut screen_second = screen.clone();
    screen_second[4] = "SCR-2";
    json(&up, &coordinator, &screen_second);
    let second = json(
        &up,
        &coordinator,
        &[
            "enroll",
            "--site",
            "COG-101",
            "--screening-id",
            "SCR-2",
            "--consent-signed-on",
            &today,
            "--consent-form",
            "2.0",
            "--stratum",
            "prior_therapy=no_prior_irinotecan_temozolomide",
            "--stratum",
            "mycn_status=amplified",
        ],
    );
    let second_arm = second["subject"]["arm_code"].as_str().unwrap_or_default().to_owned();
    assert_eq!(second_arm, arms[1], "the reference sequence's second arm: {second}");
    assert_ne!(second_arm, arm, "the two children cover both arms");
    json(&up, &pharmacist, &["plan", "--subject", "ANBL1221-0002"]);
    json(&up, &pharmacist, &start_cycle("ANBL1221-0002", &hour_ago, &today));
    let worklist = json(&up, &pharmacist, &["worklist", "--site", "COG-101", "--from", &today]);
    let mut agents: Vec<&str> = worklist["administrations"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["subject_id"] == "ANBL1221-0002")
        .filter_map(|a| a["agent_id"].as_str())
        .collect();
    agents.sort_unstable();
    assert_eq!(agents, day_one_agents(&second_arm), "{worklist}");

    // An emergency: the site's investigator is told the second child's arm, and the trial
    // report lists who asked, why and when.
    let investigator = token(dir.path(), &["--role", "investigator", "--site", "COG-101"]);
    let reason = "anaphylaxis during infusion: the treating physician needs the agent";
    let unblinded = trialops(
        &up,
        &[
            "--token",
            &investigator,
            "unblind",
            "--subject",
            "ANBL1221-0002",
            "--reason",
            reason,
        ],
    );
    let said = String::from_utf8_lossy(&unblinded.stdout);
    assert!(
        unblinded.status.success() && said.contains(&format!("ANBL1221-0002 is on arm {second_arm}.")),
        "{said}{}",
        String::from_utf8_lossy(&unblinded.stderr)
    );
    let report = json(&up, &admin, &["report"]);
    let listed = &report["emergency_unblindings"][0];
    assert_eq!(
        (&listed["subject_id"], &listed["arm_code"], &listed["reason"]),
        (&"ANBL1221-0002".into(), &second_arm.as_str().into(), &reason.into()),
        "{report}"
    );
    assert_eq!(listed["unblinded_by_role"], "investigator");
    let refused = trialops(
        &up,
        &[
            "--token",
            &coordinator,
            "unblind",
            "--subject",
            "ANBL1221-0002",
            "--reason",
            "x",
        ],
    );
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && said.contains("may not call UnblindSubject"),
        "{said}"
    );

    watch_prints_each_services_changes_to_those_who_may_read_them(&up, &[&admin, &coordinator, &pharmacist, &reviewer]);
    an_amendment_through_the_cli(&up, dir.path(), &admin, &coordinator);
    the_allocations_are_proven_from_the_revealed_key(&up, dir.path(), &admin);
}

/// `sign`: an investigator signs the eligibility confirmation with a token that names them; a
/// coordinator may not, and a token without a printed name cannot; a central reviewer signs the
/// response assessment, and the subject's view shows who signed it.
fn signatures_through_the_cli(up: &Up, dir: &Path, coordinator: &str, assessment_id: &str) {
    let investigator = token(
        dir,
        &[
            "--role",
            "investigator",
            "--site",
            "COG-101",
            "--subject",
            "inv-101",
            "--name",
            "Dr. Ada Investigator",
        ],
    );
    let sign_screening = |token: &str| {
        trialops(
            up,
            &[
                "--token",
                token,
                "sign",
                "screening",
                "--trial",
                "ANBL1221",
                "--screening",
                "SCR-1",
                "--meaning",
                "approved",
            ],
        )
    };
    let signed = sign_screening(&investigator);
    assert!(signed.status.success(), "{}", String::from_utf8_lossy(&signed.stderr));
    let said = String::from_utf8_lossy(&signed.stdout);
    assert!(
        said.starts_with(
            "Signed screening SCR-1 attempt 1: Dr. Ada Investigator (inv-101, investigator), approved at "
        ),
        "{said}"
    );
    assert!(!said.contains("NO LONGER APPLIES"), "{said}");
    let refused = sign_screening(coordinator);
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && said.contains("may not call SignScreening"),
        "{said}"
    );
    let nameless = token(
        dir,
        &["--role", "investigator", "--site", "COG-101", "--subject", "inv-101"],
    );
    let refused = sign_screening(&nameless);
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && said.contains("REAUTHENTICATION_REQUIRED"),
        "{said}"
    );

    let reviewer = token(
        dir,
        &[
            "--role",
            "central_reviewer",
            "--subject",
            "reviewer-1",
            "--name",
            "Dr. C Reviewer",
        ],
    );
    let reviewed = json(
        up,
        &reviewer,
        &["sign", "assessment", "--id", assessment_id, "--meaning", "reviewed"],
    );
    assert_eq!(
        (&reviewed["printed_name"], &reviewed["meaning"], &reviewed["applies"]),
        (
            &serde_json::json!("Dr. C Reviewer"),
            &serde_json::json!("SIGNATURE_MEANING_REVIEWED"),
            &serde_json::json!(true)
        ),
        "{reviewed}"
    );
    let view = trialops(up, &["--token", coordinator, "subject", "ANBL1221-0001"]);
    let said = String::from_utf8_lossy(&view.stdout);
    assert!(said.contains("Dr. C Reviewer (reviewed)"), "{said}");
}

/// `amend-protocol` records version 3.0 (a dinutuximab dose change) from tomorrow, for an
/// administrator only, refusing an effective date of today; `protocol-versions` lists it.
fn an_amendment_through_the_cli(up: &Up, dir: &Path, admin: &str, coordinator: &str) {
    let file = dir.join("anbl1221-3.0.toml");
    let v3 = trialops_domain::protocol::ANBL1221_TOML
        .replacen("protocol_version = \"2.0\"", "protocol_version = \"3.0\"", 1)
        .replacen(
            "dose_levels = [{ level = 0, dose = \"17.5\" }]",
            "dose_levels = [{ level = 0, dose = \"15\" }]",
            1,
        );
    std::fs::write(&file, v3).unwrap();
    let file = file.display().to_string();
    let now = chrono::Utc::now().date_naive();
    let amend = |token: &str, effective: chrono::NaiveDate| {
        trialops(
            up,
            &[
                "--token",
                token,
                "amend-protocol",
                "--definition",
                &file,
                "--effective-on",
                &effective.to_string(),
                "--reason",
                "Amendment 3: dinutuximab 15 mg/m2/day",
            ],
        )
    };
    let today = amend(admin, now);
    let said = String::from_utf8_lossy(&today.stderr);
    assert!(!today.status.success() && said.contains("effective_on"), "{said}");
    let coordinator_tried = amend(coordinator, now + chrono::Duration::days(1));
    let said = String::from_utf8_lossy(&coordinator_tried.stderr);
    assert!(said.contains("may not call AmendProtocol"), "{said}");
    let tomorrow = now + chrono::Duration::days(1);
    let amended = amend(admin, tomorrow);
    assert!(amended.status.success(), "{}", String::from_utf8_lossy(&amended.stderr));
    assert!(
        String::from_utf8_lossy(&amended.stdout)
            .contains(&format!("protocol version 3.0 recorded, in force from {tomorrow}")),
        "{}",
        String::from_utf8_lossy(&amended.stdout)
    );
    let listed = json(up, coordinator, &["protocol-versions"]);
    let versions: Vec<(String, bool)> = listed["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["version"].as_str().unwrap().to_owned(),
                v["in_force"].as_bool().unwrap_or(false),
            )
        })
        .collect();
    assert_eq!(versions, [("2.0".to_owned(), true), ("3.0".to_owned(), false)]);
    assert_eq!(listed["versions"][1]["effective_on"]["day"], tomorrow.day());
}

/// Accrual closed, the key revealed, the allocations exported: `trialops verify-allocation` and
/// the independent reference implementation both prove them; a steered arm is caught.
fn the_allocations_are_proven_from_the_revealed_key(up: &Up, dir: &Path, admin: &str) {
    let commitment = json(up, admin, &["trial"])["trial"]["allocation_commitment"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(commitment.len(), 64, "published before the reveal");
    let refused = trialops(up, &["--token", admin, "reveal-allocation-key", "--reason", "audit"]);
    assert!(String::from_utf8_lossy(&refused.stderr).contains("TRIAL_ACCRUAL_OPEN"));
    // The second child turns out to have been randomized twice: marked, on its arm still.
    let marked = json(
        up,
        admin,
        &[
            "randomized-in-error",
            "--subject",
            "ANBL1221-0002",
            "--reason",
            "randomized twice",
        ],
    );
    assert_eq!(marked["subject"]["randomized_in_error"], true, "{marked}");
    assert_eq!(marked["subject"]["randomized_in_error_reason"], "randomized twice");
    json(up, admin, &["close-accrual", "--reason", "enrollment complete"]);
    let revealed = json(up, admin, &["reveal-allocation-key", "--reason", "allocation audit"]);
    let key = revealed["allocation_key"].as_str().unwrap_or_default().to_owned();
    assert_eq!(revealed["allocation_commitment"], commitment.as_str());

    let export = trialops(up, &["--token", admin, "allocations"]);
    assert!(export.status.success(), "{}", String::from_utf8_lossy(&export.stderr));
    let file = dir.join("allocations.json");
    std::fs::write(&file, &export.stdout).unwrap();
    let verify = |file: &Path| {
        Command::new(env!("CARGO_BIN_EXE_trialops"))
            .arg("verify-allocation")
            .arg("--allocations")
            .arg(file)
            .args(["--key", &key, "--commitment", &commitment])
            .output()
            .unwrap()
    };
    let proven = verify(&file);
    let said = String::from_utf8_lossy(&proven.stdout);
    assert!(
        proven.status.success() && said.contains("proven: all 2 allocations of ANBL1221"),
        "{said}{}",
        String::from_utf8_lossy(&proven.stderr)
    );
    // The commitment as `trialops trial` prints it, in groups of 8 hex digits, is taken too.
    let grouped: Vec<&str> = (0..8).map(|i| &commitment[i * 8..i * 8 + 8]).collect();
    let spaced = Command::new(env!("CARGO_BIN_EXE_trialops"))
        .arg("verify-allocation")
        .arg("--allocations")
        .arg(&file)
        .args(["--key", &key, "--commitment", &grouped.join(" ")])
        .output()
        .unwrap();
    assert!(spaced.status.success(), "{}", String::from_utf8_lossy(&spaced.stderr));
    let reference = Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools/reference/randomization_v1.py"))
        .arg("--verify-export")
        .arg(&file)
        .args([&key, &commitment])
        .output()
        .unwrap();
    assert!(
        reference.status.success(),
        "{}",
        String::from_utf8_lossy(&reference.stderr)
    );

    // The first child moved to the other arm in the file: caught, named, exit 1.
    let mut steered: serde_json::Value = serde_json::from_slice(&export.stdout).unwrap();
    let arm = steered["allocations"][0]["arm_code"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    steered["allocations"][0]["arm_code"] = (if arm == "A" { "B" } else { "A" }).into();
    let tampered = dir.join("steered.json");
    std::fs::write(&tampered, steered.to_string()).unwrap();
    let caught = verify(&tampered);
    let said = String::from_utf8_lossy(&caught.stderr);
    assert!(
        !caught.status.success() && said.contains("NOT PROVEN: ANBL1221-0001"),
        "{said}"
    );
}

/// `trialops watch` with `args`, as the holder of `token`, stopped after a minute at most:
/// its exit status, its JSON lines (with `--json`) or text, and its errors.
fn watch(up: &Up, token: &str, args: &[&str]) -> (bool, String, String) {
    let urls = up.ports.map(|p| format!("http://127.0.0.1:{p}"));
    let out = Command::new("timeout")
        .arg("60")
        .arg(env!("CARGO_BIN_EXE_trialops"))
        .args(["--enrollment", &urls[0], "--dosing", &urls[1], "--outcomes", &urls[2]])
        .args(["--token", token, "watch"])
        .args(args)
        .env_remove("TRIALOPS_TOKEN")
        .output()
        .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

/// The JSON events `trialops watch --json` printed.
fn watched(up: &Up, token: &str, args: &[&str]) -> Vec<serde_json::Value> {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let (ok, out, err) = watch(up, token, &all);
    assert!(ok, "watch {args:?}: {err}");
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

fn field<'a>(events: &'a [serde_json::Value], path: &[&str]) -> Vec<&'a str> {
    events
        .iter()
        .map(|e| path.iter().fold(e, |v, k| &v[*k]).as_str().unwrap_or_default())
        .collect()
}

/// After the walk-through: each service's changes as `trialops watch` prints them, resumed from
/// a cursor, and only what each role reads.
fn watch_prints_each_services_changes_to_those_who_may_read_them(up: &Up, tokens: &[&String; 4]) {
    let [admin, coordinator, pharmacist, reviewer] = *tokens;
    // The first four subject entries: both children's enrollment and randomization.
    let subjects = ["--entity-type", "subject", "--limit", "4"];
    let all = watched(up, admin, &subjects);
    assert_eq!(
        field(&all, &["entry", "action"]),
        [
            "subject.enrolled",
            "subject.randomized",
            "subject.enrolled",
            "subject.randomized"
        ]
    );
    assert_eq!(
        field(&all, &["entry", "entity_id"]),
        ["ANBL1221-0001", "ANBL1221-0001", "ANBL1221-0002", "ANBL1221-0002"]
    );
    // The coordinator of the children's site sees the same; resumed after the second, the rest.
    assert_eq!(watched(up, coordinator, &subjects), all);
    let cursor = all[1]["cursor"].as_str().unwrap_or_default();
    let resumed = watched(
        up,
        coordinator,
        &["--entity-type", "subject", "--cursor", cursor, "--limit", "2"],
    );
    assert_eq!(resumed, all[2..].to_vec());

    // The pharmacy follows dosing: the first plan, then its first cycle, at its own site.
    let dosing = watched(up, pharmacist, &["--service", "dosing", "--limit", "2"]);
    assert_eq!(field(&dosing, &["entry", "action"]), ["plan.created", "cycle.started"]);
    assert_eq!(field(&dosing, &["site_code"]), ["COG-101", "COG-101"]);
    assert_eq!(field(&dosing, &["trial_id"]), ["ANBL1221", "ANBL1221"]);

    // The blinded central reviewer follows response assessments only, and never sees an arm.
    let outcomes = watched(up, reviewer, &["--service", "outcomes", "--limit", "2"]);
    assert_eq!(
        field(&outcomes, &["entry", "entity_type"]),
        ["assessment", "assessment"]
    );
    for value in field(&outcomes, &["entry", "new_value_json"]) {
        assert!(value.contains("\"overall\"") && !value.contains("arm_code"), "{value}");
    }
    let (ok, _, err) = watch(
        up,
        reviewer,
        &["--service", "outcomes", "--entity-type", "adverse_event"],
    );
    assert!(
        !ok && err.contains("PermissionDenied") && err.contains("adverse_event"),
        "{err}"
    );

    // As text: one line per change, with the cursor to resume after it.
    let (ok, text, err) = watch(up, admin, &["--limit", "1"]);
    assert!(ok, "{err}");
    assert!(
        text.starts_with("enrollment/1 ") && text.contains("site.registered site COG-101") && text.contains("cursor "),
        "{text}"
    );
}
