//! ListAuditEvents, VerifyAuditTrail and WatchEvents over the platform's audit trail.

use trialops_platform::identity::auth::Role;
use trialops_proto::outcomes::v1 as pb;

use super::OutcomesApi;

/// Central reviewers read response assessments only: adverse events name the agents given
/// (and so the arm), and follow-up is not theirs to see. Every other role that may watch reads
/// every outcomes record.
fn may_read(role: Role, entity_type: &str) -> bool {
    role != Role::CentralReviewer || entity_type == "assessment"
}

trialops_platform::audit_handlers!(OutcomesApi, pb, "outcomes", may_read);
