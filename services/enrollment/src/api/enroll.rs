//! EnrollSubject: consent, eligibility and strata checked, then the next subject number and the
//! next position of the stratum's concealed sequence taken (or, under minimization, the arm
//! judged on every earlier allocation), all in one transaction. A refusal writes nothing; a
//! retry with the same request id returns the same subject and arm.
//!
//! Three steps: the request is parsed into an [`Enroll`] command; the screening is judged by
//! `trialops_domain::enrollment::check_screening` and accrual by `check_accrual`, on facts the
//! store reads in one statement; the store's named functions write.
//!
//! A trial's enrollments serialize on its subject-number counter, so they are written in
//! batches (`records::batch`, one lane per trial): the enrollments queued while the previous
//! batch was written share one transaction, judged one after the other in arrival order exactly
//! as if each had its own (each sees the ones before it), and written with one statement per
//! table. A batch of one sends six statements; a batch of sixteen, twenty-one.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use chrono::NaiveDate;
use prost::Message;
use sea_orm::{DatabaseConnection, DatabaseTransaction};
use tokio::sync::oneshot;
use tonic::Request;
use tracing::Instrument;
use trialops_domain::accrual::{AccrualRefusal, Enrolled, check_accrual};
use trialops_domain::enrollment::{LatestScreening, ScreeningRefusal, check_screening};
use trialops_domain::identifiers::{self, ScreeningId, SiteCode};
use trialops_domain::minimization::FactorCounts;
use trialops_domain::randomization::Method;
use trialops_domain::strata::{self, stratum_key};
use trialops_domain::subject::SubjectStatus;
use trialops_platform::AppError;
use trialops_platform::identity::auth::CallContext;
use trialops_platform::records::audit::{self, AuditContext, Change};
use trialops_platform::records::batch;
use trialops_platform::records::database::{begin_write, counting_statements};
use trialops_platform::records::idempotency::{self, Claim, RequestId};
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

const METHOD: &str = "EnrollmentService/EnrollSubject";

/// An enrollment queued on its trial's lane: the command, what its audit entries carry, what
/// tells it apart from another call with its request id, and where its answer (with its share of
/// the batch's statements) goes.
pub(super) struct Queued {
    command: Enroll,
    audit: AuditContext,
    fingerprint: String,
    answer: oneshot::Sender<(Result<pb::EnrollSubjectResponse, AppError>, u64)>,
}

/// The enrollments of each trial, written in batches.
pub(super) type Lanes = batch::Lanes<Queued>;

/// The lanes of the service's database `db`.
pub(super) fn lanes(db: DatabaseConnection) -> Lanes {
    batch::Lanes::new(Arc::new(move |queued| Box::pin(write_batch(db.clone(), queued))))
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
    // A trial's enrollments serialize on its subject-number counter: they are written in
    // batches, one lane per trial.
    let lane = command.trial.protocol.trial.id.clone();
    let (answer, answered) = oneshot::channel();
    let queued = Queued {
        fingerprint: idempotency::fingerprint(METHOD, &req),
        audit: AuditContext::new(call, command.request_id),
        command,
        answer,
    };
    api.lanes.submit(&lane, queued);
    let (outcome, statements) = answered.await.map_err(|_| {
        AppError::Unavailable("the enrollment was not completed; retry with the same request_id".into())
    })?;
    trialops_platform::records::database::add_statements(statements);
    outcome
}

/// How many times a batch is written again when its claims meet request ids stored meanwhile
/// (by another replica), before its callers are told to retry.
const ROUNDS: usize = 3;

/// Writes a batch of one trial's enrollments and answers each, after the commit. Requests that
/// repeat a request id already in the batch wait for the next round, where they replay the
/// first. Each caller is charged its share of the statements the batch sent.
async fn write_batch(db: DatabaseConnection, mut pending: Vec<batch::Queued<Queued>>) {
    for _ in 0..ROUNDS {
        let (now, later) = distinct_request_ids(pending);
        if now.is_empty() {
            return;
        }
        let (outcome, statements) = counting_statements(write_round(&db, &now)).await;
        let share = statements.div_ceil(now.len() as u64);
        pending = later;
        match outcome {
            Ok(answers) => {
                for ((queued, span), answer) in now.into_iter().zip(answers) {
                    match answer {
                        Some(answer) => respond(queued, &span, answer, share),
                        None => pending.push((queued, span)),
                    }
                }
            }
            Err(e) => now
                .into_iter()
                .for_each(|(queued, span)| respond(queued, &span, Err(batch::shared(&e)), share)),
        }
    }
    for (queued, span) in pending {
        let busy = AppError::Aborted("the request id is being processed; retry".into());
        respond(queued, &span, Err(busy), 0);
    }
}

