//! Benchmark (not a test): list pages as their tables grow from 1,000 to 1,000,000 rows. The
//! three services run on fresh databases (PostgreSQL when `TRIALOPS_TEST_POSTGRES_URL` is set,
//! else SQLite); each table is loaded directly through the store layer:
//!
//! - `ListSubjects` (enrollment's subjects);
//! - `ListAdministrations`, a site's worklist over 90 days (dosing's administrations);
//! - `ListAuditEvents` (enrollment's audit log: entries written as pending, then integrated into
//!   the log by its sequencer, as every write's entries are);
//! - `ListOverdueReports` (outcomes' open reporting obligations, all past due).
//!
//! At each size one caller asks for 100-row pages at random depths for a fixed time (a page token
//! continuing after a random row), and the benchmark prints the median and p99 latency, the
//! ratio between the sizes (target: at most 2) and each list's query plan as the database runs it
//! (`EXPLAIN ANALYZE` on PostgreSQL, `EXPLAIN QUERY PLAN` on SQLite), from the statement the store
//! sends for such a page.
//!
//! ```sh
//! TRIALOPS_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test \
//!     cargo bench -p trialops-stack --bench lists
//! ```
//!
//! `TRIALOPS_BENCH_SECONDS` sets each measurement's length (default 3), `TRIALOPS_BENCH_ROWS` the
//! large size (default 1,000,000). It prints a table and the same figures as JSON.

// A benchmark program, not service code: a failed setup step ends it with the reason shown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Days, NaiveDate, Timelike, Utc};
use sea_orm::{ActiveValue::Set, ConnectionTrait, Database, DbBackend, Statement};
use support::{Random, SITE, TRIAL, load, load_subjects, setting, subject_id};
use tonic::transport::Channel;
use trialops_dosing::store::administration;
use trialops_outcomes::store::obligation;
use trialops_platform::records::store::audit_pending;
use trialops_platform::testing::load::{Caller, Figures, closed_loop, pgbench};
use trialops_platform::testing::{Backend, POSTGRES_URL_VARIABLE};
use trialops_proto::common::v1 as common;
use trialops_proto::dosing::v1::dosing_service_client::DosingServiceClient;
use trialops_proto::enrollment::v1::enrollment_service_client::EnrollmentServiceClient;
use trialops_proto::outcomes::v1::outcomes_service_client::OutcomesServiceClient;
use trialops_proto::{dosing::v1 as dosing, enrollment::v1 as enrollment, outcomes::v1 as outcomes};
use trialops_stack::Service;

const PAGE: i32 = 100;
const SMALL: usize = 1_000;
/// The worklist's window: administrations are planned over this many days from [`first_day`].
const DAYS: u64 = 90;
const AGENT: &str = "dinutuximab";

fn first_day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 1, 1).unwrap()
}

/// Row `n`'s administration: planned on one of the window's days, its worklist key as dosing
/// builds it (`<planned_on>|<subject>|<cycle>|<agent>|<day>`).
fn planned_on(n: usize) -> NaiveDate {
    first_day() + Days::new(n as u64 % DAYS)
}

fn worklist_key(n: usize) -> String {
    format!("{}|{}|001|{AGENT}|01", planned_on(n), subject_id(n))
}

/// Row `n`'s obligation: due `n` seconds before the benchmark's epoch (all past due).
fn due_at(epoch: DateTime<Utc>, n: usize) -> DateTime<Utc> {
    epoch - chrono::Duration::seconds(n as i64)
}

fn obligation_id(n: usize) -> String {
    format!("OBL-{n:07}")
}

/// The lists measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum List {
    Subjects,
    Worklist,
    AuditEvents,
    OverdueReports,
}

const LISTS: [List; 4] = [List::Subjects, List::Worklist, List::AuditEvents, List::OverdueReports];

impl List {
    fn name(self) -> &'static str {
        match self {
            List::Subjects => "ListSubjects",
            List::Worklist => "ListAdministrations (worklist)",
            List::AuditEvents => "ListAuditEvents",
            List::OverdueReports => "ListOverdueReports",
        }
    }

    fn service(self) -> Service {
        match self {
            List::Subjects | List::AuditEvents => Service::Enrollment,
            List::Worklist => Service::Dosing,
            List::OverdueReports => Service::Outcomes,
        }
    }
}

/// The rows loaded so far and the benchmark's epoch (obligations fall due before it).
struct Data {
    rows: usize,
    audit_entries: usize,
    epoch: DateTime<Utc>,
}

