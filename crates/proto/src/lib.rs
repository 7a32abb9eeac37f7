//! Generated gRPC code (tonic + prost) for the trialops contracts in `proto/`, and the encoded
//! descriptor set that servers register for gRPC reflection.
#![allow(missing_docs, clippy::all, clippy::pedantic)]

/// The encoded `FileDescriptorSet` of every trialops contract, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/trialops_descriptor.bin"));

/// `trialops.common.v1`: decimals, dates, audit trail messages.
pub mod common {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("trialops.common.v1");
    }
}

/// `trialops.enrollment.v1`: EnrollmentService.
pub mod enrollment {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("trialops.enrollment.v1");
    }
}

/// `trialops.dosing.v1`: DosingService.
pub mod dosing {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("trialops.dosing.v1");
    }
}

/// `trialops.outcomes.v1`: OutcomesService.
pub mod outcomes {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("trialops.outcomes.v1");
    }
}

/// The access policy written in the contracts: each RPC's `(trialops.common.v1.access)` option,
/// generated at build time (a contract RPC without one does not build).
pub mod access {
    use crate::common::v1::Role;

    include!(concat!(env!("OUT_DIR"), "/access_policy.rs"));
}

/// A stable `google.rpc.ErrorInfo.reason`: one value of a contract's reason enum
/// (`CommonReason`, `EnrollmentReason`, `DosingReason`, `OutcomesReason`), as the value's name
/// without the enum's prefix. Only those enums make one, so no reason exists outside a contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ReasonCode(&'static str);

impl ReasonCode {
    /// The reason as sent, for example "SUBJECT_INELIGIBLE".
    pub fn as_str(self) -> &'static str {
        self.0
    }
}

impl std::fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

macro_rules! reason_enums {
    ($($enum:path => $prefix:literal),* $(,)?) => {$(
        impl From<$enum> for ReasonCode {
            fn from(reason: $enum) -> Self {
                let name = reason.as_str_name();
                ReasonCode(name.strip_prefix($prefix).unwrap_or(name))
            }
        }
    )*};
}

reason_enums!(
    common::v1::CommonReason => "COMMON_REASON_",
    enrollment::v1::EnrollmentReason => "ENROLLMENT_REASON_",
    dosing::v1::DosingReason => "DOSING_REASON_",
    outcomes::v1::OutcomesReason => "OUTCOMES_REASON_",
);
