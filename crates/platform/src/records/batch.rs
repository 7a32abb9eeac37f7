//! Writes that serialize on one row lock anyway, committed together. Every enrollment of a
//! trial takes the trial's subject-number counter, whose row lock is held to the commit: with
//! one transaction per enrollment, each waits for the one before it to be written to disk. A
//! [`Lanes`] runs the writes of one lane (one trial) one after another inside one transaction
//! per batch, each write inside its own savepoint, and commits once for all of them:
//! - one write's refusal or failure rolls back to its savepoint and leaves the others;
//! - a caller is answered only after the batch commits; if the commit fails, every write of the
//!   batch fails with the database's error, changed nothing, and is retried by its caller with
//!   the same request id;
//! - a caller that stops waiting (a deadline, a dropped connection) does not stop its write: it
//!   commits with its batch, and the retry gets the stored response, as for any write whose
//!   answer was lost;
//! - writes of other lanes, and of other replicas, are not delayed by a lane: replicas still
//!   meet at the row lock, which keeps the database the judge of order.
//!
//! A batch takes the writes queued when it starts, up to [`MAX_BATCH`]; one caller alone is a
//! batch of one, so nothing waits for company.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use sea_orm::{DatabaseConnection, DatabaseTransaction};
use tracing::Instrument;

use crate::records::database::begin_write;
use crate::wire::error::AppError;

/// The most writes one transaction takes.
pub const MAX_BATCH: usize = 32;

/// What a write tells its caller once its batch's commit is known.
pub type Completion = Box<dyn FnOnce(Result<(), &AppError>) + Send>;

/// A write's work inside the batch's transaction.
pub type Work =
    Box<dyn for<'c> FnOnce(&'c DatabaseTransaction) -> Pin<Box<dyn Future<Output = Completion> + Send + 'c>> + Send>;

/// A queued write: its work inside the batch's transaction (in a savepoint it opens itself),
/// and what to tell its caller if it never runs.
pub struct Write {
    /// The work; gives what to tell the caller after the commit.
    pub run: Work,
    /// The caller's answer when the batch could not start.
    pub fail: Completion,
}

#[derive(Default)]
struct Lane {
    queue: VecDeque<(Write, tracing::Span)>,
    writing: bool,
}

/// The lanes of one database.
#[derive(Clone)]
pub struct Lanes {
    db: DatabaseConnection,
    lanes: Arc<Mutex<HashMap<String, Lane>>>,
}

impl Lanes {
    /// No lanes yet, over `db`.
    pub fn new(db: DatabaseConnection) -> Lanes {
        Lanes {
            db,
            lanes: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Queues `write` on `lane`, starting the lane's writer if none is running.
    pub fn submit(&self, lane: &str, write: Write) {
        let start = {
            let mut lanes = self.lanes.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let state = lanes.entry(lane.to_owned()).or_default();
            state.queue.push_back((write, tracing::Span::current()));
            !std::mem::replace(&mut state.writing, true)
        };
        if start {
            let (this, lane) = (self.clone(), lane.to_owned());
            tokio::spawn(crate::clock::scope(crate::clock::current(), this.write(lane)));
        }
    }

    /// The lane's writer: batches until the queue is empty.
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
            self.commit(batch).await;
        }
    }

    async fn commit(&self, batch: Vec<(Write, tracing::Span)>) {
        let tx = match begin_write(&self.db).await {
            Ok(tx) => tx,
            Err(e) => {
                for (write, _) in batch {
                    (write.fail)(Err(&e));
                }
                return;
            }
        };
        crate::server::metrics::observe_batch(batch.len());
        let mut completions = Vec::with_capacity(batch.len());
        for (write, span) in batch {
            completions.push((write.run)(&tx).instrument(span).await);
        }
        match tx.commit().await {
            Ok(()) => completions.into_iter().for_each(|c| c(Ok(()))),
            Err(e) => {
                let e = AppError::from(e);
                completions.into_iter().for_each(|c| c(Err(&e)));
            }
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