fn main() {
    trialops_platform::testing::load::runtime("callers").block_on(run(
        Duration::from_secs(setting("TRIALOPS_BENCH_SECONDS", 3)),
        setting("TRIALOPS_BENCH_ROWS", 1_000_000) as usize,
    ));
}

async fn run(phase: Duration, large: usize) {
    let backend = match std::env::var(POSTGRES_URL_VARIABLE).ok().filter(|u| !u.is_empty()) {
        Some(_) => Backend::Postgres,
        None => Backend::Sqlite,
    };
    println!(
        "List pages of {PAGE} rows at {SMALL} and {large} rows on {backend:?}, {} s per list and size, one caller",
        phase.as_secs()
    );
    let (server_threads, stack) = support::start(backend).await;
    let urls = stack.dbs.each_ref().map(|db| db.url.clone());
    let mut data = Data {
        rows: 0,
        audit_entries: 0,
        // Whole seconds, as pgbench's scripts write it.
        epoch: Utc::now().with_nanosecond(0).unwrap_or_default() - chrono::Duration::hours(1),
    };
    let mut results: Vec<(List, usize, Figures)> = Vec::new();
    let mut baselines: Vec<(List, usize, Figures)> = Vec::new();
    let scripts = tempfile::tempdir().unwrap();
    let mut plans = Vec::new();
    for size in [SMALL, large] {
        let started = std::time::Instant::now();
        grow(&urls, &mut data, size).await;
        println!(
            "loaded {size} rows per table in {:.0} s",
            started.elapsed().as_secs_f64()
        );
        println!("{}", Figures::header());
        for list in LISTS {
            let url = stack.url(list.service());
            let f = closed_loop(
                &format!("{}, {size} rows", list.name()),
                vec![Pager::new(&url, list, &data).await],
                phase,
            )
            .await;
            f.print();
            results.push((list, size, f));
        }
        if backend == Backend::Postgres {
            for list in LISTS {
                let script = scripts.path().join(format!("{list:?}-{size}.sql"));
                std::fs::write(&script, baseline_script(list, &data)).unwrap();
                let db_url = &urls[list.service() as usize];
                let label = format!("  pgbench: the same SELECT, {size} rows");
                let f = pgbench(&label, db_url, &script, 1, phase, &[]);
                f.print();
                baselines.push((list, size, f));
            }
        }
        for list in LISTS {
            let db_url = &urls[list.service() as usize];
            let plan = plan(db_url, list, &data).await;
            plans.push(serde_json::json!({"list": list.name(), "rows": size, "plan": plan}));
            println!("\n{} at {size} rows: the page's query plan\n{plan}", list.name());
        }
        println!();
    }
    println!(
        "{:<34} {:>14} {:>14} {:>8}   {:>24}",
        "p50 per page", "at 1,000", "at the large", "ratio", "pgbench's SELECT, ratio"
    );
    let p50 = |of: &[(List, usize, Figures)], list: List, size: usize| {
        of.iter()
            .find(|(l, s, _)| *l == list && *s == size)
            .map(|(_, _, f)| f.percentile(50.0).as_secs_f64() * 1000.0)
            .unwrap_or(f64::NAN)
    };
    let mut summary = Vec::new();
    for list in LISTS {
        let (small_ms, large_ms) = (p50(&results, list, SMALL), p50(&results, list, large));
        let (db_small, db_large) = (p50(&baselines, list, SMALL), p50(&baselines, list, large));
        println!(
            "{:<34} {:>11.3} ms {:>11.3} ms {:>7.2}x   {:.3} -> {:.3} ms, {:.2}x   (target: at most 2x)",
            list.name(),
            small_ms,
            large_ms,
            large_ms / small_ms,
            db_small,
            db_large,
            db_large / db_small
        );
        summary.push(serde_json::json!({
            "list": list.name(), "small_rows": SMALL, "large_rows": large,
            "small_p50_ms": small_ms, "large_p50_ms": large_ms, "ratio": large_ms / small_ms,
            "database_small_p50_ms": db_small, "database_large_p50_ms": db_large,
        }));
    }
    let json = serde_json::json!({
        "backend": format!("{backend:?}"),
        "figures": results.iter().map(|(_, _, f)| f.json()).collect::<Vec<_>>(),
        "database_figures": baselines.iter().map(|(_, _, f)| f.json()).collect::<Vec<_>>(),
        "summary": summary,
        "plans": plans,
    });
    println!("{json}");
    support::stop(server_threads, stack).await;
}

/// Loads every table up to `size` rows.
async fn grow(urls: &[String; 3], data: &mut Data, size: usize) {
    let (from, to) = (data.rows + 1, size);
    load_subjects(&urls[Service::Enrollment as usize], from, to).await;
    load_administrations(&urls[Service::Dosing as usize], from, to).await;
    load_obligations(&urls[Service::Outcomes as usize], data.epoch, from, to).await;
    data.audit_entries = load_audit_entries(&urls[Service::Enrollment as usize], from, to).await;
    data.rows = size;
}

