//! Benchmark (not a test): `RecordAdministration` under load, the ward's write. The three
//! services run on fresh databases, on threads of their own; subjects are enrolled, planned and
//! started on cycle 1 through the API, and then many more planned administrations are added to
//! their first cycle directly through the store (copies of the cycle's day-1 administrations under
//! new ids), so the phases time the recording alone. Callers (one HTTP/2 connection each) record
//! them as given, back to back at 1, 4 and 16 callers, then 16 callers paced at half the peak
//! rate; on PostgreSQL when it is configured, and on SQLite, the embedded default.
//!
//! ```sh
//! TRIALOPS_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test \
//!     cargo bench -p trialops-stack --bench record_administration
//! ```
//!
//! `TRIALOPS_BENCH_SECONDS` sets each phase's length (default 5). It prints a table, each
//! phase's p99 / p50 and the same figures as JSON.

// A benchmark program, not service code: a failed setup step ends it with the reason shown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

mod support;

use sea_orm::{ActiveValue::Set, Database, DatabaseConnection, EntityTrait};
use support::setting;
use tonic::transport::Channel;
use trialops_dosing::store::administration;
use trialops_platform::testing::load::{
    Caller, Figures, print_json, print_tail_ratios, print_title, write_out, write_phases,
};
use trialops_platform::testing::{Backend, POSTGRES_URL_VARIABLE};
use trialops_proto::dosing::v1::dosing_service_client::DosingServiceClient;
use trialops_stack::Service;

const CALLERS: [usize; 3] = [1, 4, 16];
/// Subjects on cycle 1 whose administrations are recorded.
const SUBJECTS: usize = 16;

fn main() {
    let phase = Duration::from_secs(setting("TRIALOPS_BENCH_SECONDS", 5));
    trialops_platform::testing::load::runtime("callers").block_on(run(phase));
}

async fn run(phase: Duration) {
    let postgres = std::env::var(POSTGRES_URL_VARIABLE).ok().filter(|u| !u.is_empty());
    print_title("RecordAdministration under load", phase);
    let mut rows = Vec::new();
    if postgres.is_some() {
        rows.extend(phases(Backend::Postgres, "RecordAdministration, PostgreSQL", phase).await);
    } else {
        println!("(PostgreSQL skipped: {POSTGRES_URL_VARIABLE} is not set)");
    }
    rows.extend(phases(Backend::Sqlite, "RecordAdministration, SQLite", phase).await);
    print_tail_ratios(&rows, 3.0);
    print_json(phase, &rows);
}

async fn phases(backend: Backend, label: &str, phase: Duration) -> Vec<Figures> {
    let (server_threads, stack) = support::start(backend).await;
    // Day-1 administrations of subjects on cycle 1 from today: the templates of what is recorded.
    let subjects = support::on_first_cycle(&stack, SUBJECTS).await;
    let templates = support::due_today(&stack, &subjects).await;
    let store = Database::connect(stack.dbs[Service::Dosing as usize].url.as_str())
        .await
        .unwrap();
    let planned = Arc::new(Planned {
        templates,
        ids: Default::default(),
        taken: AtomicUsize::new(0),
    });
    let url = stack.url(Service::Dosing);
    let rows = write_phases(label, &CALLERS, phase, async |callers| {
        // Generous: more administrations than any phase has recorded here.
        planned.add(&store, 3000 * phase.as_secs() as usize).await;
        write_out(&store).await;
        let mut all = Vec::new();
        for _ in 0..callers {
            all.push(Recorder {
                client: DosingServiceClient::connect(url.clone()).await.unwrap(),
                planned: planned.clone(),
            });
        }
        all
    })
    .await;
    store.close().await.unwrap();
    support::stop(server_threads, stack).await;
    rows
}

/// Planned administrations not yet recorded: copies of the day-1 templates under new ids.
struct Planned {
    templates: Vec<administration::Model>,
    /// Ids added so far, with their prescribed dose.
    ids: std::sync::Mutex<Vec<(String, String)>>,
    taken: AtomicUsize,
}

impl Planned {
    /// Adds `count` planned administrations, taking the templates in turn.
    async fn add(&self, store: &DatabaseConnection, count: usize) {
        let from = self.ids.lock().unwrap().len();
        let rows: Vec<administration::ActiveModel> = (from..from + count)
            .map(|n| {
                let t = &self.templates[n % self.templates.len()];
                administration::ActiveModel {
                    administration_id: Set(format!("ADM-B{n:07}")),
                    worklist_key: Set(format!("{}|B{n:07}", t.worklist_key)),
                    ..administration::ActiveModel::from(t.clone())
                }
            })
            .collect();
        let doses: Vec<_> = rows
            .iter()
            .map(|r| {
                let id = r.administration_id.clone().unwrap();
                (id, r.prescribed_dose.clone().unwrap())
            })
            .collect();
        for chunk in rows.chunks(500) {
            administration::Entity::insert_many(chunk.to_vec())
                .exec_without_returning(store)
                .await
                .unwrap();
        }
        self.ids.lock().unwrap().extend(doses);
    }

    /// The next planned administration's id and prescribed dose, if any is left.
    fn next(&self) -> Option<(String, String)> {
        let i = self.taken.fetch_add(1, Ordering::SeqCst);
        self.ids.lock().unwrap().get(i).cloned()
    }
}

/// A caller recording the planned administrations in turn as given in full.
struct Recorder {
    client: DosingServiceClient<Channel>,
    planned: Arc<Planned>,
}

impl Caller for Recorder {
    async fn call(&mut self, _turn: u64) -> Result<(), String> {
        let (administration_id, dose) = self.planned.next().ok_or("no planned administration is left")?;
        let request = support::given_in_full(&administration_id, &dose);
        match self.client.record_administration(request).await {
            Ok(_) => Ok(()),
            Err(status) => Err(format!("RecordAdministration {administration_id}: {status:?}")),
        }
    }
}
