//! Idempotent mutations. A mutating RPC runs inside [`execute`]: the request id is claimed by
//! the transaction's first statement, the change is made, and the encoded response is stored,
//! all in one transaction. So:
//! - a retry with the same request id (after a timeout, a dropped connection, a cancelled
//!   call) returns the stored first response and changes nothing;
//! - the same id with a different request is `ALREADY_EXISTS` (`REQUEST_ID_REUSED`);
//! - two concurrent calls with one id: the second waits on the first's claim and then replays;
//! - a refused or cancelled call rolls back entirely, claim included: nothing half-written.

use std::future::Future;
use std::pin::Pin;

use prost::Message;
use sea_orm::{ActiveValue::Set, DatabaseConnection, DatabaseTransaction, EntityTrait};
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

fn fingerprint(method: &str, request: &impl Message) -> String {
    let mut hash = Sha256::new();
    hash.update(method.as_bytes());
    hash.update([0]);
    hash.update(request.encode_to_vec());
    hex::encode(hash.finalize())
}

/// Runs `operation` once per `request_id`, in one write transaction with the idempotency record.
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
    let claim = record::ActiveModel {
        request_id: Set(request_id.to_string()),
        method: Set(method.to_owned()),
        fingerprint: Set(fingerprint.clone()),
        response: Set(None),
        created_at: Set(crate::clock::now()),
    };
    let inserted = record::Entity::insert(claim)
        .on_conflict_do_nothing_on([record::Column::RequestId])
        .exec_without_returning(&tx)
        .await?;
    if !matches!(inserted, sea_orm::TryInsertResult::Inserted(1)) {
        let existing = record::Entity::find_by_id(request_id.to_string())
            .one(&tx)
            .await?
            .ok_or_else(|| AppError::Aborted("the request id is being processed; retry".into()))?;
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
        return Resp::decode(bytes.as_slice()).map_err(AppError::internal);
    }

    let response = operation(&tx).await?;
    record::Entity::update(record::ActiveModel {
        request_id: Set(request_id.to_string()),
        response: Set(Some(response.encode_to_vec())),
        ..Default::default()
    })
    .exec(&tx)
    .await?;
    tx.commit().await?;
    Ok(response)
}
