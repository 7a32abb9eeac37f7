//! Refused calls in the audit trail: every call answered UNAUTHENTICATED or PERMISSION_DENIED
//! (by the RPC layer or by a service) becomes an entry `call.refused` on record type `rpc`,
//! record id the method path, with the status code and message — never the request body,
//! which is not even read.
//!
//! Entries are written by one background task per replica through a bounded queue, so a flood
//! of refused calls cannot hold the clinical writes' transactions; when the queue is full the
//! refusal is counted in `trialops_refused_calls_not_recorded_total` and logged, not queued.
//!
//! Calls refused as UNAUTHENTICATED come from nobody the service knows, and anyone can send
//! them: one entry each would let a stranger grow the database without bound. They are counted
//! (`trialops_unauthenticated_calls_total`) and aggregated instead: one entry
//! `calls.refused_unauthenticated` per source address and reason per minute, with the count and
//! the first method called. Refusals of authenticated callers keep one entry each.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use sea_orm::DatabaseConnection;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::identity::auth::Principal;
use crate::records::audit::{self, AuditContext, Change};
use crate::wire::error::AppError;

/// How many refusals wait for the writer at most.
const QUEUE: usize = 1024;
/// Longest method path kept (a hostile client chooses the path).
const MAX_PATH: usize = 200;
/// How often aggregated unauthenticated refusals are written.
const WINDOW: Duration = Duration::from_secs(60);
/// Most (source, reason) pairs kept in one window; further sources are counted under "other".
const MAX_SOURCES: usize = 256;

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
    /// The address the call came from, when known.
    pub source: Option<IpAddr>,
}

/// Unauthenticated refusals of the current window, by (source, reason).
#[derive(Debug, Default)]
struct Unauthenticated {
    counts: HashMap<(String, String), (u64, String)>,
}

impl Unauthenticated {
    fn add(&mut self, refusal: Refusal) {
        let mut source = refusal.source.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
        let reason = crate::wire::error::bounded(&refusal.message, MAX_PATH);
        if self.counts.len() >= MAX_SOURCES && !self.counts.contains_key(&(source.clone(), reason.clone())) {
            source = "other".to_owned();
        }
        self.counts.entry((source, reason)).or_insert((0, refusal.path)).0 += 1;
    }
}

/// Queues refusals for the audit writer. Cloned into the RPC layer.
#[derive(Clone)]
pub struct RefusalRecorder {
    queue: mpsc::Sender<Refusal>,
    not_recorded: Arc<AtomicU64>,
    unauthenticated: Arc<Mutex<Unauthenticated>>,
}

impl RefusalRecorder {
    /// Starts the writer on `db`; it ends, once the queue is written out, when every recorder
    /// clone is dropped or when `stop` is cancelled.
    pub fn start(
        db: DatabaseConnection,
        clock: crate::clock::Clock,
        stop: tokio_util::sync::CancellationToken,
    ) -> (RefusalRecorder, JoinHandle<()>) {
        let (queue, mut pending) = mpsc::channel::<Refusal>(QUEUE);
        let unauthenticated = Arc::new(Mutex::new(Unauthenticated::default()));
        let window = unauthenticated.clone();
        let task = tokio::spawn(crate::clock::scope(clock, async move {
            let mut ticks = tokio::time::interval(WINDOW);
            ticks.tick().await;
            loop {
                tokio::select! {
                    next = pending.recv() => match next {
                        Some(refusal) => {
                            if let Err(e) = write(&db, refusal).await {
                                tracing::error!(error = %e, "a refused call could not be written to the audit trail");
                            }
                        }
                        None => break,
                    },
                    _ = ticks.tick() => write_window(&db, &window).await,
                    // Stopped (the server stopped serving): what is queued is written, then
                    // nothing more is taken, even while a lingering connection (an open stream)
                    // still holds a recorder.
                    () = stop.cancelled() => {
                        pending.close();
                        while let Some(refusal) = pending.recv().await {
                            if let Err(e) = write(&db, refusal).await {
                                tracing::error!(error = %e, "a refused call could not be written to the audit trail");
                            }
                        }
                        break;
                    }
                }
            }
            write_window(&db, &window).await;
        }));
        let recorder = RefusalRecorder {
            queue,
            not_recorded: Arc::new(AtomicU64::new(0)),
            unauthenticated,
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
        if refusal.principal.is_none() && refusal.code == tonic::Code::Unauthenticated {
            crate::server::metrics::unauthenticated_refused();
            self.unauthenticated
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .add(refusal);
            return;
        }
        if self.queue.try_send(refusal).is_err() {
            let count = self.not_recorded.fetch_add(1, Ordering::Relaxed) + 1;
            crate::server::metrics::refusal_not_recorded();
            if count.is_power_of_two() {
                tracing::warn!(count, "refused calls arrive faster than the audit trail records them");
            }
        }
    }
}

async fn write(db: &DatabaseConnection, refusal: Refusal) -> Result<(), AppError> {
    let ctx = AuditContext::refused(refusal.principal.as_ref(), &refusal.trace_id);
    let txn = crate::records::database::begin_write(db).await?;
    audit::append(
        &txn,
        &ctx,
        Change {
            action: "call.refused",
            entity_type: "rpc",
            entity_id: &refusal.path,
            old: None,
            new: serde_json::json!({
                "code": refusal_code(refusal.code),
                "message": refusal.message,
            }),
            reason: "",
            trial_id: "",
            site_code: "",
        },
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

/// Writes the window's unauthenticated refusals, one entry per source and reason, and starts a
/// new window.
async fn write_window(db: &DatabaseConnection, window: &Mutex<Unauthenticated>) {
    let counts = std::mem::take(&mut window.lock().unwrap_or_else(PoisonError::into_inner).counts);
    for ((source, reason), (count, first_method)) in counts {
        tracing::warn!(source, reason, count, "calls refused without valid credentials");
        if let Err(e) = write_aggregate(db, &source, &reason, count, &first_method).await {
            tracing::error!(error = %e, "unauthenticated refusals could not be written to the audit trail");
        }
    }
}

async fn write_aggregate(
    db: &DatabaseConnection,
    source: &str,
    reason: &str,
    count: u64,
    first_method: &str,
) -> Result<(), AppError> {
    let ctx = AuditContext::refused(None, "");
    let txn = crate::records::database::begin_write(db).await?;
    audit::append(
        &txn,
        &ctx,
        Change {
            action: "calls.refused_unauthenticated",
            entity_type: "rpc",
            entity_id: source,
            old: None,
            new: serde_json::json!({
                "code": "UNAUTHENTICATED",
                "message": reason,
                "count": count,
                "window_seconds": WINDOW.as_secs(),
                "first_method": first_method,
            }),
            reason: "",
            trial_id: "",
            site_code: "",
        },
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

/// The name of a refusal's status code, as the audit trail records it.
fn refusal_code(code: tonic::Code) -> &'static str {
    if code == tonic::Code::Unauthenticated {
        "UNAUTHENTICATED"
    } else {
        "PERMISSION_DENIED"
    }
}

/// Whether a status code is a refusal the audit trail records.
pub fn is_refusal(code: tonic::Code) -> bool {
    matches!(code, tonic::Code::Unauthenticated | tonic::Code::PermissionDenied)
}
