//! EnrollSubject: consent, eligibility and strata checked, then the next subject number and the
//! next position of the stratum's concealed sequence taken, all in one transaction. A refusal
//! writes nothing; a retry with the same request id returns the same subject and arm.

use chrono::SubsecRound;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};
use tonic::Request;
use trialops_domain::identifiers::{self, is_screening_id, is_site_code};
use trialops_domain::randomization::Sequence;
use trialops_domain::strata::{self, stratum_key};
use trialops_domain::subject::SubjectStatus;
use trialops_platform::audit::{self, AuditContext, Change};
use trialops_platform::auth::CallContext;
use trialops_platform::{AppError, Violations, convert as wire, idempotency};
use trialops_proto::enrollment::v1 as pb;

use super::{EnrollmentApi, convert, latest_site_date, sites};
use crate::error::*;
use crate::store::{allocation, counter, screening, subject, trial_key};
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
        reason: CONSENT_FORM_VERSION_NOT_ACCEPTED,
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

pub(super) async fn enroll(
    api: &EnrollmentApi,
    request: Request<pb::EnrollSubjectRequest>,
) -> Result<pb::EnrollSubjectResponse, AppError> {
    let call = CallContext::of(&request)?;
    let req = request.into_inner();
    let mut v = Violations::new();
    let request_id = v.take(wire::request_id("request_id", &req.request_id));
    v.check(
        is_site_code(&req.site_code),
        "site_code",
        "2 to 32 characters of A-Z, 0-9 and '-'",
    );
    v.check(
        is_screening_id(&req.screening_id),
        "screening_id",
        "1 to 64 characters of A-Z, a-z, 0-9, '-' and '_'",
    );
    let consent = check_consent(req.consent.as_ref(), &mut v);
    let trial = if req.trial_id.is_empty() {
        v.add("trial_id", "required");
        None
    } else {
        Some(api.trials.get(&req.trial_id)?)
    };
    let checked_strata = trial.as_ref().and_then(|t| check_strata(t, &req.strata, true, &mut v));
    let (Some(request_id), Some((signed_on, form_version)), Some(trial), Some(checked_strata)) =
        (request_id, consent, trial, checked_strata)
    else {
        return Err(v.into_error());
    };
    v.finish()?;
    call.require_own_site("site_code", &req.site_code)?;
    require_accepted_version(&trial, &form_version)?;

    let audit_ctx = AuditContext::new(call, request_id);
    idempotency::execute(
        &api.db,
        "EnrollmentService/EnrollSubject",
        request_id,
        &req.clone(),
        move |tx| {
            Box::pin(async move {
                sites::require_registered(tx, &req.site_code).await?;
                let latest = latest_screening(tx, &req.trial_id, &req.screening_id).await?;
                check_screening(&trial, &req, &latest)?;
                let already = subject::Entity::find()
                    .filter(subject::Column::TrialId.eq(req.trial_id.as_str()))
                    .filter(subject::Column::ScreeningId.eq(req.screening_id.as_str()))
                    .one(tx)
                    .await?;
                if already.is_some() {
                    return Err(AppError::AlreadyExists {
                        reason: SUBJECT_ALREADY_ENROLLED,
                        message: format!("screening {} is already enrolled", req.screening_id),
                    });
                }
                ensure_trial_key(tx, &trial).await?;

                let number = counter::next(tx, &format!("subject_number|{}", req.trial_id)).await?;
                let subject_id = identifiers::subject_id(&req.trial_id, number as u64);
                let stratum = stratum_key(&trial.protocol, &checked_strata);
                let position = counter::next(tx, &format!("stratum|{}|{stratum}", req.trial_id)).await? - 1;
                let assignment = Sequence::new(&trial.key, &trial.scheme, &stratum).assignment(position as u64);

                let now = trialops_platform::clock::now().trunc_subsecs(6);
                let today = now.date_naive();
                let record = subject::Model {
                    subject_id: subject_id.clone(),
                    trial_id: req.trial_id.clone(),
                    subject_number: number,
                    site_code: req.site_code.clone(),
                    screening_id: req.screening_id.clone(),
                    arm_code: assignment.arm_code.clone(),
                    strata: stratum.clone(),
                    randomized_stratum: stratum.clone(),
                    consent_signed_on: signed_on,
                    consent_form_version: form_version,
                    status: SubjectStatus::OnProtocolTherapy.as_str().to_owned(),
                    status_reason: String::new(),
                    status_effective_on: today,
                    enrolled_at: now,
                    updated_at: now,
                    version: 1,
                };
                let alloc = allocation::Model {
                    subject_id: subject_id.clone(),
                    trial_id: req.trial_id.clone(),
                    stratum,
                    position,
                    arm_code: assignment.arm_code,
                    allocated_at: now,
                };
                subject::Entity::insert(subject::ActiveModel::from(record.clone()))
                    .exec_without_returning(tx)
                    .await?;
                allocation::Entity::insert(allocation::ActiveModel::from(alloc.clone()))
                    .exec_without_returning(tx)
                    .await?;
                audit::append(
                    tx,
                    &audit_ctx,
                    Change {
                        action: "subject.enrolled",
                        entity_type: "subject",
                        entity_id: &subject_id,
                        old: None,
                        new: audit::to_json(&record)?,
                        reason: "",
                    },
                )
                .await?;
                audit::append(
                    tx,
                    &audit_ctx,
                    Change {
                        action: "subject.randomized",
                        entity_type: "subject",
                        entity_id: &subject_id,
                        old: None,
                        new: audit::to_json(&alloc)?,
                        reason: "",
                    },
                )
                .await?;
                tracing::info!(subject_id = %subject_id, "subject enrolled and randomized");
                Ok(pb::EnrollSubjectResponse {
                    subject: Some(convert::subject(&record)?),
                })
            })
        },
    )
    .await
}

