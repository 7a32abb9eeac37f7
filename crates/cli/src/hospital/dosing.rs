//! Dosing: treatment plans, cycles, the worklist and administrations.

use chrono::{DateTime, NaiveDate, Utc};
use clap::Args;
use trialops_proto::dosing::v1 as dpb;

use super::{Session, enum_value, request_id, words};
use crate::api::{date, date_text, dec, text, timestamp};
use crate::report::{say, table};

/// Create an enrolled subject's treatment plan from the arm (pharmacist, investigator).
#[derive(Args, Debug)]
pub struct Plan {
    /// Study subject identifier.
    #[arg(long)]
    subject: String,
}

impl Plan {
    /// Sends the request and shows the answer.
    pub async fn run(self, session: &mut Session) -> anyhow::Result<()> {
        let Plan { subject } = self;
        let created = session
            .call(
                format!("planning the treatment of {subject}"),
                dpb::CreateTreatmentPlanRequest {
                    request_id: request_id(),
                    subject_id: subject.clone(),
                },
                async |c, r| c.dosing.create_treatment_plan(r).await,
            )
            .await?;
        session
            .out
            .show("trialops.dosing.v1.CreateTreatmentPlanResponse", &created, |r| {
                let p = r.plan.clone().unwrap_or_default();
                let agents: Vec<&str> = p.agents.iter().map(|a| a.agent_id.as_str()).collect();
                say(format!(
                    "planned {} on arm {}: {}",
                    p.subject_id,
                    p.arm_code,
                    agents.join(", ")
                ));
            })
    }
}

/// Start a cycle: doses from today's height and weight, if the counts allow.
#[derive(Args, Debug)]
pub struct StartCycle {
    /// Study subject identifier.
    #[arg(long)]
    subject: String,
    /// Cycle number.
    #[arg(long)]
    cycle: i32,
    /// Height, cm.
    #[arg(long)]
    height_cm: String,
    /// Weight, kg.
    #[arg(long)]
    weight_kg: String,
    /// Absolute neutrophil count, /uL.
    #[arg(long)]
    anc: String,
    /// Platelets, /uL.
    #[arg(long)]
    platelets: String,
    /// Start date (default today).
    #[arg(long)]
    start_date: Option<NaiveDate>,
    /// When the measurements were taken, RFC 3339 (default now).
    #[arg(long)]
    measured_at: Option<DateTime<Utc>>,
    /// Confirm measurements the service flagged as implausible.
    #[arg(long)]
    confirm_implausible: bool,
}

impl StartCycle {
    /// Sends the request and shows the answer.
    pub async fn run(self, session: &mut Session) -> anyhow::Result<()> {
        let StartCycle {
            subject,
            cycle,
            height_cm,
            weight_kg,
            anc,
            platelets,
            start_date,
            measured_at,
            confirm_implausible,
        } = self;
        let today = session.today;
        let started = session
            .call(
                format!("starting cycle {cycle} of {subject}"),
                dpb::StartCycleRequest {
                    request_id: request_id(),
                    subject_id: subject.clone(),
                    cycle_number: cycle,
                    planned_start_date: Some(date(start_date.unwrap_or(today))),
                    height_cm: dec(height_cm),
                    weight_kg: dec(weight_kg),
                    anc_per_ul: dec(anc),
                    platelets_per_ul: dec(platelets),
                    measured_at: Some(timestamp(measured_at.unwrap_or_else(Utc::now))),
                    confirm_implausible_measurements: confirm_implausible,
                },
                async |c, r| c.dosing.start_cycle(r).await,
            )
            .await?;
        session
            .out
            .show("trialops.dosing.v1.StartCycleResponse", &started, |r| {
                let cy = r.cycle.clone().unwrap_or_default();
                say(format!(
                    "cycle {} of {} starts {} (BSA {} m2, {}; delay {} days)",
                    cy.cycle_number,
                    cy.subject_id,
                    date_text(cy.start_date.as_ref()),
                    text(cy.bsa_m2.as_ref()),
                    cy.bsa_formula,
                    cy.delay_days
                ));
                let mut t = table(&["agent", "level", "formula", "calculated", "dose", "unit"]);
                for d in &cy.doses {
                    t.add_row(vec![
                        d.agent_id.clone(),
                        d.dose_level.to_string(),
                        d.formula.clone(),
                        text(d.calculated_dose.as_ref()),
                        text(d.rounded_dose.as_ref()),
                        d.dose_unit.clone(),
                    ]);
                }
                println!("{t}");
            })
    }
}

