//! Benchmark (not a test): the write path under load. An enrollment server runs on a fresh
//! database, on threads of its own; 1, 4 and 16 callers (one HTTP/2 connection each) call EnrollSubject back to back
//! for a fixed time; then 16 callers are paced at half the peak rate. Beside them, on the same
//! PostgreSQL in the same run, pgbench runs the EnrollSubject transaction as trialops first
//! built it (24 statements, `benches/baseline/enroll-v1.sql`). Latency percentiles are exact:
//! every call's latency is kept and sorted.
//!
//!     TRIALOPS_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test \
//!         cargo bench -p trialops-enrollment --bench write_path
//!
//! Without the variable only SQLite runs. `TRIALOPS_BENCH_SECONDS` sets each phase's length
//! (default 10). Candidates are screened beforehand by inserting their screenings directly, so
//! the phases time EnrollSubject alone.

// A benchmark program, not service code: a failed setup step ends it with the reason shown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sea_orm::{ActiveValue::Set, ConnectionTrait, Database, DatabaseConnection, EntityTrait};
use trialops_enrollment::store::screening;
use trialops_enrollment::testing::{Client, connect, enroll_request, register_site, start_on, strata};
use trialops_platform::testing::{Backend, POSTGRES_URL_VARIABLE, TestDatabase};

const SITE: &str = "BENCH-1";
const CALLERS: [usize; 3] = [1, 4, 16];
/// The four ANBL1221 strata, taken in turn.
const STRATA: [(&str, &str); 4] = [
    ("prior_irinotecan_temozolomide", "amplified"),
    ("prior_irinotecan_temozolomide", "not_amplified"),
    ("no_prior_irinotecan_temozolomide", "amplified"),
    ("no_prior_irinotecan_temozolomide", "not_amplified"),
];

/// One phase's figures.
struct Figures {
    label: String,
    callers: usize,
    errors: usize,
    per_second: f64,
    latencies: Vec<Duration>,
}

impl Figures {
    fn percentile(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((p / 100.0) * self.latencies.len() as f64).ceil() as usize;
        self.latencies[rank.clamp(1, self.latencies.len()) - 1]
    }

    fn print(&self) {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "{:<34} {:>7} {:>12.0} {:>9.2} {:>9.2} {:>9.2} {:>7}",
            self.label,
            self.callers,
            self.per_second,
            ms(self.percentile(50.0)),
            ms(self.percentile(99.0)),
            ms(self.latencies.last().copied().unwrap_or_default()),
            self.errors,
        );
    }

    fn new(label: String, callers: usize, errors: usize, elapsed: Duration, mut latencies: Vec<Duration>) -> Figures {
        latencies.sort();
        Figures {
            label,
            callers,
            errors,
            per_second: latencies.len() as f64 / elapsed.as_secs_f64(),
            latencies,
        }
    }
}

