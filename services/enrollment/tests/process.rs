//! The service as Kubernetes runs it: a real process, the `migrate` subcommand, health probes,
//! and SIGTERM (health NOT_SERVING while draining, then exit 0).

// Test code, helpers included, unwraps: a failure is a test failure with the value shown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::request_id;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use trialops_platform::testing::{Backend, OutputLines, TestDatabase};

const BIN: &str = env!("CARGO_BIN_EXE_trialops-enrollment");

/// The service on port 0 for its gRPC, health and metrics ports: it binds free ones itself and
/// names them in its "listening" log line, so no port is chosen here and released for a race.
fn command(dir: &Path, database_url: &str) -> Command {
    let secret = dir.join("secret");
    std::fs::write(&secret, "0123456789abcdef0123456789abcdef-test-only").unwrap();
    let mut cmd = Command::new(BIN);
    cmd.env("TRIALOPS_LISTEN_ADDR", "127.0.0.1:0")
        .env("TRIALOPS_DATA_DIR", dir)
        .env("TRIALOPS_DATABASE_URL", database_url)
        .env("TRIALOPS_HEALTH_LISTEN_ADDR", "127.0.0.1:0")
        .env("TRIALOPS_METRICS_LISTEN_ADDR", "127.0.0.1:0")
        .env("TRIALOPS_RANDOMIZATION_SECRET_FILE", &secret)
        .env(
            "TRIALOPS_AUDIT_SIGNING_KEY_FILE",
            trialops_platform::testing::audit_key_file(),
        )
        .env("TRIALOPS_MIGRATE_ON_START", "never")
        .env("TRIALOPS_DRAIN_DELAY_SECONDS", "2")
        .env("TRIALOPS_LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

async fn health(addr: SocketAddr, service: &str) -> Option<i32> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .ok()?
        .connect()
        .await
        .ok()?;
    let mut client = HealthClient::new(channel);
    let response = client
        .check(HealthCheckRequest {
            service: service.to_owned(),
        })
        .await
        .ok()?;
    Some(response.into_inner().status)
}

async fn wait_serving(addr: SocketAddr, child: &mut Child) {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the service exited early: {status}");
        }
        if health(addr, "").await == Some(ServingStatus::Serving as i32) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the service did not report SERVING within 30 s");
}

fn wait_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("the service did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The gRPC, health and metrics addresses of a JSON "listening" log line.
fn listening(line: &str) -> Option<[SocketAddr; 3]> {
    let fields: serde_json::Value = serde_json::from_str(line).ok()?;
    if fields["message"] != "listening" {
        return None;
    }
    let addr = |key: &str| fields[key].as_str()?.parse().ok();
    Some([addr("address")?, addr("health_address")?, addr("metrics_address")?])
}

async fn scrape(addr: SocketAddr) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("metrics port");
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut body = String::new();
    stream.read_to_string(&mut body).await.unwrap();
    assert!(
        body.starts_with("HTTP/1.0 200") || body.starts_with("HTTP/1.1 200"),
        "{body}"
    );
    body
}

fn terminate(child: &Child) {
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .expect("kill");
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_then_serve_then_drain_on_sigterm() {
    // PostgreSQL when configured (as in production), else SQLite.
    let backend = if std::env::var(trialops_platform::testing::POSTGRES_URL_VARIABLE).is_ok_and(|v| !v.is_empty()) {
        Backend::Postgres
    } else {
        Backend::Sqlite
    };
    let db = TestDatabase::create(backend).await.expect("no database");
    let dir = tempfile::tempdir().unwrap();

    // With migrations pending and migrate_on_start=never, the service refuses to start.
    let refused = command(dir.path(), &db.url).output().unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("migration(s) pending"), "{stderr}");

    // The migrate subcommand (the Kubernetes Job) applies them and exits 0.
    let migrated = command(dir.path(), &db.url).arg("migrate").output().unwrap();
    assert!(
        migrated.status.success(),
        "{}",
        String::from_utf8_lossy(&migrated.stderr)
    );

    let mut child = command(dir.path(), &db.url).spawn().unwrap();
    let out = OutputLines::read(child.stdout.take().expect("stdout is piped"));
    let [addr, health_addr, metrics_addr] = out.wait_for(Duration::from_secs(60), "the listening line", listening);
    wait_serving(addr, &mut child).await;
    assert_eq!(
        health(addr, "trialops.enrollment.v1.EnrollmentService").await,
        Some(ServingStatus::Serving as i32)
    );

    // A call carrying W3C trace context: its log lines (here the replay notice) name the trace.
    let mut client = trialops_proto::enrollment::v1::enrollment_service_client::EnrollmentServiceClient::connect(
        format!("http://{addr}"),
    )
    .await
    .unwrap();
    let register = trialops_proto::enrollment::v1::RegisterSiteRequest {
        request_id: request_id(),
        site_code: "COG-101".into(),
        name: "Children's Hospital".into(),
        ..Default::default()
    };
    for _ in 0..2 {
        let mut request = tonic::Request::new(register.clone());
        request.metadata_mut().insert(
            "traceparent",
            tonic::metadata::MetadataValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        );
        client.register_site(request).await.unwrap();
    }

    // Prometheus metrics on the admin port: both calls counted (OK) and timed.
    let metrics = scrape(metrics_addr).await;
    let service = "trialops.enrollment.v1.EnrollmentService";
    assert!(
        metrics.contains(&format!(
            "trialops_rpc_requests_total{{code=\"0\",method=\"RegisterSite\",service=\"{service}\"}} 2"
        )),
        "{metrics}"
    );
    assert!(metrics.contains(&format!(
        "trialops_rpc_duration_seconds_count{{method=\"RegisterSite\",service=\"{service}\"}} 2"
    )));

    terminate(&child);
    // During the 2 s drain delay health answers NOT_SERVING, so kubelet and load balancers
    // stop routing before the server stops accepting.
    let mut saw_not_serving = false;
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(1500) {
        if health(health_addr, "").await == Some(ServingStatus::NotServing as i32) {
            saw_not_serving = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(saw_not_serving, "health never reported NOT_SERVING while draining");
    let status = wait_exit(&mut child, Duration::from_secs(20));
    assert_eq!(status.code(), Some(0), "SIGTERM must end in a clean exit");

    // Logs are JSON lines; none carries a screening or subject identifier at start-up.
    let out = out.all();
    assert!(
        out.lines().filter(|l| !l.is_empty()).all(|l| l.starts_with('{')),
        "{out}"
    );
    assert!(out.contains("SIGTERM received"), "{out}");
    let replay = out
        .lines()
        .find(|l| l.contains("replayed response"))
        .unwrap_or_else(|| panic!("no replay line: {out}"));
    assert!(
        replay.contains("\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\""),
        "{replay}"
    );
    assert!(!out.contains("Children's Hospital"), "request bodies are not logged");
}
