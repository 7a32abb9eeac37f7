//! What the statistics RPCs, the trial report and the exports share: the trial's data loaded once, the
//! confidence level from the wire, and an arm's rate row.

use std::sync::Arc;

use chrono::DateTime;
use rust_decimal::prelude::ToPrimitive;
use trialops_domain::outcomes::binomial::clopper_pearson;
use trialops_domain::protocol::Protocol;
use trialops_platform::identity::auth::CallContext;
use trialops_platform::{AppError, wire::convert as wire};
use trialops_proto::dosing::v1 as dpb;
use trialops_proto::enrollment::v1 as epb;
use trialops_proto::outcomes::v1 as pb;

use super::{OutcomesApi, convert};
use crate::analysis::{self, Data, FastMap, FastSet, Shared};
use crate::store::{assessment, follow_up, rederivation};

/// The records the analyses of a trial are computed from, read once.
pub(super) struct Inputs {
    /// The trial's protocol definition.
    pub protocol: Arc<Protocol>,
    /// Enrolled subjects.
    pub subjects: Vec<epb::Subject>,
    /// Each treated subject's exposure.
    pub exposures: Vec<dpb::GetCumulativeExposureResponse>,
    /// Response assessments after any re-derivation.
    pub assessments: Vec<assessment::Model>,
    /// Follow-up contacts.
    pub follow_ups: Vec<follow_up::Model>,
}

/// INVALID_ARGUMENT without a trial id, NOT_FOUND for a trial this service has no protocol of:
/// checked before any other service is asked.
pub(super) fn known(api: &OutcomesApi, trial_id: &str) -> Result<(), AppError> {
    if trial_id.is_empty() {
        return Err(AppError::invalid("trial_id", "required"));
    }
    // The analyses follow the protocol version in force today.
    api.protocol(trial_id).map(|_| ())
}

/// Reads the records the analyses of a trial need: subjects and exposure from the other
/// services, assessments and follow-up from this one.
pub(super) async fn read(api: &OutcomesApi, call: &CallContext, trial_id: &str) -> Result<Inputs, AppError> {
    known(api, trial_id)?;
    let today = trialops_platform::clock::now().date_naive();
    // Five reads from three services: at once, so a report waits for the slowest, not the sum.
    let (protocol, subjects, exposures, assessments, follow_ups) = tokio::try_join!(
        api.deps.protocol_on(call, trial_id, today),
        api.deps.subjects(call, trial_id),
        api.deps.exposures(call, trial_id),
        async { Ok(rederivation::trial_assessments(&api.db, trial_id).await?) },
        async { Ok(follow_up::of_trial(&api.db, trial_id).await?) },
    )?;
    Ok(Inputs {
        protocol,
        subjects,
        exposures,
        assessments,
        follow_ups,
    })
}

/// Reads everything the analyses of a trial need.
pub(super) async fn load(api: &OutcomesApi, call: &CallContext, trial_id: &str) -> Result<Data, AppError> {
    analysed(&read(api, call, trial_id).await?)
}

/// The analyses' view of a trial's records.
pub(super) fn analysed(inputs: &Inputs) -> Result<Data, AppError> {
    let protocol = &inputs.protocol;
    let mut ordered: Vec<&epb::Subject> = inputs.subjects.iter().collect();
    ordered.sort_by_key(|s| s.enrolled_at.map(|t| (t.seconds, t.nanos)));
    let treated: FastSet<&str> = inputs
        .exposures
        .iter()
        .filter(|e| e.received_protocol_therapy)
        .map(|e| e.subject_id.as_str())
        .collect();
    // Each subject's id and each arm's code held once, shared by the records that name them.
    let mut arms: Vec<Shared> = protocol.arms.iter().map(|a| Shared::from(a.code.as_str())).collect();
    let mut arm = |code: &str| match arms.iter().find(|a| &***a == code) {
        Some(shared) => shared.clone(),
        None => {
            let shared = Shared::from(code);
            arms.push(shared.clone());
            shared
        }
    };
    let ids: FastMap<&str, Shared> = inputs
        .subjects
        .iter()
        .map(|s| (s.subject_id.as_str(), Shared::from(s.subject_id.as_str())))
        .collect();
    let id = |subject_id: &str| ids.get(subject_id).cloned().unwrap_or_else(|| subject_id.into());
    Ok(Data {
        subjects: ordered
            .into_iter()
            .map(|s| analysis::Subject {
                enrolled_on: s
                    .enrolled_at
                    .and_then(|t| DateTime::from_timestamp(t.seconds, 0))
                    .map(|d| d.date_naive())
                    .unwrap_or_default(),
                subject_id: id(&s.subject_id),
                arm_code: arm(&s.arm_code),
                in_error: s.randomized_in_error.then(|| s.randomized_in_error_reason.clone()),
                treated: treated.contains(s.subject_id.as_str()),
            })
            .collect(),
        assessments: inputs
            .assessments
            .iter()
            .map(|a| {
                Ok(analysis::Assessment {
                    awaiting_curie_segments: a.curie_skeletal_score.is_none() && a.curie_score > 0,
                    central: a.assessor()? == assessment::Assessor::CentralReview,
                    overall: a.overall()?,
                    after_cycle: a.after_cycle,
                    assessed_on: a.assessed_on,
                    subject_id: id(&a.subject_id),
                })
            })
            .collect::<Result<_, AppError>>()?,
        follow_ups: inputs
            .follow_ups
            .iter()
            .map(|f| {
                Ok(analysis::FollowUp {
                    dead: f.vital_status()? == follow_up::VitalStatus::Dead,
                    last_contact_on: f.last_contact_on,
                    progression_on: f.progression_on,
                    second_malignancy_on: f.second_malignancy_on,
                    subject_id: id(&f.subject_id),
                })
            })
            .collect::<Result<_, AppError>>()?,
        evaluation_cycle: protocol.assessments.primary_evaluation_after_cycle as i32,
        arms: protocol.arms.iter().map(|a| a.code.clone()).collect(),
        per_protocol_keeps_randomized_in_error: !protocol.outcomes.per_protocol_excludes_randomized_in_error,
    })
}

/// A confidence level from the wire; empty means 0.95.
pub(super) fn level(value: Option<&trialops_proto::common::v1::Decimal>) -> Result<f64, AppError> {
    match value {
        None => Ok(0.95),
        Some(d) if d.value.is_empty() => Ok(0.95),
        Some(d) => {
            let x = wire::decimal("confidence_level", Some(d)).map_err(|v| AppError::InvalidArgument(vec![v]))?;
            let x = x.to_f64().unwrap_or(f64::NAN);
            if x > 0.0 && x < 1.0 {
                Ok(x)
            } else {
                Err(AppError::invalid(
                    "confidence_level",
                    "between 0 and 1, for example 0.95",
                ))
            }
        }
    }
}

/// The rate row of an arm.
pub(super) fn rate(
    arm_code: &str,
    responders: u64,
    evaluable: u64,
    level: f64,
) -> Result<pb::ArmResponseRate, AppError> {
    let p = clopper_pearson(responders, evaluable, level).map_err(AppError::internal)?;
    Ok(pb::ArmResponseRate {
        arm_code: arm_code.to_owned(),
        responders: responders as i32,
        evaluable: evaluable as i32,
        rate: convert::stat(p.rate),
        ci_lower: convert::stat(p.lower),
        ci_upper: convert::stat(p.upper),
    })
}
