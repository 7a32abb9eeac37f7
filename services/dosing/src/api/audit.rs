//! ListAuditEvents, VerifyAuditTrail and WatchEvents over the platform's audit trail.

use trialops_platform::identity::auth::Role;
use trialops_proto::dosing::v1 as pb;

use super::DosingApi;

/// Every role that may watch reads every dosing record (plans, cycles, administrations).
fn may_read(_role: Role, _entity_type: &str) -> bool {
    true
}

trialops_platform::audit_handlers!(DosingApi, pb, "dosing", may_read);
