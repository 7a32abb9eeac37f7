//! `trialops sign`: an electronic signature of an eligibility confirmation, an end-of-treatment
//! record or a serious adverse event report (investigator) or of a response assessment (central
//! reviewer), with a token from a fresh authentication that names the signer.

use clap::{Args, Subcommand};
use trialops_proto::common::v1::{Signature, SignatureMeaning};
use trialops_proto::enrollment::v1 as epb;
use trialops_proto::outcomes::v1 as pb;

use super::{Session, enum_value, request_id, words};
use crate::report::{instant, say};

/// What to sign.
#[derive(Subcommand, Debug)]
pub enum Record {
    /// An eligible screening, as the eligibility confirmation (investigator, own site).
    Screening {
        /// The trial.
        #[arg(long)]
        trial: String,
        /// The site's screening id.
        #[arg(long)]
        screening: String,
        /// The screening attempt signed.
        #[arg(long, default_value_t = 1)]
        attempt: i32,
    },
    /// A subject's end-of-treatment record (the change to off protocol therapy; investigator, own
    /// site).
    EndOfTreatment {
        /// Study subject id, for example ANBL1221-0007.
        #[arg(long)]
        subject: String,
    },
    /// A serious adverse event report (investigator, own site).
    AdverseEvent {
        /// Adverse event id.
        #[arg(long)]
        id: String,
    },
    /// A response assessment (central reviewer).
    Assessment {
        /// Assessment id.
        #[arg(long)]
        id: String,
    },
}

/// Sign a record electronically. The token must name the signer (`name`) and come from an
/// authentication within the services' `signature_max_auth_age_minutes` (5 by default).
#[derive(Args, Debug)]
pub struct Sign {
    #[command(subcommand)]
    record: Record,
    /// What the signature means: reviewed, approved or responsible_for.
    #[arg(long, global = true, default_value = "approved")]
    meaning: String,
}

impl Sign {
    /// Signs and shows the signature as it is recorded.
    pub async fn run(self, session: &mut Session) -> anyhow::Result<()> {
        let meaning = enum_value("--meaning", "SIGNATURE_MEANING_", &self.meaning, |name| {
            SignatureMeaning::from_str_name(name).map(|m| m as i32)
        })?;
        let (what, signature) = match self.record {
            Record::Screening {
                trial,
                screening,
                attempt,
            } => {
                let request = epb::SignScreeningRequest {
                    request_id: request_id(),
                    trial_id: trial,
                    screening_id: screening.clone(),
                    attempt,
                    meaning,
                };
                let what = format!("screening {screening} attempt {attempt}");
                let signed = session
                    .call(format!("signing {what}"), request, async |c, r| {
                        c.enrollment.sign_screening(r).await
                    })
                    .await?;
                (what, signed.signature)
            }
            Record::EndOfTreatment { subject } => {
                let request = epb::SignEndOfTreatmentRequest {
                    request_id: request_id(),
                    subject_id: subject.clone(),
                    meaning,
                };
                let what = format!("the end of treatment of {subject}");
                let signed = session
                    .call(format!("signing {what}"), request, async |c, r| {
                        c.enrollment.sign_end_of_treatment(r).await
                    })
                    .await?;
                (what, signed.signature)
            }
            Record::AdverseEvent { id } => {
                let request = pb::SignAdverseEventRequest {
                    request_id: request_id(),
                    adverse_event_id: id.clone(),
                    meaning,
                };
                let what = format!("serious adverse event {id}");
                let signed = session
                    .call(format!("signing {what}"), request, async |c, r| {
                        c.outcomes.sign_adverse_event(r).await
                    })
                    .await?;
                (what, signed.signature)
            }
            Record::Assessment { id } => {
                let request = pb::SignResponseAssessmentRequest {
                    request_id: request_id(),
                    assessment_id: id.clone(),
                    meaning,
                };
                let what = format!("response assessment {id}");
                let signed = session
                    .call(format!("signing {what}"), request, async |c, r| {
                        c.outcomes.sign_response_assessment(r).await
                    })
                    .await?;
                (what, signed.signature)
            }
        };
        let signature = signature.unwrap_or_default();
        session.out.show("trialops.common.v1.Signature", &signature, |s| {
            say(manifestation(&what, s))
        })
    }
}

/// A signature meaning's name without its prefix, for example "RESPONSIBLE_FOR".
pub(crate) fn meaning_name(meaning: i32) -> String {
    SignatureMeaning::try_from(meaning)
        .map_or("UNSPECIFIED", |m| m.as_str_name())
        .trim_start_matches("SIGNATURE_MEANING_")
        .to_owned()
}

/// A signature as 21 CFR 11.50 asks it shown: the printed name, the date and time, the meaning.
pub(crate) fn manifestation(what: &str, s: &Signature) -> String {
    format!(
        "Signed {what}: {} ({}, {}), {} at {}; content SHA-256 {}{}",
        s.printed_name,
        s.signer,
        s.signer_role,
        words(&meaning_name(s.meaning), ""),
        instant(s.signed_at.as_ref()),
        s.content_sha256,
        if s.applies {
            ""
        } else {
            " (NO LONGER APPLIES: the record changed after signing)"
        }
    )
}
