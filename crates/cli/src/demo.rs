//! `trialops demo`: replays a synthetic ANBL1221-like trial over the public gRPC API and prints
//! the trial report.
//!
//! The three services run in this process on throw-away SQLite databases, in JWT mode with a
//! development key; every step is a gRPC call with the token of the role that would make it
//! (coordinators and pharmacists of four sites, investigators, a central reviewer, a
//! statistician). The replayed trial runs on a simulated calendar ([`trialops_platform::clock`])
//! from June 2013, so children have real timelines: screening, consent, enrollment, cycles every
//! 21 days, administrations, delays, a dose reduction, adverse events, central-review response
//! assessments after cycles 2, 4 and 6, and follow-up at the data cut-off.
//!
//! Randomization stays concealed and random (its secret is derived from `--seed`, so a seed
//! replays the same allocations). Each synthetic child's course is decided only after the arm is
//! known, to reproduce the published result: dinutuximab arm (B) 9 responders of 17 evaluable,
//! temsirolimus arm (A) 1 of 18. Children are enrolled until both arms have their evaluable
//! count; a child allocated beyond it withdraws before any dose (not evaluable), so a run enrolls
//! 35 or a few more.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::path::PathBuf;
use trialops_stack::ServiceSet;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use indicatif::{ProgressBar, ProgressStyle};
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;
use trialops_platform::Settings;
use trialops_platform::clock::{Clock, SimulatedClock};
use trialops_platform::config::settings::Sources;
use trialops_platform::identity::auth::Role;

use crate::devkeys;
use trialops_proto::dosing::v1 as dpb;
use trialops_proto::enrollment::v1 as epb;
use trialops_proto::outcomes::v1 as opb;

use crate::api::{Clients, Context, date, dec, from_date, timestamp, with_token};

const TRIAL: &str = "ANBL1221";
/// 27 sites, as ANBL1221 enrolled at (site codes are the demo's own).
const SITES: [&str; 27] = [
    "COG-101", "COG-102", "COG-103", "COG-104", "COG-105", "COG-106", "COG-107", "COG-108", "COG-109", "COG-110",
    "COG-111", "COG-112", "COG-113", "COG-114", "COG-115", "COG-116", "COG-117", "COG-118", "COG-119", "COG-120",
    "COG-121", "COG-122", "COG-123", "COG-124", "COG-125", "COG-126", "COG-127",
];
/// The sites' countries (ISO 3166-1 alpha-3), as in a Children's Oncology Group trial: mostly the
/// United States, some Canada, one Australia [the real split is not public].
const COUNTRIES: [&str; 27] = [
    "USA", "USA", "USA", "USA", "USA", "USA", "USA", "USA", "USA", "USA", "USA", "USA", "USA", "USA", "USA", "USA",
    "USA", "USA", "USA", "USA", "USA", "USA", "USA", "CAN", "CAN", "CAN", "AUS",
];
/// Days after the first candidate when the administrator records the dose revision, and days
/// later when it takes effect: part-way through accrual, so children on treatment then have
/// cycles under both versions.
const AMENDMENT_AFTER_DAYS: i64 = 150;
const AMENDMENT_LEAD_DAYS: i64 = 14;
/// Evaluable children per arm and how many of them respond (CR, PR).
const TARGETS: [(&str, usize, usize, usize); 2] = [("A", 18, 0, 1), ("B", 17, 4, 5)];
/// Candidates who fail screening (by position in the accrual order).
const SCREEN_FAILURES: [usize; 3] = [4, 15, 27];

/// Options of `trialops demo`.
pub struct DemoOptions {
    /// Makes the run repeatable.
    pub seed: u64,
    /// Where the databases go; a temporary folder when `None`.
    pub data_dir: Option<PathBuf>,
    /// Print the report as JSON.
    pub json: bool,
    /// Export the replayed trial as SDTM into this folder.
    pub export_sdtm: Option<PathBuf>,
    /// Export the replayed trial as ODM into this file.
    pub export_odm: Option<PathBuf>,
}

/// How a child's trial goes, decided once the arm is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Course {
    /// Complete response by cycle 4.
    Complete,
    /// Partial response from cycle 2.
    Partial,
    /// Stable disease through cycle 6, progression during follow-up.
    Stable,
    /// Progression at the assessment after this cycle (2 or 4); off therapy.
    Progression(i32),
    /// Allocated beyond the arm's evaluable count: withdraws before any dose.
    Withdrawn,
}

struct Child {
    site: &'static str,
    screening_id: String,
    subject_id: String,
    arm: String,
    course: Course,
    height: u32,
    weight: u32,
    /// Cycles 1..=6 start dates as they happen (delays shift the rest).
    next_start: NaiveDate,
    delayed_once: bool,
    modified: bool,
    progressed_on: Option<NaiveDate>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    /// The administrator amends the protocol (the dinutuximab dose revision).
    Amend,
    Screen,
    StartCycle(i32),
    Administer(i32),
    AdverseEvent(i32),
    Assess(i32),
}

/// Tokens of the roles that act in the trial.
struct Tokens {
    admin: String,
    reviewer: String,
    statistician: String,
    coordinator: Vec<String>,
    pharmacist: Vec<String>,
    investigator: Vec<String>,
}

fn site_index(site: &str) -> usize {
    SITES.iter().position(|s| *s == site).unwrap_or(0)
}

