//! AmendProtocol, ListProtocolVersions and GetProtocolVersion: the versions of a trial's protocol
//! definition. An amendment is judged by `trialops_domain::protocol::amendment` (the request,
//! then the recorded data it must not invalidate) and recorded with its audit entry in one
//! transaction that holds the trial's subject-number counter, so no enrollment slips in between
//! the count of subjects per arm and the new version.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::NaiveDate;
use sea_orm::DatabaseTransaction;
use tonic::Request;
use trialops_domain::protocol::{self, Protocol, ProtocolProblem, amendment};
use trialops_platform::identity::auth::CallContext;
use trialops_platform::records::audit::{self, AuditContext, Change};
use trialops_platform::records::idempotency::{self, RequestId};
use trialops_platform::wire::convert as wire;
use trialops_platform::wire::fields::{self, AllFields, violation};
use trialops_platform::{AppError, Violation};
use trialops_proto::enrollment::v1 as pb;

use super::{EnrollmentApi, convert};
use crate::error::Reason;
use crate::store::{allocation, counter, protocol_version};
use crate::trials::{Trials, digest};

/// Largest definition accepted, bytes.
const MAX_DEFINITION_BYTES: usize = 1 << 20;

/// An AmendProtocol request, parsed.
struct Amend {
    request_id: RequestId,
    trial_id: String,
    text: String,
    proposed: Protocol,
    effective_on: NaiveDate,
    reason: String,
}

impl Amend {
    fn parse(req: &pb::AmendProtocolRequest, trials: &Trials) -> Result<Amend, AppError> {
        let (request_id, trial_id, proposed, effective_on, reason) = (
            wire::request_id("request_id", &req.request_id),
            fields::required("trial_id", &req.trial_id),
            definition(&req.definition),
            wire::date("effective_on", req.effective_on.as_ref()),
            wire::text("reason", &req.reason, 2000),
        )
            .all()?;
        trials.get(trial_id)?;
        Ok(Amend {
            request_id,
            trial_id: trial_id.to_owned(),
            text: req.definition.clone(),
            proposed,
            effective_on,
            reason,
        })
    }
}

/// The definition parsed and validated; its first problem names the field as
/// `definition.<field>` (every problem is in the description).
fn definition(text: &str) -> Result<Protocol, Violation> {
    if text.trim().is_empty() {
        return Err(violation(
            "definition",
            "required: the whole amended protocol definition (TOML)",
        ));
    }
    if text.len() > MAX_DEFINITION_BYTES {
        return Err(violation("definition", format!("at most {MAX_DEFINITION_BYTES} bytes")));
    }
    protocol::load(text).map_err(|invalid| {
        let field = invalid
            .problems
            .first()
            .map_or_else(|| "definition".to_owned(), |p| format!("definition.{}", p.field));
        violation(&field, invalid.to_string())
    })
}

/// The problems of the amendment itself as INVALID_ARGUMENT, each naming its field.
fn invalid(problems: &[ProtocolProblem]) -> AppError {
    let violations = problems
        .iter()
        .map(|p| Violation {
            field: if p.field == "effective_on" {
                p.field.clone()
            } else {
                format!("definition.{}", p.field)
            },
            description: p.message.clone(),
        })
        .collect();
    AppError::InvalidArgument(violations)
}

pub(super) async fn amend(
    api: &EnrollmentApi,
    request: Request<pb::AmendProtocolRequest>,
) -> Result<pb::AmendProtocolResponse, AppError> {
    let call = CallContext::of(&request)?;
    let req = request.into_inner();
    let command = Amend::parse(&req, &api.trials)?;
    let audit_ctx = AuditContext::new(call, command.request_id).within(&command.trial_id, "");
    let trials = api.trials.clone();
    idempotency::execute(
        &api.db,
        "EnrollmentService/AmendProtocol",
        command.request_id,
        &req,
        move |tx| Box::pin(amend_in(tx, audit_ctx, trials, command)),
    )
    .await
}

