//! Persistence of the enrollment service: entities and migrations.

pub mod accrual_closure;
pub mod admission;
pub mod allocation;
pub mod allocation_reveal;
pub mod counter;
mod migrations;
pub mod protocol_version;
pub mod screening;
pub mod site;
pub mod subject;
pub mod trial_key;
pub mod unblinding;

pub use migrations::Migrator;
