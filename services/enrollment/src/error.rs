//! The stable `ErrorInfo.reason` codes this service gives: the contract's `EnrollmentReason` enum
//! (`proto/trialops/enrollment/v1/enrollment.proto`), where each is documented and listed by the RPCs that
//! give it. `Reason::X` converts into the `ReasonCode` an `AppError` carries. Never rename one.

pub use trialops_proto::enrollment::v1::EnrollmentReason as Reason;
