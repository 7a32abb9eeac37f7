//! Refused calls in the audit trail: every call answered UNAUTHENTICATED or PERMISSION_DENIED
//! (by the RPC layer or by a service) becomes an entry `call.refused` on record type `rpc`,
//! record id the method path, with the status code and message — never the request body,
//! which is not even read.
//!
//! Entries are written by one background task per replica through a bounded queue, so a flood
//! of refused calls cannot hold the clinical writes' transactions; when the queue is full the
//! refusal is counted in `trialops_refused_calls_not_recorded_total` and logged, not queued.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sea_orm::DatabaseConnection;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::audit::{self, AuditContext, Change};
use crate::auth::Principal;
use crate::error::AppError;

/// How many refusals wait for the writer at most.
const QUEUE: usize = 1024;
/// Longest method path kept (a hostile client chooses the path).
const MAX_PATH: usize = 200;

/// One refused call.
#[derive(Debug, Clone)]
pub struct Refusal {
    /// The gRPC method path, for example `/trialops.enrollment.v1.EnrollmentService/GetSubject`.
    pub path: String,
    /// The authenticated caller, `None` when authentication itself failed.
    pub principal: Option<Principal>,
    /// W3C trace id, empty when untraced.
    pub trace_id: String,
    /// UNAUTHENTICATED or PERMISSION_DENIED.
    pub code: tonic::Code,
    /// The message the caller was given.
    pub message: String,
}

/// Queues refusals for the audit writer. Cloned into the RPC layer.
#[derive(Clone)]
pub struct RefusalRecorder {
    queue: mpsc::Sender<Refusal>,
    not_recorded: Arc<AtomicU64>,
}

impl RefusalRecorder {
    /// Starts the writer on `db`; it ends when every recorder clone is dropped and the queue is
    /// written out.
    pub fn start(db: DatabaseConnection) -> (RefusalRecorder, JoinHandle<()>) {
        let (queue, mut pending) = mpsc::channel::<Refusal>(QUEUE);
        let task = tokio::spawn(async move {
            while let Some(refusal) = pending.recv().await {
                if let Err(e) = write(&db, refusal).await {
                    tracing::error!(error = %e, "a refused call could not be written to the audit trail");
                }
            }
        });
        let recorder = RefusalRecorder {
            queue,
            not_recorded: Arc::new(AtomicU64::new(0)),
        };
        (recorder, task)
    }

    /// Queues `refusal` without waiting.
    pub fn record(&self, mut refusal: Refusal) {
        if refusal.path.len() > MAX_PATH {
            let mut end = MAX_PATH;
            while !refusal.path.is_char_boundary(end) {
                end -= 1;
            }
            refusal.path.truncate(end);
        }
        if self.queue.try_send(refusal).is_err() {
            let count = self.not_recorded.fetch_add(1, Ordering::Relaxed) + 1;
            crate::metrics::refusal_not_recorded();
            if count.is_power_of_two() {
                tracing::warn!(count, "refused calls arrive faster than the audit trail records them");
            }
        }
    }
}

async fn write(db: &DatabaseConnection, refusal: Refusal) -> Result<(), AppError> {
    let ctx = AuditContext::refused(refusal.principal.as_ref(), &refusal.trace_id);
    let txn = crate::database::begin_write(db).await?;
    audit::append(
        &txn,
        &ctx,
        Change {
            action: "call.refused",
            entity_type: "rpc",
            entity_id: &refusal.path,
            old: None,
            new: serde_json::json!({
                "code": if refusal.code == tonic::Code::Unauthenticated { "UNAUTHENTICATED" } else { "PERMISSION_DENIED" },
                "message": refusal.message,
            }),
            reason: "",
        },
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

/// Whether a status code is a refusal the audit trail records.
pub fn is_refusal(code: tonic::Code) -> bool {
    matches!(code, tonic::Code::Unauthenticated | tonic::Code::PermissionDenied)
}
