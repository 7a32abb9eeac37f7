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
