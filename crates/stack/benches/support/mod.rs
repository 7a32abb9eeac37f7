//! What the stack's benchmarks share: the trial they load, its subjects loaded directly through
//! the store, the three services started on threads of their own, and settings read from the
//! environment, and a subject made through the API.

// Each benchmark uses part of what is here.
#![allow(dead_code)]

use sea_orm::{ActiveModelTrait, ActiveValue::Set, ConnectionTrait, Database, EntityTrait};
use trialops_dosing::store::administration;
use trialops_enrollment::store::subject;
use trialops_platform::testing::Backend;
use trialops_stack::Service;
use trialops_stack::testing::{TestStack, unchanged};

/// The benchmarks' trial.
pub const TRIAL: &str = "ANBL1221";
/// The benchmarks' site.
pub const SITE: &str = "BENCH-1";
/// Rows one INSERT carries while loading.
const CHUNK: usize = 1000;

/// The benchmarks' subject ids: `ANBL1221-B0000001`, … (the pgbench scripts build the same).
pub fn subject_id(n: usize) -> String {
    format!("{TRIAL}-B{n:07}")
}

/// A numeric setting from the environment, else `default`.
pub fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

/// The three services on fresh databases of `backend`, served by a runtime of their own (two
/// threads, as a small deployment's would be), so the callers' work does not take their turns.
/// Keep the runtime until the stack is stopped.
pub async fn start(backend: Backend) -> (tokio::runtime::Runtime, TestStack) {
    let server_threads = trialops_platform::testing::load::runtime("server");
    let stack = server_threads
        .spawn(async move { TestStack::start(backend, unchanged).await })
        .await
        .unwrap();
    (server_threads, stack)
}

/// Stops the stack on its runtime, then the runtime.
pub async fn stop(server_threads: tokio::runtime::Runtime, stack: TestStack) {
    server_threads.spawn(stack.stop()).await.unwrap();
    server_threads.shutdown_background();
}

/// Inserts `rows` in chunks of [`CHUNK`] rows per INSERT, then [`settle`]s `table`.
pub async fn load<A: ActiveModelTrait + Send>(
    db: &sea_orm::DatabaseConnection,
    table: &str,
    rows: impl Iterator<Item = A>,
) {
    let mut rows = rows.peekable();
    while rows.peek().is_some() {
        let chunk: Vec<A> = rows.by_ref().take(CHUNK).collect();
        A::Entity::insert_many(chunk).exec_without_returning(db).await.unwrap();
    }
    settle(db, table).await;
}

/// Vacuums (PostgreSQL) and analyses `table` after a bulk load, as autovacuum would soon after:
/// the measurements are of the steady state, not of a table autovacuum is still working on.
pub async fn settle(db: &sea_orm::DatabaseConnection, table: &str) {
    let sql = match db.get_database_backend() {
        sea_orm::DbBackend::Postgres => format!("VACUUM (ANALYZE) {table}"),
        _ => format!("ANALYZE {table}"),
    };
    db.execute_unprepared(&sql).await.unwrap();
}

/// Subjects `from..=to` of the trial at one site, inserted directly (a benchmark's data, not
/// enrollments: the read paths read them the same way).
pub async fn load_subjects(url: &str, from: usize, to: usize) {
    let db = Database::connect(url).await.unwrap();
    let now = chrono::Utc::now();
    let today = now.date_naive();
    let rows = (from..=to).map(|n| subject::ActiveModel {
        subject_id: Set(subject_id(n)),
        trial_id: Set(TRIAL.into()),
        subject_number: Set(n as i64),
        site_code: Set(SITE.into()),
        screening_id: Set(format!("SCR-B{n}")),
        arm_code: Set(["A", "B"][n % 2].into()),
        strata: Set("prior_irinotecan_temozolomide=yes|mycn=amplified".into()),
        randomized_stratum: Set("prior_irinotecan_temozolomide=yes|mycn=amplified".into()),
        consent_signed_on: Set(today),
        consent_form_version: Set("1.0".into()),
        status: Set("on_protocol_therapy".into()),
        status_reason: Set(String::new()),
        status_effective_on: Set(today),
        enrolled_at: Set(now),
        updated_at: Set(now),
        version: Set(1),
        randomized_in_error: Set(false),
        randomized_in_error_reason: Set(String::new()),
        protocol_version: Set("2.0".into()),
    });
    load(&db, "subjects", rows).await;
    db.close().await.unwrap();
}

