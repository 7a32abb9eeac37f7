//! ListAuditEvents, VerifyAuditTrail, WatchEvents and the audit log's checkpoints and proofs over
//! the platform's audit trail, and the dosing records VerifyAuditTrail checks against it.

use sea_orm::DatabaseConnection;
use trialops_platform::identity::auth::Role;
use trialops_platform::records::replay::{RecordKind, Rows, rows};
use trialops_proto::dosing::v1 as pb;

use super::DosingApi;

/// Every role that may watch reads every dosing record (plans, cycles, administrations).
fn may_read(_role: Role, _entity_type: &str) -> bool {
    true
}

trialops_platform::audit_handlers!(DosingApi, pb, "dosing", may_read);

/// Administrations: a recorded or corrected administration's entry holds the whole row (planned
/// ones are written with their cycle's entry).
pub(crate) const RECORDS: &[RecordKind] = &[RecordKind {
    entity_type: "administration",
    actions: &[("administration.recorded", ""), ("administration.corrected", "")],
    every_row_has_entry: false,
    rows: administrations,
}];

fn administrations(db: &DatabaseConnection) -> Rows<'_> {
    Box::pin(rows::<crate::store::administration::Entity>(db, |a| {
        a.administration_id.clone()
    }))
}
