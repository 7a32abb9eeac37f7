//! Outcomes: response derivation (revised INRC), and the statistics of the trial's endpoints.

pub mod binomial;
pub mod inrc;
pub mod safety;
pub mod simon;
pub mod survival;
