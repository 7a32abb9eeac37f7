//! ListAuditEvents and VerifyAuditTrail over the platform's audit trail.

use trialops_proto::enrollment::v1 as pb;

use super::EnrollmentApi;

trialops_platform::audit_handlers!(EnrollmentApi, pb);