/// The transaction: hold the trial's enrollments, judge the amendment against the newest version
/// and the subjects per arm, record and audit it.
async fn amend_in(
    tx: &DatabaseTransaction,
    audit_ctx: AuditContext,
    trials: Arc<Trials>,
    command: Amend,
) -> Result<pb::AmendProtocolResponse, AppError> {
    let trial_id = command.trial_id.as_str();
    counter::hold(tx, &format!("subject_number|{trial_id}")).await?;
    let versions = protocol_version::of_trial(tx, trial_id).await?;
    let Some(newest) = versions.last() else {
        return Err(AppError::internal(anyhow::anyhow!(
            "trial {trial_id} has no recorded protocol version"
        )));
    };
    let (current, _) = trials.version(tx, trial_id, &newest.version).await?;
    let today = trialops_platform::clock::now().date_naive();
    let recorded: Vec<&str> = versions.iter().map(|v| v.version.as_str()).collect();
    let latest_effective = versions.iter().filter_map(|v| v.effective_on).max();
    let problems = amendment::request_problems(
        &current.protocol,
        &command.proposed,
        &recorded,
        (command.effective_on, latest_effective, today),
    );
    if !problems.is_empty() {
        return Err(invalid(&problems));
    }
    let mut subjects_by_arm = BTreeMap::new();
    for (_, arm, subjects) in allocation::counts(tx, trial_id).await? {
        *subjects_by_arm.entry(arm).or_insert(0) += subjects.max(0) as u64;
    }
    let conflicts = amendment::data_conflicts(
        &current.protocol,
        &command.proposed,
        &amendment::RecordedData { subjects_by_arm },
    );
    if !conflicts.is_empty() {
        let listed: Vec<String> = conflicts.iter().map(ToString::to_string).collect();
        return Err(AppError::FailedPrecondition {
            reason: Reason::ProtocolAmendmentRefused.into(),
            message: format!(
                "the amendment would invalidate recorded data of trial {trial_id}: {}",
                listed.join("; ")
            ),
            metadata: vec![("problems".into(), listed.join("\n"))],
        });
    }
    let record = protocol_version::Model {
        trial_id: trial_id.to_owned(),
        ordinal: newest.ordinal + 1,
        version: command.proposed.trial.protocol_version.clone(),
        effective_on: Some(command.effective_on),
        reason: command.reason.clone(),
        activated_by: audit_ctx.actor().to_owned(),
        activated_at: trialops_platform::clock::now_stored(),
        definition_sha256: digest(&command.text),
        definition: command.text,
    };
    protocol_version::insert(tx, &record).await?;
    trials.forget_versions(trial_id);
    let entity_id = format!("{trial_id}|{}", record.version);
    let change = Change {
        reason: &command.reason,
        ..Change::created(
            "protocol.amended",
            "protocol_version",
            &entity_id,
            audit::to_json(&record)?,
        )
    };
    audit::append(tx, &audit_ctx, change).await?;
    // Effective tomorrow at the earliest: not in force today.
    Ok(pb::AmendProtocolResponse {
        version: Some(convert::protocol_version(&record, false)),
    })
}

pub(super) async fn list(
    api: &EnrollmentApi,
    request: Request<pb::ListProtocolVersionsRequest>,
) -> Result<pb::ListProtocolVersionsResponse, AppError> {
    let req = request.into_inner();
    if req.trial_id.is_empty() {
        return Err(AppError::invalid("trial_id", "required"));
    }
    let today = trialops_platform::clock::now().date_naive();
    let found = api.trials.in_force(&api.db, &req.trial_id, today).await?;
    Ok(pb::ListProtocolVersionsResponse {
        versions: convert::protocol_versions(&found.versions, &found.trial.protocol.trial.protocol_version),
    })
}

pub(super) async fn get(
    api: &EnrollmentApi,
    request: Request<pb::GetProtocolVersionRequest>,
) -> Result<pb::GetProtocolVersionResponse, AppError> {
    let req = request.into_inner();
    let (trial_id, version) = (
        fields::required("trial_id", &req.trial_id),
        fields::required("version", &req.version),
    )
        .all()?;
    let today = trialops_platform::clock::now().date_naive();
    let found = api.trials.in_force(&api.db, trial_id, today).await?;
    let (trial, row) = api.trials.version(&api.db, trial_id, version).await?;
    let in_force = found.trial.protocol.trial.protocol_version == row.version;
    Ok(pb::GetProtocolVersionResponse {
        version: Some(convert::protocol_version(&row, in_force)),
        trial: Some(convert::trial(&trial.protocol)),
        definition: row.definition,
    })
}
