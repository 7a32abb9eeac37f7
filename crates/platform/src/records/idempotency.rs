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

use std::future::Future;
use std::pin::Pin;

use prost::Message;
use std::sync::{Arc, Mutex};

use sea_orm::{
    ActiveValue::Set, ConnectionTrait, DatabaseConnection, DatabaseTransaction, EntityTrait, TransactionTrait,
};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::records::batch::{self, Completion, Lanes, Write};
use crate::records::database::{begin_write, counting_statements};
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

fn fingerprint(method: &str, request: &impl Message) -> String {
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

/// [`execute`] for a write that serializes with the other writes of `lane` anyway (a trial's
/// enrollments): queued on `lanes` and committed together with the writes queued beside it, each
/// in its own savepoint (see `records::batch`). The same answers as [`execute`]; the caller is
/// answered once the batch has committed.
pub async fn execute_batched<Req, Resp, F>(
    lanes: &Lanes,
    lane: &str,
    method: &'static str,
    request_id: RequestId,
    request: &Req,
    operation: F,
) -> Result<Resp, AppError>
where
    Req: Message,
    Resp: Message + Default + 'static,
    F: for<'c> FnOnce(&'c DatabaseTransaction) -> Operation<'c, Resp> + Send + 'static,
{
    type Answer<Resp> = (Result<Resp, AppError>, u64);
    let fingerprint = fingerprint(method, request);
    let (sender, answer) = tokio::sync::oneshot::channel::<Answer<Resp>>();
    let sender = Arc::new(Mutex::new(Some(sender)));
    let answer_with = |sender: &Arc<Mutex<Option<tokio::sync::oneshot::Sender<Answer<Resp>>>>>, value: Answer<Resp>| {
        let taken = sender.lock().map(|mut s| s.take()).unwrap_or(None);
        if let Some(sender) = taken {
            // The caller may have stopped waiting; its retry will find the stored response.
            let _ = sender.send(value);
        }
    };
    let on_failure = sender.clone();
    let write = Write {
        run: Box::new(move |tx| {
            Box::pin(async move {
                let (outcome, statements) =
                    counting_statements(in_savepoint(tx, method, request_id, &fingerprint, operation)).await;
                let completion: Completion = Box::new(move |committed| {
                    let answer = match committed {
                        Ok(()) => outcome,
                        Err(e) => Err(batch::shared(e)),
                    };
                    answer_with(&sender, (answer, statements));
                });
                completion
            })
        }),
        fail: Box::new(move |committed| {
            let error = match committed {
                Ok(()) => AppError::internal(anyhow::anyhow!("a write failed without an error")),
                Err(e) => batch::shared(e),
            };
            answer_with(&on_failure, (Err(error), 0));
        }),
    };
    lanes.submit(lane, write);
    let (outcome, statements) = answer
        .await
        .map_err(|_| AppError::Unavailable("the write was not completed; retry with the same request_id".into()))?;
    crate::records::database::add_statements(statements);
    outcome
}

/// One write of a batch inside its savepoint: the operation and the claim of its request id,
/// kept together or rolled back together; a repeated request id gets the stored response.
async fn in_savepoint<Resp, F>(
    tx: &DatabaseTransaction,
    method: &'static str,
    request_id: RequestId,
    fingerprint: &str,
    operation: F,
) -> Result<Resp, AppError>
where
    Resp: Message + Default,
    F: for<'c> FnOnce(&'c DatabaseTransaction) -> Operation<'c, Resp>,
{
    let savepoint = tx.begin().await?;
    let refused = match operation(&savepoint).await {
        Ok(response) => {
            if claim(&savepoint, method, request_id, fingerprint, &response).await? {
                savepoint.commit().await?;
                return Ok(response);
            }
            None
        }
        Err(refused) => Some(refused),
    };
    savepoint.rollback().await?;
    match (replay(tx, method, request_id, fingerprint).await?, refused) {
        (Some(stored), _) => Ok(stored),
        (None, Some(refused)) => Err(refused),
        (None, None) => Err(AppError::Aborted("the request id is being processed; retry".into())),
    }
}

/// Stores the response under `request_id`; false if the id is already stored.
async fn claim<C: ConnectionTrait>(
    conn: &C,
    method: &str,
    request_id: RequestId,
    fingerprint: &str,
    response: &impl Message,
) -> Result<bool, AppError> {
    let record = record::ActiveModel {
        request_id: Set(request_id.to_string()),
        method: Set(method.to_owned()),
        fingerprint: Set(fingerprint.to_owned()),
        response: Set(Some(response.encode_to_vec())),
        created_at: Set(crate::clock::now()),
    };
    let inserted = record::Entity::insert(record)
        .on_conflict_do_nothing_on([record::Column::RequestId])
        .exec_without_returning(conn)
        .await?;
    Ok(matches!(inserted, sea_orm::TryInsertResult::Inserted(1)))
}

/// The stored response of an earlier call with `request_id`, if there is one; REQUEST_ID_REUSED
/// if that call was a different request.
async fn replay<Resp: Message + Default, C: ConnectionTrait>(
    db: &C,
    method: &str,
    request_id: RequestId,
    fingerprint: &str,
) -> Result<Option<Resp>, AppError> {
    let Some(existing) = record::Entity::find_by_id(request_id.to_string()).one(db).await? else {
        return Ok(None);
    };
    if existing.method != method || existing.fingerprint != fingerprint {
        return Err(AppError::AlreadyExists {
            reason: trialops_proto::common::v1::CommonReason::RequestIdReused.into(),
            message: "this request_id was already used for a different request; choose a new UUID".into(),
        });
    }
    let bytes = existing
        .response
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("idempotency record without a response")))?;
    tracing::info!("replayed response for a repeated request_id");
    Resp::decode(bytes.as_slice()).map(Some).map_err(AppError::internal)
}
