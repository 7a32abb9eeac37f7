//! Benchmark (not a test): the read paths under load, each beside its floor measured in the same
//! run. The three services run on fresh PostgreSQL databases, on threads of their own; a trial's
//! subjects are loaded directly through the store. Then, at 1, 8 and 32 callers (one HTTP/2
//! connection each), for a fixed time each:
//!
//! - `GetTrial`, an RPC that reads no database (the trial is in memory): the RPC floor;
//! - pgbench running the SELECT `GetSubject` makes: the database floor;
//! - `GetSubject` on random subjects, against the combined floor
//!   1 / (1 / RPC floor + 1 / database floor) (target: at least 70%);
//! - pgbench running the SELECT of a `ListSubjects` page, and `ListSubjects` walking 100-row
//!   pages.
//!
//! ```sh
//! TRIALOPS_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test \
//!     cargo bench -p trialops-stack --bench read_path
//! ```
//!
//! `TRIALOPS_BENCH_SECONDS` sets each phase's length (default 5), `TRIALOPS_BENCH_SUBJECTS` the
//! trial's size (default 10,000). It prints a table and the same figures as JSON.

// A benchmark program, not service code: a failed setup step ends it with the reason shown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::Duration;

mod support;

use support::{Random, TRIAL, load_subjects, setting, subject_id};
use tonic::transport::Channel;
use trialops_platform::testing::load::{Caller, Figures, closed_loop, pgbench};
use trialops_platform::testing::{Backend, POSTGRES_URL_VARIABLE};
use trialops_proto::enrollment::v1 as pb;
use trialops_proto::enrollment::v1::enrollment_service_client::EnrollmentServiceClient;
use trialops_stack::Service;

const CALLERS: [usize; 3] = [1, 8, 32];
const PAGE: i32 = 100;

fn main() {
    trialops_platform::testing::load::runtime("callers").block_on(run(
        Duration::from_secs(setting("TRIALOPS_BENCH_SECONDS", 5)),
        setting("TRIALOPS_BENCH_SUBJECTS", 10_000) as usize,
    ));
}