fn respond(queued: Queued, span: &tracing::Span, answer: Result<pb::EnrollSubjectResponse, AppError>, share: u64) {
    if let Err(e) = &answer {
        span.in_scope(|| tracing::debug!(error = %e, "enrollment not written"));
    }
    // The caller may have stopped waiting; its retry will find the stored response.
    let _ = queued.answer.send((answer, share));
}

/// The batch's first request of each request id, and the repeats.
fn distinct_request_ids(
    queued: Vec<batch::Queued<Queued>>,
) -> (Vec<batch::Queued<Queued>>, Vec<batch::Queued<Queued>>) {
    let mut seen = HashSet::new();
    queued.into_iter().partition(|(q, _)| seen.insert(q.command.request_id))
}

/// One transaction for `batch` (distinct request ids): the counters taken for every enrollment,
/// then each judged in turn on its facts and on the enrollments before it, then the enrolled
/// written with one statement per table. Five statements and one per enrollment; one more at a
/// trial's first allocation (its key) and when some are refused (the counters set back). An
/// answer per enrollment, none for one to write again; an error fails the whole batch.
async fn write_round(
    db: &DatabaseConnection,
    batch: &[batch::Queued<Queued>],
) -> Result<Vec<Option<Result<pb::EnrollSubjectResponse, AppError>>>, AppError> {
    let tx = begin_write(db).await?;
    let strata: Vec<String> = batch
        .iter()
        .map(|(q, _)| stratum_key(&q.command.trial.protocol, &q.command.strata))
        .collect();
    let mut tally = Tally::take(&tx, &batch[0].0.command.trial, &strata).await?;
    let mut judged = Vec::with_capacity(batch.len());
    for ((queued, span), stratum) in batch.iter().zip(&strata) {
        judged.push(
            judge(&tx, &queued.command, stratum, &mut tally)
                .instrument(span.clone())
                .await?,
        );
    }
    let enrolled: Vec<(&Queued, &Admitted)> = enrolled_spans(batch, &judged)
        .map(|((queued, _), admitted)| (queued, admitted))
        .collect();
    let mut answers: Vec<_> = if enrolled.is_empty() {
        tx.rollback().await?;
        judged.into_iter().map(|j| Some(j.map(|a| a.response))).collect()
    } else {
        match write_enrolled(&tx, &tally, &enrolled, enrolled.len() < batch.len()).await? {
            Written::All => {
                tx.commit().await?;
                for ((_, span), admitted) in enrolled_spans(batch, &judged) {
                    let subject_id = admitted.record.subject_id.as_str();
                    span.in_scope(|| tracing::info!(subject_id, "subject enrolled and randomized"));
                }
                judged.into_iter().map(|j| Some(j.map(|a| a.response))).collect()
            }
            Written::Stored(stored) => {
                // Some ids were stored meanwhile: nothing is written; those calls replay, and the
                // rest are judged again (the refusals too: they were judged beside enrollments
                // that are not written).
                tx.rollback().await?;
                return replay_or_again(db, batch, &stored).await;
            }
        }
    };
    // A refusal may be a retry of an enrollment that committed: it gets the stored response.
    let refused: Vec<_> = batch
        .iter()
        .zip(&answers)
        .filter(|(_, a)| matches!(a, Some(Err(_))))
        .map(|((q, _), _)| (q.command.request_id, q.fingerprint.as_str()))
        .collect();
    let mut stored = idempotency::replay_all(db, METHOD, &refused).await?;
    for ((queued, _), answer) in batch.iter().zip(answers.iter_mut()) {
        if let (Some(Err(_)), Some(replayed)) = (&answer, stored.remove(&queued.command.request_id)) {
            *answer = Some(replayed);
        }
    }
    Ok(answers)
}

