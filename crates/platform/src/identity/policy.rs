//! Which role may call which RPC. The table is the contracts' own: each RPC's
//! `(trialops.common.v1.access)` option, compiled into `trialops_proto::access::ACCESS_POLICY`
//! (an RPC without one does not build). The RPC layer applies it to every verified caller; the
//! development authenticator authorizes everything.
//!
//! Calls between services carry the original caller's token, so the callee's policy applies to
//! the person who acted (dosing's CreateTreatmentPlan reads enrollment's GetSubject as the
//! pharmacist who asked).

use trialops_proto::common::v1::Role as ContractRole;

use crate::identity::auth::Role;

/// `(full method path, roles allowed)` for every RPC of every trialops service.
pub use trialops_proto::access::ACCESS_POLICY as POLICY;

impl Role {
    /// The contracts' value for this role.
    pub fn contract(self) -> ContractRole {
        match self {
            Role::SiteCoordinator => ContractRole::SiteCoordinator,
            Role::Pharmacist => ContractRole::Pharmacist,
            Role::Investigator => ContractRole::Investigator,
            Role::CentralReviewer => ContractRole::CentralReviewer,
            Role::Statistician => ContractRole::Statistician,
            Role::Administrator => ContractRole::Administrator,
            Role::Service => ContractRole::Service,
        }
    }
}

/// Whether `path` is a method some trialops server serves (a contract RPC, health or
/// reflection); metrics label any other path "unknown", so a caller cannot mint labels.
pub fn is_known(path: &str) -> bool {
    path.starts_with("/grpc.health.v1.Health/")
        || path.starts_with("/grpc.reflection.v1.ServerReflection/")
        || path.starts_with("/grpc.reflection.v1alpha.ServerReflection/")
        || POLICY.iter().any(|(p, _)| *p == path)
}

/// Whether `role` may call the RPC at `path`. Health and reflection are open to every caller;
/// an RPC missing from the table is denied (fail closed).
pub fn allows(path: &str, role: Role) -> bool {
    if path.starts_with("/grpc.health.v1.") || path.starts_with("/grpc.reflection.") {
        return true;
    }
    POLICY
        .iter()
        .find(|(p, _)| *p == path)
        .is_some_and(|(_, roles)| roles.contains(&role.contract()))
}
