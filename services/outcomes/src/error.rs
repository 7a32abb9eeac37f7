//! The stable `ErrorInfo.reason` codes this service returns. Never rename one.

/// Enrollment does not know the subject.
pub const SUBJECT_NOT_ENROLLED: &str = "SUBJECT_NOT_ENROLLED";
/// A baseline (after_cycle 0) assessment by this assessor already exists.
pub const BASELINE_EXISTS: &str = "BASELINE_EXISTS";
/// No baseline assessment by this assessor to compare with.
pub const NO_BASELINE_ASSESSMENT: &str = "NO_BASELINE_ASSESSMENT";
/// The report was already submitted.
pub const REPORT_ALREADY_SUBMITTED: &str = "REPORT_ALREADY_SUBMITTED";
/// The protocol configures no Simon design.
pub const NO_SIMON_DESIGN: &str = "NO_SIMON_DESIGN";
/// No admissible Simon design within the searched size.
pub const NO_ADMISSIBLE_DESIGN: &str = "NO_ADMISSIBLE_DESIGN";
/// The update changes nothing.
pub const UPDATE_CHANGES_NOTHING: &str = "UPDATE_CHANGES_NOTHING";
/// An adverse event whose onset is before the protocol's reporting period: a baseline condition
/// (metadata `reporting_period_starts`, `reporting_period_start_date`).
pub const ONSET_BEFORE_REPORTING_PERIOD: &str = "ONSET_BEFORE_REPORTING_PERIOD";
/// The assessment's Curie segment scores are recorded already: nothing to re-enter.
pub const CURIE_SEGMENTS_ALREADY_RECORDED: &str = "CURIE_SEGMENTS_ALREADY_RECORDED";
