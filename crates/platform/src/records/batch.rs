//! Writes that serialize on one row lock anyway, written together. Every enrollment of a trial
//! takes the trial's subject-number counter, whose row lock is held to the commit: with one
//! transaction per enrollment, each waits for the one before it to be written to disk, and every
//! statement inside the lock costs every caller. A [`Lanes`] queues the writes of one lane (one
//! trial) and hands the writes queued when its writer is free, up to [`MAX_BATCH`], to the
//! lane's batch function, which writes them in few statements and one commit:
//! - writes of other lanes, and of other replicas, are not delayed by a lane: replicas still
//!   meet at the row lock, which keeps the database the judge of order;
//! - a caller that stops waiting (a deadline, a dropped connection) does not stop its write: the
//!   batch runs on a task of its own, and the retry gets the stored response, as for any write
//!   whose answer was lost;
//! - one caller alone is a batch of one, so nothing waits for company.
//!
//! What a batch promises its callers (each answered once, after its commit is known) is the
//! batch function's to keep; `records::idempotency` has the batch forms of claiming request ids
//! and replaying them.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use crate::wire::error::AppError;

/// The most writes one batch takes.
pub const MAX_BATCH: usize = 32;

/// A queued write with the span of the call that queued it.
pub type Queued<T> = (T, tracing::Span);

/// What writes a batch: gets the lane's queued writes, in arrival order, and answers each.
pub type Writer<T> = Arc<dyn Fn(Vec<Queued<T>>) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

struct Lane<T> {
    queue: VecDeque<Queued<T>>,
}

/// The lanes of one kind of write, each written by `writer`.
pub struct Lanes<T> {
    lanes: Arc<Mutex<HashMap<String, Lane<T>>>>,
    writer: Writer<T>,
}

impl<T> Clone for Lanes<T> {
    fn clone(&self) -> Self {
        Lanes {
            lanes: self.lanes.clone(),
            writer: self.writer.clone(),
        }
    }
}

impl<T: Send + 'static> Lanes<T> {
    /// No lanes yet; each batch is written by `writer`.
    pub fn new(writer: Writer<T>) -> Lanes<T> {
        Lanes {
            lanes: Arc::new(Mutex::new(HashMap::new())),
            writer,
        }
    }

    /// Queues `write` on `lane`, starting the lane's writer if none is running.
    pub fn submit(&self, lane: &str, write: T) {
        let start = {
            let mut lanes = self.lanes.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let queued = (write, tracing::Span::current());
            match lanes.get_mut(lane) {
                Some(state) => {
                    state.queue.push_back(queued);
                    false
                }
                None => {
                    lanes.insert(
                        lane.to_owned(),
                        Lane {
                            queue: VecDeque::from([queued]),
                        },
                    );
                    true
                }
            }
        };
        if start {
            let (this, lane) = (self.clone(), lane.to_owned());
            tokio::spawn(crate::clock::scope(crate::clock::current(), this.write(lane)));
        }
    }

    /// The lane's writer: batches until the queue is empty, then the lane goes.
    async fn write(self, lane: String) {
        loop {
            let batch: Vec<_> = {
                let mut lanes = self.lanes.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                let Some(state) = lanes.get_mut(&lane) else {
                    return;
                };
                if state.queue.is_empty() {
                    lanes.remove(&lane);
                    return;
                }
                let take = state.queue.len().min(MAX_BATCH);
                state.queue.drain(..take).collect()
            };
            crate::server::metrics::observe_batch(batch.len());
            (self.writer)(batch).await;
        }
    }
}

/// The error a caller gets for `e`, which its whole batch shares.
pub fn shared(e: &AppError) -> AppError {
    match e {
        AppError::Unavailable(message) => AppError::Unavailable(message.clone()),
        AppError::Aborted(message) => AppError::Aborted(message.clone()),
        other => AppError::internal(anyhow::anyhow!("the batch's transaction failed: {other}")),
    }
}
