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
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use sea_orm::{ActiveValue::Set, ConnectionTrait, Database, DatabaseConnection, EntityTrait};
use trialops_enrollment::store::screening;
use trialops_enrollment::testing::{Client, connect, enroll_request, register_site, start_on, strata};
use trialops_platform::testing::load::{
    Caller, Figures, pgbench, print_json, print_tail_ratios, print_title, write_out, write_phases,
};
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

fn main() {
    let seconds: u64 = std::env::var("TRIALOPS_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    trialops_platform::testing::load::runtime("callers").block_on(run(Duration::from_secs(seconds)));
}

async fn run(phase: Duration) {
    let postgres = std::env::var(POSTGRES_URL_VARIABLE).ok().filter(|u| !u.is_empty());
    print_title("EnrollSubject under load", phase);
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
    print_tail_ratios(rows.iter().filter(|f| f.label.starts_with("trialops")), 3.0);
    print_json(phase, &rows);
}

/// The service's phases on `backend`: closed loops at 1, 4 and 16 callers, then 16 callers paced
/// at half the best rate.
async fn service_phases(backend: Backend, label: &str, phase: Duration) -> Vec<Figures> {
    let db = TestDatabase::create(backend).await.unwrap();
    // The server on threads of its own, as a deployment's would be: the callers' work does not
    // take its turns.
    let server_threads = trialops_platform::testing::load::runtime("server");
    let url = db.url.clone();
    let server = server_threads.spawn(async move { start_on(&url).await }).await.unwrap();
    let mut admin = connect(&server.url()).await;
    register_site(&mut admin, SITE).await;
    let store = Database::connect(db.url.as_str()).await.unwrap();
    let candidates = Arc::new(Candidates::default());
    let rows = write_phases(label, &CALLERS, phase, async |callers| {
        // Generous: more candidates than any phase has enrolled here.
        candidates.screen(&store, 4000 * phase.as_secs() as usize).await;
        if backend == Backend::Postgres {
            // The statistics autovacuum keeps in a running deployment (it analyzes a table once
            // 10% of it has changed, checking every minute: longer than a phase here). Without
            // them the plans cached for the enrollment's reads are made for empty tables: the
            // subject already enrolled from a screening is looked for through the index by
            // status, which reads every subject of the trial.
            store.execute_unprepared("ANALYZE").await.unwrap();
        }
        write_out(&store).await;
        Enroller::all(&server.url(), callers, &candidates).await
    })
    .await;
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

/// A caller enrolling the screened candidates in turn, over a connection of its own.
struct Enroller {
    client: Client,
    candidates: Arc<Candidates>,
}

impl Enroller {
    async fn all(url: &str, callers: usize, candidates: &Arc<Candidates>) -> Vec<Enroller> {
        let mut all = Vec::new();
        for _ in 0..callers {
            all.push(Enroller {
                client: connect(url).await,
                candidates: candidates.clone(),
            });
        }
        all
    }
}

impl Caller for Enroller {
    async fn call(&mut self, turn: u64) -> Result<(), String> {
        let screening_id = self.candidates.next().ok_or("no screened candidate is left")?;
        let (prior, mycn) = STRATA[turn as usize % STRATA.len()];
        let request = enroll_request(SITE, &screening_id, strata(prior, mycn));
        match self.client.enroll_subject(request).await {
            Ok(_) => Ok(()),
            Err(status) => Err(format!("EnrollSubject {screening_id}: {status:?}")),
        }
    }
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
    let mut rows = Vec::new();
    for clients in CALLERS {
        let defines = [("site", SITE.to_owned()), ("screening", "SCR-BENCH-1".to_owned())];
        let script = dir.join("enroll-v1.sql");
        let f = pgbench(
            "pgbench, the 24-statement baseline",
            &url,
            &script,
            clients,
            phase,
            &defines,
        );
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
