//! EnrollSubject: consent, eligibility and strata checked, then the next subject number and the
//! next position of the stratum's concealed sequence taken (or, under minimization, the arm
//! judged on every earlier allocation), all in one transaction. A refusal writes nothing; a
//! retry with the same request id returns the same subject and arm.
//!
//! Three steps: the request is parsed into an [`Enroll`] command; the screening is judged by
//! `trialops_domain::enrollment::check_screening` and accrual by `check_accrual`, on facts the
//! store reads in one statement; the store's named functions write.

use std::sync::Arc;

use chrono::NaiveDate;
use sea_orm::DatabaseTransaction;
use tonic::Request;
use trialops_domain::accrual::{AccrualRefusal, Enrolled, check_accrual};
use trialops_domain::enrollment::{LatestScreening, ScreeningRefusal, check_screening};
use trialops_domain::identifiers::{self, ScreeningId, SiteCode};
use trialops_domain::minimization::FactorCounts;
use trialops_domain::randomization::{Method, Sequence};
use trialops_domain::strata::{self, stratum_key};
use trialops_domain::subject::SubjectStatus;
use trialops_platform::AppError;
use trialops_platform::identity::auth::CallContext;
use trialops_platform::records::audit::{self, AuditContext, Change};
use trialops_platform::records::idempotency::{self, RequestId};
use trialops_platform::wire::{convert as wire, fields::AllFields};
use trialops_proto::enrollment::v1 as pb;

use super::parse::{self, require_accepted_version};
use super::{EnrollmentApi, convert, require_registered, site_not_registered};
use crate::error::Reason;
use crate::store::{admission, allocation, counter, screening, subject, trial_key};
use crate::trials::{Trial, Trials};

/// An EnrollSubject request, parsed: every field present, valid and typed.
struct Enroll {
    request_id: RequestId,
    trial: Arc<Trial>,
    site: SiteCode,
    screening: ScreeningId,
    consent_signed_on: NaiveDate,
    consent_form_version: String,
    strata: strata::Strata,
}

impl Enroll {
    /// The command, or INVALID_ARGUMENT naming every bad field. Consent, strata, the screening's
    /// validity and accrual are judged by the protocol version in force today.
    async fn parse(
        req: &pb::EnrollSubjectRequest,
        trials: &Trials,
        db: &sea_orm::DatabaseConnection,
    ) -> Result<Enroll, AppError> {
        let trial = parse::trial_on(trials, db, &req.trial_id, Some(parse::today()))
            .await?
            .and_then(|t| Ok((parse::strata(&t, &req.strata, true)?, t)));
        let (request_id, site, screening, (consent_signed_on, consent_form_version), (strata, trial)) = (
            wire::request_id("request_id", &req.request_id),
            wire::parsed("site_code", SiteCode::parse(&req.site_code)),
            wire::parsed("screening_id", ScreeningId::parse(&req.screening_id)),
            parse::consent(req.consent.as_ref()),
            trial,
        )
            .all()?;
        Ok(Enroll {
            request_id,
            trial,
            site,
            screening,
            consent_signed_on,
            consent_form_version,
            strata,
        })
    }
}

pub(super) async fn enroll(
    api: &EnrollmentApi,
    request: Request<pb::EnrollSubjectRequest>,
) -> Result<pb::EnrollSubjectResponse, AppError> {
    let call = CallContext::of(&request)?;
    let req = request.into_inner();
    let command = Enroll::parse(&req, &api.trials, &api.db).await?;
    call.require_own_site("site_code", command.site.as_str())?;
    require_accepted_version(&command.trial, &command.consent_form_version)?;
    let audit_ctx = AuditContext::new(call, command.request_id);
    let method = "EnrollmentService/EnrollSubject";
    // A trial's enrollments serialize on its subject-number counter: they are committed in
    // batches, one lane per trial.
    let lane = command.trial.protocol.trial.id.clone();
    idempotency::execute_batched(&api.lanes, &lane, method, command.request_id, &req, move |tx| {
        Box::pin(enroll_in(tx, audit_ctx, command))
    })
    .await
}