async fn load_administrations(url: &str, from: usize, to: usize) {
    let db = Database::connect(url).await.unwrap();
    let rows = (from..=to).map(|n| administration::ActiveModel {
        administration_id: Set(format!("ADM-{n:07}")),
        subject_id: Set(subject_id(n)),
        site_code: Set(SITE.into()),
        cycle_number: Set(1),
        agent_id: Set(AGENT.into()),
        cycle_day: Set(1),
        planned_on: Set(planned_on(n)),
        worklist_key: Set(worklist_key(n)),
        prescribed_dose: Set("17.5".into()),
        unit: Set("mg/m2".into()),
        status: Set("planned".into()),
        actual_dose: Set(String::new()),
        started_at: Set(None),
        ended_at: Set(None),
        deviation_flagged: Set(false),
        reason: Set(String::new()),
        version: Set(1),
    });
    load(&db, "administrations", rows).await;
    db.close().await.unwrap();
}

async fn load_obligations(url: &str, epoch: DateTime<Utc>, from: usize, to: usize) {
    let db = Database::connect(url).await.unwrap();
    let rows = (from..=to).map(|n| obligation::ActiveModel {
        obligation_id: Set(obligation_id(n)),
        adverse_event_id: Set(format!("AE-{n:07}")),
        subject_id: Set(subject_id(n)),
        site_code: Set(SITE.into()),
        kind: Set("expedited_report".into()),
        rule: Set("serious adverse event: 24 hours".into()),
        due_at: Set(due_at(epoch, n)),
        open: Set(true),
        submitted_at: Set(None),
    });
    load(&db, "obligations", rows).await;
    db.close().await.unwrap();
}

/// Audit entries `from..=to`, written as pending as a service's writes write them, then integrated
/// into the log. Returns the log's size.
async fn load_audit_entries(url: &str, from: usize, to: usize) -> usize {
    let db = Database::connect(url).await.unwrap();
    let now = Utc::now();
    let rows = (from..=to).map(|n| audit_pending::ActiveModel {
        occurred_at: Set(now),
        actor: Set("bench".into()),
        actor_role: Set("site_investigator".into()),
        actor_site: Set(SITE.into()),
        actor_via: Set(String::new()),
        action: Set("subject.enrolled".into()),
        entity_type: Set("subject".into()),
        entity_id: Set(subject_id(n)),
        old_value: Set(String::new()),
        new_value: Set(format!("{{\"subject_id\":\"{}\"}}", subject_id(n))),
        reason: Set(String::new()),
        request_id: Set(format!("bench-{n}")),
        trace_id: Set(String::new()),
        trial_id: Set(TRIAL.into()),
        site_code: Set(SITE.into()),
        ..Default::default()
    });
    load(&db, "audit_pending", rows).await;
    let started = std::time::Instant::now();
    let integrated = trialops_platform::records::log::integrate(&db).await.unwrap();
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "the audit log integrated {integrated} entries in {seconds:.1} s ({:.0} per second)",
        integrated as f64 / seconds
    );
    for table in ["audit_pending", "audit_events", "audit_tree_hashes"] {
        support::settle(&db, table).await;
    }
    let size = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT COUNT(*) AS n FROM audit_events",
        ))
        .await
        .unwrap()
        .and_then(|row| row.try_get::<i64>("", "n").ok())
        .unwrap();
    db.close().await.unwrap();
    size as usize
}

