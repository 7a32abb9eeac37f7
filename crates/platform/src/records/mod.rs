//! Record keeping: the database connection and shared tables, the hash-chained audit trail,
//! refused calls in it, and idempotent writes.

pub mod audit;
pub mod database;
pub mod idempotency;
pub mod refusals;
pub mod store;