/// The batch's admitted enrollments, each with its queued call.
fn enrolled_spans<'a>(
    batch: &'a [batch::Queued<Queued>],
    judged: &'a [Result<Admitted, AppError>],
) -> impl Iterator<Item = (&'a batch::Queued<Queued>, &'a Admitted)> {
    batch
        .iter()
        .zip(judged)
        .filter_map(|(queued, judged)| judged.as_ref().ok().map(|admitted| (queued, admitted)))
}

/// What came of writing a batch's enrolled subjects.
enum Written {
    /// Everything is written; the transaction may commit.
    All,
    /// These request ids were already stored: nothing may commit.
    Stored(Vec<RequestId>),
}

/// Writes the enrolled subjects of a batch: the counters set back to what the enrolled took
/// when some were refused, the trial's key at its first allocation, the request ids claimed with
/// the responses, then the subjects, their allocations and their audit entries.
async fn write_enrolled(
    tx: &DatabaseTransaction,
    tally: &Tally,
    enrolled: &[(&Queued, &Admitted)],
    some_refused: bool,
) -> Result<Written, AppError> {
    if some_refused {
        tally.set_back(tx).await?;
    }
    if let Some(first) = tally.key_to_record.as_ref() {
        trial_key::record(tx, &first.trial_id, &first.fingerprint, first.at).await?;
    }
    let claims = enrolled
        .iter()
        .map(|(queued, admitted)| Claim {
            request_id: queued.command.request_id,
            fingerprint: queued.fingerprint.clone(),
            response: admitted.response.encode_to_vec(),
        })
        .collect();
    let stored = idempotency::claim_all(tx, METHOD, claims).await?;
    if !stored.is_empty() {
        return Ok(Written::Stored(stored));
    }
    let rows: Vec<_> = enrolled
        .iter()
        .map(|(_, a)| (a.record.clone(), a.allocation.clone()))
        .collect();
    subject::insert_enrolled(tx, &rows).await?;
    let changes = enrolled
        .iter()
        .flat_map(|(queued, admitted)| {
            let r = &admitted.record;
            let [enrolled, randomized] = admitted.entries.clone();
            [("subject.enrolled", enrolled), ("subject.randomized", randomized)].map(|(action, new)| {
                let change = Change::created(action, "subject", &r.subject_id, new).within(&r.trial_id, &r.site_code);
                (&queued.audit, change)
            })
        })
        .collect();
    audit::append_each(tx, changes).await?;
    Ok(Written::All)
}

/// After a batch met request ids stored meanwhile: their stored responses (or REQUEST_ID_REUSED),
/// and none for the others, which are written again.
async fn replay_or_again(
    db: &DatabaseConnection,
    batch: &[batch::Queued<Queued>],
    stored: &[RequestId],
) -> Result<Vec<Option<Result<pb::EnrollSubjectResponse, AppError>>>, AppError> {
    let asked: Vec<_> = batch
        .iter()
        .filter(|(q, _)| stored.contains(&q.command.request_id))
        .map(|(q, _)| (q.command.request_id, q.fingerprint.as_str()))
        .collect();
    let mut replies = idempotency::replay_all(db, METHOD, &asked).await?;
    Ok(batch
        .iter()
        .map(|(q, _)| replies.remove(&q.command.request_id))
        .collect())
}

/// An enrollment judged admissible, with what writing it stores.
struct Admitted {
    record: subject::Model,
    allocation: allocation::Model,
    response: pb::EnrollSubjectResponse,
    /// The `subject.enrolled` and `subject.randomized` entries.
    entries: [serde_json::Value; 2],
}

/// The trial's key to record at its first allocation.
struct KeyRecord {
    trial_id: String,
    fingerprint: String,
    at: chrono::DateTime<chrono::Utc>,
}

/// What a batch's enrollments have taken so far: the counters were advanced for every enrollment
/// of the batch at its start (which takes their row locks, in one order: the subject-number
/// counter first, then the strata's in key order); each admitted enrollment takes the next
/// number and the next position of its stratum, and a refused one takes nothing.
struct Tally {
    trial_id: String,
    /// The last subject number taken.
    number: i64,
    /// Each stratum's next position.
    positions: BTreeMap<String, i64>,
    /// Subjects the batch enrolled at each site.
    at_site: HashMap<String, i64>,
    /// Screenings the batch enrolled.
    screenings: HashSet<String>,
    /// Allocations of the trial so far by stratum and arm, read at the first minimization.
    counts: Option<FactorCounts>,
    key_to_record: Option<KeyRecord>,
}

