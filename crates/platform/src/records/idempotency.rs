//! Idempotent mutations. A mutating RPC runs inside [`execute`]: the change is made, and the
//! request id is claimed with the encoded response by the transaction's last statement, all in
//! one transaction. So:
//! - a retry with the same request id (after a timeout, a dropped connection, a cancelled
//!   call) returns the stored first response and changes nothing;
//! - the same id with a different request is `ALREADY_EXISTS` (`REQUEST_ID_REUSED`);
//! - two concurrent calls with one id: the second waits on the first's claim and then replays;
//! - a refused or cancelled call rolls back entirely, claim included: nothing half-written.
//!
//! A repeat redoes the work inside a transaction that is then rolled back: an operation must
//! have no effect outside its transaction (none has: they read and write the service's database).
//!
//! A batch of writes (`records::batch`) keeps the same promises with the batch forms: it claims
//! its calls' ids in one statement with [`claim_all`] and looks up repeats with [`replay_all`].

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;

use prost::Message;

use sea_orm::{ActiveValue::Set, ConnectionTrait, DatabaseConnection, DatabaseTransaction, EntityTrait};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::records::database::begin_write;
use crate::records::store::idempotency_record as record;
use crate::wire::error::AppError;

/// A client-chosen request id: the UUID that makes a mutating call idempotent and that its audit
/// entries carry. Parsed from the wire by `wire::convert::request_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestId(Uuid);

