//! Dosing: body surface area, dose calculation and rounding, dose modifications, and cycle rules.

pub mod administration;
pub mod bsa;
pub mod cycle;
pub mod dose;
pub mod rounding;
