//! The wire: conversions of the common contract types, the one error → `tonic::Status`
//! mapping, and page tokens.

pub mod convert;
pub mod error;
pub mod fields;
pub mod pagination;
