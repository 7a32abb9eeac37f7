//! Enrollment: sites, trials, screening, enrollment and a subject across the services.

use chrono::NaiveDate;
use clap::Args;
use trialops_proto::dosing::v1 as dpb;
use trialops_proto::enrollment::v1 as epb;
use trialops_proto::outcomes::v1 as opb;

use super::sign::meaning_name;
use super::{Session, name, pair, request_id, words};
use crate::api::{date, date_text, text};
use crate::report::{say, table};

/// Register a site (administrator).
#[derive(Args, Debug)]
pub struct RegisterSite {
    /// Site code, for example COG-101.
    #[arg(long)]
    site: String,
    /// The institution's name.
    #[arg(long)]
    name: String,
    /// The site's country, ISO 3166-1 alpha-3 (for example USA, CAN, AUS): SDTM exports need it.
    #[arg(long, default_value = "")]
    country: String,
}

impl RegisterSite {
    /// Sends the request and shows the answer.
    pub async fn run(self, session: &mut Session) -> anyhow::Result<()> {
        let RegisterSite { site, name, country } = self;
        let registered = session
            .call(
                format!("registering {site}"),
                epb::RegisterSiteRequest {
                    request_id: request_id(),
                    site_code: site.clone(),
                    name,
                    country,
                },
                async |c, r| c.enrollment.register_site(r).await,
            )
            .await?;
        session
            .out
            .show("trialops.enrollment.v1.RegisterSiteResponse", &registered, |r| {
                let s = r.site.clone().unwrap_or_default();
                say(format!("registered site {}", s.site_code));
            })
    }
}

/// Where accrual closes or opens, and why (administrator).
#[derive(Args, Debug)]
pub struct AccrualChange {
    /// Trial.
    #[arg(long, default_value = "ANBL1221")]
    trial: String,
    /// Only this site; without it, the whole trial.
    #[arg(long)]
    site: Option<String>,
    /// Why, for example "Simon stage 1 complete: interim analysis".
    #[arg(long)]
    reason: String,
}

impl AccrualChange {
    /// Closes (`open` false) or opens accrual and shows the accrual now.
    pub async fn run(self, session: &mut Session, open: bool) -> anyhow::Result<()> {
        let AccrualChange { trial, site, reason } = self;
        let place = scope(&trial, site.as_deref());
        let (request_id, trial_id, site_code) = (request_id(), trial, site.unwrap_or_default());
        let accrual = if open {
            let request = epb::OpenAccrualRequest {
                request_id,
                trial_id,
                site_code,
                reason,
            };
            let action = format!("opening accrual to {place}");
            let opened = session.call(action, request, async |c, r| c.enrollment.open_accrual(r).await);
            let opened = opened.await?;
            session
                .out
                .show("trialops.enrollment.v1.OpenAccrualResponse", &opened, |_| ())?;
            opened.accrual
        } else {
            let request = epb::CloseAccrualRequest {
                request_id,
                trial_id,
                site_code,
                reason,
            };
            let action = format!("closing accrual to {place}");
            let closed = session.call(action, request, async |c, r| c.enrollment.close_accrual(r).await);
            let closed = closed.await?;
            session
                .out
                .show("trialops.enrollment.v1.CloseAccrualResponse", &closed, |_| ())?;
            closed.accrual
        };
        if !session.out.json {
            let state = if open { "open" } else { "closed" };
            say(format!("accrual to {place} is {state}; {}", figures(accrual.as_ref())));
        }
        Ok(())
    }
}

/// "trial T" or "site S of trial T".
fn scope(trial: &str, site: Option<&str>) -> String {
    match site {
        Some(site) => format!("site {site} of trial {trial}"),
        None => format!("trial {trial}"),
    }
}

/// "N enrolled (target T, maximum M)", naming only what the protocol sets.
fn figures(accrual: Option<&epb::Accrual>) -> String {
    let a = accrual.cloned().unwrap_or_default();
    let mut limits = Vec::new();
    if a.target > 0 {
        limits.push(format!("target {}", a.target));
    }
    if a.maximum > 0 {
        limits.push(format!("maximum {}", a.maximum));
    }
    if limits.is_empty() {
        format!("{} enrolled", a.enrolled)
    } else {
        format!("{} enrolled ({})", a.enrolled, limits.join(", "))
    }
}

/// Show a trial: arms, strata, screening variables.
#[derive(Args, Debug)]
pub struct Trial {
    /// Trial.
    #[arg(default_value = "ANBL1221")]
    trial: String,
}