/// The transaction: take the subject number and the stratum's next position, read what the
/// enrollment is judged on, refuse (rolling the numbers back) or store and audit the subject and
/// its allocation. Six statements, seven at a trial's first enrollment (which records the key).
async fn enroll_in(
    tx: &DatabaseTransaction,
    audit_ctx: AuditContext,
    command: Enroll,
) -> Result<pb::EnrollSubjectResponse, AppError> {
    let trial = &command.trial;
    let (trial_id, screening_id, site_code) = (
        trial.protocol.trial.id.as_str(),
        command.screening.as_str(),
        command.site.as_str(),
    );
    let stratum = stratum_key(&trial.protocol, &command.strata);
    // The subject-number counter first: its row lock serializes the trial's enrollments, so the
    // facts read next include every enrollment committed before this one, and none can slip in
    // beside it. The stratum's counter comes second in every enrollment: no deadlock.
    let counters = [
        format!("subject_number|{trial_id}"),
        format!("stratum|{trial_id}|{stratum}"),
    ];
    let taken = counter::next_each(tx, &[counters[0].as_str(), counters[1].as_str()]).await?;
    let (number, position) = match taken[..] {
        [number, next] => (number, next - 1),
        _ => {
            return Err(AppError::internal(anyhow::anyhow!(
                "two counters asked, {} returned",
                taken.len()
            )));
        }
    };
    let count_site = trial.protocol.accrual.site_maximum.is_some();
    let Some(facts) = admission::read(tx, trial_id, screening_id, site_code, count_site).await? else {
        require_registered(tx, site_code).await?;
        admit(&command, None)?;
        return Err(AppError::internal(anyhow::anyhow!(
            "a candidate without a screening admitted"
        )));
    };
    if facts.site_registered == 0 {
        return Err(site_not_registered(site_code));
    }
    admit(&command, Some(&facts.screening))?;
    if facts.enrolled_as.is_some() {
        return Err(AppError::AlreadyExists {
            reason: Reason::SubjectAlreadyEnrolled.into(),
            message: format!("screening {screening_id} is already enrolled"),
        });
    }
    let now = trialops_platform::clock::now_stored();
    require_trial_key(tx, trial, facts.key_fingerprint.as_deref(), now).await?;
    let enrolled = Enrolled {
        trial: u64::try_from(number - 1).unwrap_or(0),
        site: u64::try_from(facts.enrolled_at_site).unwrap_or(0),
        stratum: u64::try_from(position).unwrap_or(0),
    };
    check_accrual(
        &trial.protocol.accrual,
        enrolled,
        facts.trial_hold.as_deref(),
        facts.site_hold.as_deref(),
    )
    .map_err(accrual_refusal)?;
    let (arm_code, position) = arm(tx, trial, &stratum, number, position).await?;
    let (record, alloc) = allocate(&command, stratum, number, (arm_code, position), now);
    subject::insert_enrolled(tx, &record, &alloc).await?;
    let changes = [
        ("subject.enrolled", audit::to_json(&record)?),
        ("subject.randomized", randomized(trial, &alloc)?),
    ]
    .into_iter()
    .map(|(action, new)| {
        Change::created(action, "subject", &record.subject_id, new).within(&record.trial_id, &record.site_code)
    })
    .collect();
    audit::append_all(tx, &audit_ctx, changes).await?;
    tracing::info!(subject_id = %record.subject_id, "subject enrolled and randomized");
    Ok(pb::EnrollSubjectResponse {
        subject: Some(convert::subject(&record)?),
    })
}

