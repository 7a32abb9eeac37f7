//! The stable `ErrorInfo.reason` codes this service returns. Never rename one.

/// Enrollment does not know the subject.
pub const SUBJECT_NOT_ENROLLED: &str = "SUBJECT_NOT_ENROLLED";
/// Enrollment says the subject is no longer on protocol therapy.
pub const SUBJECT_NOT_ON_PROTOCOL_THERAPY: &str = "SUBJECT_NOT_ON_PROTOCOL_THERAPY";
/// The subject already has a plan.
pub const TREATMENT_PLAN_EXISTS: &str = "TREATMENT_PLAN_EXISTS";
/// No plan yet: call CreateTreatmentPlan.
pub const NO_TREATMENT_PLAN: &str = "NO_TREATMENT_PLAN";
/// The cycle number is not the next one.
pub const CYCLE_OUT_OF_SEQUENCE: &str = "CYCLE_OUT_OF_SEQUENCE";
/// The protocol's maximum number of cycles was reached.
pub const MAXIMUM_CYCLES_REACHED: &str = "MAXIMUM_CYCLES_REACHED";
/// Counts below the protocol's minimums; the refused start is recorded as a delay.
pub const CYCLE_START_CRITERIA_NOT_MET: &str = "CYCLE_START_CRITERIA_NOT_MET";
/// Day 1 is before the previous cycle has run its length.
pub const CYCLE_STARTS_TOO_EARLY: &str = "CYCLE_STARTS_TOO_EARLY";
/// Not recovered within the protocol's maximum delay: off protocol therapy per protocol.
pub const CYCLE_DELAY_EXCEEDED: &str = "CYCLE_DELAY_EXCEEDED";
/// Measurements a pharmacist must confirm (`confirm_implausible_measurements`).
pub const IMPLAUSIBLE_MEASUREMENT_NEEDS_CONFIRMATION: &str = "IMPLAUSIBLE_MEASUREMENT_NEEDS_CONFIRMATION";
/// The protocol's rounding cannot prepare the calculated dose within its tolerance.
pub const DOSE_NOT_PREPARABLE: &str = "DOSE_NOT_PREPARABLE";
/// The administration was already recorded; correct it with its etag and a reason.
pub const ADMINISTRATION_ALREADY_RECORDED: &str = "ADMINISTRATION_ALREADY_RECORDED";
/// The agent was discontinued.
pub const AGENT_DISCONTINUED: &str = "AGENT_DISCONTINUED";
/// A dose level that raises the dose, which the protocol does not allow for the agent.
pub const DOSE_RE_ESCALATION_NOT_ALLOWED: &str = "DOSE_RE_ESCALATION_NOT_ALLOWED";
/// The agent is already at the requested level.
pub const DOSE_LEVEL_UNCHANGED: &str = "DOSE_LEVEL_UNCHANGED";
/// An administration recorded as given before the protocol's window before its planned day
/// (metadata `planned_on`, `earliest_allowed`).
pub const ADMINISTRATION_BEFORE_PLANNED_DAY: &str = "ADMINISTRATION_BEFORE_PLANNED_DAY";
