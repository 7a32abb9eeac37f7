//! Conversions between outcomes proto messages and the store's records and domain values.

use rust_decimal::Decimal;
use rust_decimal::prelude::FromPrimitive;
use trialops_domain::outcomes::inrc::Response;
use trialops_domain::outcomes::safety::Attribution;
use trialops_domain::protocol::Seriousness;
use trialops_platform::AppError;
use trialops_platform::wire::convert::{to_date, to_timestamp};
use trialops_proto::common::v1 as common;
use trialops_proto::outcomes::v1 as pb;

use crate::store::{adverse_event, assessment, follow_up, obligation};

/// A statistic on the wire: a decimal rounded to 6 places (None for NaN or infinity).
pub fn stat(x: f64) -> Option<common::Decimal> {
    Decimal::from_f64(x).map(|d| trialops_platform::wire::convert::to_decimal(d.round_dp(6)))
}

/// Wire response of a domain response.
pub fn response(r: Response) -> pb::Response {
    match r {
        Response::Cr => pb::Response::Cr,
        Response::Pr => pb::Response::Pr,
        Response::Mr => pb::Response::Mr,
        Response::Md => pb::Response::Md,
        Response::Sd => pb::Response::Sd,
        Response::Pd => pb::Response::Pd,
        Response::NotInvolved => pb::Response::NotInvolved,
    }
}

/// Domain response of a wire overall response (CR, PR, MR, SD or PD only).
pub fn overall_from(value: i32) -> Option<Response> {
    match pb::Response::try_from(value).ok()? {
        pb::Response::Cr => Some(Response::Cr),
        pb::Response::Pr => Some(Response::Pr),
        pb::Response::Mr => Some(Response::Mr),
        pb::Response::Sd => Some(Response::Sd),
        pb::Response::Pd => Some(Response::Pd),
        _ => None,
    }
}

/// The wire form of a stored response (UNSPECIFIED for a baseline's "none derived").
fn stored_response(a: &assessment::Model, column: &'static str, name: &str) -> Result<i32, AppError> {
    Ok(a.response(column, name)?.map_or(pb::Response::Unspecified, response) as i32)
}

/// An assessor from the wire: SITE or CENTRAL_REVIEW.
pub fn assessor_from(value: i32) -> Option<assessment::Assessor> {
    match pb::Assessor::try_from(value).ok()? {
        pb::Assessor::Site => Some(assessment::Assessor::Site),
        pb::Assessor::CentralReview => Some(assessment::Assessor::CentralReview),
        pb::Assessor::Unspecified => None,
    }
}

/// The wire form of an assessor.
pub fn assessor_to(assessor: assessment::Assessor) -> pb::Assessor {
    match assessor {
        assessment::Assessor::Site => pb::Assessor::Site,
        assessment::Assessor::CentralReview => pb::Assessor::CentralReview,
    }
}

/// A vital status from the wire: ALIVE or DEAD.
pub fn vital_status_from(value: i32) -> Option<follow_up::VitalStatus> {
    match pb::VitalStatus::try_from(value).ok()? {
        pb::VitalStatus::Alive => Some(follow_up::VitalStatus::Alive),
        pb::VitalStatus::Dead => Some(follow_up::VitalStatus::Dead),
        pb::VitalStatus::Unspecified => None,
    }
}

/// The wire form of an assessment.
pub fn assessment(a: &assessment::Model) -> Result<pb::ResponseAssessment, AppError> {
    Ok(pb::ResponseAssessment {
        assessment_id: a.assessment_id.clone(),
        subject_id: a.subject_id.clone(),
        assessed_on: Some(to_date(a.assessed_on)),
        after_cycle: a.after_cycle,
        assessor: assessor_to(a.assessor()?) as i32,
        criteria: pb::ResponseCriteria::Inrc2017 as i32,
        primary_tumour_response: stored_response(a, "primary_response", &a.primary_response)?,
        metastases_response: stored_response(a, "metastases_response", &a.metastases_response)?,
        bone_marrow_response: stored_response(a, "marrow_response", &a.marrow_response)?,
        derived_overall_response: stored_response(a, "derived_overall", &a.derived_overall)?,
        overall_response: stored_response(a, "overall", &a.overall)?,
        override_reason: a.override_reason.clone(),
        protocol_version: a.protocol_version.clone(),
        // Added where the assessment is shown (signatures::with_assessment_signatures).
        signatures: Vec::new(),
    })
}