fn main() {
    let seconds: u64 = std::env::var("TRIALOPS_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(Duration::from_secs(seconds)));
}

async fn run(phase: Duration) {
    let postgres = std::env::var(POSTGRES_URL_VARIABLE).ok().filter(|u| !u.is_empty());
    println!(
        "EnrollSubject under load, {} s per phase, {} cores",
        phase.as_secs(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "{:<34} {:>7} {:>12} {:>9} {:>9} {:>9} {:>7}",
        "", "callers", "per second", "p50 ms", "p99 ms", "max ms", "errors"
    );
    let mut rows = Vec::new();
    if let Some(url) = &postgres {
        rows.extend(pgbench_phases(url, phase).await);
        rows.extend(service_phases(Backend::Postgres, "trialops on PostgreSQL", phase).await);
    } else {
        println!("(PostgreSQL and pgbench skipped: {POSTGRES_URL_VARIABLE} is not set)");
    }
    rows.extend(service_phases(Backend::Sqlite, "trialops on SQLite", phase).await);
    let at = |label: &str, callers: usize| {
        rows.iter()
            .find(|f| f.label.starts_with(label) && f.callers == callers)
            .map(|f| f.per_second)
    };
    if let (Some(ours), Some(baseline)) = (at("trialops on PostgreSQL", 16), at("pgbench", 16)) {
        println!(
            "16 callers on PostgreSQL: {ours:.0}/s against pgbench's {baseline:.0}/s with the 24-statement \
             transaction = {:.2}x (target: at least 2x)",
            ours / baseline
        );
    }
    for f in rows.iter().filter(|f| f.label.contains("half the peak")) {
        let (p50, p99) = (f.percentile(50.0), f.percentile(99.0));
        println!(
            "{}: p99 / p50 = {:.2} (target: at most 3)",
            f.label,
            p99.as_secs_f64() / p50.as_secs_f64().max(1e-9)
        );
    }
}

/// The service's phases on `backend`: closed loops at 1, 4 and 16 callers, then 16 callers paced
/// at half the best rate.
async fn service_phases(backend: Backend, label: &str, phase: Duration) -> Vec<Figures> {
    let db = TestDatabase::create(backend).await.unwrap();
    // The server on threads of its own, as a deployment's would be: the callers' work does not
    // take its turns.
    let server_threads = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("server")
        .enable_all()
        .build()
        .unwrap();
    let url = db.url.clone();
    let server = server_threads.spawn(async move { start_on(&url).await }).await.unwrap();
    let mut admin = connect(&server.url()).await;
    register_site(&mut admin, SITE).await;
    let store = Database::connect(db.url.as_str()).await.unwrap();
    let candidates = Arc::new(Candidates::default());
    let mut rows = Vec::new();
    for callers in CALLERS {
        // Generous: more candidates than any phase has enrolled here.
        candidates.screen(&store, 4000 * phase.as_secs() as usize).await;
        let f = closed_loop(&server.url(), label, callers, phase, &candidates).await;
        f.print();
        rows.push(f);
    }
    let peak = rows.iter().map(|f| f.per_second).fold(0.0, f64::max);
    candidates.screen(&store, 4000 * phase.as_secs() as usize).await;
    let half = format!("{label}, half the peak ({:.0}/s)", peak / 2.0);
    let f = paced(&server.url(), &half, 16, peak / 2.0, phase, &candidates).await;
    f.print();
    rows.push(f);
    server.stop().await;
    server_threads.shutdown_background();
    rows
}

/// Screened candidates not yet enrolled.
#[derive(Default)]
struct Candidates {
    screened: AtomicUsize,
    taken: AtomicUsize,
}

impl Candidates {
    /// Records `count` more eligible screenings at the site, today.
    async fn screen(&self, store: &DatabaseConnection, count: usize) {
        let from = self.screened.load(Ordering::SeqCst);
        let today = chrono::Utc::now().date_naive();
        let rows: Vec<_> = (from..from + count)
            .map(|i| screening::ActiveModel {
                id: Set(uuid::Uuid::new_v4().to_string()),
                trial_id: Set("ANBL1221".into()),
                screening_id: Set(format!("SCR-B{i}")),
                attempt: Set(1),
                site_code: Set(SITE.into()),
                assessed_on: Set(today),
                eligible: Set(true),
                results_json: Set("[]".into()),
                values_json: Set("[]".into()),
                recorded_at: Set(chrono::Utc::now()),
                protocol_version: Set("2.0".into()),
            })
            .collect();
        for chunk in rows.chunks(500) {
            screening::Entity::insert_many(chunk.to_vec())
                .exec_without_returning(store)
                .await
                .unwrap();
        }
        self.screened.store(from + count, Ordering::SeqCst);
    }

    /// The next candidate's screening id, if any is left.
    fn next(&self) -> Option<String> {
        let i = self.taken.fetch_add(1, Ordering::SeqCst);
        (i < self.screened.load(Ordering::SeqCst)).then(|| format!("SCR-B{i}"))
    }
}

/// Enrolls one candidate; its latency, or none if the call failed.
async fn enroll_one(client: &mut Client, candidates: &Candidates, turn: usize) -> Option<Duration> {
    let screening_id = candidates.next()?;
    let (prior, mycn) = STRATA[turn % STRATA.len()];
    let request = enroll_request(SITE, &screening_id, strata(prior, mycn));
    let started = Instant::now();
    match client.enroll_subject(request).await {
        Ok(_) => Some(started.elapsed()),
        Err(status) => {
            eprintln!("EnrollSubject {screening_id}: {status:?}");
            None
        }
    }
}

/// `callers` callers enrolling back to back for `phase`.
async fn closed_loop(url: &str, label: &str, callers: usize, phase: Duration, candidates: &Arc<Candidates>) -> Figures {
    let started = Instant::now();
    let deadline = started + phase;
    let mut tasks = Vec::new();
    for caller in 0..callers {
        let (url, candidates) = (url.to_owned(), candidates.clone());
        tasks.push(tokio::spawn(async move {
            let mut client = connect(&url).await;
            let (mut latencies, mut errors) = (Vec::new(), 0);
            let mut turn = caller;
            while Instant::now() < deadline {
                match enroll_one(&mut client, &candidates, turn).await {
                    Some(latency) => latencies.push(latency),
                    None => errors += 1,
                }
                turn += 1;
            }
            (latencies, errors)
        }));
    }
    collect(label.to_owned(), callers, started, tasks).await
}

/// `callers` callers sharing a schedule of `rate` calls per second for `phase`. A call's latency
/// runs from its scheduled start, so a call held up behind a slow one counts the wait.
async fn paced(
    url: &str,
    label: &str,
    callers: usize,
    rate: f64,
    phase: Duration,
    candidates: &Arc<Candidates>,
) -> Figures {
    let started = tokio::time::Instant::now();
    let slots = Arc::new(AtomicU64::new(0));
    let total = (rate * phase.as_secs_f64()) as u64;
    let mut tasks = Vec::new();
    for _ in 0..callers {
        let (url, candidates, slots) = (url.to_owned(), candidates.clone(), slots.clone());
        tasks.push(tokio::spawn(async move {
            let mut client = connect(&url).await;
            let (mut latencies, mut errors) = (Vec::new(), 0);
            loop {
                let slot = slots.fetch_add(1, Ordering::SeqCst);
                if slot >= total {
                    break;
                }
                let at = started + Duration::from_secs_f64(slot as f64 / rate);
                tokio::time::sleep_until(at).await;
                match enroll_one(&mut client, &candidates, slot as usize).await {
                    Some(_) => latencies.push(at.elapsed()),
                    None => errors += 1,
                }
            }
            (latencies, errors)
        }));
    }
    collect(label.to_owned(), callers, started.into_std(), tasks).await
}

async fn collect(
    label: String,
    callers: usize,
    started: Instant,
    tasks: Vec<tokio::task::JoinHandle<(Vec<Duration>, usize)>>,
) -> Figures {
    let (mut latencies, mut errors) = (Vec::new(), 0);
    for task in tasks {
        let (l, e) = task.await.unwrap();
        latencies.extend(l);
        errors += e;
    }
    Figures::new(label, callers, errors, started.elapsed(), latencies)
}

/// pgbench running the baseline transaction at 1, 4 and 16 clients, on a database made from the
/// baseline schema.
async fn pgbench_phases(server: &str, phase: Duration) -> Vec<Figures> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/baseline");
    let name = format!("trialops_bench_v1_{}", uuid::Uuid::new_v4().simple());
    let admin = Database::connect(server).await.unwrap();
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    let url = trialops_platform::testing::with_database(server, &name);
    let loaded = Command::new("psql")
        .args(["-q", "-v", "ON_ERROR_STOP=1", "-d", &url, "-f"])
        .arg(dir.join("enroll-v1-schema.sql"))
        .status()
        .unwrap();
    assert!(loaded.success(), "psql could not load the baseline schema");
    let logs = tempfile::tempdir().unwrap();
    let mut rows = Vec::new();
    for clients in CALLERS {
        let prefix = logs.path().join(format!("c{clients}"));
        let started = Instant::now();
        let out = Command::new("pgbench")
            .args([
                "-n",
                "-M",
                "prepared",
                "-D",
                &format!("site={SITE}"),
                "-D",
                "screening=SCR-BENCH-1",
            ])
            .args(["-c", &clients.to_string(), "-j", &clients.min(2).to_string()])
            .args(["-T", &phase.as_secs().to_string(), "-l", "--log-prefix"])
            .arg(&prefix)
            .arg("-f")
            .arg(dir.join("enroll-v1.sql"))
            .arg(&url)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pgbench: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let f = pgbench_figures(&prefix, clients, started.elapsed().min(phase));
        f.print();
        rows.push(f);
    }
    drop(admin.close().await);
    let admin = Database::connect(server).await.unwrap();
    if let Err(e) = admin.execute_unprepared(&format!("DROP DATABASE {name}")).await {
        eprintln!("the baseline database {name} could not be dropped: {e}");
    }
    rows
}

/// pgbench's per-transaction logs (`client transaction latency_us script epoch us`, one file
/// per thread) as figures.
fn pgbench_figures(prefix: &Path, clients: usize, elapsed: Duration) -> Figures {
    let stem = prefix
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_owned();
    let mut latencies = Vec::new();
    let mut errors = 0;
    for entry in std::fs::read_dir(prefix.parent().unwrap()).unwrap() {
        let path = entry.unwrap().path();
        let file = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if !file.starts_with(&format!("{stem}.")) {
            continue;
        }
        for line in std::fs::read_to_string(&path).unwrap().lines() {
            match line.split_whitespace().nth(2).map(str::parse::<u64>) {
                Some(Ok(us)) => latencies.push(Duration::from_micros(us)),
                _ => errors += 1,
            }
        }
    }
    Figures::new(
        "pgbench, the 24-statement baseline".into(),
        clients,
        errors,
        elapsed,
        latencies,
    )
}