impl RequestId {
    /// The id of a parsed UUID.
    pub fn new(id: Uuid) -> Self {
        RequestId(id)
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// The transaction body of a mutating RPC.
pub type Operation<'c, Resp> = Pin<Box<dyn Future<Output = Result<Resp, AppError>> + Send + 'c>>;

/// What tells two calls with one request id apart: a hash of the method and the encoded request.
pub fn fingerprint(method: &str, request: &impl Message) -> String {
    let mut hash = Sha256::new();
    hash.update(method.as_bytes());
    hash.update([0]);
    hash.update(request.encode_to_vec());
    hex::encode(hash.finalize())
}

/// Runs `operation` once per `request_id`, in one write transaction with the idempotency record.
///
/// The record is written last, with the response, in the same statement that claims the id: one
/// statement per call instead of a claim first and the response after. A repeated id is found by
/// that insert's conflict (or, when the repeat is refused because the first call's change is
/// already there, by the lookup after the refusal); the repeat's own work is rolled back and the
/// stored response returned. Concurrent calls with one id meet at the insert (or at a row both
/// change): the second waits for the first to commit, then replays.
pub async fn execute<Req, Resp, F>(
    db: &DatabaseConnection,
    method: &'static str,
    request_id: RequestId,
    request: &Req,
    operation: F,
) -> Result<Resp, AppError>
where
    Req: Message,
    Resp: Message + Default,
    F: for<'c> FnOnce(&'c DatabaseTransaction) -> Operation<'c, Resp>,
{
    let fingerprint = fingerprint(method, request);
    let tx = begin_write(db).await?;
    let response = match operation(&tx).await {
        Ok(response) => response,
        Err(refused) => {
            tx.rollback().await?;
            return match replay(db, method, request_id, &fingerprint).await? {
                Some(stored) => Ok(stored),
                None => Err(refused),
            };
        }
    };
    if claim(&tx, method, request_id, &fingerprint, &response).await? {
        tx.commit().await?;
        return Ok(response);
    }
    tx.rollback().await?;
    replay(db, method, request_id, &fingerprint)
        .await?
        .ok_or_else(|| AppError::Aborted("the request id is being processed; retry".into()))
}

/// Stores the response under `request_id`; false if the id is already stored.
async fn claim<C: ConnectionTrait>(
    conn: &C,
    method: &str,
    request_id: RequestId,
    fingerprint: &str,
    response: &impl Message,
) -> Result<bool, AppError> {
    let claim = Claim {
        request_id,
        fingerprint: fingerprint.to_owned(),
        response: response.encode_to_vec(),
    };
    Ok(claim_all(conn, method, vec![claim]).await?.is_empty())
}

/// A call's claim on its request id, with the response to store under it.
#[derive(Debug, Clone)]
pub struct Claim {
    /// The call's request id.
    pub request_id: RequestId,
    /// The call's [`fingerprint`].
    pub fingerprint: String,
    /// The encoded response.
    pub response: Vec<u8>,
}

/// Stores every claim's response under its request id, in one statement (ids distinct); gives
/// the ids that were already stored, by an earlier call or a concurrent one that has committed
/// since (an uncommitted one is waited for), which stored nothing.
pub async fn claim_all<C: ConnectionTrait>(
    conn: &C,
    method: &str,
    claims: Vec<Claim>,
) -> Result<Vec<RequestId>, AppError> {
    let now = crate::clock::now();
    let ids: Vec<RequestId> = claims.iter().map(|c| c.request_id).collect();
    let rows = claims.into_iter().map(|claim| record::ActiveModel {
        request_id: Set(claim.request_id.to_string()),
        method: Set(method.to_owned()),
        fingerprint: Set(claim.fingerprint),
        response: Set(Some(claim.response)),
        created_at: Set(now),
    });
    let inserted = match record::Entity::insert_many(rows)
        .on_conflict_do_nothing_on([record::Column::RequestId])
        .exec_with_returning_keys(conn)
        .await?
    {
        sea_orm::TryInsertResult::Inserted(keys) => keys,
        sea_orm::TryInsertResult::Conflicted | sea_orm::TryInsertResult::Empty => Vec::new(),
    };
    Ok(ids
        .into_iter()
        .filter(|id| !inserted.contains(&id.to_string()))
        .collect())
}

/// The stored response of an earlier call with `request_id`, if there is one; REQUEST_ID_REUSED
/// if that call was a different request.
async fn replay<Resp: Message + Default, C: ConnectionTrait>(
    db: &C,
    method: &str,
    request_id: RequestId,
    fingerprint: &str,
) -> Result<Option<Resp>, AppError> {
    replay_all(db, method, &[(request_id, fingerprint)])
        .await?
        .remove(&request_id)
        .transpose()
}

/// For each of the `asked` request ids (with the asking call's fingerprint) that an earlier call
/// stored, in one statement: its stored response, or REQUEST_ID_REUSED if that call was a
/// different request. Ids never stored are absent.
pub async fn replay_all<Resp: Message + Default, C: ConnectionTrait>(
    db: &C,
    method: &str,
    asked: &[(RequestId, &str)],
) -> Result<HashMap<RequestId, Result<Resp, AppError>>, AppError> {
    use sea_orm::{ColumnTrait, QueryFilter};
    if asked.is_empty() {
        return Ok(HashMap::new());
    }
    let stored = record::Entity::find()
        .filter(record::Column::RequestId.is_in(asked.iter().map(|(id, _)| id.to_string())))
        .all(db)
        .await?;
    let mut replies = HashMap::new();
    for (request_id, fingerprint) in asked {
        let key = request_id.to_string();
        if let Some(existing) = stored.iter().find(|s| s.request_id == key) {
            replies.insert(*request_id, stored_response(existing, method, fingerprint));
        }
    }
    Ok(replies)
}

/// The response `existing` stores for a call of `method` with `fingerprint`.
fn stored_response<Resp: Message + Default>(
    existing: &record::Model,
    method: &str,
    fingerprint: &str,
) -> Result<Resp, AppError> {
    if existing.method != method || existing.fingerprint != fingerprint {
        return Err(AppError::AlreadyExists {
            reason: trialops_proto::common::v1::CommonReason::RequestIdReused.into(),
            message: "this request_id was already used for a different request; choose a new UUID".into(),
        });
    }
    let bytes = existing
        .response
        .as_deref()
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("idempotency record without a response")))?;
    tracing::info!("replayed response for a repeated request_id");
    Resp::decode(bytes).map_err(AppError::internal)
}
