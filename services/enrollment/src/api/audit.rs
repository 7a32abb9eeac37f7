//! ListAuditEvents, VerifyAuditTrail and WatchEvents over the platform's audit trail.

use trialops_platform::identity::auth::Role;
use trialops_proto::enrollment::v1 as pb;

use super::EnrollmentApi;

/// Every role that may watch reads every enrollment record (arms are removed for the blinded).
fn may_read(_role: Role, _entity_type: &str) -> bool {
    true
}

trialops_platform::audit_handlers!(EnrollmentApi, pb, "enrollment", may_read);
