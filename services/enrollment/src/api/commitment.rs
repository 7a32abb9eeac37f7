//! The committed, verifiable allocation sequence: GetTrial publishes a commitment to the method,
//! its parameters and the trial's key before the first enrollment; every allocation is recorded
//! with its stratum and position (ListAllocations); once accrual to the whole trial is closed an
//! administrator reveals the key (RevealAllocationKey), and anyone can recompute every arm from
//! it and check it against the commitment (`trialops verify-allocation`).

use sea_orm::DatabaseTransaction;
use tonic::Request;
use trialops_domain::randomization::commitment;
use trialops_platform::AppError;
use trialops_platform::identity::auth::CallContext;
use trialops_platform::records::audit::{self, AuditContext, Change};
use trialops_platform::records::idempotency;
use trialops_platform::wire::convert::{self as wire, to_timestamp};
use trialops_platform::wire::fields::AllFields;
use trialops_platform::wire::pagination;
use trialops_proto::enrollment::v1 as pb;

use super::{EnrollmentApi, parse};
use crate::error::Reason;
use crate::store::{accrual_closure, allocation, allocation_reveal, trial_key};
use crate::trials::Trial;

/// The commitment and parameters of a trial, as GetTrial publishes them.
pub(super) fn published(trial: &Trial) -> (String, String) {
    let id = &trial.protocol.trial.id;
    (commitment(id, &trial.method, &trial.key), trial.method.parameters())
}

/// ListAllocations: a trial's allocations in subject order.
pub(super) async fn list(
    api: &EnrollmentApi,
    request: Request<pb::ListAllocationsRequest>,
) -> Result<pb::ListAllocationsResponse, AppError> {
    let req = request.into_inner();
    let trial = parse::trial(&api.trials, &req.trial_id)??;
    let trial_id = trial.protocol.trial.id.as_str();
    let scope = format!("allocations|{trial_id}");
    let page = pagination::page(req.page_size, &req.page_token, &scope)?;
    let rows = allocation::of_trial(&api.db, trial_id, page.after.as_deref(), page.size + 1).await?;
    let (rows, next_page_token) = pagination::split(rows, &page, &scope, |a| a.subject_id.clone());
    Ok(pb::ListAllocationsResponse {
        allocations: rows
            .into_iter()
            .map(|a| pb::Allocation {
                subject_id: a.subject_id,
                stratum: a.stratum,
                position: a.position,
                arm_code: a.arm_code,
                allocated_at: Some(to_timestamp(a.allocated_at)),
            })
            .collect(),
        next_page_token,
    })
}

/// RevealAllocationKey: the key, once accrual to the whole trial is closed; audited.
pub(super) async fn reveal(
    api: &EnrollmentApi,
    request: Request<pb::RevealAllocationKeyRequest>,
) -> Result<pb::RevealAllocationKeyResponse, AppError> {
    let call = CallContext::of(&request)?;
    let req = request.into_inner();
    let (request_id, trial, reason) = (
        wire::request_id("request_id", &req.request_id),
        parse::trial(&api.trials, &req.trial_id)?,
        wire::text("reason", &req.reason, 1000),
    )
        .all()?;
    let audit_ctx = AuditContext::new(call, request_id);
    idempotency::execute(
        &api.db,
        "EnrollmentService/RevealAllocationKey",
        request_id,
        &req,
        move |tx| Box::pin(reveal_in(tx, audit_ctx, trial, reason)),
    )
    .await
}

/// The transaction: accrual closed to the trial, the key the trial started with; the reveal
/// recorded and audited with the key, the commitment and the parameters.
async fn reveal_in(
    tx: &DatabaseTransaction,
    audit_ctx: AuditContext,
    trial: std::sync::Arc<Trial>,
    reason: String,
) -> Result<pb::RevealAllocationKeyResponse, AppError> {
    let trial_id = trial.protocol.trial.id.as_str();
    if accrual_closure::find(tx, trial_id, "").await?.is_none() {
        return Err(AppError::precondition(
            Reason::TrialAccrualOpen,
            format!(
                "accrual to trial {trial_id} is open: close it (CloseAccrual without a site) before revealing its key"
            ),
        ));
    }
    let now = trialops_platform::clock::now_stored();
    if !trial_key::record_or_match(tx, trial_id, &trial.key.fingerprint(), now).await? {
        return Err(AppError::internal(anyhow::anyhow!(
            "randomization secret does not match the one trial {trial_id} started with; refusing to reveal"
        )));
    }
    let record = allocation_reveal::Model {
        trial_id: trial_id.to_owned(),
        reason: reason.clone(),
        revealed_at: now,
    };
    allocation_reveal::record(tx, &record).await?;
    let (allocation_commitment, allocation_parameters) = published(&trial);
    let allocation_key = trial.key.reveal();
    let new = serde_json::json!({
        "trial_id": trial_id,
        "allocation_key": allocation_key,
        "allocation_commitment": allocation_commitment,
        "allocation_parameters": allocation_parameters,
    });
    let mut entry = Change::created("allocation.key_revealed", "trial", trial_id, new).within(trial_id, "");
    entry.reason = &reason;
    audit::append(tx, &audit_ctx, entry).await?;
    tracing::info!(trial_id, "allocation key revealed");
    Ok(pb::RevealAllocationKeyResponse {
        trial_id: trial_id.to_owned(),
        allocation_key,
        allocation_commitment,
        allocation_parameters,
    })
}
