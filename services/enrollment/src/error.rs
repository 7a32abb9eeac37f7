//! The stable `ErrorInfo.reason` codes this service returns. Integrators branch on these; never
//! rename one.

/// No screening recorded for the candidate.
pub const SUBJECT_NOT_SCREENED: &str = "SUBJECT_NOT_SCREENED";
/// The latest screening does not meet every criterion (metadata `failed_criteria`).
pub const SUBJECT_INELIGIBLE: &str = "SUBJECT_INELIGIBLE";
/// The latest screening is older than the protocol's validity window.
pub const SCREENING_EXPIRED: &str = "SCREENING_EXPIRED";
/// The screening was recorded at another site.
pub const SCREENED_AT_ANOTHER_SITE: &str = "SCREENED_AT_ANOTHER_SITE";
/// The consent form version is not one the protocol accepts.
pub const CONSENT_FORM_VERSION_NOT_ACCEPTED: &str = "CONSENT_FORM_VERSION_NOT_ACCEPTED";
/// The site is not registered.
pub const SITE_NOT_REGISTERED: &str = "SITE_NOT_REGISTERED";
/// The site code is taken.
pub const SITE_ALREADY_REGISTERED: &str = "SITE_ALREADY_REGISTERED";
/// The candidate is already enrolled.
pub const SUBJECT_ALREADY_ENROLLED: &str = "SUBJECT_ALREADY_ENROLLED";
/// The lifecycle does not allow this status change.
pub const INVALID_STATUS_TRANSITION: &str = "INVALID_STATUS_TRANSITION";
/// A correction that changes no recorded value.
pub const CORRECTION_CHANGES_NOTHING: &str = "CORRECTION_CHANGES_NOTHING";