/// A site's administrations between two dates (the pharmacy's or ward's worklist).
#[derive(Args, Debug)]
pub struct Worklist {
    /// Site code.
    #[arg(long)]
    site: String,
    /// From (default today).
    #[arg(long)]
    from: Option<NaiveDate>,
    /// To (default from).
    #[arg(long)]
    to: Option<NaiveDate>,
    /// Only this subject's administrations.
    #[arg(long)]
    subject: Option<String>,
    /// Only this agent's administrations.
    #[arg(long)]
    agent: Option<String>,
    /// Print only the administration ids, one per line (for scripts).
    #[arg(long)]
    ids: bool,
}

impl Worklist {
    /// Sends the request and shows the answer.
    pub async fn run(self, session: &mut Session) -> anyhow::Result<()> {
        let Worklist {
            site,
            from,
            to,
            subject,
            agent,
            ids,
        } = self;
        let today = session.today;
        let from = from.unwrap_or(today);
        let wanted = |a: &dpb::Administration| {
            subject.as_ref().is_none_or(|s| *s == a.subject_id) && agent.as_ref().is_none_or(|g| *g == a.agent_id)
        };
        let all = dpb::ListAdministrationsResponse {
            administrations: session
                .clients
                .worklist(&session.token, &site, from, to.unwrap_or(from))
                .await?
                .into_iter()
                .filter(wanted)
                .collect(),
            next_page_token: String::new(),
        };
        if ids {
            for a in &all.administrations {
                println!("{}", a.administration_id);
            }
            return Ok(());
        }
        session
            .out
            .show("trialops.dosing.v1.ListAdministrationsResponse", &all, |r| {
                let mut t = table(&[
                    "date",
                    "subject",
                    "cycle",
                    "day",
                    "agent",
                    "dose",
                    "status",
                    "administration",
                ]);
                for a in &r.administrations {
                    let status = dpb::AdministrationStatus::try_from(a.status)
                        .map(|x| words(x.as_str_name(), "ADMINISTRATION_STATUS_"))
                        .unwrap_or_default();
                    t.add_row(vec![
                        date_text(a.planned_on.as_ref()),
                        a.subject_id.clone(),
                        a.cycle_number.to_string(),
                        a.cycle_day.to_string(),
                        a.agent_id.clone(),
                        format!("{} {}", text(a.prescribed_dose.as_ref()), a.dose_unit),
                        status,
                        a.administration_id.clone(),
                    ]);
                }
                println!("{t}");
            })
    }
}

/// Record an administration from the worklist.
#[derive(Args, Debug)]
pub struct Administer {
    /// Administration identifier (from the worklist).
    #[arg(long)]
    administration: String,
    /// given, partially_given, held or not_given.
    #[arg(long, default_value = "given")]
    status: String,
    /// Dose actually given (for given and partially_given).
    #[arg(long)]
    dose: Option<String>,
    /// Start, RFC 3339.
    #[arg(long)]
    started_at: Option<DateTime<Utc>>,
    /// End, RFC 3339.
    #[arg(long)]
    ended_at: Option<DateTime<Utc>>,
    /// Reason (required for held, not given and partial doses).
    #[arg(long, default_value = "")]
    reason: String,
}

impl Administer {
    /// Sends the request and shows the answer.
    pub async fn run(self, session: &mut Session) -> anyhow::Result<()> {
        let Administer {
            administration,
            status,
            dose,
            started_at,
            ended_at,
            reason,
        } = self;
        let status = enum_value("--status", "ADMINISTRATION_STATUS_", &status, |s| {
            dpb::AdministrationStatus::from_str_name(s).map(|v| v as i32)
        })?;
        let recorded = session
            .call(
                format!("recording administration {administration}"),
                dpb::RecordAdministrationRequest {
                    request_id: request_id(),
                    administration_id: administration.clone(),
                    status,
                    actual_dose: dose.and_then(dec),
                    started_at: started_at.map(timestamp),
                    ended_at: ended_at.map(timestamp),
                    reason,
                    ..Default::default()
                },
                async |c, r| c.dosing.record_administration(r).await,
            )
            .await?;
        session
            .out
            .show("trialops.dosing.v1.RecordAdministrationResponse", &recorded, |r| {
                let a = r.administration.clone().unwrap_or_default();
                say(format!(
                    "recorded {} of {} cycle {}{}",
                    a.agent_id,
                    a.subject_id,
                    a.cycle_number,
                    if a.deviation_flagged {
                        ": DEVIATION from the prescribed dose flagged"
                    } else {
                        ""
                    }
                ));
            })
    }
}
