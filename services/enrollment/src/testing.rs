//! Test support (feature `testing`): enrollment servers on a fresh database, and client helpers
//! that screen and enroll ANBL1221 candidates, for this service's tests and for the services
//! and tools that depend on enrollment.

use tonic::transport::Channel;
use trialops_platform::testing::{Backend, RunningServer, TestDatabase, request_id, settings};
use trialops_proto::common::v1::{Date, Decimal};
use trialops_proto::enrollment::v1 as pb;
use trialops_proto::enrollment::v1::enrollment_service_client::EnrollmentServiceClient;

use crate::{Options, build};

/// The randomization secret every test server uses, so tests can reproduce the sequence.
pub const SECRET: &[u8] = b"test secret: at least thirty-two bytes long";

/// The generated client.
pub type Client = EnrollmentServiceClient<Channel>;

/// A client of a running enrollment server.
pub async fn client(server: &RunningServer) -> Client {
    connect(&server.url()).await
}

/// A client of the enrollment service at `url`.
pub async fn connect(url: &str) -> Client {
    EnrollmentServiceClient::connect(url.to_owned())
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"))
}

/// Starts an enrollment server on an existing database.
pub async fn start_on(url: &str) -> RunningServer {
    start_with(settings(url)).await
}

/// Starts an enrollment server with these settings (and the test randomization secret).
pub async fn start_with(settings: trialops_platform::Settings) -> RunningServer {
    let options = Options {
        randomization_secret: Some(SECRET.to_vec()),
        ..Options::default()
    };
    let app = build(settings, Default::default(), options)
        .await
        .unwrap_or_else(|e| panic!("build: {e:#}"));
    RunningServer::spawn(app)
}

/// A fresh database and one enrollment server on it.
pub async fn start(backend: Backend) -> (TestDatabase, RunningServer) {
    let db = TestDatabase::create(backend)
        .await
        .unwrap_or_else(|| panic!("{backend:?} is not configured"));
    let server = start_on(&db.url).await;
    (db, server)
}

/// A calendar date.
pub fn date(y: i32, m: i32, d: i32) -> Option<Date> {
    Some(Date {
        year: y,
        month: m,
        day: d,
    })
}

/// Today (UTC).
pub fn today() -> Option<Date> {
    use chrono::Datelike;
    let t = chrono::Utc::now().date_naive();
    date(t.year(), t.month() as i32, t.day() as i32)
}

/// A decimal screening value.
pub fn dec(id: &str, value: &str) -> pb::ScreeningValue {
    pb::ScreeningValue {
        variable_id: id.to_owned(),
        value: Some(pb::screening_value::Value::DecimalValue(Decimal {
            value: value.to_owned(),
        })),
    }
}

/// A boolean screening value.
pub fn yes(id: &str, value: bool) -> pb::ScreeningValue {
    pb::ScreeningValue {
        variable_id: id.to_owned(),
        value: Some(pb::screening_value::Value::BoolValue(value)),
    }
}

/// A choice screening value.
pub fn choice(id: &str, value: &str) -> pb::ScreeningValue {
    pb::ScreeningValue {
        variable_id: id.to_owned(),
        value: Some(pb::screening_value::Value::ChoiceValue(value.to_owned())),
    }
}

/// Screening values meeting every ANBL1221 criterion.
pub fn eligible_values() -> Vec<pb::ScreeningValue> {
    vec![
        yes("histology_confirmed", true),
        choice("disease_status", "first_recurrence"),
        dec("measurable_tumour_mm", "23"),
        yes("measurable_tumour_avid", true),
        dec("anc_per_ul", "1200"),
        dec("platelets_per_ul", "150000"),
        yes("platelets_transfusion_independent", true),
        dec("bilirubin_mg_dl", "0.6"),
        dec("bilirubin_uln_mg_dl", "1.0"),
        dec("alt_u_l", "40"),
        yes("creatinine_within_age_sex_limit", true),
        dec("shortening_fraction_percent", "34"),
        dec("performance_score", "80"),
    ]
}

/// The eligible values with one replaced.
pub fn values_with(replacement: pb::ScreeningValue) -> Vec<pb::ScreeningValue> {
    let mut values: Vec<_> = eligible_values()
        .into_iter()
        .filter(|v| v.variable_id != replacement.variable_id)
        .collect();
    values.push(replacement);
    values
}

