//! Persistence of the dosing service: entities and migrations.

pub mod administration;
pub mod cycle;
pub mod dose;
mod migrations;
pub mod plan;
pub mod plan_agent;
pub mod start_attempt;

pub use migrations::Migrator;
