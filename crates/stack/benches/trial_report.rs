//! Benchmark (not a test): `GetTrialReport` for a trial of 10,000 subjects across the three
//! services, end to end and broken down into what it reads. The services run on fresh
//! databases (PostgreSQL when configured, else SQLite), on threads of their own. One subject is
//! enrolled, planned, started on cycle 1 and dosed through the API; then the trial's other
//! subjects are loaded through the stores: enrollment's subjects, dosing's rows copied from the
//! subject made through the API (plan, agents, cycle, administrations), and outcomes' four
//! central-review assessments and a follow-up per subject.
//!
//! Then, one call at a time, each several times (the median shown):
//! - `GetTrialReport`, end to end;
//! - the cross-service reads it makes, called the same way (500-row pages): every
//!   `ListSubjects` page from enrollment and every `ListExposures` page from dosing;
//! - outcomes' own reads of the trial's assessments and follow-ups, through its store;
//! - the rest (adverse events, overdue reports, the analyses and the response's assembly):
//!   end to end less the slowest of those reads, as the report makes them all at once.
//!
//! ```sh
//! TRIALOPS_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test \
//!     cargo bench -p trialops-stack --bench trial_report
//! ```
//!
//! `TRIALOPS_BENCH_SUBJECTS` sets the trial's size (default 10,000), `TRIALOPS_BENCH_REPEATS`
//! the calls per figure (default 7).

// A benchmark program, not service code: a failed setup step ends it with the reason shown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::ops::RangeInclusive;
use std::time::{Duration, Instant};

mod support;

use sea_orm::{ActiveValue::Set, ColumnTrait, Database, EntityTrait, QueryFilter};
use support::{TRIAL, load, load_subjects, setting, subject_id};
use trialops_dosing::store::{administration, cycle, plan, plan_agent};
use trialops_outcomes::store::{assessment, follow_up, rederivation};
use trialops_platform::testing::load::Figures;
use trialops_platform::testing::{Backend, POSTGRES_URL_VARIABLE};
use trialops_proto::dosing::v1 as dpb;
use trialops_proto::enrollment::v1 as epb;
use trialops_proto::outcomes::v1 as opb;
use trialops_stack::Service;

/// The page size outcomes reads the other services with.
const PAGE: i32 = 500;

fn main() {
    let subjects = setting("TRIALOPS_BENCH_SUBJECTS", 10_000) as usize;
    let repeats = setting("TRIALOPS_BENCH_REPEATS", 7) as usize;
    trialops_platform::testing::load::runtime("callers").block_on(run(subjects, repeats));
}

