//! The commands people at a hospital use: screen, enroll, show a subject, start a cycle, see the
//! worklist, record an administration, a response assessment or an adverse event, list overdue
//! reports, print the trial report. They speak only the public gRPC API, with the caller's
//! bearer token (`--token` or `TRIALOPS_TOKEN`), print readable tables, or with `--json` the
//! responses in the protobuf JSON mapping (proto field names). A refused call prints the code,
//! the message, the reason and every field violation, and exits 1.

use chrono::{DateTime, NaiveDate, Utc};
use clap::{Args, Subcommand};
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, SerializeOptions};
use trialops_proto::dosing::v1 as dpb;
use trialops_proto::enrollment::v1 as epb;
use trialops_proto::outcomes::v1 as opb;

use crate::api::{Clients, Context, date, date_text, dec, text, timestamp, with_token};
use crate::report::{say, table};

/// Where the services are and who calls.
#[derive(Args, Debug, Clone)]
pub struct Connection {
    /// Enrollment service URL.
    #[arg(
        long,
        global = true,
        env = "TRIALOPS_ENROLLMENT",
        default_value = "http://127.0.0.1:50051"
    )]
    pub enrollment: String,
    /// Dosing service URL.
    #[arg(
        long,
        global = true,
        env = "TRIALOPS_DOSING",
        default_value = "http://127.0.0.1:50052"
    )]
    pub dosing: String,
    /// Outcomes service URL.
    #[arg(
        long,
        global = true,
        env = "TRIALOPS_OUTCOMES",
        default_value = "http://127.0.0.1:50053"
    )]
    pub outcomes: String,
    /// Bearer token (locally: `trialops token`).
    #[arg(
        long,
        global = true,
        env = "TRIALOPS_TOKEN",
        hide_env_values = true,
        default_value = ""
    )]
    pub token: String,
    /// Print responses as JSON (protobuf JSON mapping) instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
}

/// A hospital command.
#[derive(Subcommand, Debug)]
pub enum Hospital {
    /// Screen a candidate: `--value variable=value` for each screening variable.
    Screen {
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
    },
    /// Enroll and randomize a screened, consented candidate.
    Enroll {
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
    },
    /// Register a site (administrator).
    RegisterSite {
        /// Site code, for example COG-101.
        #[arg(long)]
        site: String,
        /// The institution's name.
        #[arg(long)]
        name: String,
    },
    /// Create an enrolled subject's treatment plan from the arm (pharmacist, investigator).
    Plan {
        /// Study subject identifier.
        #[arg(long)]
        subject: String,
    },
    /// Show a trial: arms, strata, screening variables.
    Trial {
        /// Trial.
        #[arg(default_value = "ANBL1221")]
        trial: String,
    },
    /// Show a subject: enrollment, treatment plan, response assessments.
    Subject {
        /// Study subject identifier, for example ANBL1221-0007.
        subject_id: String,
    },
    /// Start a cycle: doses from today's height and weight, if the counts allow.
    StartCycle {
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
    },
    /// A site's administrations between two dates (the pharmacy's or ward's worklist).
    Worklist {
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
    },
    /// Record an administration from the worklist.
    Administer {
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
    },
    /// Record a response assessment (INRC 2017).
    Response {
        /// Study subject identifier.
        #[arg(long)]
        subject: String,
        /// Cycle after which it was assessed (0 = baseline).
        #[arg(long)]
        after_cycle: i32,
        /// site or central.
        #[arg(long, default_value = "site")]
        assessor: String,
        /// Primary tumour longest diameter, mm.
        #[arg(long)]
        primary_mm: String,
        /// The primary tumour is MIBG- or FDG-avid.
        #[arg(long)]
        primary_avid: bool,
        /// Sum of the target metastases' diameters, mm.
        #[arg(long)]
        metastases_mm: String,
        /// Curie scores of the 10 skeletal segments, comma-separated.
        #[arg(long, value_delimiter = ',')]
        curie: Vec<i32>,
        /// Every target metastasis is under 10 mm.
        #[arg(long)]
        all_targets_under_10_mm: bool,
        /// FDG-avid metastatic lesions on FDG-PET (only for protocols that use them).
        #[arg(long)]
        fdg_lesions: Option<i32>,
        /// New lesions.
        #[arg(long)]
        new_lesions: bool,
        /// Bone marrow tumour infiltration, %.
        #[arg(long)]
        marrow_percent: String,
        /// Date of the assessment (default today).
        #[arg(long)]
        assessed_on: Option<NaiveDate>,
    },
    /// Record an adverse event (CTCAE).
    AdverseEvent {
        /// Study subject identifier.
        #[arg(long)]
        subject: String,
        /// CTCAE term, for example "Neutrophil count decreased".
        #[arg(long)]
        term: String,
        /// Grade 1 to 5.
        #[arg(long)]
        grade: i32,
        /// Onset date.
        #[arg(long)]
        onset: NaiveDate,
        /// When the site became aware, RFC 3339 (default now).
        #[arg(long)]
        aware_at: Option<DateTime<Utc>>,
        /// Attribution, `agent=unrelated|unlikely|possible|probable|definite` (repeat).
        #[arg(long = "attribution", value_name = "AGENT=ATTRIBUTION")]
        attributions: Vec<String>,
        /// Seriousness criterion met: death, life_threatening, hospitalisation, incapacity,
        /// congenital_anomaly, important_medical_event (repeat).
        #[arg(long = "serious")]
        seriousness: Vec<String>,
    },
    /// Expedited reports overdue (or due within --within-hours).
    Overdue {
        /// Also list reports due within this many hours.
        #[arg(long, default_value_t = 0)]
        within_hours: i32,
    },
    /// The trial report (statistician).
    Report {
        /// Trial.
        #[arg(default_value = "ANBL1221")]
        trial: String,
    },
}

