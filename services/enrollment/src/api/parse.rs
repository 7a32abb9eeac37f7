//! Parsing at the edge, shared by the RPCs that take the same parts (EnrollSubject and
//! CorrectSubject both take consent and strata): each part becomes a typed value or a violation
//! naming its field.

use trialops_domain::strata;
use trialops_platform::{AppError, Violations, wire::convert as wire};
use trialops_proto::enrollment::v1 as pb;

use super::latest_site_date;
use crate::error::Reason;
use crate::trials::Trial;

/// Most stratum values one request may carry.
pub const MAX_STRATA: usize = 16;

/// Converts request strata into `(factor, value)` entries and records their violations.
pub(super) fn check_strata(
    trial: &Trial,
    values: &[pb::StratumValue],
    complete: bool,
    v: &mut Violations,
) -> Option<strata::Strata> {
    if let Err(too_many) = wire::at_most("strata", values.len(), MAX_STRATA) {
        v.add(too_many.field, too_many.description);
        return None;
    }
    let entries: Vec<_> = values.iter().map(|s| (s.factor_id.clone(), s.value.clone())).collect();
    match strata::check(&trial.protocol, &entries, complete) {
        Ok(checked) => Some(checked),
        Err(problems) => {
            for p in problems {
                let field = match (p.index, p.on_factor) {
                    (Some(i), true) => format!("strata[{i}].factor_id"),
                    (Some(i), false) => format!("strata[{i}].value"),
                    (None, _) => "strata".to_owned(),
                };
                v.add(field, p.message);
            }
            None
        }
    }
}

/// Checks a consent's date and version; records violations.
pub(super) fn check_consent(consent: Option<&pb::Consent>, v: &mut Violations) -> Option<(chrono::NaiveDate, String)> {
    let Some(consent) = consent else {
        v.add("consent", "required: the signed consent's date and form version");
        return None;
    };
    let signed_on = v.take(wire::date("consent.signed_on", consent.signed_on.as_ref()));
    if let Some(date) = signed_on {
        v.check(
            date <= latest_site_date(),
            "consent.signed_on",
            "must not be in the future",
        );
    }
    let version = v.take(wire::text("consent.form_version", &consent.form_version, 64));
    Some((signed_on?, version?))
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
