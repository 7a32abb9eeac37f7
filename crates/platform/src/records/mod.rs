//! Record keeping: the database connection and shared tables, the hash-chained audit trail,
//! refused calls in it, the event stream read from it, and idempotent writes.

pub mod audit;
pub mod database;
pub mod idempotency;
pub mod refusals;
pub mod store;
pub mod watch;
