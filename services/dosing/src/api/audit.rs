//! ListAuditEvents and VerifyAuditTrail over the platform's audit trail.

use trialops_proto::dosing::v1 as pb;

use super::DosingApi;

trialops_platform::audit_handlers!(DosingApi, pb);