impl Trial {
    /// Sends the request and shows the answer.
    pub async fn run(self, session: &mut Session) -> anyhow::Result<()> {
        let Trial { trial } = self;
        let t = session
            .call(
                format!("reading trial {trial}"),
                epb::GetTrialRequest {
                    trial_id: trial.clone(),
                },
                async |c, r| c.enrollment.get_trial(r).await,
            )
            .await?;
        session.out.show("trialops.enrollment.v1.GetTrialResponse", &t, |t| {
            let t = t.trial.clone().unwrap_or_default();
            let summary = t.summary.unwrap_or_default();
            say(format!("{} {}", summary.trial_id, summary.title));
            if summary.training {
                say("TRAINING trial: practice data, never a production trial's");
            }
            // In groups of 8 hex digits, as fingerprints are read, so it wraps in a narrow
            // terminal; `verify-allocation --commitment` takes it with or without the spaces.
            let groups: Vec<String> = t
                .allocation_commitment
                .as_bytes()
                .chunks(8)
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect();
            say(format!(
                "allocation commitment: {} ({})",
                groups.join(" "),
                t.allocation_parameters
            ));
            let mut arms = table(&["arm", "name"]);
            for a in &t.arms {
                arms.add_row(vec![a.code.clone(), a.name.clone()]);
            }
            println!("{arms}");
            let mut strata = table(&["stratification factor", "values"]);
            for f in &t.stratification_factors {
                strata.add_row(vec![f.factor_id.clone(), f.allowed_values.join(", ")]);
            }
            println!("{strata}");
            let mut vars = table(&["screening variable", "kind", "unit or values", "description"]);
            for v in &t.screening_variables {
                let kind = epb::VariableKind::try_from(v.kind).map_or("", |k| match k {
                    epb::VariableKind::Decimal => "decimal",
                    epb::VariableKind::Boolean => "true/false",
                    epb::VariableKind::Choice => "choice",
                    epb::VariableKind::Unspecified => "",
                });
                let unit = if v.allowed_values.is_empty() {
                    v.unit.clone()
                } else {
                    v.allowed_values.join(", ")
                };
                vars.add_row(vec![v.variable_id.clone(), kind.into(), unit, v.description.clone()]);
            }
            println!("{vars}");
            say(format!(
                "consent forms accepted: {}",
                t.accepted_consent_form_versions.join(", ")
            ));
        })
    }
}

/// Screen a candidate: `--value variable=value` for each screening variable.
#[derive(Args, Debug)]
pub struct Screen {
    /// Site code.
    #[arg(long)]
    site: String,
    /// The site's screening identifier (never a name or record number).
    #[arg(long)]
    screening_id: String,
    /// One screening answer, `variable=value` (repeat); `trialops trial` lists the variables.
    #[arg(long = "value", value_name = "VARIABLE=VALUE")]
    values: Vec<String>,
    /// Date of the screening assessments (default today).
    #[arg(long)]
    assessed_on: Option<NaiveDate>,
    /// Trial.
    #[arg(long, default_value = "ANBL1221")]
    trial: String,
}