fn pair<'a>(option: &str, text: &'a str) -> anyhow::Result<(&'a str, &'a str)> {
    text.split_once('=')
        .map(|(k, v)| (k.trim(), v.trim()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| anyhow::anyhow!("{option} {text:?}: expected name=value"))
}

fn enum_value(option: &str, prefix: &str, value: &str, parse: impl Fn(&str) -> Option<i32>) -> anyhow::Result<i32> {
    parse(&format!("{prefix}{}", value.trim().to_ascii_uppercase()))
        .ok_or_else(|| anyhow::anyhow!("{option} {value:?} is not one of the allowed values (see --help)"))
}

struct Output {
    json: bool,
    pool: DescriptorPool,
}

impl Output {
    /// `message` (of protobuf type `name`) in the protobuf JSON mapping, with proto field names.
    fn to_json<M: Message>(&self, name: &str, message: &M) -> anyhow::Result<serde_json::Value> {
        let descriptor = self
            .pool
            .get_message_by_name(name)
            .ok_or_else(|| anyhow::anyhow!("no descriptor for {name}"))?;
        let dynamic = DynamicMessage::decode(descriptor, message.encode_to_vec().as_slice())?;
        let options = SerializeOptions::new().use_proto_field_name(true);
        Ok(dynamic.serialize_with_options(serde_json::value::Serializer, &options)?)
    }

    /// Prints `message` (of protobuf type `name`) as JSON, or runs `human`.
    fn show<M: Message>(&self, name: &str, message: &M, human: impl FnOnce(&M)) -> anyhow::Result<()> {
        if self.json {
            println!("{}", serde_json::to_string_pretty(&self.to_json(name, message)?)?);
        } else {
            human(message);
        }
        Ok(())
    }
}

/// Runs a hospital command.
pub async fn run(connection: Connection, command: Hospital) -> anyhow::Result<()> {
    let mut c = Clients::new(&connection.enrollment, &connection.dosing, &connection.outcomes)?;
    let token = connection.token.as_str();
    let out = Output {
        json: connection.json,
        pool: DescriptorPool::decode(trialops_proto::FILE_DESCRIPTOR_SET)?,
    };
    let today = Utc::now().date_naive();
    let request_id = || uuid::Uuid::new_v4().to_string();
    match command {
        Hospital::RegisterSite { site, name } => {
            let registered = c
                .enrollment
                .register_site(with_token(
                    epb::RegisterSiteRequest {
                        request_id: request_id(),
                        site_code: site.clone(),
                        name,
                    },
                    token,
                )?)
                .await
                .doing(format!("registering {site}"))?;
            out.show("trialops.enrollment.v1.RegisterSiteResponse", &registered, |r| {
                let s = r.site.clone().unwrap_or_default();
                say(format!("registered site {}", s.site_code));
            })
        }
        Hospital::Plan { subject } => {
            let created = c
                .dosing
                .create_treatment_plan(with_token(
                    dpb::CreateTreatmentPlanRequest {
                        request_id: request_id(),
                        subject_id: subject.clone(),
                    },
                    token,
                )?)
                .await
                .doing(format!("planning the treatment of {subject}"))?;
            out.show("trialops.dosing.v1.CreateTreatmentPlanResponse", &created, |r| {
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
        Hospital::Trial { trial } => {
            let t = c
                .enrollment
                .get_trial(with_token(
                    epb::GetTrialRequest {
                        trial_id: trial.clone(),
                    },
                    token,
                )?)
                .await
                .doing(format!("reading trial {trial}"))?;
            out.show("trialops.enrollment.v1.GetTrialResponse", &t, |t| {
                let t = t.trial.clone().unwrap_or_default();
                let summary = t.summary.unwrap_or_default();
                say(format!("{} {}", summary.trial_id, summary.title));
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
        Hospital::Screen {
            site,
            screening_id,
            values,
            assessed_on,
            trial,
        } => {
            // The trial says which kind each variable is.
            let definition = c
                .enrollment
                .get_trial(with_token(
                    epb::GetTrialRequest {
                        trial_id: trial.clone(),
                    },
                    token,
                )?)
                .await
                .doing(format!("reading trial {trial}"))?
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
            let screened = c
                .enrollment
                .screen_subject(with_token(
                    epb::ScreenSubjectRequest {
                        request_id: request_id(),
                        trial_id: trial,
                        site_code: site,
                        screening_id: screening_id.clone(),
                        assessed_on: Some(date(assessed_on.unwrap_or(today))),
                        values: answers,
                    },
                    token,
                )?)
                .await
                .doing(format!("screening {screening_id}"))?;
            out.show("trialops.enrollment.v1.ScreenSubjectResponse", &screened, |r| {
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
        Hospital::Enroll {
            site,
            screening_id,
            consent_signed_on,
            consent_form,
            strata,
            trial,
        } => {
            let strata = strata
                .iter()
                .map(|s| {
                    pair("--stratum", s).map(|(f, v)| epb::StratumValue {
                        factor_id: f.to_owned(),
                        value: v.to_owned(),
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let enrolled = c
                .enrollment
                .enroll_subject(with_token(
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
                    token,
                )?)
                .await
                .doing(format!("enrolling {screening_id}"))?;
            out.show("trialops.enrollment.v1.EnrollSubjectResponse", &enrolled, |r| {
                let s = r.subject.clone().unwrap_or_default();
                say(format!("enrolled {} on arm {}", s.subject_id, s.arm_code));
            })
        }
        Hospital::Subject { subject_id } => {
            let subject = c
                .enrollment
                .get_subject(with_token(
                    epb::GetSubjectRequest {
                        subject_id: subject_id.clone(),
                    },
                    token,
                )?)
                .await
                .doing(format!("reading {subject_id}"))?;
            let plan = c
                .dosing
                .get_treatment_plan(with_token(
                    dpb::GetTreatmentPlanRequest {
                        subject_id: subject_id.clone(),
                    },
                    token,
                )?)
                .await
                .ok()
                .and_then(|r| r.into_inner().plan);
            let assessments = c
                .outcomes
                .list_response_assessments(with_token(
                    opb::ListResponseAssessmentsRequest {
                        subject_id: subject_id.clone(),
                        ..Default::default()
                    },
                    token,
                )?)
                .await
                .map(tonic::Response::into_inner)
                .unwrap_or_default();
            if out.json {
                // Each service's view of the subject.
                let plan = plan.map(|p| dpb::GetTreatmentPlanResponse { plan: Some(p) });
                let view = serde_json::json!({
                    "enrollment": out.to_json("trialops.enrollment.v1.GetSubjectResponse", &subject)?["subject"],
                    "dosing": match &plan {
                        Some(p) => out.to_json("trialops.dosing.v1.GetTreatmentPlanResponse", p)?["plan"].clone(),
                        None => serde_json::Value::Null,
                    },
                    "outcomes": out.to_json("trialops.outcomes.v1.ListResponseAssessmentsResponse", &assessments)?,
                });
                println!("{}", serde_json::to_string_pretty(&view)?);
                return Ok(());
            }
            out.show("trialops.enrollment.v1.GetSubjectResponse", &subject, |r| {
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
                    let mut t = table(&["assessed on", "after cycle", "assessor", "overall response"]);
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
                        t.add_row(vec![on, a.after_cycle.to_string(), assessor, overall]);
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
        Hospital::StartCycle {
            subject,
            cycle,
            height_cm,
            weight_kg,
            anc,
            platelets,
            start_date,
            measured_at,
            confirm_implausible,
        } => {
            let started = c
                .dosing
                .start_cycle(with_token(
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
                    token,
                )?)
                .await
                .doing(format!("starting cycle {cycle} of {subject}"))?;
            out.show("trialops.dosing.v1.StartCycleResponse", &started, |r| {
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
        Hospital::Worklist {
            site,
            from,
            to,
            subject,
            agent,
            ids,
        } => {
            let from = from.unwrap_or(today);
            let wanted = |a: &dpb::Administration| {
                subject.as_ref().is_none_or(|s| *s == a.subject_id) && agent.as_ref().is_none_or(|g| *g == a.agent_id)
            };
            let all = dpb::ListAdministrationsResponse {
                administrations: c
                    .worklist(token, &site, from, to.unwrap_or(from))
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
            out.show("trialops.dosing.v1.ListAdministrationsResponse", &all, |r| {
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
        Hospital::Administer {
            administration,
            status,
            dose,
            started_at,
            ended_at,
            reason,
        } => {
            let status = enum_value("--status", "ADMINISTRATION_STATUS_", &status, |s| {
                dpb::AdministrationStatus::from_str_name(s).map(|v| v as i32)
            })?;
            let recorded = c
                .dosing
                .record_administration(with_token(
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
                    token,
                )?)
                .await
                .doing(format!("recording administration {administration}"))?;
            out.show("trialops.dosing.v1.RecordAdministrationResponse", &recorded, |r| {
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
        Hospital::Response {
            subject,
            after_cycle,
            assessor,
            primary_mm,
            primary_avid,
            metastases_mm,
            curie,
            all_targets_under_10_mm,
            fdg_lesions,
            new_lesions,
            marrow_percent,
            assessed_on,
        } => {
            let assessor = match assessor.as_str() {
                "site" => opb::Assessor::Site,
                "central" => opb::Assessor::CentralReview,
                other => anyhow::bail!("--assessor {other:?}: site or central"),
            };
            let recorded = c
                .outcomes
                .record_response_assessment(with_token(
                    opb::RecordResponseAssessmentRequest {
                        request_id: request_id(),
                        subject_id: subject.clone(),
                        assessed_on: Some(date(assessed_on.unwrap_or(today))),
                        after_cycle,
                        assessor: assessor as i32,
                        criteria: opb::ResponseCriteria::Inrc2017 as i32,
                        primary_tumour: Some(opb::PrimaryTumour {
                            longest_diameter_mm: dec(primary_mm),
                            avid: primary_avid,
                            not_involved: false,
                        }),
                        metastases: Some(opb::Metastases {
                            sum_of_diameters_mm: dec(metastases_mm),
                            curie_segment_scores: curie,
                            new_lesions,
                            not_involved: false,
                            all_targets_under_10_mm,
                            fdg_avid_lesions: fdg_lesions,
                        }),
                        bone_marrow: Some(opb::BoneMarrow {
                            tumour_infiltration_percent: dec(marrow_percent),
                            not_involved: false,
                        }),
                        override_overall_response: 0,
                        override_reason: String::new(),
                    },
                    token,
                )?)
                .await
                .doing(format!("recording the assessment of {subject}"))?;
            out.show(
                "trialops.outcomes.v1.RecordResponseAssessmentResponse",
                &recorded,
                |r| {
                    let a = r.assessment.clone().unwrap_or_default();
                    if a.after_cycle == 0 {
                        say(format!("baseline of {} recorded", a.subject_id));
                        return;
                    }
                    say(format!(
                        "{} after cycle {}: primary {}, metastases {}, marrow {} -> overall {}",
                        a.subject_id,
                        a.after_cycle,
                        name(a.primary_tumour_response),
                        name(a.metastases_response),
                        name(a.bone_marrow_response),
                        name(a.overall_response)
                    ));
                },
            )
        }
        Hospital::AdverseEvent {
            subject,
            term,
            grade,
            onset,
            aware_at,
            attributions,
            seriousness,
        } => {
            let attributions = attributions
                .iter()
                .map(|a| {
                    let (agent, how) = pair("--attribution", a)?;
                    let attribution = enum_value("--attribution", "ATTRIBUTION_", how, |s| {
                        opb::Attribution::from_str_name(s).map(|v| v as i32)
                    })?;
                    Ok(opb::AgentAttribution {
                        agent_id: agent.to_owned(),
                        attribution,
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let seriousness = seriousness
                .iter()
                .map(|s| {
                    enum_value("--serious", "SERIOUSNESS_", s, |n| {
                        opb::Seriousness::from_str_name(n).map(|v| v as i32)
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let recorded = c
                .outcomes
                .record_adverse_event(with_token(
                    opb::RecordAdverseEventRequest {
                        request_id: request_id(),
                        subject_id: subject.clone(),
                        ctcae_term: term,
                        grade,
                        onset_on: Some(date(onset)),
                        site_aware_at: Some(timestamp(aware_at.unwrap_or_else(Utc::now))),
                        attributions,
                        seriousness,
                    },
                    token,
                )?)
                .await
                .doing(format!("recording an adverse event of {subject}"))?;
            out.show("trialops.outcomes.v1.RecordAdverseEventResponse", &recorded, |r| {
                let e = r.adverse_event.clone().unwrap_or_default();
                say(format!(
                    "recorded {} grade {} ({}) for {}",
                    e.ctcae_term,
                    e.grade,
                    if e.expected { "expected" } else { "unexpected" },
                    e.subject_id
                ));
                print_obligations(&e.obligations);
            })
        }
        Hospital::Overdue { within_hours } => {
            let mut page_token = String::new();
            let mut all = opb::ListOverdueReportsResponse::default();
            loop {
                let page = c
                    .outcomes
                    .list_overdue_reports(with_token(
                        opb::ListOverdueReportsRequest {
                            due_within_hours: within_hours,
                            page_size: 500,
                            page_token: page_token.clone(),
                        },
                        token,
                    )?)
                    .await
                    .doing("listing overdue reports")?;
                all.obligations.extend(page.obligations);
                if page.next_page_token.is_empty() {
                    break;
                }
                page_token = page.next_page_token;
            }
            out.show("trialops.outcomes.v1.ListOverdueReportsResponse", &all, |r| {
                if r.obligations.is_empty() {
                    say("no reports overdue");
                } else {
                    print_obligations(&r.obligations);
                }
            })
        }
        Hospital::Report { trial } => {
            let report = c
                .outcomes
                .get_trial_report(with_token(
                    opb::GetTrialReportRequest {
                        trial_id: trial.clone(),
                        confidence_level: dec("0.95"),
                    },
                    token,
                )?)
                .await
                .doing(format!("reading the report of {trial}"))?;
            let efs = c
                .outcomes
                .get_survival_analysis(with_token(
                    opb::GetSurvivalAnalysisRequest {
                        trial_id: trial.clone(),
                        endpoint: opb::SurvivalEndpoint::Efs as i32,
                    },
                    token,
                )?)
                .await
                .doing(format!("reading the survival analysis of {trial}"))?;
            out.show("trialops.outcomes.v1.GetTrialReportResponse", &report, |r| {
                crate::report::print(r, &efs);
            })
        }
    }
}

/// A response's short name, for example "PR" (NOT_INVOLVED as "not involved"); "not set" when
/// the contract's unspecified value stands for none.
fn name(response: i32) -> String {
    match opb::Response::try_from(response) {
        Ok(opb::Response::Unspecified) | Err(_) => "not set".to_owned(),
        Ok(opb::Response::NotInvolved) => "not involved".to_owned(),
        Ok(x) => x.as_str_name().trim_start_matches("RESPONSE_").to_owned(),
    }
}

/// An enum value in words for people: its name without `prefix`, in lower case with spaces
/// ("PARTIALLY_GIVEN" -> "partially given"); "not set" for the unspecified value.
fn words(name: &str, prefix: &str) -> String {
    match name.trim_start_matches(prefix) {
        "UNSPECIFIED" => "not set".to_owned(),
        rest => rest.to_lowercase().replace('_', " "),
    }
}

fn print_obligations(obligations: &[opb::ReportingObligation]) {
    if obligations.is_empty() {
        return;
    }
    let mut t = table(&["report", "due", "submitted", "site", "adverse event"]);
    for o in obligations {
        let when = |t: Option<&prost_types::Timestamp>| {
            t.and_then(|t| DateTime::<Utc>::from_timestamp(t.seconds, 0))
                .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
                .unwrap_or_default()
        };
        t.add_row(vec![
            o.kind.clone(),
            when(o.due_at.as_ref()),
            when(o.submitted_at.as_ref()),
            o.site_code.clone(),
            o.adverse_event_id.clone(),
        ]);
    }
    println!("{t}");
}
