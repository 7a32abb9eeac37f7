//! The stable `ErrorInfo.reason` codes this service gives: the contract's `OutcomesReason` enum
//! (`proto/trialops/outcomes/v1/outcomes.proto`), where each is documented and listed by the RPCs that
//! give it. `Reason::X` converts into the `ReasonCode` an `AppError` carries. Never rename one.

pub use trialops_proto::outcomes::v1::OutcomesReason as Reason;