impl Screen {
    /// Sends the request and shows the answer.
    pub async fn run(self, session: &mut Session) -> anyhow::Result<()> {
        let Screen {
            site,
            screening_id,
            values,
            assessed_on,
            trial,
        } = self;
        let today = session.today;
        // The trial says which kind each variable is.
        let definition = session
            .call(
                format!("reading trial {trial}"),
                epb::GetTrialRequest {
                    trial_id: trial.clone(),
                },
                async |c, r| c.enrollment.get_trial(r).await,
            )
            .await?
            .trial
            .unwrap_or_default();
        let mut answers = Vec::new();
        for entry in &values {
            let (id, value) = pair("--value", entry)?;
            let variable = definition
                .screening_variables
                .iter()
                .find(|v| v.variable_id == id)
                .ok_or_else(|| anyhow::anyhow!("--value {id}: not a screening variable of {trial}"))?;
            use epb::screening_value::Value;
            let value = match epb::VariableKind::try_from(variable.kind) {
                Ok(epb::VariableKind::Boolean) => Value::BoolValue(match value {
                    "true" | "yes" => true,
                    "false" | "no" => false,
                    _ => anyhow::bail!("--value {id}: true or false"),
                }),
                Ok(epb::VariableKind::Choice) => Value::ChoiceValue(value.to_owned()),
                _ => Value::DecimalValue(trialops_proto::common::v1::Decimal {
                    value: value.to_owned(),
                }),
            };
            answers.push(epb::ScreeningValue {
                variable_id: id.to_owned(),
                value: Some(value),
            });
        }
        let screened = session
            .call(
                format!("screening {screening_id}"),
                epb::ScreenSubjectRequest {
                    request_id: request_id(),
                    trial_id: trial,
                    site_code: site,
                    screening_id: screening_id.clone(),
                    assessed_on: Some(date(assessed_on.unwrap_or(today))),
                    values: answers,
                },
                async |c, r| c.enrollment.screen_subject(r).await,
            )
            .await?;
        session
            .out
            .show("trialops.enrollment.v1.ScreenSubjectResponse", &screened, |r| {
                let s = r.screening.clone().unwrap_or_default();
                say(format!(
                    "{} attempt {}: {}",
                    s.screening_id,
                    s.attempt,
                    if s.eligible { "ELIGIBLE" } else { "NOT ELIGIBLE" }
                ));
                let mut t = table(&["criterion", "outcome", "detail"]);
                for c in &s.criteria {
                    let outcome = epb::CriterionOutcome::try_from(c.outcome)
                        .map(|o| words(o.as_str_name(), "CRITERION_OUTCOME_"))
                        .unwrap_or_default();
                    t.add_row(vec![c.criterion_id.clone(), outcome, c.detail.clone()]);
                }
                println!("{t}");
            })
    }
}

/// Enroll and randomize a screened, consented candidate.
#[derive(Args, Debug)]
pub struct Enroll {
    /// Site code.
    #[arg(long)]
    site: String,
    /// The screening identifier used at screening.
    #[arg(long)]
    screening_id: String,
    /// Date the consent was signed.
    #[arg(long)]
    consent_signed_on: NaiveDate,
    /// Version of the consent form signed.
    #[arg(long)]
    consent_form: String,
    /// Stratification value, `factor=value` (repeat).
    #[arg(long = "stratum", value_name = "FACTOR=VALUE")]
    strata: Vec<String>,
    /// Trial.
    #[arg(long, default_value = "ANBL1221")]
    trial: String,
}

