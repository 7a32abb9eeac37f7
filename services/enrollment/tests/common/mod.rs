//! Test harness: the enrollment crate's test support and the platform's.
#![allow(dead_code, unused_imports)]

pub use trialops_enrollment::testing::*;
pub use trialops_platform::testing::{
    Backend, RunningServer, TestDatabase, assert_refused, metadata, reason, request_id, violated_fields,
};
