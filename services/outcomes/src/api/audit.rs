//! ListAuditEvents and VerifyAuditTrail over the platform's audit trail.

use trialops_proto::outcomes::v1 as pb;

use super::OutcomesApi;

trialops_platform::audit_handlers!(OutcomesApi, pb);