impl Enroll {
    /// Sends the request and shows the answer.
    pub async fn run(self, session: &mut Session) -> anyhow::Result<()> {
        let Enroll {
            site,
            screening_id,
            consent_signed_on,
            consent_form,
            strata,
            trial,
        } = self;
        let strata = strata
            .iter()
            .map(|s| {
                pair("--stratum", s).map(|(f, v)| epb::StratumValue {
                    factor_id: f.to_owned(),
                    value: v.to_owned(),
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let enrolled = session
            .call(
                format!("enrolling {screening_id}"),
                epb::EnrollSubjectRequest {
                    request_id: request_id(),
                    trial_id: trial,
                    site_code: site,
                    screening_id: screening_id.clone(),
                    consent: Some(epb::Consent {
                        signed_on: Some(date(consent_signed_on)),
                        form_version: consent_form,
                    }),
                    strata,
                },
                async |c, r| c.enrollment.enroll_subject(r).await,
            )
            .await?;
        session
            .out
            .show("trialops.enrollment.v1.EnrollSubjectResponse", &enrolled, |r| {
                let s = r.subject.clone().unwrap_or_default();
                say(format!("enrolled {} on arm {}", s.subject_id, s.arm_code));
            })
    }
}

/// Show a subject: enrollment, treatment plan, response assessments.
#[derive(Args, Debug)]
pub struct Subject {
    /// Study subject identifier, for example ANBL1221-0007.
    subject_id: String,
}

impl Subject {
    /// Sends the request and shows the answer.
    pub async fn run(self, session: &mut Session) -> anyhow::Result<()> {
        let Subject { subject_id } = self;
        let subject = session
            .call(
                format!("reading {subject_id}"),
                epb::GetSubjectRequest {
                    subject_id: subject_id.clone(),
                },
                async |c, r| c.enrollment.get_subject(r).await,
            )
            .await?;
        // Dosing's and outcomes' views are shown when the caller may read them.
        let plan = dpb::GetTreatmentPlanRequest {
            subject_id: subject_id.clone(),
        };
        let plan = session.call("", plan, async |c, r| c.dosing.get_treatment_plan(r).await);
        let plan = plan.await.ok().and_then(|r| r.plan);
        let assessments = opb::ListResponseAssessmentsRequest {
            subject_id: subject_id.clone(),
            ..Default::default()
        };
        let assessments = session.call("", assessments, async |c, r| {
            c.outcomes.list_response_assessments(r).await
        });
        let assessments = assessments.await.unwrap_or_default();
        if session.out.json {
            // Each service's view of the subject.
            let plan = plan.map(|p| dpb::GetTreatmentPlanResponse { plan: Some(p) });
            let view = serde_json::json!({
                "enrollment": session.out.to_json("trialops.enrollment.v1.GetSubjectResponse", &subject)?["subject"],
                "dosing": match &plan {
                    Some(p) => session.out.to_json("trialops.dosing.v1.GetTreatmentPlanResponse", p)?["plan"].clone(),
                    None => serde_json::Value::Null,
                },
                "outcomes": session.out.to_json("trialops.outcomes.v1.ListResponseAssessmentsResponse", &assessments)?,
            });
            println!("{}", serde_json::to_string_pretty(&view)?);
            return Ok(());
        }
        session
            .out
            .show("trialops.enrollment.v1.GetSubjectResponse", &subject, |r| {
                let s = r.subject.clone().unwrap_or_default();
                let status = epb::SubjectStatus::try_from(s.status)
                    .map(|x| words(x.as_str_name(), "SUBJECT_STATUS_"))
                    .unwrap_or_default();
                let mut t = table(&["subject", "site", "arm", "status", "strata"]);
                let strata: Vec<String> = s
                    .strata
                    .iter()
                    .map(|v| format!("{}={}", v.factor_id, v.value))
                    .collect();
                t.add_row(vec![
                    s.subject_id.clone(),
                    s.site_code.clone(),
                    s.arm_code.clone(),
                    status,
                    strata.join(", "),
                ]);
                println!("{t}");
                for signature in &s.end_of_treatment_signatures {
                    say(super::sign::manifestation("end of treatment", signature));
                }
                if let Some(p) = &plan {
                    let mut t = table(&["agent", "dose level", "protocol dose", "route", "days", "discontinued"]);
                    for a in &p.agents {
                        let basis = match dpb::DoseBasis::try_from(a.basis) {
                            Ok(dpb::DoseBasis::PerM2) => "/m2",
                            Ok(dpb::DoseBasis::PerKg) => "/kg",
                            _ => "",
                        };
                        let days: Vec<String> = a.cycle_days.iter().map(i32::to_string).collect();
                        t.add_row(vec![
                            a.agent_id.clone(),
                            a.dose_level.to_string(),
                            format!("{} {}{basis}", text(a.protocol_dose.as_ref()), a.dose_unit),
                            a.route.clone(),
                            days.join(","),
                            if a.discontinued {
                                a.discontinued_reason.clone()
                            } else {
                                String::new()
                            },
                        ]);
                    }
                    say(format!(
                        "treatment: {} of {} cycles started",
                        p.cycles_started, p.maximum_cycles
                    ));
                    println!("{t}");
                }
                if !assessments.assessments.is_empty() {
                    let mut t = table(&[
                        "assessed on",
                        "after cycle",
                        "assessor",
                        "overall response",
                        "signed by",
                    ]);
                    for a in &assessments.assessments {
                        let assessor = opb::Assessor::try_from(a.assessor)
                            .map(|x| words(x.as_str_name(), "ASSESSOR_"))
                            .unwrap_or_default();
                        let on = date_text(a.assessed_on.as_ref());
                        let overall = if a.after_cycle == 0 {
                            "(baseline)".to_owned()
                        } else {
                            name(a.overall_response)
                        };
                        let signed: Vec<String> = a
                            .signatures
                            .iter()
                            .map(|s| {
                                let stale = if s.applies { "" } else { ", no longer applies" };
                                format!("{} ({}{stale})", s.printed_name, words(&meaning_name(s.meaning), ""))
                            })
                            .collect();
                        t.add_row(vec![
                            on,
                            a.after_cycle.to_string(),
                            assessor,
                            overall,
                            signed.join("; "),
                        ]);
                    }
                    println!("{t}");
                    let only_baselines = assessments.assessments.iter().all(|a| a.after_cycle == 0);
                    let best = match assessments.best_central_response {
                        0 if only_baselines => "none yet: only a baseline".to_owned(),
                        0 => "none yet: no central review after the baseline".to_owned(),
                        best => name(best),
                    };
                    say(format!("best central-review response: {best}"));
                }
            })
    }
}
