//! Outcomes: responses, adverse events, overdue reports and the trial report.

use chrono::{DateTime, NaiveDate, Utc};
use clap::Args;
use trialops_proto::outcomes::v1 as opb;

use super::{Session, enum_value, name, pair, print_obligations, request_id};
use crate::api::{date, dec, timestamp};
use crate::report::say;

/// Record a response assessment (INRC 2017).
#[derive(Args, Debug)]
pub struct Response {
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
}

impl Response {
    /// Sends the request and shows the answer.
    pub async fn run(self, session: &mut Session) -> anyhow::Result<()> {
        let Response {
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
        } = self;
        let today = session.today;
        let assessor = match assessor.as_str() {
            "site" => opb::Assessor::Site,
            "central" => opb::Assessor::CentralReview,
            other => anyhow::bail!("--assessor {other:?}: site or central"),
        };
        let recorded = session
            .call(
                format!("recording the assessment of {subject}"),
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
                async |c, r| c.outcomes.record_response_assessment(r).await,
            )
            .await?;
        session.out.show(
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
}

/// Record an adverse event (CTCAE).
#[derive(Args, Debug)]
pub struct AdverseEvent {
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
}

impl AdverseEvent {
    /// Sends the request and shows the answer.
    pub async fn run(self, session: &mut Session) -> anyhow::Result<()> {
        let AdverseEvent {
            subject,
            term,
            grade,
            onset,
            aware_at,
            attributions,
            seriousness,
        } = self;
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
        let recorded = session
            .call(
                format!("recording an adverse event of {subject}"),
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
                async |c, r| c.outcomes.record_adverse_event(r).await,
            )
            .await?;
        session
            .out
            .show("trialops.outcomes.v1.RecordAdverseEventResponse", &recorded, |r| {
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
}

/// Expedited reports overdue (or due within --within-hours).
#[derive(Args, Debug)]
pub struct Overdue {
    /// Also list reports due within this many hours.
    #[arg(long, default_value_t = 0)]
    within_hours: i32,
}

impl Overdue {
    /// Sends the request and shows the answer.
    pub async fn run(self, session: &mut Session) -> anyhow::Result<()> {
        let Overdue { within_hours } = self;
        let mut page_token = String::new();
        let mut all = opb::ListOverdueReportsResponse::default();
        loop {
            let page = session
                .call(
                    "listing overdue reports",
                    opb::ListOverdueReportsRequest {
                        due_within_hours: within_hours,
                        page_size: 500,
                        page_token: page_token.clone(),
                    },
                    async |c, r| c.outcomes.list_overdue_reports(r).await,
                )
                .await?;
            all.obligations.extend(page.obligations);
            if page.next_page_token.is_empty() {
                break;
            }
            page_token = page.next_page_token;
        }
        session
            .out
            .show("trialops.outcomes.v1.ListOverdueReportsResponse", &all, |r| {
                if r.obligations.is_empty() {
                    say("no reports overdue");
                } else {
                    print_obligations(&r.obligations);
                }
            })
    }
}

/// The trial report (statistician).
#[derive(Args, Debug)]
pub struct Report {
    /// Trial.
    #[arg(default_value = "ANBL1221")]
    trial: String,
}

impl Report {
    /// Sends the request and shows the answer.
    pub async fn run(self, session: &mut Session) -> anyhow::Result<()> {
        let Report { trial } = self;
        let report = session
            .call(
                format!("reading the report of {trial}"),
                opb::GetTrialReportRequest {
                    trial_id: trial.clone(),
                    confidence_level: dec("0.95"),
                },
                async |c, r| c.outcomes.get_trial_report(r).await,
            )
            .await?;
        let efs = session
            .call(
                format!("reading the survival analysis of {trial}"),
                opb::GetSurvivalAnalysisRequest {
                    trial_id: trial.clone(),
                    endpoint: opb::SurvivalEndpoint::Efs as i32,
                },
                async |c, r| c.outcomes.get_survival_analysis(r).await,
            )
            .await?;
        session
            .out
            .show("trialops.outcomes.v1.GetTrialReportResponse", &report, |r| {
                crate::report::print(r, &efs);
            })
    }
}
