//! Persistence of the outcomes service: entities and migrations.

pub mod adverse_event;
pub mod assessment;
pub mod follow_up;
mod migrations;
pub mod obligation;
pub mod rederivation;

pub use migrations::Migrator;