fn at(day: NaiveDate, hour: u32) -> DateTime<Utc> {
    Utc.from_utc_datetime(&day.and_hms_opt(hour, 0, 0).unwrap_or_default())
}

/// The demo's replayed trial and its report.
pub async fn run(options: DemoOptions) -> anyhow::Result<()> {
    let start = NaiveDate::from_ymd_opt(2013, 6, 3).ok_or_else(|| anyhow::anyhow!("start date"))?;
    let clock = Clock::simulated(at(start, 8));
    let temporary = tempfile::tempdir()?;
    let data_dir = options.data_dir.clone().unwrap_or_else(|| temporary.path().to_owned());
    if data_dir.join("enrollment.db").exists() {
        anyhow::bail!(
            "{} already holds a trial: the demo needs an empty folder",
            data_dir.display()
        );
    }
    // The allocation secret is derived from the seed: the same seed, the same allocations. In a
    // folder of the caller's it is kept, so `trialops up --data-dir` serves the replayed trial.
    let secret = Sha256::digest(format!("trialops demo randomization secret, seed {}", options.seed)).to_vec();
    if options.data_dir.is_some() {
        let secret_file = trialops_enrollment::secret::local_path(&data_dir);
        trialops_platform::config::private_files::create_dir(&data_dir)?;
        trialops_enrollment::secret::write(&secret_file, &secret)?;
    }
    let key = devkeys::ensure_key(&data_dir)?;
    // The trial starts under ANBL1221 version 1.0 (dinutuximab 25 mg/m2/day); the replay amends it
    // to the bundled version 2.0 (17.5 mg/m2/day) part-way through accrual.
    let protocol_dir = temporary.path().join("protocol-1.0");
    std::fs::create_dir_all(&protocol_dir)?;
    std::fs::write(
        protocol_dir.join("anbl1221.toml"),
        trialops_domain::protocol::anbl1221_before_dose_revision(),
    )?;
    let settings = || -> anyhow::Result<Settings> {
        let mut s = Settings::load(0, None, Vec::<(String, String)>::new())?;
        s.listen_addr = "127.0.0.1:0".parse()?;
        s.data_dir = data_dir.clone();
        s.protocol_dir = Some(protocol_dir.clone());
        s.log_level = "warn".into();
        devkeys::apply(&mut s, &key);
        Ok(s)
    };
    let shutdown = CancellationToken::new();
    let set = ServiceSet::start(
        |_| settings(),
        &Sources::default(),
        trialops_enrollment::Options {
            randomization_secret: Some(secret),
            server: trialops_platform::server::Options {
                clock: clock.clone(),
                ..Default::default()
            },
        },
        |_| None,
    )
    .await?;
    let [enrollment_url, dosing_url, outcomes_url] = set.addresses()?.urls();
    let serving = set.spawn(shutdown.clone());

    let clients = Clients::new(&enrollment_url, &dosing_url, &outcomes_url)?;
    let mint =
        |sub: &str, role: Role, site: Option<&str>| devkeys::mint(&data_dir, "trialops", sub, role, site, 4 * 3600);
    let per_site = |role: Role, name: &str| -> anyhow::Result<Vec<String>> {
        SITES
            .iter()
            .map(|site| mint(&format!("{name}-{site}"), role, Some(site)))
            .collect()
    };
    let tokens = Tokens {
        admin: mint("trial-administrator", Role::Administrator, None)?,
        reviewer: mint("central-reviewer", Role::CentralReviewer, None)?,
        statistician: mint("study-statistician", Role::Statistician, None)?,
        coordinator: per_site(Role::SiteCoordinator, "coordinator")?,
        pharmacist: per_site(Role::Pharmacist, "pharmacist")?,
        investigator: per_site(Role::Investigator, "investigator")?,
    };

    let mut replay = Replay {
        c: clients,
        t: tokens,
        rng: ChaCha8Rng::seed_from_u64(options.seed),
        children: Vec::new(),
        queue: BinaryHeap::new(),
        sequence: 0,
        filled: [0; 2],
        responders_left: [(0, 1), (4, 5)],
        counts: Counts::default(),
        clock: clock.clone(),
        checkpoints: data_dir.join("checkpoints"),
        keys: data_dir.clone(),
    };
    let progress = if options.json {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(0)
    };
    progress.set_style(
        ProgressStyle::with_template("{prefix:>10} [{bar:40}] {pos}/{len} steps  {msg}")
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .progress_chars("=> "),
    );
    progress.set_prefix("replaying");
    let result = replay.run(start, &progress).await;
    progress.finish_and_clear();
    let report = match result {
        Ok(cutoff) => match replay.report(cutoff, options.json).await {
            Ok(()) => replay.export(&options).await,
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    shutdown.cancel();
    serving.await??;
    report
}

#[derive(Default)]
struct Counts {
    /// Audit checkpoints saved during the replay and verified at its end.
    checkpoints_verified: usize,
    screened: usize,
    screen_failures: usize,
    enrolled: usize,
    withdrawn: usize,
    delays: usize,
    modifications: usize,
    adverse_events: usize,
    administrations: usize,
    assessments: usize,
    /// Electronic signatures: central review of each assessment, each end of treatment.
    signatures: usize,
    /// When the dose revision took effect.
    amendment_effective_on: Option<NaiveDate>,
}

/// A step of a child at an instant; the sequence number keeps equal instants in order.
type Scheduled = (DateTime<Utc>, u64, usize, Step);

struct Replay {
    c: Clients,
    t: Tokens,
    rng: ChaCha8Rng,
    children: Vec<Child>,
    queue: BinaryHeap<Reverse<Scheduled>>,
    sequence: u64,
    /// Evaluable children so far per arm (A, B).
    filled: [usize; 2],
    /// Complete and partial responses still to give per arm.
    responders_left: [(usize, usize); 2],
    counts: Counts,
    clock: Clock,
    /// Where the services' signed audit checkpoints are saved during the replay.
    checkpoints: std::path::PathBuf,
    /// The data folder with the development signing key: each electronic signature uses a token
    /// minted just before it (the signer authenticates again to sign).
    keys: std::path::PathBuf,
}

fn arm_index(arm: &str) -> usize {
    usize::from(arm == "B")
}

impl Replay {
    /// The simulated clock the replay moves.
    fn simulation(&self) -> anyhow::Result<&SimulatedClock> {
        self.clock
            .simulation()
            .ok_or_else(|| anyhow::anyhow!("the replay runs on a simulated clock"))
    }

    fn schedule(&mut self, when: DateTime<Utc>, child: usize, step: Step) {
        self.sequence += 1;
        self.queue.push(Reverse((when, self.sequence, child, step)));
    }

    fn pick(&mut self, n: u32) -> u32 {
        self.rng.next_u32() % n
    }

    fn done_enrolling(&self) -> bool {
        self.filled[0] >= TARGETS[0].1 && self.filled[1] >= TARGETS[1].1
    }

    /// Replays accrual and treatment; returns the data cut-off date.
    async fn run(&mut self, start: NaiveDate, progress: &ProgressBar) -> anyhow::Result<NaiveDate> {
        for (site, country) in SITES.into_iter().zip(COUNTRIES) {
            self.c
                .enrollment
                .register_site(with_token(
                    epb::RegisterSiteRequest {
                        request_id: uuid(),
                        site_code: site.into(),
                        name: format!("Children's hospital {site}"),
                        country: country.into(),
                    },
                    &self.t.admin,
                )?)
                .await
                .doing(format!("registering {site}"))?;
        }
        self.schedule(at(start + Duration::days(AMENDMENT_AFTER_DAYS), 7), 0, Step::Amend);
        // A candidate every 9 days, in turn at the sites; enough for every outcome.
        for i in 0..48usize {
            let day = start + Duration::days(9 * i as i64);
            let (height, weight) = (95 + self.pick(60), 14 + self.pick(30));
            self.children.push(Child {
                site: SITES[i % SITES.len()],
                screening_id: format!("SCR-{:03}", i + 1),
                subject_id: String::new(),
                arm: String::new(),
                course: Course::Withdrawn,
                height,
                weight,
                next_start: day,
                delayed_once: false,
                modified: false,
                progressed_on: None,
            });
            self.schedule(at(day, 9), i, Step::Screen);
        }
        progress.set_length(self.queue.len() as u64);
        let mut last_day = start;
        let mut steps = 0u64;
        while let Some(Reverse((when, _, child, step))) = self.queue.pop() {
            // As an operator's cron job would: the services' checkpoints, kept outside their
            // databases, every 250 steps; the report verifies the logs against them.
            steps += 1;
            if steps.is_multiple_of(250) {
                let mut session = crate::hospital::Session::over(self.c.clone(), &self.t.admin)?;
                crate::hospital::audit::save_all(&mut session, &self.checkpoints).await?;
            }
            if step == Step::Screen && self.done_enrolling() {
                progress.inc(1);
                continue;
            }
            self.simulation()?.advance_to(when);
            last_day = last_day.max(when.date_naive());
            let before = self.queue.len();
            self.step(child, step).await?;
            progress.inc_length((self.queue.len() + 1).saturating_sub(before) as u64);
            progress.inc(1);
            progress.set_message(format!(
                "{} enrolled, {} on {}",
                self.counts.enrolled,
                self.counts.administrations,
                when.date_naive()
            ));
        }
        if !self.done_enrolling() {
            anyhow::bail!("the candidates ran out before both arms had their evaluable children");
        }
        // Data cut-off a year after the last event; follow-up for everyone treated.
        let cutoff = last_day + Duration::days(365);
        self.simulation()?.advance_to(at(cutoff, 17));
        self.follow_up(cutoff).await?;
        Ok(cutoff)
    }

    async fn step(&mut self, i: usize, step: Step) -> anyhow::Result<()> {
        match step {
            Step::Amend => self.amend().await,
            Step::Screen => self.screen_and_enroll(i).await,
            Step::StartCycle(n) => self.start_cycle(i, n).await,
            Step::Administer(n) => self.administer(i, n).await,
            Step::AdverseEvent(n) => self.adverse_event(i, n).await,
            Step::Assess(n) => self.assess(i, n).await,
        }
    }

    /// The dose revision: version 2.0 recorded today, in force two weeks on. Cycles starting from
    /// then are dosed at 17.5 mg/m2/day; earlier ones stay at 25.
    async fn amend(&mut self) -> anyhow::Result<()> {
        let effective_on = self.clock.today() + Duration::days(AMENDMENT_LEAD_DAYS);
        self.c
            .enrollment
            .amend_protocol(with_token(
                epb::AmendProtocolRequest {
                    request_id: uuid(),
                    trial_id: TRIAL.into(),
                    definition: trialops_domain::protocol::ANBL1221_TOML.into(),
                    effective_on: Some(date(effective_on)),
                    reason: "Amendment: dinutuximab dose revised from 25 to 17.5 mg/m2/day".into(),
                },
                &self.t.admin,
            )?)
            .await
            .doing("amending the protocol (the dinutuximab dose revision)")?;
        self.counts.amendment_effective_on = Some(effective_on);
        Ok(())
    }

    async fn screen_and_enroll(&mut self, i: usize) -> anyhow::Result<()> {
        let today = self.clock.today();
        let (site, screening_id) = (self.children[i].site, self.children[i].screening_id.clone());
        let s = site_index(site);
        let failing = SCREEN_FAILURES.contains(&i);
        let screening = self
            .c
            .enrollment
            .screen_subject(with_token(
                epb::ScreenSubjectRequest {
                    request_id: uuid(),
                    trial_id: TRIAL.into(),
                    site_code: site.into(),
                    screening_id: screening_id.clone(),
                    assessed_on: Some(date(today)),
                    values: screening_values(failing, i),
                },
                &self.t.coordinator[s],
            )?)
            .await
            .doing(format!("screening {screening_id}"))?
            .screening
            .unwrap_or_default();
        self.counts.screened += 1;
        if !screening.eligible {
            self.counts.screen_failures += 1;
            return Ok(());
        }
        let prior = ["prior_irinotecan_temozolomide", "no_prior_irinotecan_temozolomide"][self.pick(2) as usize];
        let mycn = ["amplified", "not_amplified", "not_amplified", "unknown"][self.pick(4) as usize];
        let subject = self
            .c
            .enrollment
            .enroll_subject(with_token(
                epb::EnrollSubjectRequest {
                    request_id: uuid(),
                    trial_id: TRIAL.into(),
                    site_code: site.into(),
                    screening_id: screening_id.clone(),
                    consent: Some(epb::Consent {
                        signed_on: Some(date(today)),
                        form_version: "2.0".into(),
                    }),
                    strata: vec![
                        epb::StratumValue {
                            factor_id: "prior_therapy".into(),
                            value: prior.into(),
                        },
                        epb::StratumValue {
                            factor_id: "mycn_status".into(),
                            value: mycn.into(),
                        },
                    ],
                },
                &self.t.coordinator[s],
            )?)
            .await
            .doing(format!("enrolling {screening_id}"))?
            .subject
            .unwrap_or_default();
        self.counts.enrolled += 1;
        let a = arm_index(&subject.arm_code);
        // The course is decided now that the arm is known.
        let course = if self.filled[a] >= TARGETS[a].1 {
            Course::Withdrawn
        } else {
            let slots_left = (TARGETS[a].1 - self.filled[a]) as u32;
            let (complete, partial) = self.responders_left[a];
            let roll = self.pick(slots_left) as usize;
            self.filled[a] += 1;
            if roll < complete {
                self.responders_left[a].0 -= 1;
                Course::Complete
            } else if roll < complete + partial {
                self.responders_left[a].1 -= 1;
                Course::Partial
            } else if self.pick(3) == 0 {
                Course::Stable
            } else {
                Course::Progression(if self.pick(2) == 0 { 2 } else { 4 })
            }
        };
        let child = &mut self.children[i];
        child.subject_id = subject.subject_id.clone();
        child.arm = subject.arm_code.clone();
        child.course = course;
        if course == Course::Withdrawn {
            self.counts.withdrawn += 1;
            self.c
                .enrollment
                .change_subject_status(with_token(
                    epb::ChangeSubjectStatusRequest {
                        request_id: uuid(),
                        subject_id: subject.subject_id.clone(),
                        etag: subject.etag.clone(),
                        new_status: epb::SubjectStatus::Withdrawn as i32,
                        reason: "family withdrew consent before treatment".into(),
                        effective_on: Some(date(today)),
                    },
                    &self.t.coordinator[s],
                )?)
                .await
                .doing(format!("withdrawing {}", subject.subject_id))?;
            return Ok(());
        }
        self.c
            .dosing
            .create_treatment_plan(with_token(
                dpb::CreateTreatmentPlanRequest {
                    request_id: uuid(),
                    subject_id: subject.subject_id.clone(),
                },
                &self.t.pharmacist[s],
            )?)
            .await
            .doing(format!("planning treatment of {}", subject.subject_id))?;
        // Baseline central review, then cycle 1 two days later.
        self.record_assessment(i, 0).await?;
        let first = today + Duration::days(2);
        self.children[i].next_start = first;
        self.schedule(at(first, 8), i, Step::StartCycle(1));
        Ok(())
    }

    async fn start_cycle(&mut self, i: usize, n: i32) -> anyhow::Result<()> {
        let today = self.clock.today();
        let s = site_index(self.children[i].site);
        let subject_id = self.children[i].subject_id.clone();
        // One child in six has low neutrophils once (from cycle 2): the start is refused and
        // recorded as a delay; counts are re-checked a week later.
        let delay = n >= 2 && !self.children[i].delayed_once && self.pick(6) == 0;
        let anc = if delay { 600 } else { 1000 + self.pick(1500) };
        let child = &self.children[i];
        let request = dpb::StartCycleRequest {
            request_id: uuid(),
            subject_id: subject_id.clone(),
            cycle_number: n,
            planned_start_date: Some(date(today)),
            height_cm: dec(child.height + (n as u32) / 3),
            weight_kg: dec(child.weight),
            anc_per_ul: dec(anc),
            platelets_per_ul: dec(150_000 + self.pick(100_000)),
            measured_at: Some(timestamp(at(today, 7))),
            confirm_implausible_measurements: false,
        };
        let started = self
            .c
            .dosing
            .start_cycle(with_token(request, &self.t.investigator[s])?)
            .await;
        match started {
            Err(status) if delay && status.code() == tonic::Code::FailedPrecondition => {
                self.counts.delays += 1;
                self.children[i].delayed_once = true;
                self.schedule(at(today + Duration::days(7), 8), i, Step::StartCycle(n));
                return Ok(());
            }
            other => {
                other.doing(format!("starting cycle {n} of {subject_id}"))?;
            }
        }
        self.children[i].next_start = today + Duration::days(21);
        self.schedule(at(today + Duration::days(13), 16), i, Step::Administer(n));
        // Grade 3 toxicities in some cycles; dinutuximab's pain and neutropenia in arm B.
        if self.pick(4) == 0 {
            self.schedule(at(today + Duration::days(8), 11), i, Step::AdverseEvent(n));
        }
        Ok(())
    }

    async fn administer(&mut self, i: usize, n: i32) -> anyhow::Result<()> {
        let today = self.clock.today();
        let child = &self.children[i];
        let (s, subject_id, cycle_start) = (
            site_index(child.site),
            child.subject_id.clone(),
            child.next_start - Duration::days(21),
        );
        let site = child.site;
        let due: Vec<dpb::Administration> = self
            .c
            .worklist(&self.t.pharmacist[s], site, cycle_start, today)
            .await?
            .into_iter()
            .filter(|a| {
                a.subject_id == subject_id
                    && a.cycle_number == n
                    && a.status == dpb::AdministrationStatus::Planned as i32
            })
            .collect();
        for a in due {
            let day = from_date(a.planned_on.as_ref()).unwrap_or(today);
            self.c
                .dosing
                .record_administration(with_token(
                    dpb::RecordAdministrationRequest {
                        request_id: uuid(),
                        administration_id: a.administration_id.clone(),
                        status: dpb::AdministrationStatus::Given as i32,
                        actual_dose: a.prescribed_dose.clone(),
                        started_at: Some(timestamp(at(day, 9))),
                        ended_at: Some(timestamp(at(day, 10))),
                        ..Default::default()
                    },
                    &self.t.pharmacist[s],
                )?)
                .await
                .doing(format!("recording {} of cycle {n} for {subject_id}", a.agent_id))?;
            self.counts.administrations += 1;
        }
        // Response is assessed after cycles 2, 4 and 6, before the next cycle.
        if n % 2 == 0 {
            self.schedule(at(today + Duration::days(4), 12), i, Step::Assess(n));
        } else {
            let next = self.children[i].next_start;
            self.schedule(at(next, 8), i, Step::StartCycle(n + 1));
        }
        Ok(())
    }

    async fn adverse_event(&mut self, i: usize, n: i32) -> anyhow::Result<()> {
        let today = self.clock.today();
        let child = &self.children[i];
        let s = site_index(child.site);
        let subject_id = child.subject_id.clone();
        let arm_b = child.arm == "B";
        let (term, agent) = match (arm_b, self.pick(3)) {
            (true, 0) => ("Pain", "dinutuximab"),
            (true, 1) => ("Capillary leak syndrome", "dinutuximab"),
            (false, 0) => ("Mucositis oral", "temsirolimus"),
            _ => ("Neutrophil count decreased", "temozolomide"),
        };
        let recorded = self
            .c
            .outcomes
            .record_adverse_event(with_token(
                opb::RecordAdverseEventRequest {
                    request_id: uuid(),
                    subject_id: subject_id.clone(),
                    ctcae_term: term.into(),
                    grade: 3,
                    onset_on: Some(date(today - Duration::days(1))),
                    site_aware_at: Some(timestamp(at(today, 9))),
                    attributions: vec![opb::AgentAttribution {
                        agent_id: agent.into(),
                        attribution: opb::Attribution::Probable as i32,
                    }],
                    seriousness: Vec::new(),
                },
                &self.t.investigator[s],
            )?)
            .await
            .doing(format!("recording {term} for {subject_id}"))?
            .adverse_event
            .unwrap_or_default();
        self.counts.adverse_events += 1;
        // The first grade 3 neutropenia of a child before cycle 5 reduces temozolomide by one
        // level from the next cycle.
        if agent == "temozolomide" && n <= 4 && !self.children[i].modified {
            let plan = self
                .c
                .dosing
                .get_treatment_plan(with_token(
                    dpb::GetTreatmentPlanRequest {
                        subject_id: subject_id.clone(),
                    },
                    &self.t.investigator[s],
                )?)
                .await
                .doing(format!("reading the plan of {subject_id}"))?
                .plan
                .unwrap_or_default();
            self.c
                .dosing
                .apply_dose_modification(with_token(
                    dpb::ApplyDoseModificationRequest {
                        request_id: uuid(),
                        subject_id: subject_id.clone(),
                        etag: plan.etag,
                        agent_id: agent.into(),
                        dose_level: -1,
                        reason: "grade 3 neutropenia".into(),
                        adverse_event_id: recorded.adverse_event_id,
                    },
                    &self.t.investigator[s],
                )?)
                .await
                .doing(format!("reducing {agent} for {subject_id}"))?;
            self.children[i].modified = true;
            self.counts.modifications += 1;
        }
        Ok(())
    }

    /// Central review after cycle `n` (0 = baseline), with measurements that give the child's
    /// course its response under INRC 2017.
    async fn record_assessment(&mut self, i: usize, n: i32) -> anyhow::Result<()> {
        let child = &self.children[i];
        // (primary mm, avid), (metastases sum mm, Curie total, all targets < 10 mm), marrow %
        let baseline = (("50", true), ("40", 10, false), "30");
        let partial = (("30", true), ("20", 4, false), "4");
        let complete = (("8", false), ("0", 0, true), "0");
        let stable = (("46", true), ("37", 9, false), "25");
        let progressive = (("70", true), ("52", 12, false), "35");
        let (primary, mets, marrow) = match (child.course, n) {
            (_, 0) => baseline,
            (Course::Complete, 2) | (Course::Partial, _) => partial,
            (Course::Complete, _) => complete,
            (Course::Progression(at_cycle), n) if n >= at_cycle => progressive,
            _ => stable,
        };
        let mut scores = vec![0i32; 10];
        for k in 0..mets.1 {
            scores[k % 10] += 1;
        }
        let recorded = self
            .c
            .outcomes
            .record_response_assessment(with_token(
                opb::RecordResponseAssessmentRequest {
                    request_id: uuid(),
                    subject_id: child.subject_id.clone(),
                    assessed_on: Some(date(self.clock.today())),
                    after_cycle: n,
                    assessor: opb::Assessor::CentralReview as i32,
                    criteria: opb::ResponseCriteria::Inrc2017 as i32,
                    primary_tumour: Some(opb::PrimaryTumour {
                        longest_diameter_mm: dec(primary.0),
                        avid: primary.1,
                        not_involved: false,
                    }),
                    metastases: Some(opb::Metastases {
                        sum_of_diameters_mm: dec(mets.0),
                        curie_segment_scores: scores,
                        new_lesions: false,
                        not_involved: false,
                        all_targets_under_10_mm: mets.2,
                        fdg_avid_lesions: None,
                    }),
                    bone_marrow: Some(opb::BoneMarrow {
                        tumour_infiltration_percent: dec(marrow),
                        not_involved: false,
                    }),
                    override_overall_response: 0,
                    override_reason: String::new(),
                },
                &self.t.reviewer,
            )?)
            .await
            .doing(format!("assessing {} after cycle {n}", child.subject_id))?
            .assessment
            .unwrap_or_default();
        self.counts.assessments += 1;
        // The central reviewer signs the assessment as reviewed, authenticating again to sign.
        let token = self.signing_token(Role::CentralReviewer, "central-reviewer", None)?;
        let request = opb::SignResponseAssessmentRequest {
            request_id: uuid(),
            assessment_id: recorded.assessment_id.clone(),
            meaning: trialops_proto::common::v1::SignatureMeaning::Reviewed as i32,
        };
        self.c
            .outcomes
            .sign_response_assessment(with_token(request, &token)?)
            .await
            .doing(format!("signing assessment {}", recorded.assessment_id))?;
        self.counts.signatures += 1;
        Ok(())
    }

    /// A token for a person about to sign: named (the demo's staff are synthetic, "Investigator
    /// COG-101"), authenticated now.
    fn signing_token(&self, role: Role, subject: &str, site: Option<&str>) -> anyhow::Result<String> {
        let name = match site {
            Some(site) => format!("Investigator {site}"),
            None => "Central Reviewer".to_owned(),
        };
        let who = (subject, Some(name.as_str()));
        devkeys::mint_named(&self.keys, "trialops", who, role, site, 600)
    }

    async fn assess(&mut self, i: usize, n: i32) -> anyhow::Result<()> {
        self.record_assessment(i, n).await?;
        let today = self.clock.today();
        let child = &self.children[i];
        let s = site_index(child.site);
        match child.course {
            Course::Progression(at_cycle) if n >= at_cycle => {
                // Progression ends protocol therapy.
                let subject = self
                    .c
                    .enrollment
                    .get_subject(with_token(
                        epb::GetSubjectRequest {
                            subject_id: child.subject_id.clone(),
                        },
                        &self.t.coordinator[s],
                    )?)
                    .await
                    .doing(format!("reading {}", child.subject_id))?
                    .subject
                    .unwrap_or_default();
                self.c
                    .enrollment
                    .change_subject_status(with_token(
                        epb::ChangeSubjectStatusRequest {
                            request_id: uuid(),
                            subject_id: subject.subject_id.clone(),
                            etag: subject.etag,
                            new_status: epb::SubjectStatus::OffProtocolTherapy as i32,
                            reason: "progressive disease".into(),
                            effective_on: Some(date(today)),
                        },
                        &self.t.coordinator[s],
                    )?)
                    .await
                    .doing(format!("taking {} off protocol therapy", subject.subject_id))?;
                self.children[i].progressed_on = Some(today);
                // The site's investigator signs the end-of-treatment record.
                let site = SITES[s];
                let token = self.signing_token(Role::Investigator, &format!("investigator-{site}"), Some(site))?;
                let request = epb::SignEndOfTreatmentRequest {
                    request_id: uuid(),
                    subject_id: subject.subject_id.clone(),
                    meaning: trialops_proto::common::v1::SignatureMeaning::ResponsibleFor as i32,
                };
                self.c
                    .enrollment
                    .sign_end_of_treatment(with_token(request, &token)?)
                    .await
                    .doing(format!("signing the end of treatment of {}", subject.subject_id))?;
                self.counts.signatures += 1;
            }
            _ if n < 6 => {
                let next = self.children[i].next_start;
                self.schedule(at(next, 8), i, Step::StartCycle(n + 1));
            }
            // Six cycles replayed: the demo's treatment phase ends here.
            _ => {}
        }
        Ok(())
    }

    async fn follow_up(&mut self, cutoff: NaiveDate) -> anyhow::Result<()> {
        for i in 0..self.children.len() {
            let course = self.children[i].course;
            if self.children[i].subject_id.is_empty() || course == Course::Withdrawn {
                continue;
            }
            let s = site_index(self.children[i].site);
            let after_therapy = self.children[i].next_start;
            // Stable disease progresses within months; a third of responders relapse later.
            let progression = match course {
                Course::Progression(_) => self.children[i].progressed_on,
                Course::Stable => Some(after_therapy + Duration::days(40 + i64::from(self.pick(120)))),
                _ if self.pick(3) == 0 => Some(after_therapy + Duration::days(120 + i64::from(self.pick(200)))),
                _ => None,
            }
            .map(|d| d.min(cutoff - Duration::days(1)));
            // Some children with progression die of disease.
            let died = progression
                .filter(|_| self.pick(2) == 0)
                .map(|p| (p + Duration::days(60 + i64::from(self.pick(150)))).min(cutoff - Duration::days(1)));
            let (last_contact, vital) = match died {
                Some(d) => (d, opb::VitalStatus::Dead),
                None => (
                    cutoff - Duration::days(i64::from(self.pick(30))),
                    opb::VitalStatus::Alive,
                ),
            };
            let subject_id = self.children[i].subject_id.clone();
            self.c
                .outcomes
                .record_follow_up(with_token(
                    opb::RecordFollowUpRequest {
                        request_id: uuid(),
                        subject_id: subject_id.clone(),
                        last_contact_on: Some(date(last_contact)),
                        vital_status: vital as i32,
                        progression_on: progression.map(date),
                        second_malignancy_on: None,
                    },
                    &self.t.coordinator[s],
                )?)
                .await
                .doing(format!("recording follow-up of {subject_id}"))?;
        }
        Ok(())
    }

    async fn report(&mut self, cutoff: NaiveDate, json: bool) -> anyhow::Result<()> {
        let report = self
            .c
            .outcomes
            .get_trial_report(with_token(
                opb::GetTrialReportRequest {
                    trial_id: TRIAL.into(),
                    confidence_level: dec("0.95"),
                },
                &self.t.statistician,
            )?)
            .await
            .doing("reading the trial report")?;
        let efs = self
            .c
            .outcomes
            .get_survival_analysis(with_token(
                opb::GetSurvivalAnalysisRequest {
                    trial_id: TRIAL.into(),
                    endpoint: opb::SurvivalEndpoint::Efs as i32,
                },
                &self.t.statistician,
            )?)
            .await
            .doing("reading the survival analysis")?;
        // Every change of the replay is in the services' audit logs.
        let mut audit = Vec::new();
        let verification = |v: Option<trialops_proto::common::v1::AuditVerification>| v.unwrap_or_default();
        let enrollment = self
            .c
            .enrollment
            .verify_audit_trail(with_token(epb::VerifyAuditTrailRequest::default(), &self.t.admin)?)
            .await
            .doing("verifying enrollment's audit trail")?;
        audit.push(("enrollment", verification(enrollment.verification)));
        let dosing = self
            .c
            .dosing
            .verify_audit_trail(with_token(dpb::VerifyAuditTrailRequest::default(), &self.t.admin)?)
            .await
            .doing("verifying dosing's audit trail")?;
        audit.push(("dosing", verification(dosing.verification)));
        let outcomes = self
            .c
            .outcomes
            .verify_audit_trail(with_token(opb::VerifyAuditTrailRequest::default(), &self.t.admin)?)
            .await
            .doing("verifying outcomes' audit trail")?;
        audit.push(("outcomes", verification(outcomes.verification)));
        // The logs still hold every checkpoint saved during the replay, unchanged.
        let mut session = crate::hospital::Session::over(self.c.clone(), &self.t.admin)?;
        let (problems, saved) = crate::hospital::audit::verify_all(&mut session, &self.checkpoints).await?;
        if !problems.is_empty() {
            anyhow::bail!(
                "the audit logs do not verify against the saved checkpoints: {}",
                problems.join("; ")
            );
        }
        self.counts.checkpoints_verified = saved;
        let summary = Summary {
            counts: &self.counts,
            cutoff,
            audit,
        };
        if json {
            println!(
                "{}",
                serde_json::to_string_pretty(&crate::report::json(&report, &efs, &summary.json()))?
            );
        } else {
            summary.print();
            crate::report::print(&report, &efs);
        }
        Ok(())
    }
}

impl Replay {
    /// Writes the trial's SDTM export (as the statistician) and its ODM file (as the
    /// administrator) where the options ask for them.
    async fn export(&mut self, options: &DemoOptions) -> anyhow::Result<()> {
        use crate::hospital::export::{read_odm, read_sdtm, write_all, write_file};
        if let Some(dir) = &options.export_sdtm {
            let files = read_sdtm(&mut self.c, &self.t.statistician, TRIAL).await?;
            write_all(dir, &files)?;
        }
        if let Some(file) = &options.export_odm {
            let content = read_odm(&mut self.c, &self.t.admin, TRIAL).await?;
            write_file("--export-odm", file, content)?;
        }
        Ok(())
    }
}

struct Summary<'a> {
    counts: &'a Counts,
    cutoff: NaiveDate,
    audit: Vec<(&'static str, trialops_proto::common::v1::AuditVerification)>,
}

impl Summary<'_> {
    fn json(&self) -> serde_json::Value {
        let c = self.counts;
        serde_json::json!({
            "data_cutoff": self.cutoff.to_string(),
            "screened": c.screened,
            "screen_failures": c.screen_failures,
            "enrolled": c.enrolled,
            "withdrawn_before_treatment": c.withdrawn,
            "cycle_delays": c.delays,
            "dose_modifications": c.modifications,
            "adverse_events_recorded": c.adverse_events,
            "administrations_recorded": c.administrations,
            "response_assessments": c.assessments,
            "electronic_signatures": c.signatures,
            "sites": SITES.len(),
            "protocol_amendment": {
                "version": "2.0",
                "effective_on": c.amendment_effective_on.map(|d| d.to_string()),
            },
            "audit_trails": self.audit.iter().map(|(service, v)| serde_json::json!({
                "service": service, "intact": v.intact, "entries": v.events_checked,
            })).collect::<Vec<_>>(),
            "audit_checkpoints_verified": c.checkpoints_verified,
            // Round trips to the databases per RPC the replay called, as the services' metric
            // `trialops_rpc_database_statements` counted them.
            "database_statements": trialops_platform::server::metrics::statements_by_method(),
        })
    }

    fn print(&self) {
        let c = self.counts;
        println!(
            "Synthetic ANBL1221-like trial replayed over the gRPC API (data cut-off {}):",
            self.cutoff
        );
        println!(
            "  {} screened, {} screen failures, {} enrolled ({} withdrew before any dose)",
            c.screened, c.screen_failures, c.enrolled, c.withdrawn
        );
        if let Some(effective_on) = c.amendment_effective_on {
            println!(
                "  {} sites; protocol amended to version 2.0 (dinutuximab 25 -> 17.5 mg/m2/day) from {effective_on}",
                SITES.len()
            );
        }
        println!(
            "  {} administrations, {} cycle delays, {} dose reductions, {} grade 3 adverse events, {} central reviews",
            c.administrations, c.delays, c.modifications, c.adverse_events, c.assessments
        );
        println!(
            "  {} electronic signatures: each central review, each end of treatment (21 CFR Part 11)",
            c.signatures
        );
        for (service, v) in &self.audit {
            if v.intact {
                println!("  {service} audit trail intact: {} entries", v.events_checked);
            } else {
                println!(
                    "  {service} audit trail BROKEN at entry {}: {}",
                    v.first_broken_sequence, v.problem
                );
            }
        }
        println!(
            "  {} signed audit checkpoints saved during the replay, each still in its log unchanged",
            c.checkpoints_verified
        );
        println!();
    }
}

fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// ANBL1221 screening answers: eligible, or (for a screen failure) one criterion missed.
fn screening_values(failing: bool, i: usize) -> Vec<epb::ScreeningValue> {
    use epb::screening_value::Value;
    let v = |id: &str, value: Value| epb::ScreeningValue {
        variable_id: id.into(),
        value: Some(value),
    };
    let d = |x: &str| Value::DecimalValue(trialops_proto::common::v1::Decimal { value: x.into() });
    let (anc, performance, status) = match (failing, i % 3) {
        (true, 0) => ("400", "80", "first_recurrence"),
        (true, 1) => ("1200", "40", "first_recurrence"),
        (true, _) => ("1200", "80", "other"),
        (false, _) => ("1200", "80", "first_recurrence"),
    };
    vec![
        v("histology_confirmed", Value::BoolValue(true)),
        v("disease_status", Value::ChoiceValue(status.into())),
        v("measurable_tumour_mm", d("23")),
        v("measurable_tumour_avid", Value::BoolValue(true)),
        v("anc_per_ul", d(anc)),
        v("platelets_per_ul", d("150000")),
        v("platelets_transfusion_independent", Value::BoolValue(true)),
        v("bilirubin_mg_dl", d("0.6")),
        v("bilirubin_uln_mg_dl", d("1.0")),
        v("alt_u_l", d("40")),
        v("creatinine_within_age_sex_limit", Value::BoolValue(true)),
        v("shortening_fraction_percent", d("34")),
        v("performance_score", d(performance)),
    ]
}
