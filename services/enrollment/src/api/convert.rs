//! Conversions between enrollment proto messages and the store's records and domain values.

use serde::{Deserialize, Serialize};
use trialops_domain::eligibility::{CriterionResult, Outcome, Value, Values};
use trialops_domain::protocol::{Protocol, VariableKind};
use trialops_domain::strata::parse_stratum_key;
use trialops_domain::subject::SubjectStatus;
use trialops_platform::wire::convert::{self as wire, to_date, to_decimal, to_timestamp};
use trialops_platform::{AppError, Violations};
use trialops_proto::enrollment::v1 as pb;

use crate::store::{protocol_version, screening, site, subject};

/// A criterion result as stored in `screenings.results_json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredResult {
    /// Criterion id.
    pub criterion_id: String,
    /// "met", "not_met" or "missing_data".
    pub outcome: String,
    /// What was compared.
    pub detail: String,
}

impl From<&CriterionResult> for StoredResult {
    fn from(r: &CriterionResult) -> Self {
        let outcome = match r.outcome {
            Outcome::Met => "met",
            Outcome::NotMet => "not_met",
            Outcome::MissingData => "missing_data",
        };
        StoredResult {
            criterion_id: r.criterion_id.clone(),
            outcome: outcome.to_owned(),
            detail: r.detail.clone(),
        }
    }
}

/// Screening values as a JSON object (decimals as strings, so they stay exact).
pub fn values_json(values: &Values) -> serde_json::Value {
    values
        .iter()
        .map(|(k, v)| {
            let json = match v {
                Value::Decimal(d) => serde_json::Value::String(d.to_string()),
                Value::Boolean(b) => serde_json::Value::Bool(*b),
                Value::Choice(c) => serde_json::Value::String(c.clone()),
            };
            (k.clone(), json)
        })
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// The `(variable, value)` entries of a ScreenSubject request that convert, with their
/// positions in the request; each entry that does not convert is recorded in `v`.
pub fn screening_entries(values: &[pb::ScreeningValue], v: &mut Violations) -> (Vec<usize>, Vec<(String, Value)>) {
    let mut positions = Vec::new();
    let mut entries = Vec::new();
    for (i, entry) in values.iter().enumerate() {
        let value = match &entry.value {
            Some(pb::screening_value::Value::DecimalValue(d)) => v
                .take(wire::decimal(&format!("values[{i}].decimal_value"), Some(d)))
                .map(Value::Decimal),
            Some(pb::screening_value::Value::BoolValue(b)) => Some(Value::Boolean(*b)),
            Some(pb::screening_value::Value::ChoiceValue(c)) => Some(Value::Choice(c.clone())),
            None => {
                v.add(
                    format!("values[{i}]"),
                    "set one of decimal_value, bool_value or choice_value",
                );
                None
            }
        };
        if let Some(value) = value {
            positions.push(i);
            entries.push((entry.variable_id.clone(), value));
        }
    }
    (positions, entries)
}

/// The wire form of a stored screening.
pub fn screening(m: &screening::Model) -> Result<pb::Screening, AppError> {
    let results: Vec<StoredResult> = serde_json::from_str(&m.results_json).map_err(AppError::internal)?;
    let criteria = results
        .into_iter()
        .map(|r| {
            let outcome = match r.outcome.as_str() {
                "met" => pb::CriterionOutcome::Met,
                "not_met" => pb::CriterionOutcome::NotMet,
                _ => pb::CriterionOutcome::MissingData,
            };
            pb::CriterionResult {
                criterion_id: r.criterion_id,
                outcome: outcome as i32,
                detail: r.detail,
            }
        })
        .collect();
    Ok(pb::Screening {
        trial_id: m.trial_id.clone(),
        screening_id: m.screening_id.clone(),
        attempt: m.attempt,
        site_code: m.site_code.clone(),
        assessed_on: Some(to_date(m.assessed_on)),
        eligible: m.eligible,
        criteria,
        recorded_at: Some(to_timestamp(m.recorded_at)),
        protocol_version: m.protocol_version.clone(),
        // Shown where the screening is read with its signatures (GetScreening, SignScreening).
        signatures: Vec::new(),
    })
}

/// Proto status of a domain status.
pub fn status_to_proto(s: SubjectStatus) -> pb::SubjectStatus {
    match s {
        SubjectStatus::OnProtocolTherapy => pb::SubjectStatus::OnProtocolTherapy,
        SubjectStatus::OffProtocolTherapy => pb::SubjectStatus::OffProtocolTherapy,
        SubjectStatus::OffStudy => pb::SubjectStatus::OffStudy,
        SubjectStatus::Withdrawn => pb::SubjectStatus::Withdrawn,
    }
}

/// Domain status of a proto status; `None` for UNSPECIFIED or an unknown number.
pub fn status_from_proto(value: i32) -> Option<SubjectStatus> {
    match pb::SubjectStatus::try_from(value).ok()? {
        pb::SubjectStatus::Unspecified => None,
        pb::SubjectStatus::OnProtocolTherapy => Some(SubjectStatus::OnProtocolTherapy),
        pb::SubjectStatus::OffProtocolTherapy => Some(SubjectStatus::OffProtocolTherapy),
        pb::SubjectStatus::OffStudy => Some(SubjectStatus::OffStudy),
        pb::SubjectStatus::Withdrawn => Some(SubjectStatus::Withdrawn),
    }
}

fn strata(key: &str) -> Vec<pb::StratumValue> {
    parse_stratum_key(key)
        .into_iter()
        .map(|(factor_id, value)| pb::StratumValue { factor_id, value })
        .collect()
}

/// The wire form of a subject.
pub fn subject(m: &subject::Model) -> Result<pb::Subject, AppError> {
    let status = SubjectStatus::parse(&m.status)
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("stored subject status {:?} unknown", m.status)))?;
    Ok(pb::Subject {
        subject_id: m.subject_id.clone(),
        trial_id: m.trial_id.clone(),
        site_code: m.site_code.clone(),
        screening_id: m.screening_id.clone(),
        arm_code: m.arm_code.clone(),
        strata: strata(&m.strata),
        randomized_strata: strata(&m.randomized_stratum),
        consent: Some(pb::Consent {
            signed_on: Some(to_date(m.consent_signed_on)),
            form_version: m.consent_form_version.clone(),
        }),
        status: status_to_proto(status) as i32,
        status_reason: m.status_reason.clone(),
        status_effective_on: Some(to_date(m.status_effective_on)),
        enrolled_at: Some(to_timestamp(m.enrolled_at)),
        updated_at: Some(to_timestamp(m.updated_at)),
        etag: m.version.to_string(),
        randomized_in_error: m.randomized_in_error,
        randomized_in_error_reason: m.randomized_in_error_reason.clone(),
        protocol_version: m.protocol_version.clone(),
        // GetSubject reads them; lists leave them out.
        end_of_treatment_signatures: Vec::new(),
    })
}