/// Domain attribution of a wire one.
pub fn attribution(value: i32) -> Option<Attribution> {
    match pb::Attribution::try_from(value).ok()? {
        pb::Attribution::Unrelated => Some(Attribution::Unrelated),
        pb::Attribution::Unlikely => Some(Attribution::Unlikely),
        pb::Attribution::Possible => Some(Attribution::Possible),
        pb::Attribution::Probable => Some(Attribution::Probable),
        pb::Attribution::Definite => Some(Attribution::Definite),
        pb::Attribution::Unspecified => None,
    }
}

fn attribution_to(a: Attribution) -> pb::Attribution {
    match a {
        Attribution::Unrelated => pb::Attribution::Unrelated,
        Attribution::Unlikely => pb::Attribution::Unlikely,
        Attribution::Possible => pb::Attribution::Possible,
        Attribution::Probable => pb::Attribution::Probable,
        Attribution::Definite => pb::Attribution::Definite,
    }
}

/// Domain seriousness of a wire one.
pub fn seriousness(value: i32) -> Option<Seriousness> {
    match pb::Seriousness::try_from(value).ok()? {
        pb::Seriousness::Death => Some(Seriousness::Death),
        pb::Seriousness::LifeThreatening => Some(Seriousness::LifeThreatening),
        pb::Seriousness::Hospitalisation => Some(Seriousness::Hospitalisation),
        pb::Seriousness::Incapacity => Some(Seriousness::Incapacity),
        pb::Seriousness::CongenitalAnomaly => Some(Seriousness::CongenitalAnomaly),
        pb::Seriousness::ImportantMedicalEvent => Some(Seriousness::ImportantMedicalEvent),
        pb::Seriousness::Unspecified => None,
    }
}

fn seriousness_to(s: Seriousness) -> pb::Seriousness {
    match s {
        Seriousness::Death => pb::Seriousness::Death,
        Seriousness::LifeThreatening => pb::Seriousness::LifeThreatening,
        Seriousness::Hospitalisation => pb::Seriousness::Hospitalisation,
        Seriousness::Incapacity => pb::Seriousness::Incapacity,
        Seriousness::CongenitalAnomaly => pb::Seriousness::CongenitalAnomaly,
        Seriousness::ImportantMedicalEvent => pb::Seriousness::ImportantMedicalEvent,
    }
}

/// The wire form of an obligation.
pub fn obligation(o: &obligation::Model) -> pb::ReportingObligation {
    pb::ReportingObligation {
        obligation_id: o.obligation_id.clone(),
        adverse_event_id: o.adverse_event_id.clone(),
        kind: o.kind.clone(),
        due_at: Some(to_timestamp(o.due_at)),
        submitted_at: o.submitted_at.map(to_timestamp),
        site_code: o.site_code.clone(),
    }
}

/// The wire form of an adverse event with its obligations.
pub fn adverse_event(
    e: &adverse_event::Model,
    obligations: &[obligation::Model],
) -> Result<pb::AdverseEvent, AppError> {
    let attributions = e.attributions()?;
    let seriousness: Vec<Seriousness> = serde_json::from_str(&e.seriousness).map_err(AppError::internal)?;
    let agents: Vec<String> = serde_json::from_str(&e.agents_at_onset).map_err(AppError::internal)?;
    Ok(pb::AdverseEvent {
        adverse_event_id: e.adverse_event_id.clone(),
        subject_id: e.subject_id.clone(),
        ctcae_term: e.ctcae_term.clone(),
        ctcae_version: e.ctcae_version.clone(),
        grade: e.grade,
        onset_on: Some(to_date(e.onset_on)),
        site_aware_at: Some(to_timestamp(e.site_aware_at)),
        resolved_on: e.resolved_on.map(to_date),
        attributions: attributions
            .into_iter()
            .map(|(agent_id, a)| pb::AgentAttribution {
                agent_id,
                attribution: attribution_to(a) as i32,
            })
            .collect(),
        seriousness: seriousness.into_iter().map(|s| seriousness_to(s) as i32).collect(),
        expected: e.expected,
        cycle_at_onset: e.cycle_at_onset,
        obligations: obligations.iter().map(obligation).collect(),
        etag: e.version.to_string(),
        agents_at_onset: agents,
        arm_code: e.arm_code.clone(),
        // Added where the event is shown (signatures::with_event_signatures).
        signatures: Vec::new(),
    })
}