/// Registers the site and enrolls `count` subjects there through the API, then plans them and
/// starts their cycle 1 today (102 cm, 16 kg, counts that allow it, measured an hour ago); their
/// subject ids.
pub async fn on_first_cycle(stack: &TestStack, count: usize) -> Vec<String> {
    use chrono::Datelike;
    use trialops_enrollment::testing as enrollment;
    use trialops_proto::common::v1::{Date, Decimal};
    use trialops_proto::dosing::v1 as pb;
    let mut e = enrollment::connect(&stack.url(Service::Enrollment)).await;
    enrollment::register_site(&mut e, SITE).await;
    let url = stack.url(Service::Dosing);
    let mut d = pb::dosing_service_client::DosingServiceClient::connect(url)
        .await
        .unwrap();
    let today = chrono::Utc::now().date_naive();
    let dec = |value: &str| {
        Some(Decimal {
            value: value.to_owned(),
        })
    };
    let mut subjects = Vec::new();
    for n in 0..count {
        let strata = enrollment::strata("no_prior_irinotecan_temozolomide", "amplified");
        let subject = enrollment::enroll(&mut e, SITE, &format!("SCR-API-{n}"), strata).await;
        d.create_treatment_plan(pb::CreateTreatmentPlanRequest {
            request_id: trialops_platform::testing::request_id(),
            subject_id: subject.subject_id.clone(),
        })
        .await
        .unwrap();
        let start = pb::StartCycleRequest {
            request_id: trialops_platform::testing::request_id(),
            subject_id: subject.subject_id.clone(),
            cycle_number: 1,
            planned_start_date: Some(Date {
                year: today.year(),
                month: today.month() as i32,
                day: today.day() as i32,
            }),
            height_cm: dec("102"),
            weight_kg: dec("16"),
            anc_per_ul: dec("1000"),
            platelets_per_ul: dec("120000"),
            measured_at: Some(timestamp(chrono::Utc::now() - chrono::Duration::hours(1))),
            confirm_implausible_measurements: false,
        };
        d.start_cycle(start).await.unwrap();
        subjects.push(subject.subject_id);
    }
    subjects
}

/// The administrations of `subjects` planned for today or earlier (their cycle-1 day-1 doses,
/// after [`on_first_cycle`]): what may be given now. Panics if there are none.
pub async fn due_today(stack: &TestStack, subjects: &[String]) -> Vec<administration::Model> {
    use sea_orm::{ColumnTrait, QueryFilter};
    let db = Database::connect(stack.dbs[Service::Dosing as usize].url.as_str())
        .await
        .unwrap();
    let due = administration::Entity::find()
        .filter(administration::Column::SubjectId.is_in(subjects.iter().cloned()))
        .filter(administration::Column::PlannedOn.lte(chrono::Utc::now().date_naive()))
        .all(&db)
        .await
        .unwrap();
    db.close().await.unwrap();
    assert!(!due.is_empty(), "cycle 1 planned nothing for today");
    due
}

/// Records an administration as given in full (`dose`), over the last half hour.
pub fn given_in_full(administration_id: &str, dose: &str) -> trialops_proto::dosing::v1::RecordAdministrationRequest {
    use trialops_proto::dosing::v1 as pb;
    let now = chrono::Utc::now();
    pb::RecordAdministrationRequest {
        request_id: trialops_platform::testing::request_id(),
        administration_id: administration_id.to_owned(),
        status: pb::AdministrationStatus::Given as i32,
        actual_dose: Some(trialops_proto::common::v1::Decimal { value: dose.to_owned() }),
        started_at: Some(timestamp(now - chrono::Duration::minutes(30))),
        ended_at: Some(timestamp(now)),
        ..Default::default()
    }
}

/// A wire timestamp, to the second.
pub fn timestamp(at: chrono::DateTime<chrono::Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: 0,
    }
}

/// xorshift: a cheap, reproducible random sequence for choosing rows.
pub struct Random(pub u64);

impl Random {
    /// A number in `1..=count`.
    pub fn pick(&mut self, count: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % count.max(1) as u64) as usize + 1
    }
}