/// The wire form of a site.
pub fn site(m: &site::Model) -> pb::Site {
    pb::Site {
        site_code: m.site_code.clone(),
        name: m.name.clone(),
        registered_at: Some(to_timestamp(m.registered_at)),
        country: m.country.clone(),
    }
}

/// The wire form of a recorded protocol version; `in_force` marks the one in force today.
pub fn protocol_version(m: &protocol_version::Model, in_force: bool) -> pb::ProtocolVersion {
    pb::ProtocolVersion {
        version: m.version.clone(),
        effective_on: m.effective_on.map(to_date),
        reason: m.reason.clone(),
        activated_by: m.activated_by.clone(),
        activated_at: Some(to_timestamp(m.activated_at)),
        definition_sha256: m.definition_sha256.clone(),
        in_force,
    }
}

/// Every recorded version, the one of `in_force` marked.
pub fn protocol_versions(versions: &[protocol_version::Model], in_force: &str) -> Vec<pb::ProtocolVersion> {
    versions
        .iter()
        .map(|v| protocol_version(v, v.version == in_force))
        .collect()
}

/// The trial's summary.
pub fn trial_summary(p: &Protocol) -> pb::TrialSummary {
    pb::TrialSummary {
        trial_id: p.trial.id.clone(),
        title: p.trial.title.clone(),
        registry_id: p.trial.registry_id.clone(),
        protocol_version: p.trial.protocol_version.clone(),
        training: p.trial.training,
    }
}

/// The trial's protocol as integrators need it.
pub fn trial(p: &Protocol) -> pb::Trial {
    pb::Trial {
        summary: Some(trial_summary(p)),
        arms: p
            .arms
            .iter()
            .map(|a| pb::Arm {
                code: a.code.clone(),
                name: a.name.clone(),
                allocation_ratio: a.allocation_ratio as i32,
            })
            .collect(),
        stratification_factors: p
            .strata
            .iter()
            .map(|f| pb::StratificationFactor {
                factor_id: f.id.clone(),
                description: f.description.clone(),
                allowed_values: f.values.clone(),
            })
            .collect(),
        eligibility_criteria: p
            .eligibility
            .iter()
            .map(|c| pb::EligibilityCriterion {
                criterion_id: c.id.clone(),
                description: c.description.clone(),
                variable_ids: rule_variables(&c.rule),
            })
            .collect(),
        screening_variables: p
            .variables
            .iter()
            .map(|v| pb::ScreeningVariable {
                variable_id: v.id.clone(),
                description: v.description.clone(),
                kind: match v.kind {
                    VariableKind::Decimal => pb::VariableKind::Decimal,
                    VariableKind::Boolean => pb::VariableKind::Boolean,
                    VariableKind::Choice => pb::VariableKind::Choice,
                } as i32,
                unit: v.unit.clone().unwrap_or_default(),
                allowed_values: v.allowed.clone(),
                minimum: v.minimum.map(to_decimal),
                maximum: v.maximum.map(to_decimal),
            })
            .collect(),
        accepted_consent_form_versions: p.consent.accepted_form_versions.clone(),
        screening_validity_days: p.screening.validity_days as i32,
        // The commitment needs the trial's key: GetTrial fills these in.
        allocation_commitment: String::new(),
        allocation_parameters: String::new(),
        versions: Vec::new(),
    }
}

fn rule_variables(rule: &trialops_domain::protocol::Rule) -> Vec<String> {
    use trialops_domain::protocol::Rule;
    let mut out = Vec::new();
    let mut push = |v: &str| {
        if !out.iter().any(|o: &String| o == v) {
            out.push(v.to_owned());
        }
    };
    let mut stack = vec![rule];
    while let Some(r) = stack.pop() {
        match r {
            Rule::Compare(c) => push(&c.variable),
            Rule::CompareToReference(c) => {
                push(&c.variable);
                push(&c.reference);
            }
            Rule::IsTrue(v) => push(v),
            Rule::OneOf(o) => push(&o.variable),
            Rule::AnyOf(rules) | Rule::AllOf(rules) => stack.extend(rules.iter().rev()),
        }
    }
    out
}