/// pgbench's script for the SELECT a page of `list` sends, after a random row as the benchmark's
/// pages are (the same rows, the same order, the same limit).
fn baseline_script(list: List, data: &Data) -> String {
    let limit = PAGE + 1;
    let subject = |n: &str| format!("'{TRIAL}-B' || lpad(({n})::text, 7, '0')");
    match list {
        List::Subjects => format!(
            "\\set n random(1, {})\n\
             SELECT * FROM subjects WHERE trial_id = '{TRIAL}' AND subject_id > {} \
             ORDER BY subject_id LIMIT {limit};\n",
            data.rows - PAGE as usize,
            subject(":n")
        ),
        List::Worklist => format!(
            "\\set d random(1, {})\n\\set k random(0, {})\n\
             SELECT * FROM administrations WHERE site_code = '{SITE}' AND worklist_key >= '{first}|' \
             AND worklist_key < '{end}|' AND worklist_key > \
             to_char(date '{first}' + :d::int, 'YYYY-MM-DD') || '|' || {} || '|001|{AGENT}|01' \
             ORDER BY worklist_key LIMIT {limit};\n",
            DAYS - 11,
            data.rows / DAYS as usize - 1,
            subject(":k::int * 90 + :d::int"),
            first = first_day(),
            end = first_day() + Days::new(DAYS),
        ),
        List::AuditEvents => format!(
            "\\set s random(1, {})\n\
             SELECT * FROM audit_events WHERE sequence > :s ORDER BY sequence LIMIT {limit};\n",
            data.audit_entries - PAGE as usize
        ),
        List::OverdueReports => format!(
            "\\set n random({}, {})\n\
             SELECT * FROM obligations WHERE open AND due_at <= now() \
             AND due_at >= timestamptz '{epoch}' - make_interval(secs => :n::int) \
             AND (due_at > timestamptz '{epoch}' - make_interval(secs => :n::int) \
             OR (due_at = timestamptz '{epoch}' - make_interval(secs => :n::int) \
             AND obligation_id > 'OBL-' || lpad((:n)::text, 7, '0'))) \
             ORDER BY due_at, obligation_id LIMIT {limit};\n",
            PAGE + 1,
            data.rows,
            epoch = data.epoch.to_rfc3339(),
        ),
    }
}

/// A page token continuing after `key`: a token the list issued, with its key replaced (the
/// token is the hex of `<the filters' tag>\n<key>`).
fn token_after(issued: &str, key: &str) -> String {
    let text = String::from_utf8(hex::decode(issued).unwrap()).unwrap();
    let (tag, _) = text.split_once('\n').unwrap();
    hex::encode(format!("{tag}\n{key}"))
}

/// A connection to the service that serves a list.
enum Client {
    Enrollment(EnrollmentServiceClient<Channel>),
    Dosing(DosingServiceClient<Channel>),
    Outcomes(OutcomesServiceClient<Channel>),
}

/// A caller asking one list for pages at random depths.
struct Pager {
    list: List,
    client: Client,
    /// A token the list issued for its first page, to make others from.
    issued: String,
    rows: usize,
    audit_entries: usize,
    epoch: DateTime<Utc>,
    random: Random,
}

impl Pager {
    async fn new(url: &str, list: List, data: &Data) -> Pager {
        let url = url.to_owned();
        let client = match list.service() {
            Service::Enrollment => Client::Enrollment(EnrollmentServiceClient::connect(url).await.unwrap()),
            Service::Dosing => Client::Dosing(DosingServiceClient::connect(url).await.unwrap()),
            Service::Outcomes => Client::Outcomes(OutcomesServiceClient::connect(url).await.unwrap()),
        };
        let mut pager = Pager {
            list,
            client,
            issued: String::new(),
            rows: data.rows,
            audit_entries: data.audit_entries,
            epoch: data.epoch,
            random: Random(0x1221),
        };
        let (count, issued) = pager.page(String::new()).await.unwrap();
        assert_eq!(count, PAGE as usize, "{}: a full first page", list.name());
        assert!(!issued.is_empty(), "{}: a next page", list.name());
        pager.issued = issued;
        pager
    }

    /// The key of a random row with a full page after it.
    fn random_key(&mut self) -> String {
        match self.list {
            List::Subjects => subject_id(self.random.pick(self.rows - PAGE as usize)),
            List::Worklist => {
                // Keys sort by day, then subject; row n is planned on day n mod DAYS. A row of
                // one of the first DAYS - 11 days has ten full days after it (each day holds
                // rows / DAYS >= 11 rows): a full page.
                let day = self.random.pick(DAYS as usize - 11);
                let k = self.random.pick(self.rows / DAYS as usize) - 1;
                worklist_key(k * DAYS as usize + day)
            }
            List::AuditEvents => self.random.pick(self.audit_entries - PAGE as usize).to_string(),
            List::OverdueReports => {
                // Due in the order of falling n: a page after row n holds rows n-1, n-2, ….
                let n = self.random.pick(self.rows - PAGE as usize) + PAGE as usize;
                format!("{}|{}", due_at(self.epoch, n).to_rfc3339(), obligation_id(n))
            }
        }
    }

