//! ListAuditEvents, VerifyAuditTrail, WatchEvents and the audit log's checkpoints and proofs over
//! the platform's audit trail, and the outcomes records VerifyAuditTrail checks against it.

use sea_orm::DatabaseConnection;
use trialops_platform::identity::auth::Role;
use trialops_platform::records::replay::{RecordKind, Rows, rows};
use trialops_proto::outcomes::v1 as pb;

use super::OutcomesApi;

/// Central reviewers read response assessments only: adverse events name the agents given
/// (and so the arm), and follow-up is not theirs to see. Every other role that may watch reads
/// every outcomes record.
fn may_read(role: Role, entity_type: &str) -> bool {
    role != Role::CentralReviewer || entity_type == "assessment"
}

trialops_platform::audit_handlers!(OutcomesApi, pb, "outcomes", may_read);

/// Response assessments and adverse events: each row was written with an entry holding it.
pub(crate) const RECORDS: &[RecordKind] = &[
    RecordKind {
        entity_type: "assessment",
        actions: &[
            ("assessment.recorded", ""),
            ("assessment.recorded_with_override", ""),
            ("assessment.rederived", ""),
        ],
        every_row_has_entry: true,
        rows: assessments,
    },
    RecordKind {
        entity_type: "adverse_event",
        actions: &[
            ("adverse_event.recorded", "/event"),
            ("adverse_event.updated", "/event"),
        ],
        every_row_has_entry: true,
        rows: adverse_events,
    },
    trialops_platform::records::signature::RECORDS,
];

fn assessments(db: &DatabaseConnection) -> Rows<'_> {
    Box::pin(rows::<crate::store::assessment::Entity>(db, |a| {
        a.assessment_id.clone()
    }))
}

fn adverse_events(db: &DatabaseConnection) -> Rows<'_> {
    Box::pin(rows::<crate::store::adverse_event::Entity>(db, |a| {
        a.adverse_event_id.clone()
    }))
}
