//! The platform's own tables (idempotency records, the audit trail and its chain head) and
//! their migrations, which every service's migrator runs before its own.

pub mod audit_chain_head;
pub mod audit_event;
pub mod idempotency_record;
mod migrations;
pub mod schema;

pub use migrations::{index, migrations};
