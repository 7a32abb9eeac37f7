//! Which role may call which RPC: the one table of the access policy, from the contracts'
//! comments ("Roles named below are the roles allowed to call each RPC"). The RPC layer applies
//! it to every verified caller; the development authenticator authorizes everything.
//!
//! Calls between services carry the original caller's token, so the callee's policy applies to
//! the person who acted (dosing's CreateTreatmentPlan reads enrollment's GetSubject as the
//! pharmacist who asked).

use crate::auth::Role;
use crate::auth::Role::*;

const ALL: &[Role] = &[
    SiteCoordinator,
    Pharmacist,
    Investigator,
    CentralReviewer,
    Statistician,
    Administrator,
    Service,
];
const CLINICAL: &[Role] = &[SiteCoordinator, Pharmacist, Investigator, Administrator, Service];
const CLINICAL_AND_ANALYSIS: &[Role] = &[
    SiteCoordinator,
    Pharmacist,
    Investigator,
    CentralReviewer,
    Statistician,
    Administrator,
    Service,
];
/// Clinical roles and the statistician, not central review: a subject's treatment names the
/// agents and so the arm, and central reviewers are blinded to allocation.
const CLINICAL_AND_STATISTICS: &[Role] = &[
    SiteCoordinator,
    Pharmacist,
    Investigator,
    Statistician,
    Administrator,
    Service,
];
const ADMIN: &[Role] = &[Administrator];
const ANALYSIS: &[Role] = &[Statistician, Administrator, Service];

/// `(full method path, roles allowed)` for every RPC of every trialops service.
pub const POLICY: &[(&str, &[Role])] = &[
    // Enrollment.
    ("/trialops.enrollment.v1.EnrollmentService/ListTrials", ALL),
    ("/trialops.enrollment.v1.EnrollmentService/GetTrial", ALL),
    ("/trialops.enrollment.v1.EnrollmentService/RegisterSite", ADMIN),
    ("/trialops.enrollment.v1.EnrollmentService/ListSites", ALL),
    (
        "/trialops.enrollment.v1.EnrollmentService/ScreenSubject",
        &[SiteCoordinator, Investigator],
    ),
    (
        "/trialops.enrollment.v1.EnrollmentService/EnrollSubject",
        &[SiteCoordinator, Investigator],
    ),
    (
        "/trialops.enrollment.v1.EnrollmentService/GetSubject",
        CLINICAL_AND_ANALYSIS,
    ),
    (
        "/trialops.enrollment.v1.EnrollmentService/ListSubjects",
        CLINICAL_AND_ANALYSIS,
    ),
    (
        "/trialops.enrollment.v1.EnrollmentService/ChangeSubjectStatus",
        &[SiteCoordinator, Investigator],
    ),
    (
        "/trialops.enrollment.v1.EnrollmentService/CorrectSubject",
        &[SiteCoordinator, Investigator],
    ),
    (
        "/trialops.enrollment.v1.EnrollmentService/GetAllocationSummary",
        ANALYSIS,
    ),
    ("/trialops.enrollment.v1.EnrollmentService/ListAuditEvents", ADMIN),
    ("/trialops.enrollment.v1.EnrollmentService/VerifyAuditTrail", ADMIN),
    // Dosing.
    (
        "/trialops.dosing.v1.DosingService/CreateTreatmentPlan",
        &[Pharmacist, Investigator],
    ),
    ("/trialops.dosing.v1.DosingService/GetTreatmentPlan", CLINICAL),
    (
        "/trialops.dosing.v1.DosingService/StartCycle",
        &[Investigator, Pharmacist],
    ),
    ("/trialops.dosing.v1.DosingService/GetCycle", CLINICAL),
    (
        "/trialops.dosing.v1.DosingService/ListAdministrations",
        &[Pharmacist, SiteCoordinator],
    ),
    (
        "/trialops.dosing.v1.DosingService/RecordAdministration",
        &[Pharmacist, SiteCoordinator],
    ),
    (
        "/trialops.dosing.v1.DosingService/ApplyDoseModification",
        &[Investigator],
    ),
    ("/trialops.dosing.v1.DosingService/DiscontinueAgent", &[Investigator]),
    (
        "/trialops.dosing.v1.DosingService/GetCumulativeExposure",
        CLINICAL_AND_STATISTICS,
    ),
    ("/trialops.dosing.v1.DosingService/ListExposures", ANALYSIS),
    (
        "/trialops.dosing.v1.DosingService/GetActiveTreatment",
        CLINICAL_AND_STATISTICS,
    ),
    ("/trialops.dosing.v1.DosingService/ListAuditEvents", ADMIN),
    ("/trialops.dosing.v1.DosingService/VerifyAuditTrail", ADMIN),
    // Outcomes.
    (
        "/trialops.outcomes.v1.OutcomesService/RecordResponseAssessment",
        &[Investigator, CentralReviewer],
    ),
    (
        "/trialops.outcomes.v1.OutcomesService/ReenterCurieSegments",
        &[Investigator, CentralReviewer],
    ),
    (
        "/trialops.outcomes.v1.OutcomesService/ListResponseAssessments",
        &[
            SiteCoordinator,
            Investigator,
            CentralReviewer,
            Statistician,
            Administrator,
        ],
    ),
    (
        "/trialops.outcomes.v1.OutcomesService/RecordAdverseEvent",
        &[Investigator, SiteCoordinator],
    ),
    (
        "/trialops.outcomes.v1.OutcomesService/UpdateAdverseEvent",
        &[Investigator],
    ),
    (
        "/trialops.outcomes.v1.OutcomesService/RecordReportSubmitted",
        &[Investigator, SiteCoordinator],
    ),
    (
        "/trialops.outcomes.v1.OutcomesService/ListOverdueReports",
        &[Investigator, SiteCoordinator, Statistician, Administrator],
    ),
    (
        "/trialops.outcomes.v1.OutcomesService/RecordFollowUp",
        &[SiteCoordinator, Investigator],
    ),
    (
        "/trialops.outcomes.v1.OutcomesService/GetResponseRate",
        &[Statistician, Administrator],
    ),
    (
        "/trialops.outcomes.v1.OutcomesService/ComputeSimonDesign",
        &[Statistician, Administrator],
    ),
    (
        "/trialops.outcomes.v1.OutcomesService/EvaluateSimonInterim",
        &[Statistician, Administrator],
    ),
    (
        "/trialops.outcomes.v1.OutcomesService/GetSurvivalAnalysis",
        &[Statistician, Administrator],
    ),
    (
        "/trialops.outcomes.v1.OutcomesService/GetTrialReport",
        &[Statistician, Administrator],
    ),
    ("/trialops.outcomes.v1.OutcomesService/ListAuditEvents", ADMIN),
    ("/trialops.outcomes.v1.OutcomesService/VerifyAuditTrail", ADMIN),
];

/// Whether `path` is a method some trialops server serves (a contract RPC, health or
/// reflection); metrics label any other path "unknown", so a caller cannot mint labels.
pub fn is_known(path: &str) -> bool {
    path.starts_with("/grpc.health.v1.Health/")
        || path.starts_with("/grpc.reflection.v1.ServerReflection/")
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
        .is_some_and(|(_, roles)| roles.contains(&role))
}