async fn latest_screening<C: ConnectionTrait>(
    conn: &C,
    trial_id: &str,
    screening_id: &str,
) -> Result<Option<screening::Model>, AppError> {
    Ok(screening::Entity::find()
        .filter(screening::Column::TrialId.eq(trial_id))
        .filter(screening::Column::ScreeningId.eq(screening_id))
        .order_by_desc(screening::Column::Attempt)
        .one(conn)
        .await?)
}

/// The latest screening must exist, be from the enrolling site, be eligible and be recent.
fn check_screening(
    trial: &Trial,
    req: &pb::EnrollSubjectRequest,
    latest: &Option<screening::Model>,
) -> Result<(), AppError> {
    let Some(s) = latest else {
        return Err(AppError::precondition(
            SUBJECT_NOT_SCREENED,
            format!(
                "no screening recorded for {}; call ScreenSubject first",
                req.screening_id
            ),
        ));
    };
    if s.site_code != req.site_code {
        return Err(AppError::precondition(
            SCREENED_AT_ANOTHER_SITE,
            format!("screening {} was recorded by site {}", req.screening_id, s.site_code),
        ));
    }
    if !s.eligible {
        let results: Vec<convert::StoredResult> = serde_json::from_str(&s.results_json).map_err(AppError::internal)?;
        let failed: Vec<_> = results.iter().filter(|r| r.outcome != "met").collect();
        let ids: Vec<_> = failed.iter().map(|r| r.criterion_id.as_str()).collect();
        return Err(AppError::FailedPrecondition {
            reason: SUBJECT_INELIGIBLE,
            message: format!(
                "not eligible: {}",
                failed
                    .iter()
                    .map(|r| format!("{} ({})", r.criterion_id, r.detail))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            metadata: vec![
                ("failed_criteria".into(), ids.join(",")),
                ("screening_attempt".into(), s.attempt.to_string()),
            ],
        });
    }
    let age_days = (trialops_platform::clock::now().date_naive() - s.assessed_on).num_days();
    let validity = i64::from(trial.protocol.screening.validity_days);
    if age_days > validity {
        return Err(AppError::FailedPrecondition {
            reason: SCREENING_EXPIRED,
            message: format!(
                "the screening was assessed {age_days} days ago; the protocol allows {validity}; screen again"
            ),
            metadata: vec![("validity_days".into(), validity.to_string())],
        });
    }
    Ok(())
}

/// Records the trial key's fingerprint at the first allocation, and refuses a different key.
async fn ensure_trial_key<C: ConnectionTrait>(conn: &C, trial: &Trial) -> Result<(), AppError> {
    let fingerprint = trial.key.fingerprint();
    let id = trial.protocol.trial.id.clone();
    let record = trial_key::Model {
        trial_id: id.clone(),
        fingerprint: fingerprint.clone(),
        first_used_at: trialops_platform::clock::now(),
    };
    trial_key::Entity::insert(trial_key::ActiveModel::from(record))
        .on_conflict_do_nothing_on([trial_key::Column::TrialId])
        .exec_without_returning(conn)
        .await?;
    let stored = trial_key::Entity::find_by_id(id.clone()).one(conn).await?;
    match stored {
        Some(s) if s.fingerprint == fingerprint => Ok(()),
        _ => Err(AppError::internal(anyhow::anyhow!(
            "randomization secret does not match the one trial {id} started with; refusing to randomize"
        ))),
    }
}
