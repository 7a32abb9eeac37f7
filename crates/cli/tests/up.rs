//! `trialops up` as a newcomer runs it: one process, three services wired to each other, a clean
//! stop on Ctrl-C (SIGINT), development tokens from `trialops token`.

// Test code, helpers included, unwraps: a failure is a test failure with the value shown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Started, start, up};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use trialops_proto::dosing::v1 as dpb;
use trialops_proto::dosing::v1::dosing_service_client::DosingServiceClient;

async fn serving(port: u16) -> bool {
    let Ok(endpoint) = tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{port}")) else {
        return false;
    };
    let Ok(channel) = endpoint.connect().await else {
        return false;
    };
    let status = HealthClient::new(channel)
        .check(HealthCheckRequest { service: String::new() })
        .await;
    status.is_ok_and(|s| s.into_inner().status == ServingStatus::Serving as i32)
}

/// Waits until every one of `ports` serves, failing if `up` exits first or a minute passes.
async fn wait_serving(child: &mut std::process::Child, ports: &[u16]) {
    let started = Instant::now();
    for &port in ports {
        while !serving(port).await {
            assert!(started.elapsed() < Duration::from_secs(60), "port {port} never served");
            assert!(child.try_wait().ok().flatten().is_none(), "trialops up exited early");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_runs_the_three_services_and_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = up(dir.path());
    command.stderr(Stdio::null());
    let Started {
        mut child,
        ports,
        output,
    } = start(command);
    wait_serving(&mut child, &ports).await;
    // Callers need a token: `trialops token` mints one with the key `up` created.
    let mut dosing = DosingServiceClient::connect(format!("http://127.0.0.1:{}", ports[1]))
        .await
        .unwrap();
    let plan = dpb::CreateTreatmentPlanRequest {
        request_id: trialops_platform::testing::request_id(),
        subject_id: "ANBL1221-0001".into(),
    };
    let err = dosing
        .create_treatment_plan(plan.clone())
        .await
        .expect_err("a call without a token was served");
    assert_eq!(err.code(), tonic::Code::Unauthenticated);
    let minted = Command::new(env!("CARGO_BIN_EXE_trialops"))
        .args([
            "token",
            "--role",
            "pharmacist",
            "--site",
            "COG-101",
            "--subject",
            "pharmacist-3",
        ])
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(minted.status.success(), "{}", String::from_utf8_lossy(&minted.stderr));
    let token = String::from_utf8_lossy(&minted.stdout).trim().to_owned();
    // Dosing reaches enrollment with the pharmacist's token: an unknown subject is refused by
    // enrollment's answer.
    let err = dosing
        .create_treatment_plan(trialops_platform::testing::with_bearer(plan, &token))
        .await
        .expect_err("planned an unknown subject");
    assert_eq!(trialops_platform::testing::reason(&err), "SUBJECT_NOT_ENROLLED");
    // A site-bound role without a site is refused by `trialops token`, naming the option.
    let refused = Command::new(env!("CARGO_BIN_EXE_trialops"))
        .args(["token", "--role", "pharmacist", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--site"));
    for db in ["enrollment.db", "dosing.db", "outcomes.db"] {
        assert!(dir.path().join(db).exists(), "{db} not created");
    }

    interrupt(child);
    let out = output.all();
    assert!(out.contains(&format!("dosing      127.0.0.1:{}", ports[1])), "{out}");
}

/// A development token for `role` from `trialops token` with the key in `data`.
fn token(data: &std::path::Path, role: &str) -> String {
    let minted = Command::new(env!("CARGO_BIN_EXE_trialops"))
        .args(["token", "--role", role, "--data-dir"])
        .arg(data)
        .output()
        .unwrap();
    assert!(minted.status.success(), "{}", String::from_utf8_lossy(&minted.stderr));
    String::from_utf8_lossy(&minted.stdout).trim().to_owned()
}

/// Sends SIGINT and expects a clean exit.
fn interrupt(mut child: std::process::Child) {
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let started = Instant::now();
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "did not stop on Ctrl-C");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(exit.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_runs_the_three_services_on_one_postgresql_database_and_starts_again_on_it() {
    use sea_orm::{ConnectionTrait, Database, Statement};
    use trialops_platform::testing::{Backend, POSTGRES_URL_VARIABLE, TestDatabase, request_id, with_bearer};
    use trialops_proto::enrollment::v1 as epb;
    use trialops_proto::enrollment::v1::enrollment_service_client::EnrollmentServiceClient;
    let Some(db) = TestDatabase::create(Backend::Postgres).await else {
        eprintln!("skipped: {POSTGRES_URL_VARIABLE} is not set");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (data, secret) = (dir.path().join("data"), dir.path().join("randomization.secret"));
    std::fs::write(&secret, "a randomization secret of at least thirty-two bytes").unwrap();
    // Twice: the second start finds the schemas, tables and migration histories of the first.
    for round in 0..2 {
        let mut command = up(&data);
        command
            .env("TRIALOPS_DATABASE_URL", &db.url)
            .env("TRIALOPS_RANDOMIZATION_SECRET_FILE", &secret)
            .stderr(Stdio::null());
        let Started { mut child, ports, .. } = start(command);
        wait_serving(&mut child, &ports).await;
        let admin = token(&data, "administrator");
        let mut enrollment = EnrollmentServiceClient::connect(format!("http://127.0.0.1:{}", ports[0]))
            .await
            .unwrap();
        if round == 0 {
            let site = epb::RegisterSiteRequest {
                request_id: request_id(),
                site_code: "COG-777".into(),
                name: "Hospital".into(),
                ..Default::default()
            };
            enrollment.register_site(with_bearer(site, &admin)).await.unwrap();
        }
        let sites = enrollment
            .list_sites(with_bearer(epb::ListSitesRequest::default(), &admin))
            .await
            .unwrap()
            .into_inner()
            .sites;
        assert_eq!(
            sites.iter().map(|s| s.site_code.as_str()).collect::<Vec<_>>(),
            ["COG-777"]
        );
        interrupt(child);
    }
    // Each service's tables and migration history sit in its own schema.
    let conn = Database::connect(&db.url).await.unwrap();
    for (schema, table) in [
        ("trialops_enrollment", "sites"),
        ("trialops_dosing", "plans"),
        ("trialops_outcomes", "adverse_events"),
    ] {
        for wanted in [table, "seaql_migrations", "audit_events"] {
            let found = conn
                .query_one_raw(Statement::from_sql_and_values(
                    conn.get_database_backend(),
                    "SELECT count(*) AS n FROM information_schema.tables WHERE table_schema = $1 AND table_name = $2",
                    [schema.into(), wanted.into()],
                ))
                .await
                .unwrap()
                .and_then(|row| row.try_get::<i64>("", "n").ok());
            assert_eq!(found, Some(1), "{schema}.{wanted}");
        }
    }
    conn.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_serves_the_trial_a_demo_replayed_into_the_same_folder() {
    use trialops_platform::testing::with_bearer;
    use trialops_proto::enrollment::v1 as epb;
    use trialops_proto::enrollment::v1::enrollment_service_client::EnrollmentServiceClient;
    let dir = tempfile::tempdir().unwrap();
    let demo = Command::new(env!("CARGO_BIN_EXE_trialops"))
        .args(["demo", "--json", "--seed", "3", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(demo.status.success(), "{}", String::from_utf8_lossy(&demo.stderr));
    let report: serde_json::Value = serde_json::from_slice(&demo.stdout).unwrap();
    let enrolled = report["run"]["enrolled"].as_u64().unwrap();

    let mut command = up(dir.path());
    command.stderr(Stdio::null());
    let Started { mut child, ports, .. } = start(command);
    wait_serving(&mut child, &ports[..1]).await;
    let admin = token(dir.path(), "administrator");
    let mut enrollment = EnrollmentServiceClient::connect(format!("http://127.0.0.1:{}", ports[0]))
        .await
        .unwrap();
    let list = epb::ListSubjectsRequest {
        trial_id: "ANBL1221".into(),
        page_size: 1000,
        ..Default::default()
    };
    let subjects = enrollment
        .list_subjects(with_bearer(list, &admin))
        .await
        .unwrap()
        .into_inner()
        .subjects;
    assert_eq!(subjects.len() as u64, enrolled);
    interrupt(child);
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_data_folder_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut command = up(&data);
    command.stderr(Stdio::null());
    let Started { mut child, ports, .. } = start(command);
    // The services are bound: their databases are open (and in WAL mode, with -wal and -shm).
    wait_serving(&mut child, &ports).await;
    let mode = |path: &std::path::Path| {
        std::fs::metadata(path)
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    };
    assert_eq!(mode(&data), 0o700, "the data folder");
    let mut files: Vec<_> = std::fs::read_dir(&data).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    let names: Vec<String> = files
        .iter()
        .filter_map(|f| f.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    for expected in [
        "dev-jwt-hs256.key",
        "enrollment-randomization.secret",
        "enrollment.db",
        "enrollment.db-wal",
        "enrollment.db-shm",
        "dosing.db",
        "outcomes.db",
    ] {
        assert!(names.iter().any(|n| n == expected), "{expected} missing: {names:?}");
    }
    for file in &files {
        assert_eq!(mode(file), 0o600, "{}", file.display());
    }
    let _ = Command::new("kill").args(["-INT", &child.id().to_string()]).status();
    let _ = child.wait();
}
