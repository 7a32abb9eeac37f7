//! Pure clinical logic of trialops: protocol definitions (and the bundled ANBL1221 one),
//! eligibility, stratification, randomization and the subject lifecycle.
//!
//! No I/O, no async, no proto or database types: services convert at their edges.

pub mod accrual;
pub mod dosing;
pub mod eligibility;
pub mod enrollment;
pub mod identifiers;
pub mod minimization;
pub mod outcomes;
pub mod protocol;
pub mod randomization;
pub mod simulation;
pub mod strata;
pub mod subject;

pub use rust_decimal::Decimal;