/// The arm of the subject with subject number `number` in `stratum`, and the position it is
/// recorded at. Permuted blocks: the arm at `stratum_position` of the stratum's concealed
/// sequence. Minimization: the arm at the trial's position `number − 1`, judged on every earlier
/// allocation of the trial — read under the subject-number counter's lock, so it holds every
/// allocation committed before this one (one more statement).
async fn arm(
    tx: &DatabaseTransaction,
    trial: &Trial,
    stratum: &str,
    number: i64,
    stratum_position: i64,
) -> Result<(String, i64), AppError> {
    let scheme = match &trial.method {
        Method::PermutedBlocks(scheme) => {
            let assignment = Sequence::new(&trial.key, scheme, stratum).assignment(stratum_position as u64);
            return Ok((assignment.arm_code, stratum_position));
        }
        Method::Minimization(scheme) => scheme,
    };
    let arms = scheme.arms();
    let mut counts = FactorCounts::default();
    for (earlier, code, subjects) in allocation::counts(tx, &trial.protocol.trial.id).await? {
        let Some(index) = arms.iter().position(|(c, _)| *c == code) else {
            return Err(AppError::internal(anyhow::anyhow!(
                "a stored allocation is on arm {code}, which the protocol does not define"
            )));
        };
        counts.add(&earlier, index, arms.len(), u64::try_from(subjects).unwrap_or(0));
    }
    let position = number - 1;
    let index = scheme.allocate(&trial.key, position as u64, &counts, stratum);
    Ok((arms[index].0.clone(), position))
}

/// The subject with subject number `number` and its allocation (`arm` at its position), as the
/// records to store.
fn allocate(
    command: &Enroll,
    stratum: String,
    number: i64,
    (arm_code, position): (String, i64),
    now: chrono::DateTime<chrono::Utc>,
) -> (subject::Model, allocation::Model) {
    let trial = &command.trial;
    let trial_id = trial.protocol.trial.id.clone();
    let subject_id = identifiers::subject_id(&trial_id, number as u64);
    let record = subject::Model {
        subject_id: subject_id.clone(),
        trial_id: trial_id.clone(),
        subject_number: number,
        site_code: command.site.to_string(),
        screening_id: command.screening.to_string(),
        arm_code: arm_code.clone(),
        strata: stratum.clone(),
        randomized_stratum: stratum.clone(),
        consent_signed_on: command.consent_signed_on,
        consent_form_version: command.consent_form_version.clone(),
        status: SubjectStatus::OnProtocolTherapy.as_str().to_owned(),
        status_reason: String::new(),
        status_effective_on: now.date_naive(),
        enrolled_at: now,
        updated_at: now,
        version: 1,
        randomized_in_error: false,
        randomized_in_error_reason: String::new(),
        protocol_version: trial.protocol.trial.protocol_version.clone(),
    };
    let alloc = allocation::Model {
        subject_id,
        trial_id,
        stratum,
        position,
        arm_code,
        allocated_at: now,
    };
    (record, alloc)
}

/// The domain's accrual decision as the refusal a caller gets.
fn accrual_refusal(refusal: AccrualRefusal) -> AppError {
    match refusal {
        AccrualRefusal::Closed { scope, reason } => AppError::FailedPrecondition {
            reason: Reason::AccrualClosed.into(),
            message: format!("accrual is closed to the {}: {reason}", scope.as_str()),
            metadata: vec![
                ("scope".into(), scope.as_str().into()),
                ("closure_reason".into(), reason),
            ],
        },
        AccrualRefusal::LimitReached { scope, maximum } => AppError::FailedPrecondition {
            reason: Reason::AccrualLimitReached.into(),
            message: format!(
                "the protocol's maximum accrual of {maximum} for the {} is reached",
                scope.as_str()
            ),
            metadata: vec![
                ("scope".into(), scope.as_str().into()),
                ("maximum".into(), maximum.to_string()),
            ],
        },
    }
}

