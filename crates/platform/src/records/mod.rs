//! Record keeping: the database connection and shared tables, the audit trail and its transparency log,
//! refused calls in it, the event stream read from it, and idempotent writes (one at a time, or
//! batched where they would serialize anyway).

pub mod audit;
pub mod batch;
pub mod database;
pub mod idempotency;
pub mod log;
pub mod refusals;
pub mod replay;
pub mod signature;
pub mod store;
pub mod watch;
