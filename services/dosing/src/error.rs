//! The stable `ErrorInfo.reason` codes this service gives: the contract's `DosingReason` enum
//! (`proto/trialops/dosing/v1/dosing.proto`), where each is documented and listed by the RPCs that
//! give it. `Reason::X` converts into the `ReasonCode` an `AppError` carries. Never rename one.

pub use trialops_proto::dosing::v1::DosingReason as Reason;