async fn run(subjects: usize, repeats: usize) {
    let backend = match std::env::var(POSTGRES_URL_VARIABLE) {
        Ok(url) if !url.is_empty() => Backend::Postgres,
        _ => Backend::Sqlite,
    };
    println!(
        "GetTrialReport, {subjects} subjects on {backend:?}, {repeats} calls per figure, {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let (server_threads, stack) = support::start(backend).await;
    let urls = stack.dbs.each_ref().map(|db| db.url.clone());
    let made = support::on_first_cycle(&stack, 1).await;
    let template = dosed(&stack, &urls[Service::Dosing as usize], &made[0]).await;
    println!(
        "dosing rows per subject, copied from the one made through the API (arm {}): {} agents, {} cycle, \
         {} administrations",
        template.plan.arm_code,
        template.agents.len(),
        template.cycles.len(),
        template.administrations.len()
    );
    // Subject number 1 is the one made through the API.
    load_subjects(&urls[Service::Enrollment as usize], 2, subjects).await;
    enrolled_earlier(&urls[Service::Enrollment as usize]).await;
    load_dosing(&urls[Service::Dosing as usize], &template, 2..=subjects).await;
    load_outcomes(&urls[Service::Outcomes as usize], 2..=subjects).await;

    let mut outcomes = opb::outcomes_service_client::OutcomesServiceClient::connect(stack.url(Service::Outcomes))
        .await
        .unwrap();
    let report = times(repeats, async || {
        let r = outcomes
            .get_trial_report(opb::GetTrialReportRequest {
                trial_id: TRIAL.into(),
                confidence_level: None,
            })
            .await
            .unwrap()
            .into_inner();
        let evaluable: i32 = r
            .responses
            .iter()
            .map(|t| t.cr + t.pr + t.mr + t.sd + t.pd + t.not_assessed)
            .sum();
        // Every subject was dosed, so every one is evaluable: the report read the whole trial.
        assert_eq!(evaluable as usize, subjects, "evaluable subjects in the report");
    })
    .await;
    let mut enrollment =
        epb::enrollment_service_client::EnrollmentServiceClient::connect(stack.url(Service::Enrollment))
            .await
            .unwrap();
    let subjects_read = times(repeats, async || {
        let mut token = String::new();
        let mut read = 0;
        loop {
            let request = epb::ListSubjectsRequest {
                trial_id: TRIAL.into(),
                page_size: PAGE,
                page_token: token,
                ..Default::default()
            };
            let page = enrollment.list_subjects(request).await.unwrap().into_inner();
            read += page.subjects.len();
            if page.next_page_token.is_empty() {
                break;
            }
            token = page.next_page_token;
        }
        assert_eq!(read, subjects);
    })
    .await;
    let mut dosing = dpb::dosing_service_client::DosingServiceClient::connect(stack.url(Service::Dosing))
        .await
        .unwrap();
    let exposures_read = times(repeats, async || {
        let mut token = String::new();
        let mut read = 0;
        loop {
            let request = dpb::ListExposuresRequest {
                trial_id: TRIAL.into(),
                page_size: PAGE,
                page_token: token,
            };
            let page = dosing.list_exposures(request).await.unwrap().into_inner();
            read += page.exposures.len();
            if page.next_page_token.is_empty() {
                break;
            }
            token = page.next_page_token;
        }
        assert_eq!(read, subjects);
    })
    .await;
    let store = Database::connect(urls[Service::Outcomes as usize].as_str())
        .await
        .unwrap();
    let outcomes_read = times(repeats, async || {
        let assessments = rederivation::trial_assessments(&store, TRIAL).await.unwrap();
        let follow_ups = follow_up::of_trial(&store, TRIAL).await.unwrap();
        assert_eq!(
            (assessments.len(), follow_ups.len()),
            (4 * (subjects - 1), subjects - 1)
        );
    })
    .await;
    store.close().await.unwrap();
    support::stop(server_threads, stack).await;

    let rows = [
        ("GetTrialReport, end to end", &report),
        ("  enrollment: every ListSubjects page", &subjects_read),
        ("  dosing: every ListExposures page", &exposures_read),
        ("  outcomes: assessments and follow-ups", &outcomes_read),
    ];
    let median = |f: &Figures| f.percentile(50.0).as_secs_f64() * 1000.0;
    let whole = median(&report);
    // The report reads its inputs at once: it waits for the slowest of them.
    let slowest = rows[1..].iter().map(|(_, f)| median(f)).fold(0.0, f64::max);
    println!(
        "{:<44} {:>10} {:>10} {:>10} {:>8}",
        "", "median ms", "min ms", "max ms", "share"
    );
    for (label, f) in rows {
        let (min, max) = (f.latencies.first(), f.latencies.last());
        let ms = |d: Option<&Duration>| d.map_or(0.0, |d| d.as_secs_f64() * 1000.0);
        println!(
            "{label:<44} {:>10.1} {:>10.1} {:>10.1} {:>7.0}%",
            median(f),
            ms(min),
            ms(max),
            100.0 * median(f) / whole.max(1e-9)
        );
    }
    println!(
        "{:<44} {:>10.1} {:>10} {:>10} {:>7.0}%",
        "  the rest: end to end less the slowest read",
        whole - slowest,
        "",
        "",
        100.0 * (whole - slowest) / whole.max(1e-9)
    );
    let figures: Vec<_> = rows
        .iter()
        .map(|(label, f)| serde_json::json!({ "label": label.trim(), "median_ms": median(f) }))
        .collect();
    println!(
        "{}",
        serde_json::json!({
            "subjects": subjects,
            "backend": format!("{backend:?}"),
            "figures": figures,
            "rest_ms": whole - slowest,
        })
    );
}

/// `repeats` runs of `work`, one after another, as figures of one caller.
async fn times(repeats: usize, mut work: impl AsyncFnMut()) -> Figures {
    let started = Instant::now();
    let mut latencies = Vec::with_capacity(repeats);
    for _ in 0..repeats {
        let at = Instant::now();
        work().await;
        latencies.push(at.elapsed());
    }
    Figures::new("", 1, 0, started.elapsed(), latencies)
}

/// The dosing rows of a subject made through the API.
struct Template {
    subject_id: String,
    plan: plan::Model,
    agents: Vec<plan_agent::Model>,
    cycles: Vec<cycle::Model>,
    administrations: Vec<administration::Model>,
}

/// Records `subject_id`'s day-1 administrations as given through the API; its dosing rows.
async fn dosed(stack: &trialops_stack::testing::TestStack, url: &str, subject_id: &str) -> Template {
    let due = support::due_today(stack, &[subject_id.to_owned()]).await;
    let mut client = dpb::dosing_service_client::DosingServiceClient::connect(stack.url(Service::Dosing))
        .await
        .unwrap();
    for a in &due {
        let request = support::given_in_full(&a.administration_id, &a.prescribed_dose);
        client.record_administration(request).await.unwrap();
    }
    let db = Database::connect(url).await.unwrap();
    let template = Template {
        subject_id: subject_id.to_owned(),
        plan: plan::Entity::find_by_id(subject_id.to_owned())
            .one(&db)
            .await
            .unwrap()
            .expect("the plan made through the API"),
        agents: plan_agent::Entity::find()
            .filter(plan_agent::Column::SubjectId.eq(subject_id))
            .all(&db)
            .await
            .unwrap(),
        cycles: cycle::Entity::find()
            .filter(cycle::Column::SubjectId.eq(subject_id))
            .all(&db)
            .await
            .unwrap(),
        administrations: administration::Entity::find()
            .filter(administration::Column::SubjectId.eq(subject_id))
            .all(&db)
            .await
            .unwrap(),
    };
    db.close().await.unwrap();
    template
}

fn new_id() -> String {
    trialops_platform::testing::request_id()
}

/// The template's dosing rows again for `subjects`, under their ids.
async fn load_dosing(url: &str, t: &Template, subjects: RangeInclusive<usize>) {
    let db = Database::connect(url).await.unwrap();
    let arm = |n: usize| ["A", "B"][n % 2].to_owned();
    let plans = subjects.clone().map(|n| plan::ActiveModel {
        subject_id: Set(subject_id(n)),
        arm_code: Set(arm(n)),
        ..plan::ActiveModel::from(t.plan.clone())
    });
    load(&db, "plans", plans).await;
    let agents = subjects.clone().flat_map(|n| {
        t.agents.iter().map(move |a| plan_agent::ActiveModel {
            id: Set(new_id()),
            subject_id: Set(subject_id(n)),
            ..plan_agent::ActiveModel::from(a.clone())
        })
    });
    load(&db, "plan_agents", agents).await;
    let cycles = subjects.clone().flat_map(|n| {
        t.cycles.iter().map(move |c| cycle::ActiveModel {
            id: Set(new_id()),
            subject_id: Set(subject_id(n)),
            ..cycle::ActiveModel::from(c.clone())
        })
    });
    load(&db, "cycles", cycles).await;
    let administrations = subjects.clone().flat_map(|n| {
        t.administrations.iter().map(move |a| administration::ActiveModel {
            administration_id: Set(new_id()),
            subject_id: Set(subject_id(n)),
            worklist_key: Set(a.worklist_key.replace(&t.subject_id, &subject_id(n))),
            ..administration::ActiveModel::from(a.clone())
        })
    });
    load(&db, "administrations", administrations).await;
    db.close().await.unwrap();
}

/// How long before today the loaded subjects enrolled.
const ENROLLED_DAYS_AGO: u64 = 400;

/// Moves the loaded subjects' enrollment [`ENROLLED_DAYS_AGO`] days back, so that their
/// assessments and follow-ups come after it.
async fn enrolled_earlier(url: &str) {
    use sea_orm::sea_query::Expr;
    use trialops_enrollment::store::subject;
    let db = Database::connect(url).await.unwrap();
    let at = chrono::Utc::now() - chrono::Days::new(ENROLLED_DAYS_AGO);
    subject::Entity::update_many()
        .col_expr(subject::Column::EnrolledAt, Expr::value(at))
        .filter(subject::Column::SubjectId.starts_with(format!("{TRIAL}-B")))
        .exec(&db)
        .await
        .unwrap();
    db.close().await.unwrap();
}

/// Four central-review assessments (baseline, after cycles 2, 4 and 6) and one follow-up for
/// `subjects`, inserted directly, all after their enrollment.
async fn load_outcomes(url: &str, subjects: RangeInclusive<usize>) {
    let db = Database::connect(url).await.unwrap();
    let now = chrono::Utc::now();
    let today = now.date_naive();
    let mut random = support::Random(0x1221);
    let responses = ["cr", "pr", "mr", "sd", "pd"];
    let mut rows = Vec::new();
    for n in subjects.clone() {
        for (k, after_cycle) in [0, 2, 4, 6].into_iter().enumerate() {
            let overall = if after_cycle == 0 {
                "baseline"
            } else {
                responses[random.pick(responses.len()) - 1]
            };
            rows.push(assessment::ActiveModel {
                assessment_id: Set(new_id()),
                subject_id: Set(subject_id(n)),
                trial_id: Set(TRIAL.into()),
                arm_code: Set(["A", "B"][n % 2].into()),
                assessed_on: Set(today - chrono::Days::new(ENROLLED_DAYS_AGO - 42 * k as u64)),
                after_cycle: Set(after_cycle),
                assessor: Set("central_review".into()),
                criteria: Set("inrc_2017".into()),
                primary_mm: Set("12".into()),
                primary_avid: Set(false),
                metastases_sum_mm: Set("0".into()),
                metastases_under_10_mm: Set(false),
                curie_score: Set(0),
                curie_skeletal_score: Set(Some(0)),
                fdg_avid_lesions: Set(None),
                new_lesions: Set(false),
                metastases_not_involved: Set(true),
                marrow_percent: Set("0".into()),
                primary_not_involved: Set(false),
                primary_response: Set(overall.into()),
                metastases_response: Set(overall.into()),
                marrow_response: Set(overall.into()),
                derived_overall: Set(overall.into()),
                overall: Set(overall.into()),
                override_reason: Set(String::new()),
                recorded_at: Set(now),
                protocol_version: Set("2.0".into()),
            });
        }
    }
    load(&db, "assessments", rows.into_iter()).await;
    let follow_ups = subjects.clone().map(|n| follow_up::ActiveModel {
        id: Set(new_id()),
        subject_id: Set(subject_id(n)),
        trial_id: Set(TRIAL.into()),
        last_contact_on: Set(today - chrono::Days::new((n % 300) as u64)),
        vital_status: Set(if n % 7 == 0 { "dead" } else { "alive" }.into()),
        progression_on: Set((n % 5 == 0).then(|| today - chrono::Days::new(300 + (n % 60) as u64))),
        second_malignancy_on: Set(None),
        recorded_at: Set(now),
    });
    load(&db, "follow_ups", follow_ups).await;
    db.close().await.unwrap();
}
