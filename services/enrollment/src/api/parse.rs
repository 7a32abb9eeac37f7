//! Parsing at the edge, shared by the RPCs that take the same parts (EnrollSubject and
//! CorrectSubject both take consent and strata): each part becomes a typed value or a violation
//! naming its field.

use std::sync::Arc;

use trialops_domain::strata;
use trialops_platform::wire::convert as wire;
use trialops_platform::wire::fields::{AllFields, Field, violation};
use trialops_platform::{AppError, Violations};
use trialops_proto::enrollment::v1 as pb;

use crate::error::Reason;
use crate::trials::{Trial, Trials};

/// Most stratum values one request may carry.
pub const MAX_STRATA: usize = 16;

/// Request strata as checked `(factor, value)` entries, or a violation per bad entry.
pub(super) fn strata(trial: &Trial, values: &[pb::StratumValue], complete: bool) -> Field<strata::Strata> {
    wire::at_most("strata", values.len(), MAX_STRATA)?;
    let entries: Vec<_> = values.iter().map(|s| (s.factor_id.clone(), s.value.clone())).collect();
    strata::check(&trial.protocol, &entries, complete).map_err(|problems| {
        let mut v = Violations::new();
        for p in problems {
            let field = match (p.index, p.on_factor) {
                (Some(i), true) => format!("strata[{i}].factor_id"),
                (Some(i), false) => format!("strata[{i}].value"),
                (None, _) => "strata".to_owned(),
            };
            v.add(field, p.message);
        }
        v
    })
}

/// A consent's signing date (not in the future) and form version.
pub(super) fn consent(consent: Option<&pb::Consent>) -> Field<(chrono::NaiveDate, String)> {
    let Some(consent) = consent else {
        return Err(violation("consent", "required: the signed consent's date and form version").into());
    };
    (
        wire::past_date("consent.signed_on", consent.signed_on.as_ref()),
        wire::text("consent.form_version", &consent.form_version, 64),
    )
        .collect()
}

/// The trial a request names: `trial_id` required, then known (NOT_FOUND otherwise).
pub(super) fn trial(trials: &Trials, trial_id: &str) -> Result<Field<Arc<Trial>>, AppError> {
    if trial_id.is_empty() {
        return Ok(Err(violation("trial_id", "required").into()));
    }
    Ok(Ok(trials.get(trial_id)?))
}

/// The trial a request names under the protocol version in force on `on` (the record's own date;
/// `None` when the request's date is itself invalid, which is reported with the other fields).
pub(super) async fn trial_on(
    trials: &Trials,
    db: &sea_orm::DatabaseConnection,
    trial_id: &str,
    on: Option<chrono::NaiveDate>,
) -> Result<Field<Arc<Trial>>, AppError> {
    match (trial(trials, trial_id)?, on) {
        (Ok(_), Some(on)) => Ok(Ok(trials.in_force(db, trial_id, on).await?.trial)),
        (found, _) => Ok(found),
    }
}

/// Today, UTC, on the service's clock: the date an enrollment or amendment is made.
pub(super) fn today() -> chrono::NaiveDate {
    trialops_platform::clock::now().date_naive()
}

/// FAILED_PRECONDITION unless the protocol accepts this consent form version.
pub(super) fn require_accepted_version(trial: &Trial, version: &str) -> Result<(), AppError> {
    if trial
        .protocol
        .consent
        .accepted_form_versions
        .iter()
        .any(|v| v == version)
    {
        return Ok(());
    }
    Err(AppError::FailedPrecondition {
        reason: Reason::ConsentFormVersionNotAccepted.into(),
        message: format!(
            "consent form version {version} is not accepted; accepted: {}",
            trial.protocol.consent.accepted_form_versions.join(", ")
        ),
        metadata: vec![(
            "accepted_versions".into(),
            trial.protocol.consent.accepted_form_versions.join(","),
        )],
    })
}
