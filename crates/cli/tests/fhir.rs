//! The FHIR R4 read facade over HTTP/1.1 with bearer tokens: the CapabilityStatement, a trial as
//! `ResearchStudy`, enrolled children as `ResearchSubject` read by id and searched by study with
//! `Bundle` paging, under the same role, site and blinding rules as the gRPC reads; and every
//! resource kind of the three services over the trial `trialops demo` replays, counted against
//! the replay's own figures. With `TRIALOPS_FHIR_SAMPLES=DIR` every resource fetched is also
//! written there, for CI to validate with the PyPI package `fhir.resources` (R4 models):
//! `scripts/check-fhir.py`.

// Test code, helpers included, unwraps: a failure is a test failure with the value shown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use trialops_enrollment::testing::enroll_as;
use trialops_platform::backend_tests;
use trialops_platform::testing::{Backend, jwt_settings, jwt_token, request_id, with_bearer};
use trialops_proto::enrollment::v1 as epb;
use trialops_stack::Service;
use trialops_stack::testing::TestStack;

backend_tests!(research_studies_and_subjects_under_the_grpc_rules);

/// A `trialops token` for `role` (with `--site` when given) over the demo's data folder.
fn token(dir: &std::path::Path, role: &str, site: Option<&str>) -> String {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_trialops"));
    command.args(["token", "--role", role, "--data-dir"]).arg(dir);
    if let Some(site) = site {
        command.args(["--site", site]);
    }
    let out = command.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Every resource of a search over all its pages.
async fn everything(addr: &str, first: &str, token: &str) -> Vec<Value> {
    let mut found = Vec::new();
    let mut path = first.to_owned();
    loop {
        let (status, bundle) = get(addr, &path, Some(token)).await;
        assert_eq!(status, http::StatusCode::OK, "{path}: {bundle}");
        found.extend(
            bundle["entry"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["resource"].clone()),
        );
        match bundle["link"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["relation"] == "next")
        {
            Some(next) => {
                path = next["url"]
                    .as_str()
                    .unwrap()
                    .strip_prefix(&format!("http://{addr}"))
                    .unwrap()
                    .to_owned()
            }
            None => return found,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_resource_kind_over_the_replayed_trial() {
    let dir = tempfile::tempdir().unwrap();
    let demo = std::process::Command::new(env!("CARGO_BIN_EXE_trialops"))
        .args(["demo", "--json", "--seed", "5", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(demo.status.success(), "{}", String::from_utf8_lossy(&demo.stderr));
    let report: Value = serde_json::from_slice(&demo.stdout).unwrap();
    let run = &report["run"];
    let mut command = common::up(dir.path());
    command.stderr(std::process::Stdio::null());
    let common::Started { mut child, ports, .. } = common::start(command);
    let [enrollment, dosing, outcomes] = ports.map(|p| format!("127.0.0.1:{p}"));
    let statistician = token(dir.path(), "statistician", None);

    for (addr, kinds) in [
        (&enrollment, vec!["ResearchStudy", "ResearchSubject", "Provenance"]),
        (&dosing, vec!["MedicationAdministration"]),
        (&outcomes, vec!["AdverseEvent", "Observation", "Provenance"]),
    ] {
        let (_, capability) = get(addr, "/fhir/metadata", None).await;
        let served: Vec<&str> = capability["rest"][0]["resource"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["type"].as_str().unwrap())
            .collect();
        assert_eq!(served, kinds);
    }
    let subjects = everything(
        &enrollment,
        "/fhir/ResearchSubject?study=ANBL1221&_count=10",
        &statistician,
    )
    .await;
    assert_eq!(subjects.len() as u64, run["enrolled"].as_u64().unwrap());

    // Each child's medication record, adverse events and response assessments, as FHIR, and the
    // electronic signatures of the assessments and ends of treatment as Provenances.
    let (mut administrations, mut adverse_events, mut observations) = (0u64, 0u64, 0u64);
    let mut signatures: Vec<Value> = Vec::new();
    let mut kept: BTreeMap<&str, Value> = BTreeMap::new();
    for subject in &subjects {
        let id = subject["id"].as_str().unwrap();
        let given = everything(
            &dosing,
            &format!("/fhir/MedicationAdministration?subject={id}&_count=20"),
            &statistician,
        )
        .await;
        for a in &given {
            assert_eq!(a["subject"]["identifier"]["value"], id);
            assert_ne!(a["status"], "unknown", "{a}");
        }
        administrations += given.len() as u64;
        let events = everything(&outcomes, &format!("/fhir/AdverseEvent?subject={id}"), &statistician).await;
        adverse_events += events.len() as u64;
        let assessed = everything(&outcomes, &format!("/fhir/Observation?subject={id}"), &statistician).await;
        observations += assessed.len() as u64;
        for observation in &assessed {
            let target = format!("Observation/{}", observation["id"].as_str().unwrap());
            let found = everything(&outcomes, &format!("/fhir/Provenance?target={target}"), &statistician).await;
            // The replay's central reviewer signs each assessment once, as reviewed.
            assert_eq!(found.len(), 1, "{target}: {found:?}");
            assert_eq!(found[0]["target"][0]["reference"], target.as_str());
            assert_eq!(found[0]["signature"][0]["type"][0]["display"], "Review Signature");
            assert_eq!(found[0]["signature"][0]["who"]["display"], "Central Reviewer");
            signatures.extend(found);
        }
        if subject["status"] != "on-study-intervention" {
            let target = format!("ResearchSubject/{id}");
            let found = everything(&enrollment, &format!("/fhir/Provenance?target={target}"), &statistician).await;
            for p in &found {
                assert_eq!(p["signature"][0]["type"][0]["display"], "Author's Signature", "{p}");
            }
            signatures.extend(found);
        }
        for (kind, found) in [
            ("MedicationAdministration", &given),
            ("AdverseEvent", &events),
            ("Observation", &assessed),
        ] {
            if let Some(first) = found.first() {
                kept.entry(kind).or_insert_with(|| first.clone());
            }
        }
    }
    // The replay's own counts: every adverse event it recorded, every administration it recorded
    // (discontinuations also close planned doses as not given, so there may be more).
    assert_eq!(
        adverse_events,
        run["adverse_events_recorded"].as_u64().unwrap(),
        "{run}"
    );
    assert!(
        administrations >= run["administrations_recorded"].as_u64().unwrap(),
        "{administrations}: {run}"
    );
    // Children still in their first cycle when the replay stops may have no assessment yet.
    assert!(observations > 0);
    // Every signature the replay made, each still applying; each read by id is the one found.
    assert_eq!(
        signatures.len() as u64,
        run["electronic_signatures"].as_u64().unwrap(),
        "{run}"
    );
    for p in &signatures {
        let applies = p["extension"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["url"] == "urn:trialops:fhir:signature-applies");
        assert_eq!(applies.unwrap()["valueBoolean"], true, "{p}");
        let addr = if p["id"].as_str().unwrap().starts_with("eot.") {
            &enrollment
        } else {
            &outcomes
        };
        let (status, read) = get(
            addr,
            &format!("/fhir/Provenance/{}", p["id"].as_str().unwrap()),
            Some(&statistician),
        )
        .await;
        assert_eq!((status, &read), (http::StatusCode::OK, p));
    }
    let (status, _) = get(&outcomes, "/fhir/Provenance/ae.no-such-event.1", Some(&statistician)).await;
    assert_eq!(status, http::StatusCode::NOT_FOUND);
    let (status, outcome) = get(&outcomes, "/fhir/Provenance?target=Patient/1", Some(&statistician)).await;
    assert_eq!(
        (status, issue(&outcome).0.as_str()),
        (http::StatusCode::BAD_REQUEST, "invalid")
    );

    // Each kind read by id is the resource the search returned.
    for (kind, addr) in [
        ("MedicationAdministration", &dosing),
        ("AdverseEvent", &outcomes),
        ("Observation", &outcomes),
    ] {
        let found = kept.get(kind).unwrap_or_else(|| panic!("no {kind} in the replay"));
        let (status, read) = get(
            addr,
            &format!("/fhir/{kind}/{}", found["id"].as_str().unwrap()),
            Some(&statistician),
        )
        .await;
        assert_eq!(status, http::StatusCode::OK, "{read}");
        assert_eq!(&read, found);
    }
    // A central reviewer reads assessments but not adverse events, as over gRPC.
    let reviewer = token(dir.path(), "central_reviewer", None);
    let event = kept["AdverseEvent"]["id"].as_str().unwrap();
    let (status, outcome) = get(&outcomes, &format!("/fhir/AdverseEvent/{event}"), Some(&reviewer)).await;
    assert_eq!(
        (status, issue(&outcome).0.as_str()),
        (http::StatusCode::FORBIDDEN, "forbidden")
    );
    let observation = kept["Observation"]["id"].as_str().unwrap();
    let (status, _) = get(&outcomes, &format!("/fhir/Observation/{observation}"), Some(&reviewer)).await;
    assert_eq!(status, http::StatusCode::OK);
    // Staff of a site with none of these children see none of their records, as over gRPC.
    let elsewhere = |role: &str| token(dir.path(), role, Some("NO-SUCH-SITE"));
    let administration = kept["MedicationAdministration"]["id"].as_str().unwrap();
    for (addr, path, role) in [
        (
            &dosing,
            format!("/fhir/MedicationAdministration/{administration}"),
            "pharmacist",
        ),
        (&outcomes, format!("/fhir/AdverseEvent/{event}"), "investigator"),
        (
            &outcomes,
            format!("/fhir/Observation/{observation}"),
            "site_coordinator",
        ),
    ] {
        let (status, outcome) = get(addr, &path, Some(&elsewhere(role))).await;
        assert_eq!(
            (status, issue(&outcome).0.as_str()),
            (http::StatusCode::NOT_FOUND, "not-found"),
            "{path}"
        );
    }
    let subject = kept["AdverseEvent"]["subject"]["identifier"]["value"].as_str().unwrap();
    let events = everything(
        &outcomes,
        &format!("/fhir/AdverseEvent?subject={subject}"),
        &elsewhere("investigator"),
    )
    .await;
    assert!(events.is_empty(), "another site's events: {events:?}");
    let _ = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

/// GETs `path` over HTTP/1.1 with an optional bearer token: the status and the JSON body.
async fn get(addr: &str, path: &str, token: Option<&str>) -> (http::StatusCode, Value) {
    fetch(addr, "GET", path, token).await
}

async fn fetch(addr: &str, method: &str, path: &str, token: Option<&str>) -> (http::StatusCode, Value) {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let mut request = http::Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr)
        .header("accept", "application/fhir+json");
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = sender
        .send_request(request.body(Full::new(Bytes::new())).unwrap())
        .await
        .unwrap();
    let (parts, body) = response.into_parts();
    let content_type = parts.headers["content-type"].to_str().unwrap();
    assert!(content_type.starts_with("application/fhir+json"), "{content_type}");
    let bytes = body.collect().await.unwrap().to_bytes();
    let value: Value = serde_json::from_slice(&bytes).unwrap();
    keep(&value);
    (parts.status, value)
}

/// Writes each resource (and each Bundle's entries) to `TRIALOPS_FHIR_SAMPLES`, if set.
fn keep(value: &Value) {
    let Ok(dir) = std::env::var("TRIALOPS_FHIR_SAMPLES") else {
        return;
    };
    std::fs::create_dir_all(&dir).unwrap();
    let kind = value["resourceType"].as_str().unwrap_or("unknown");
    let name = format!("{kind}-{}.json", uuid::Uuid::new_v4());
    std::fs::write(std::path::Path::new(&dir).join(name), value.to_string()).unwrap();
}

/// The one issue of an OperationOutcome: `(code, diagnostics)`.
fn issue(outcome: &Value) -> (String, String) {
    assert_eq!(outcome["resourceType"], "OperationOutcome", "{outcome}");
    let issue = &outcome["issue"][0];
    assert_eq!(issue["severity"], "error");
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    (text(&issue["code"]), text(&issue["diagnostics"]))
}

/// Every ResearchSubject of a search, following its `next` links; and how many pages it took.
async fn all_pages(addr: &str, first: &str, token: &str) -> (Vec<Value>, usize) {
    let mut subjects = Vec::new();
    let mut path = first.to_owned();
    let mut pages = 0;
    loop {
        let (status, bundle) = get(addr, &path, Some(token)).await;
        assert_eq!(status, http::StatusCode::OK, "{bundle}");
        assert_eq!(
            (bundle["resourceType"].as_str(), bundle["type"].as_str()),
            (Some("Bundle"), Some("searchset"))
        );
        pages += 1;
        for entry in bundle["entry"].as_array().unwrap() {
            let resource = entry["resource"].clone();
            let full = format!(
                "http://{addr}/fhir/ResearchSubject/{}",
                resource["id"].as_str().unwrap()
            );
            assert_eq!(entry["fullUrl"], full.as_str());
            subjects.push(resource);
        }
        let links = bundle["link"].as_array().unwrap();
        match links.iter().find(|l| l["relation"] == "next") {
            Some(next) => {
                let url = next["url"].as_str().unwrap();
                path = url.strip_prefix(&format!("http://{addr}")).unwrap().to_owned();
            }
            None => return (subjects, pages),
        }
    }
}

async fn research_studies_and_subjects_under_the_grpc_rules(backend: Backend) {
    let stack = TestStack::start(backend, |_, s| *s = jwt_settings(s.clone())).await;
    let url = stack.url(Service::Enrollment);
    let addr = url.trim_start_matches("http://").to_owned();
    let mut c = trialops_enrollment::testing::connect(&url).await;
    let admin = jwt_token("admin-1", "administrator", None);
    for site in ["COG-101", "COG-202"] {
        let request = epb::RegisterSiteRequest {
            site_code: site.into(),
            name: format!("Site {site}"),
            request_id: request_id(),
            ..Default::default()
        };
        c.register_site(with_bearer(request, &admin)).await.unwrap();
    }
    // Five children: three at COG-101, two at COG-202; their arms as enrollment answered.
    let mut arms = BTreeMap::new();
    for (site, screening) in [
        ("COG-101", "F1"),
        ("COG-202", "F2"),
        ("COG-101", "F3"),
        ("COG-202", "F4"),
        ("COG-101", "F5"),
    ] {
        let coordinator = jwt_token(&format!("coord-{site}"), "site_coordinator", Some(site));
        let subject = enroll_as(&mut c, &coordinator, site, screening).await;
        arms.insert(subject.subject_id, (site, subject.arm_code));
    }
    let statistician = jwt_token("statistician-1", "statistician", None);

    // The CapabilityStatement needs no token and names what this service serves.
    let (status, capability) = get(&addr, "/fhir/metadata", None).await;
    assert_eq!(status, http::StatusCode::OK);
    assert_eq!(capability["resourceType"], "CapabilityStatement");
    assert_eq!(capability["fhirVersion"], "4.0.1");
    let types: Vec<&str> = capability["rest"][0]["resource"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["ResearchStudy", "ResearchSubject", "Provenance"]);

    // The trial, with ANBL1221's two arms (protocol: A irinotecan/temozolomide/temsirolimus,
    // B irinotecan/temozolomide/dinutuximab/GM-CSF) and its registry number.
    let (status, study) = get(&addr, "/fhir/ResearchStudy/ANBL1221", Some(&statistician)).await;
    assert_eq!(status, http::StatusCode::OK, "{study}");
    assert_eq!(study["id"], "ANBL1221");
    assert_eq!(study["identifier"][0]["value"], "NCT01767194");
    let arm_names: Vec<&str> = study["arm"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(arm_names, ["A", "B"]);
    let (_, studies) = get(&addr, "/fhir/ResearchStudy", Some(&statistician)).await;
    assert_eq!(studies["entry"][0]["resource"]["id"], "ANBL1221");

    // Every child, two per page: three pages, each child once, with the arm enrollment gave.
    let first = "/fhir/ResearchSubject?study=ResearchStudy/ANBL1221&_count=2";
    let (subjects, pages) = all_pages(&addr, first, &statistician).await;
    assert_eq!(pages, 3);
    let seen: BTreeMap<String, String> = subjects
        .iter()
        .map(|s| {
            assert_eq!(s["status"], "on-study-intervention", "{s}");
            assert_eq!(s["study"]["reference"], "ResearchStudy/ANBL1221");
            (
                s["id"].as_str().unwrap().to_owned(),
                s["assignedArm"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected: BTreeMap<String, String> = arms.iter().map(|(id, (_, arm))| (id.clone(), arm.clone())).collect();
    assert_eq!(seen, expected);

    // A coordinator sees their site's children only, as over gRPC: another site's is not found.
    let coordinator = jwt_token("coord-101", "site_coordinator", Some("COG-101"));
    let (own, _) = all_pages(&addr, "/fhir/ResearchSubject?study=ANBL1221", &coordinator).await;
    let own_ids: Vec<&str> = own.iter().map(|s| s["id"].as_str().unwrap()).collect();
    let expected_own: Vec<&str> = arms
        .iter()
        .filter(|(_, (site, _))| *site == "COG-101")
        .map(|(id, _)| id.as_str())
        .collect();
    assert_eq!(own_ids, expected_own);
    let other = arms.iter().find(|(_, (site, _))| *site == "COG-202").unwrap().0;
    let (status, outcome) = get(&addr, &format!("/fhir/ResearchSubject/{other}"), Some(&coordinator)).await;
    assert_eq!(status, http::StatusCode::NOT_FOUND);
    assert_eq!(issue(&outcome).0, "not-found");

    // A central reviewer reads the child without the arm.
    let reviewer = jwt_token("reviewer-1", "central_reviewer", None);
    let (status, blinded) = get(&addr, &format!("/fhir/ResearchSubject/{other}"), Some(&reviewer)).await;
    assert_eq!(status, http::StatusCode::OK, "{blinded}");
    assert!(blinded.get("assignedArm").is_none(), "{blinded}");
    assert_eq!(blinded["individual"]["identifier"]["value"], other.as_str());

    // Refusals are OperationOutcomes with FHIR's HTTP statuses, each naming what is wrong.
    let (status, outcome) = get(&addr, "/fhir/ResearchStudy/ANBL1221", None).await;
    assert_eq!(
        (status, issue(&outcome).0.as_str()),
        (http::StatusCode::UNAUTHORIZED, "login")
    );
    let (status, outcome) = get(&addr, "/fhir/ResearchSubject?_count=2", Some(&statistician)).await;
    assert_eq!(status, http::StatusCode::BAD_REQUEST);
    assert!(issue(&outcome).1.starts_with("study: required"), "{outcome}");
    let (status, outcome) = get(
        &addr,
        "/fhir/ResearchSubject?study=ANBL1221&name=x",
        Some(&statistician),
    )
    .await;
    assert_eq!(status, http::StatusCode::BAD_REQUEST);
    assert!(
        issue(&outcome).1.starts_with("name: not a search parameter"),
        "{outcome}"
    );
    let (status, outcome) = get(
        &addr,
        "/fhir/ResearchSubject?study=ANBL1221&_count=0",
        Some(&statistician),
    )
    .await;
    assert_eq!(
        (status, issue(&outcome).1.starts_with("_count")),
        (http::StatusCode::BAD_REQUEST, true)
    );
    let (status, outcome) = get(
        &addr,
        "/fhir/ResearchSubject?study=ANBL1221&status=dead",
        Some(&statistician),
    )
    .await;
    assert_eq!(
        (status, issue(&outcome).1.starts_with("status: one of")),
        (http::StatusCode::BAD_REQUEST, true)
    );
    let (status, outcome) = get(&addr, "/fhir/Patient/1", Some(&statistician)).await;
    assert_eq!(
        (status, issue(&outcome).0.as_str()),
        (http::StatusCode::NOT_FOUND, "not-found")
    );
    let (status, outcome) = fetch(&addr, "POST", "/fhir/ResearchSubject", Some(&statistician)).await;
    assert_eq!(
        (status, issue(&outcome).0.as_str()),
        (http::StatusCode::METHOD_NOT_ALLOWED, "not-supported")
    );
    // The gRPC API on the same port is unchanged.
    let request = epb::GetTrialRequest {
        trial_id: "ANBL1221".into(),
    };
    c.get_trial(with_bearer(request, &statistician)).await.unwrap();
    stack.stop().await;
}