impl Tally {
    /// Advances the trial's counters for the enrollments of `strata` (one statement), and the
    /// tally before any of them.
    async fn take(tx: &DatabaseTransaction, trial: &Trial, strata: &[String]) -> Result<Tally, AppError> {
        let trial_id = trial.protocol.trial.id.clone();
        let mut per_stratum: BTreeMap<String, i64> = BTreeMap::new();
        for stratum in strata {
            *per_stratum.entry(stratum.clone()).or_default() += 1;
        }
        let names = counter_names(&trial_id, per_stratum.keys());
        let added: Vec<(&str, i64)> = std::iter::once(strata.len() as i64)
            .chain(per_stratum.values().copied())
            .zip(&names)
            .map(|(added, name)| (name.as_str(), added))
            .collect();
        let values = counter::add_each(tx, &added).await?;
        let before = values.iter().zip(&added).map(|(value, (_, added))| value - added);
        let mut before = before.collect::<Vec<_>>().into_iter();
        let number = before.next().unwrap_or(0);
        let positions = per_stratum.into_keys().zip(before).collect();
        Ok(Tally {
            trial_id,
            number,
            positions,
            at_site: HashMap::new(),
            screenings: HashSet::new(),
            counts: None,
            key_to_record: None,
        })
    }

    /// Sets the counters to what the admitted enrollments took (one statement).
    async fn set_back(&self, tx: &DatabaseTransaction) -> Result<(), AppError> {
        let names = counter_names(&self.trial_id, self.positions.keys());
        let values = std::iter::once(self.number).chain(self.positions.values().copied());
        let set: Vec<(&str, i64)> = names.iter().map(String::as_str).zip(values).collect();
        Ok(counter::set_each(tx, &set).await?)
    }
}

/// The subject-number counter's name, then the strata's.
fn counter_names<'a>(trial_id: &str, strata: impl Iterator<Item = &'a String>) -> Vec<String> {
    std::iter::once(format!("subject_number|{trial_id}"))
        .chain(strata.map(|stratum| format!("stratum|{trial_id}|{stratum}")))
        .collect()
}

/// Judges one enrollment of a batch on its facts (one statement) and on the enrollments the
/// batch admitted before it: refused, or admitted with its subject number, its stratum's next
/// position and its arm, which it takes from the tally. An error is the batch's.
async fn judge(
    tx: &DatabaseTransaction,
    command: &Enroll,
    stratum: &str,
    tally: &mut Tally,
) -> Result<Result<Admitted, AppError>, AppError> {
    let trial = &command.trial;
    let (trial_id, screening_id, site_code) = (
        trial.protocol.trial.id.as_str(),
        command.screening.as_str(),
        command.site.as_str(),
    );
    let count_site = trial.protocol.accrual.site_maximum.is_some();
    let Some(facts) = admission::read(tx, trial_id, screening_id, site_code, count_site).await? else {
        if let Err(refused) = require_registered(tx, site_code).await {
            return Ok(Err(refused));
        }
        return Ok(admit(command, None).and_then(|()| {
            Err(AppError::internal(anyhow::anyhow!(
                "a candidate without a screening admitted"
            )))
        }));
    };
    let now = trialops_platform::clock::now_stored();
    let position = tally.positions.get(stratum).copied().unwrap_or(0);
    let at_site = tally.at_site.get(site_code).copied().unwrap_or(0);
    let admissible = admissible(command, &facts, tally, now).and_then(|()| {
        let enrolled = Enrolled {
            trial: u64::try_from(tally.number).unwrap_or(0),
            site: u64::try_from(facts.enrolled_at_site + if count_site { at_site } else { 0 }).unwrap_or(0),
            stratum: u64::try_from(position).unwrap_or(0),
        };
        let (trial_hold, site_hold) = (facts.trial_hold.as_deref(), facts.site_hold.as_deref());
        check_accrual(&trial.protocol.accrual, enrolled, trial_hold, site_hold).map_err(accrual_refusal)
    });
    if let Err(refused) = admissible {
        return Ok(Err(refused));
    }
    let number = tally.number + 1;
    let (arm_code, position) = match arm(tx, trial, stratum, number, position, &mut tally.counts).await? {
        Ok(arm) => arm,
        Err(refused) => return Ok(Err(refused)),
    };
    let (record, allocation) = allocate(command, stratum.to_owned(), number, (arm_code, position), now);
    let admitted = (|| {
        let entries = [audit::to_json(&record)?, randomized(trial, &allocation)?];
        let response = pb::EnrollSubjectResponse {
            subject: Some(convert::subject(&record)?),
        };
        Ok::<_, AppError>((entries, response))
    })();
    let (entries, response) = match admitted {
        Ok(admitted) => admitted,
        Err(failed) => return Ok(Err(failed)),
    };
    tally.number = number;
    *tally.positions.entry(stratum.to_owned()).or_default() += 1;
    *tally.at_site.entry(site_code.to_owned()).or_default() += 1;
    tally.screenings.insert(screening_id.to_owned());
    Ok(Ok(Admitted {
        record,
        allocation,
        response,
        entries,
    }))
}