/// Registers a site.
pub async fn register_site(client: &mut Client, code: &str) {
    client
        .register_site(pb::RegisterSiteRequest {
            request_id: request_id(),
            site_code: code.into(),
            name: format!("Hospital {code}"),
            country: "USA".into(),
        })
        .await
        .unwrap_or_else(|e| panic!("register {code}: {e}"));
}

/// An ANBL1221 screening of `screening_id` at `site` today, with eligible values.
pub fn screen_request(site: &str, screening_id: &str) -> pb::ScreenSubjectRequest {
    pb::ScreenSubjectRequest {
        request_id: request_id(),
        trial_id: "ANBL1221".into(),
        site_code: site.into(),
        screening_id: screening_id.into(),
        assessed_on: today(),
        values: eligible_values(),
    }
}

/// Screens a candidate at a site today.
pub async fn screen(
    client: &mut Client,
    site: &str,
    screening_id: &str,
    values: Vec<pb::ScreeningValue>,
) -> pb::Screening {
    client
        .screen_subject(pb::ScreenSubjectRequest {
            values,
            ..screen_request(site, screening_id)
        })
        .await
        .unwrap_or_else(|e| panic!("screen {screening_id}: {e}"))
        .into_inner()
        .screening
        .unwrap_or_else(|| panic!("no screening"))
}

/// ANBL1221 strata.
pub fn strata(prior: &str, mycn: &str) -> Vec<pb::StratumValue> {
    vec![
        pb::StratumValue {
            factor_id: "prior_therapy".into(),
            value: prior.into(),
        },
        pb::StratumValue {
            factor_id: "mycn_status".into(),
            value: mycn.into(),
        },
    ]
}

/// An enrollment request with today's consent on form 2.0.
pub fn enroll_request(site: &str, screening_id: &str, strata: Vec<pb::StratumValue>) -> pb::EnrollSubjectRequest {
    pb::EnrollSubjectRequest {
        request_id: request_id(),
        trial_id: "ANBL1221".into(),
        site_code: site.into(),
        screening_id: screening_id.into(),
        consent: Some(pb::Consent {
            signed_on: today(),
            form_version: "2.0".into(),
        }),
        strata,
    }
}

/// Screens eligible and enrolls; returns the subject.
pub async fn enroll(client: &mut Client, site: &str, screening_id: &str, strata: Vec<pb::StratumValue>) -> pb::Subject {
    screen(client, site, screening_id, eligible_values()).await;
    client
        .enroll_subject(enroll_request(site, screening_id, strata))
        .await
        .unwrap_or_else(|e| panic!("enroll {screening_id}: {e}"))
        .into_inner()
        .subject
        .unwrap_or_else(|| panic!("no subject"))
}

/// Screens eligible and enrolls (no prior irinotecan/temozolomide, MYCN amplified) as the
/// holder of `token`; returns the subject.
pub async fn enroll_as(client: &mut Client, token: &str, site: &str, screening_id: &str) -> pb::Subject {
    let screening = trialops_platform::testing::with_bearer(screen_request(site, screening_id), token);
    client
        .screen_subject(screening)
        .await
        .unwrap_or_else(|e| panic!("screen {screening_id}: {e}"));
    let strata = strata("no_prior_irinotecan_temozolomide", "amplified");
    let request = trialops_platform::testing::with_bearer(enroll_request(site, screening_id, strata), token);
    client
        .enroll_subject(request)
        .await
        .unwrap_or_else(|e| panic!("enroll {screening_id}: {e}"))
        .into_inner()
        .subject
        .unwrap_or_else(|| panic!("no subject"))
}

/// Entries in the audit trail.
pub async fn audit_count(client: &mut Client) -> usize {
    let mut count = 0;
    let mut token = String::new();
    loop {
        let page = client
            .list_audit_events(pb::ListAuditEventsRequest {
                page_size: 500,
                page_token: token,
                ..Default::default()
            })
            .await
            .unwrap_or_else(|e| panic!("audit: {e}"))
            .into_inner();
        count += page.events.len();
        if page.next_page_token.is_empty() {
            return count;
        }
        token = page.next_page_token;
    }
}