    /// One page from `token`: its length and the next page's token.
    async fn page(&mut self, page_token: String) -> Result<(usize, String), String> {
        let failed = |e: tonic::Status| format!("{e:?}");
        let date = |d: NaiveDate| {
            use chrono::Datelike;
            Some(common::Date {
                year: d.year(),
                month: d.month() as i32,
                day: d.day() as i32,
            })
        };
        Ok(match (self.list, &mut self.client) {
            (List::Subjects, Client::Enrollment(c)) => {
                let request = enrollment::ListSubjectsRequest {
                    trial_id: TRIAL.into(),
                    page_size: PAGE,
                    page_token,
                    ..Default::default()
                };
                let r = c.list_subjects(request).await.map_err(failed)?.into_inner();
                (r.subjects.len(), r.next_page_token)
            }
            (List::AuditEvents, Client::Enrollment(c)) => {
                let request = enrollment::ListAuditEventsRequest {
                    page_size: PAGE,
                    page_token,
                    ..Default::default()
                };
                let r = c.list_audit_events(request).await.map_err(failed)?.into_inner();
                (r.events.len(), r.next_page_token)
            }
            (List::Worklist, Client::Dosing(c)) => {
                let request = dosing::ListAdministrationsRequest {
                    site_code: SITE.into(),
                    from_date: date(first_day()),
                    to_date: date(first_day() + Days::new(DAYS - 1)),
                    page_size: PAGE,
                    page_token,
                };
                let r = c.list_administrations(request).await.map_err(failed)?.into_inner();
                (r.administrations.len(), r.next_page_token)
            }
            (List::OverdueReports, Client::Outcomes(c)) => {
                let request = outcomes::ListOverdueReportsRequest {
                    due_within_hours: 0,
                    page_size: PAGE,
                    page_token,
                };
                let r = c.list_overdue_reports(request).await.map_err(failed)?.into_inner();
                (r.obligations.len(), r.next_page_token)
            }
            _ => return Err(format!("{}: not served by this connection", self.list.name())),
        })
    }
}

impl Caller for Pager {
    async fn call(&mut self, _turn: u64) -> Result<(), String> {
        let key = self.random_key();
        let token = token_after(&self.issued, &key);
        let (count, _) = self.page(token).await?;
        if count != PAGE as usize {
            return Err(format!("{}: a page of {count} rows after {key}", self.list.name()));
        }
        Ok(())
    }
}

/// The query plan of a page of `list` after a row in the middle, for the statement the store
/// layer sends (captured as it is sent).
async fn plan(url: &str, list: List, data: &Data) -> String {
    let mut db = Database::connect(url).await.unwrap();
    let sent: Arc<Mutex<Vec<Statement>>> = Arc::default();
    let keep = sent.clone();
    db.set_metric_callback(move |info| keep.lock().unwrap().push(info.statement.clone()));
    let middle = data.rows / 2;
    let limit = PAGE as u64 + 1;
    match list {
        List::Subjects => {
            let filter = trialops_enrollment::store::subject::Filter {
                trial_id: TRIAL,
                sites: Vec::new(),
                arm_code: None,
                status: None,
            };
            let after = subject_id(middle);
            trialops_enrollment::store::subject::list(&db, &filter, Some(&after), limit)
                .await
                .unwrap();
        }
        List::Worklist => {
            let (from, to) = (
                format!("{}|", first_day()),
                format!("{}|", first_day() + Days::new(DAYS)),
            );
            let after = worklist_key(middle);
            administration::worklist(&db, SITE, (&from, &to), Some(&after), limit)
                .await
                .unwrap();
        }
        List::AuditEvents => {
            // The list validates its token: one it issued, continuing from the middle.
            let (_, issued) = trialops_platform::records::audit::list(&db, "", "", PAGE, "")
                .await
                .unwrap();
            let token = token_after(&issued, &(data.audit_entries / 2).to_string());
            trialops_platform::records::audit::list(&db, "", "", PAGE, &token)
                .await
                .unwrap();
        }
        List::OverdueReports => {
            let after = obligation_id(middle);
            obligation::due_by(&db, Utc::now(), None, Some((due_at(data.epoch, middle), &after)), limit)
                .await
                .unwrap();
        }
    }
    let statement = sent.lock().unwrap().last().cloned().unwrap();
    let backend = db.get_database_backend();
    let explain = match backend {
        DbBackend::Postgres => "EXPLAIN (ANALYZE, COSTS OFF, TIMING ON, SUMMARY ON) ",
        _ => "EXPLAIN QUERY PLAN ",
    };
    let rows = db
        .query_all_raw(Statement {
            sql: format!("{explain}{}", statement.sql),
            ..statement.clone()
        })
        .await
        .unwrap();
    let column = if backend == DbBackend::Postgres {
        "QUERY PLAN"
    } else {
        "detail"
    };
    let lines: Vec<String> = rows
        .iter()
        .map(|row| format!("    {}", row.try_get::<String>("", column).unwrap_or_default()))
        .collect();
    format!("    {}\n{}", statement.sql, lines.join("\n"))
}
