//! ListAuditEvents, VerifyAuditTrail, WatchEvents and the audit log's checkpoints and proofs over
//! the platform's audit trail, and the enrollment records VerifyAuditTrail checks against it.

use sea_orm::DatabaseConnection;
use trialops_platform::identity::auth::Role;
use trialops_platform::records::replay::{RecordKind, Rows, rows};
use trialops_proto::enrollment::v1 as pb;

use super::EnrollmentApi;

/// Every role that may watch reads every enrollment record (arms are removed for the blinded).
fn may_read(_role: Role, _entity_type: &str) -> bool {
    true
}

trialops_platform::audit_handlers!(EnrollmentApi, pb, "enrollment", may_read);

/// Sites, screenings, subjects, unblindings and signatures: each row was written with an entry holding the whole record
/// (a subject's randomization entry holds its allocation, not the subject, and is not compared).
pub(crate) const RECORDS: &[RecordKind] = &[
    RecordKind {
        entity_type: "site",
        actions: &[("site.registered", "")],
        every_row_has_entry: true,
        rows: sites,
    },
    RecordKind {
        entity_type: "screening",
        actions: &[("screening.recorded", "")],
        every_row_has_entry: true,
        rows: screenings,
    },
    RecordKind {
        entity_type: "subject",
        actions: &[
            ("subject.enrolled", ""),
            ("subject.status_changed", ""),
            ("subject.corrected", ""),
            ("subject.randomized_in_error", ""),
        ],
        every_row_has_entry: true,
        rows: subjects,
    },
    RecordKind {
        entity_type: "unblinding",
        actions: &[("subject.unblinded", "")],
        every_row_has_entry: true,
        rows: unblindings,
    },
    RecordKind {
        entity_type: "protocol_version",
        // A trial's first version is recorded at its first start, without an entry.
        actions: &[("protocol.amended", "")],
        every_row_has_entry: false,
        rows: protocol_versions,
    },
    trialops_platform::records::signature::RECORDS,
];

fn sites(db: &DatabaseConnection) -> Rows<'_> {
    Box::pin(rows::<crate::store::site::Entity>(db, |s| s.site_code.clone()))
}

fn screenings(db: &DatabaseConnection) -> Rows<'_> {
    Box::pin(rows::<crate::store::screening::Entity>(db, |s| {
        format!("{}/{}/{}", s.trial_id, s.screening_id, s.attempt)
    }))
}

fn unblindings(db: &DatabaseConnection) -> Rows<'_> {
    Box::pin(rows::<crate::store::unblinding::Entity>(db, |u| {
        u.unblinding_id.clone()
    }))
}

fn subjects(db: &DatabaseConnection) -> Rows<'_> {
    Box::pin(rows::<crate::store::subject::Entity>(db, |s| s.subject_id.clone()))
}

fn protocol_versions(db: &DatabaseConnection) -> Rows<'_> {
    Box::pin(rows::<crate::store::protocol_version::Entity>(db, |v| {
        format!("{}|{}", v.trial_id, v.version)
    }))
}