async fn run(phase: Duration, subjects: usize) {
    if std::env::var(POSTGRES_URL_VARIABLE)
        .ok()
        .filter(|u| !u.is_empty())
        .is_none()
    {
        println!("the read-path benchmark runs on PostgreSQL beside pgbench: set {POSTGRES_URL_VARIABLE}");
        return;
    }
    println!(
        "Read paths on PostgreSQL, {subjects} subjects, {} s per phase, {} cores",
        phase.as_secs(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let (server_threads, stack) = support::start(Backend::Postgres).await;
    let enrollment_db = stack.dbs[Service::Enrollment as usize].url.clone();
    load_subjects(&enrollment_db, 1, subjects).await;
    let url = stack.url(Service::Enrollment);
    let scripts = tempfile::tempdir().unwrap();
    let get_subject_sql = write_script(
        scripts.path(),
        "get-subject.sql",
        &format!(
            "\\set n random(1, {subjects})\n\
             SELECT * FROM subjects WHERE subject_id = '{TRIAL}-B' || lpad(:n::text, 7, '0');\n"
        ),
    );
    let page_sql = write_script(
        scripts.path(),
        "list-subjects.sql",
        &format!(
            "\\set n random(0, {})\n\
             SELECT * FROM subjects WHERE trial_id = '{TRIAL}' AND subject_id > '{TRIAL}-B' || lpad(:n::text, 7, '0') \
             ORDER BY subject_id LIMIT {};\n",
            subjects.saturating_sub(PAGE as usize),
            PAGE + 1
        ),
    );

    println!("{}", Figures::header());
    let mut rows = Vec::new();
    let mut summary = Vec::new();
    for callers in CALLERS {
        let rpc = closed_loop(
            "GetTrial (no database)",
            Reader::all(&url, callers, Read::Trial).await,
            phase,
        )
        .await;
        rpc.print();
        let db = pgbench(
            "pgbench: GetSubject's SELECT",
            &enrollment_db,
            &get_subject_sql,
            callers,
            phase,
            &[],
        );
        db.print();
        let ours = closed_loop(
            "GetSubject",
            Reader::all(&url, callers, Read::Subject(subjects)).await,
            phase,
        )
        .await;
        ours.print();
        let floor = 1.0 / (1.0 / rpc.per_second + 1.0 / db.per_second);
        let share = ours.per_second / floor;
        println!(
            "{:<44} {callers:>7} {floor:>12.0}   GetSubject at {:.0}% of it (target: at least 70%)",
            "  combined floor",
            share * 100.0
        );
        summary.push(serde_json::json!({
            "call": "GetSubject", "callers": callers, "per_second": ours.per_second,
            "floor_per_second": floor, "share_of_floor": share,
        }));
        rows.extend([rpc, db, ours]);
    }
    for callers in CALLERS {
        let db = pgbench(
            "pgbench: a ListSubjects page's SELECT",
            &enrollment_db,
            &page_sql,
            callers,
            phase,
            &[],
        );
        db.print();
        let ours = closed_loop(
            "ListSubjects, 100-row pages",
            Reader::all(&url, callers, Read::Pages(String::new())).await,
            phase,
        )
        .await;
        ours.print();
        summary.push(serde_json::json!({
            "call": "ListSubjects", "callers": callers, "per_second": ours.per_second,
            "database_per_second": db.per_second, "share_of_database": ours.per_second / db.per_second,
        }));
        rows.extend([db, ours]);
    }
    let json = serde_json::json!({
        "subjects": subjects,
        "phase_seconds": phase.as_secs(),
        "figures": rows.iter().map(Figures::json).collect::<Vec<_>>(),
        "summary": summary,
    });
    println!("{json}");
    support::stop(server_threads, stack).await;
}

fn write_script(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// What a reader reads.
#[derive(Clone)]
enum Read {
    /// GetTrial.
    Trial,
    /// GetSubject on random subjects of this many.
    Subject(usize),
    /// ListSubjects, walking the pages from this token.
    Pages(String),
}

/// A caller reading over a connection of its own.
struct Reader {
    client: EnrollmentServiceClient<Channel>,
    read: Read,
    random: Random,
}

impl Reader {
    async fn all(url: &str, callers: usize, read: Read) -> Vec<Reader> {
        let mut all = Vec::new();
        for caller in 0..callers {
            all.push(Reader {
                client: EnrollmentServiceClient::connect(url.to_owned()).await.unwrap(),
                read: read.clone(),
                random: Random(0x1221 + caller as u64),
            });
        }
        all
    }
}

impl Caller for Reader {
    async fn call(&mut self, _turn: u64) -> Result<(), String> {
        let failed = |e: tonic::Status| format!("{e:?}");
        match self.read.clone() {
            Read::Trial => {
                let request = pb::GetTrialRequest { trial_id: TRIAL.into() };
                self.client.get_trial(request).await.map_err(failed)?;
            }
            Read::Subject(count) => {
                let request = pb::GetSubjectRequest {
                    subject_id: subject_id(self.random.pick(count)),
                };
                self.client.get_subject(request).await.map_err(failed)?;
            }
            Read::Pages(token) => {
                let request = pb::ListSubjectsRequest {
                    trial_id: TRIAL.into(),
                    page_size: PAGE,
                    page_token: token,
                    ..Default::default()
                };
                let page = self.client.list_subjects(request).await.map_err(failed)?.into_inner();
                if page.subjects.len() != PAGE as usize && !page.next_page_token.is_empty() {
                    return Err(format!("a page of {} subjects", page.subjects.len()));
                }
                self.read = Read::Pages(page.next_page_token);
            }
        }
        Ok(())
    }
}