/// The refusals decided on the candidate's facts before accrual: its site and screening, a
/// subject already enrolled from it (by the batch too), and the trial's key (to be recorded at
/// the trial's first allocation, else the recorded one).
fn admissible(
    command: &Enroll,
    facts: &admission::Facts,
    tally: &mut Tally,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), AppError> {
    let (screening_id, site_code) = (command.screening.as_str(), command.site.as_str());
    if facts.site_registered == 0 {
        return Err(site_not_registered(site_code));
    }
    admit(command, Some(&facts.screening))?;
    if facts.enrolled_as.is_some() || tally.screenings.contains(screening_id) {
        return Err(AppError::AlreadyExists {
            reason: Reason::SubjectAlreadyEnrolled.into(),
            message: format!("screening {screening_id} is already enrolled"),
        });
    }
    let trial = &command.trial;
    let (id, ours) = (&trial.protocol.trial.id, trial.key.fingerprint());
    match (facts.key_fingerprint.as_deref(), &tally.key_to_record) {
        (Some(recorded), _) if recorded == ours => Ok(()),
        (Some(_), _) => Err(AppError::internal(anyhow::anyhow!(
            "randomization secret does not match the one trial {id} started with; refusing to randomize"
        ))),
        // Read under the subject-number counter's lock: no other enrollment can record it now.
        (None, _) => {
            tally.key_to_record.get_or_insert_with(|| KeyRecord {
                trial_id: id.clone(),
                fingerprint: ours,
                at: now,
            });
            Ok(())
        }
    }
}

/// The arm of the subject with subject number `number` in `stratum`, and the position it is
/// recorded at. Permuted blocks: the arm at `stratum_position` of the stratum's concealed
/// sequence. Minimization: the arm at the trial's position `number − 1`, judged on every earlier
/// allocation of the trial — read under the subject-number counter's lock at the batch's first
/// minimization (one more statement), so it holds every allocation committed before, and kept
/// in `counts` with the batch's own.
async fn arm(
    tx: &DatabaseTransaction,
    trial: &Trial,
    stratum: &str,
    number: i64,
    stratum_position: i64,
    counts: &mut Option<FactorCounts>,
) -> Result<Result<(String, i64), AppError>, AppError> {
    let scheme = match &trial.method {
        Method::PermutedBlocks(scheme) => {
            let assignment = trial.assignment(scheme, stratum, stratum_position as u64);
            return Ok(Ok((assignment.arm_code, stratum_position)));
        }
        Method::Minimization(scheme) => scheme,
    };
    let arms = scheme.arms();
    let counts = match counts {
        Some(counts) => counts,
        None => {
            let mut read = FactorCounts::default();
            for (earlier, code, subjects) in allocation::counts(tx, &trial.protocol.trial.id).await? {
                let Some(index) = arms.iter().position(|(c, _)| *c == code) else {
                    return Ok(Err(AppError::internal(anyhow::anyhow!(
                        "a stored allocation is on arm {code}, which the protocol does not define"
                    ))));
                };
                read.add(&earlier, index, arms.len(), u64::try_from(subjects).unwrap_or(0));
            }
            counts.insert(read)
        }
    };
    let position = number - 1;
    let index = scheme.allocate(&trial.key, position as u64, counts, stratum);
    counts.add(stratum, index, arms.len(), 1);
    Ok(Ok((arms[index].0.clone(), position)))
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