/// The domain's decision on the latest screening, as the refusal a caller gets.
fn admit(command: &Enroll, latest: Option<&screening::Model>) -> Result<(), AppError> {
    let facts = latest.map(|s| LatestScreening {
        site_code: &s.site_code,
        eligible: s.eligible,
        assessed_on: s.assessed_on,
    });
    let today = trialops_platform::clock::now().date_naive();
    let validity_days = command.trial.protocol.screening.validity_days;
    let screening_id = command.screening.as_str();
    match check_screening(facts, command.site.as_str(), today, validity_days) {
        Ok(()) => Ok(()),
        Err(ScreeningRefusal::NotScreened) => Err(AppError::precondition(
            Reason::SubjectNotScreened,
            format!("no screening recorded for {screening_id}; call ScreenSubject first"),
        )),
        Err(ScreeningRefusal::AtAnotherSite { site_code }) => Err(AppError::precondition(
            Reason::ScreenedAtAnotherSite,
            format!("screening {screening_id} was recorded by site {site_code}"),
        )),
        Err(ScreeningRefusal::Ineligible) => match latest {
            Some(s) => Err(ineligible(s)),
            None => Err(AppError::internal(anyhow::anyhow!("ineligible without a screening"))),
        },
        Err(ScreeningRefusal::Expired {
            age_days,
            validity_days,
        }) => Err(AppError::FailedPrecondition {
            reason: Reason::ScreeningExpired.into(),
            message: format!(
                "the screening was assessed {age_days} days ago; the protocol allows {validity_days}; screen again"
            ),
            metadata: vec![("validity_days".into(), validity_days.to_string())],
        }),
    }
}

/// SUBJECT_INELIGIBLE with the failed criteria of the stored screening.
fn ineligible(s: &screening::Model) -> AppError {
    let results: Vec<convert::StoredResult> = match serde_json::from_str(&s.results_json) {
        Ok(results) => results,
        Err(e) => return AppError::internal(e),
    };
    let failed: Vec<_> = results.iter().filter(|r| r.outcome != "met").collect();
    let ids: Vec<_> = failed.iter().map(|r| r.criterion_id.as_str()).collect();
    let details: Vec<String> = failed
        .iter()
        .map(|r| format!("{} ({})", r.criterion_id, r.detail))
        .collect();
    AppError::FailedPrecondition {
        reason: Reason::SubjectIneligible.into(),
        message: format!("not eligible: {}", details.join("; ")),
        metadata: vec![
            ("failed_criteria".into(), ids.join(",")),
            ("screening_attempt".into(), s.attempt.to_string()),
        ],
    }
}

/// Records the trial key's fingerprint at the first allocation (`recorded` is none), and
/// refuses a key other than the recorded one.
async fn require_trial_key(
    tx: &DatabaseTransaction,
    trial: &Trial,
    recorded: Option<&str>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), AppError> {
    let id = &trial.protocol.trial.id;
    let ours = trial.key.fingerprint();
    match recorded {
        // Read under the subject-number counter's lock: no other enrollment can record it now.
        None => return Ok(trial_key::record(tx, id, &ours, now).await?),
        Some(recorded) if recorded == ours => return Ok(()),
        Some(_) => {}
    }
    Err(AppError::internal(anyhow::anyhow!(
        "randomization secret does not match the one trial {id} started with; refusing to randomize"
    )))
}

/// The audit entry of an allocation: the allocation (stratum, position, arm) and the commitment
/// it was made under, so the trail alone proves it once the key is revealed.
fn randomized(trial: &Trial, alloc: &allocation::Model) -> Result<serde_json::Value, AppError> {
    let mut entry = audit::to_json(alloc)?;
    let (commitment, parameters) = super::commitment::published(trial);
    if let Some(fields) = entry.as_object_mut() {
        fields.insert("allocation_commitment".into(), commitment.into());
        fields.insert("allocation_parameters".into(), parameters.into());
    }
    Ok(entry)
}