/// Every subject of ANBL1221.
pub async fn all_subjects(client: &mut Client) -> Vec<pb::Subject> {
    let mut out = Vec::new();
    let mut token = String::new();
    loop {
        let page = client
            .list_subjects(pb::ListSubjectsRequest {
                trial_id: "ANBL1221".into(),
                page_size: 500,
                page_token: token,
                ..Default::default()
            })
            .await
            .unwrap_or_else(|e| panic!("list: {e}"))
            .into_inner();
        out.extend(page.subjects);
        if page.next_page_token.is_empty() {
            return out;
        }
        token = page.next_page_token;
    }
}

/// `clients` clients, alternately on `first` and `second`, enrolling `per_client` candidates
/// each into `trial_id` at site COG-101, all at once. Candidate `i` of client `c` is screened as
/// `SCR-c-i` with the strata `strata_of(c, i)` gives (prior therapy, MYCN status). Returns every
/// subject enrolled.
pub async fn enroll_concurrently(
    (first, second): (&RunningServer, &RunningServer),
    trial_id: &str,
    (clients, per_client): (usize, usize),
    strata_of: fn(usize, usize) -> (&'static str, &'static str),
) -> Vec<pb::Subject> {
    let mut tasks = Vec::new();
    for client_index in 0..clients {
        let mut c = client(if client_index % 2 == 0 { first } else { second }).await;
        let trial_id = trial_id.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut enrolled = Vec::new();
            for i in 0..per_client {
                let (prior, mycn) = strata_of(client_index, i);
                let id = format!("SCR-{client_index}-{i}");
                let screening = pb::ScreenSubjectRequest {
                    trial_id: trial_id.clone(),
                    ..screen_request("COG-101", &id)
                };
                c.screen_subject(screening)
                    .await
                    .unwrap_or_else(|e| panic!("screen {id}: {e}"));
                let request = pb::EnrollSubjectRequest {
                    trial_id: trial_id.clone(),
                    ..enroll_request("COG-101", &id, strata(prior, mycn))
                };
                let subject = c
                    .enroll_subject(request)
                    .await
                    .unwrap_or_else(|e| panic!("enroll {id}: {e}"))
                    .into_inner()
                    .subject;
                enrolled.push(subject.unwrap_or_else(|| panic!("no subject")));
            }
            enrolled
        }));
    }
    let mut subjects = Vec::new();
    for task in tasks {
        subjects.extend(task.await.unwrap_or_else(|e| panic!("client task: {e}")));
    }
    subjects
}

/// Exported allocations as the verifier reads them.
pub fn recorded(exported: &[pb::Allocation]) -> Vec<trialops_domain::randomization::RecordedAllocation> {
    exported
        .iter()
        .map(|a| trialops_domain::randomization::RecordedAllocation {
            subject_id: a.subject_id.clone(),
            stratum: a.stratum.clone(),
            position: u64::try_from(a.position).unwrap_or(u64::MAX),
            arm_code: a.arm_code.clone(),
        })
        .collect()
}

/// What every enrollment of a trial waits for, held: its subject-number counter's row lock
/// (the row created at 0 if new) in an open write transaction, which on SQLite holds the file's
/// write lock too. Enrollments sent while it is held queue on the trial's lane and are written
/// together once it is released.
pub struct HeldEnrollments {
    // Kept open while the transaction is.
    _db: sea_orm::DatabaseConnection,
    tx: trialops_platform::records::database::WriteTransaction,
}

impl HeldEnrollments {
    /// Holds the enrollments of `trial_id` on the database at `url`.
    pub async fn hold(url: &str, trial_id: &str) -> HeldEnrollments {
        use sea_orm::ConnectionTrait;
        let db = sea_orm::Database::connect(url)
            .await
            .unwrap_or_else(|e| panic!("connect: {e}"));
        let tx = trialops_platform::records::database::begin_write(&db)
            .await
            .unwrap_or_else(|e| panic!("begin: {e}"));
        tx.execute_unprepared(&format!(
            "INSERT INTO counters (name, value) VALUES ('subject_number|{trial_id}', 0) \
             ON CONFLICT (name) DO UPDATE SET value = counters.value"
        ))
        .await
        .unwrap_or_else(|e| panic!("hold the counter: {e}"));
        HeldEnrollments { _db: db, tx }
    }

    /// Lets the queued enrollments go.
    pub async fn release(self) {
        self.tx.rollback().await.unwrap_or_else(|e| panic!("release: {e}"));
    }
}
