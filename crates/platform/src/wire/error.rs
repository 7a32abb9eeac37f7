//! The one mapping from service errors to `tonic::Status`, with google.rpc `ErrorInfo`
//! (stable reasons, domain "trialops") and `BadRequest` field violations.
//!
//! Internal details are logged here and never returned: the caller gets a generic message and
//! the trace id to quote to support.

use std::collections::HashMap;

use sea_orm::{DbErr, RuntimeErr, SqlErr};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};
pub use trialops_proto::ReasonCode;
use trialops_proto::common::v1::CommonReason;

/// The error domain in every `ErrorInfo`.
pub const ERROR_DOMAIN: &str = "trialops";

/// At most this many field violations are listed in an answer; the rest are counted in one more
/// entry (`request`: "and N more"), so an answer stays small whatever the request held.
pub const MAX_REPORTED_VIOLATIONS: usize = 20;

/// Longest text (characters) of a field path, description, message or metadata value in an error:
/// whatever of the caller's input an error repeats is cut there, with "…".
pub const MAX_ERROR_TEXT_CHARS: usize = 200;

/// Longest error message (characters), messages assembled from several parts included.
pub const MAX_ERROR_MESSAGE_CHARS: usize = 1000;

/// `text` cut to `max` characters, with "…" when cut.
pub fn bounded(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_owned(),
        Some((end, _)) => format!("{}…", &text[..end]),
    }
}

/// A field of a request that is wrong, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The field path, for example `values[2].decimal_value`.
    pub field: String,
    /// What is wrong, naming the allowed values or format.
    pub description: String,
}

/// Every way a trialops RPC fails.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Bad input; every bad field is named.
    #[error("invalid argument: {0:?}")]
    InvalidArgument(Vec<Violation>),
    /// A clinically or procedurally refused action, with a stable reason such as
    /// `SUBJECT_INELIGIBLE` and machine-readable metadata.
    #[error("failed precondition {reason}: {message}")]
    FailedPrecondition {
        /// Stable reason code, from a contract's reason enum.
        reason: ReasonCode,
        /// Human-readable explanation (no personal data).
        message: String,
        /// Details, for example `failed_criteria`.
        metadata: Vec<(String, String)>,
    },
    /// The record does not exist (or the caller may not know it exists).
    #[error("{what} {id} not found")]
    NotFound {
        /// Kind of record, for example "subject".
        what: &'static str,
        /// The identifier asked for.
        id: String,
    },
    /// The record exists already, or a request id was reused for another request.
    #[error("already exists {reason}: {message}")]
    AlreadyExists {
        /// Stable reason code, from a contract's reason enum.
        reason: ReasonCode,
        /// Explanation.
        message: String,
    },
    /// A stale etag or a concurrent change: read again and retry.
    #[error("aborted: {0}")]
    Aborted(String),
    /// No or bad credentials.
    #[error("unauthenticated: {0}")]
    Unauthenticated(String),
    /// The caller may not do this.
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// A dependency (database, another service) cannot be reached; retry with the same request id.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// Anything else; logged, never shown.
    #[error("internal: {0:#}")]
    Internal(anyhow::Error),
}

impl AppError {
    /// One bad field.
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        AppError::InvalidArgument(vec![Violation {
            field: field.into(),
            description: description.into(),
        }])
    }

    /// A refused action without metadata.
    pub fn precondition(reason: impl Into<ReasonCode>, message: impl Into<String>) -> Self {
        AppError::FailedPrecondition {
            reason: reason.into(),
            message: message.into(),
            metadata: Vec::new(),
        }
    }

    /// An internal error from anything displayable.
    pub fn internal(error: impl Into<anyhow::Error>) -> Self {
        AppError::Internal(error.into())
    }
}

impl From<DbErr> for AppError {
    fn from(err: DbErr) -> Self {
        if matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) {
            return AppError::Aborted("a concurrent change conflicted with this one; read again and retry".into());
        }
        if database_unreachable(&err) {
            tracing::warn!(error = %err, "database unavailable");
            return AppError::Unavailable("the database cannot be reached; retry with the same request_id".into());
        }
        AppError::Internal(err.into())
    }
}

/// Whether `err` says the database could not be reached or went away (a restart, a failover, a
/// cut connection), rather than that a statement was wrong: no connection to be had, the
/// connection lost mid-statement, or PostgreSQL's connection-exception (08…) and shutdown
/// (57P01–57P03) codes. Such a call changed nothing and may be retried with its request id.
fn database_unreachable(err: &DbErr) -> bool {
    use sea_orm::sqlx::Error as Sqlx;
    let sqlx = match err {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => return true,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => e,
        _ => return false,
    };
    match sqlx.as_ref() {
        Sqlx::Io(_)
        | Sqlx::Tls(_)
        | Sqlx::Protocol(_)
        | Sqlx::PoolTimedOut
        | Sqlx::PoolClosed
        | Sqlx::WorkerCrashed => true,
        Sqlx::Database(e) => e
            .code()
            .is_some_and(|code| code.starts_with("08") || matches!(code.as_ref(), "57P01" | "57P02" | "57P03")),
        _ => false,
    }
}

fn info(reason: impl Into<ReasonCode>, metadata: HashMap<String, String>) -> ErrorDetails {
    ErrorDetails::with_error_info(reason.into().as_str(), ERROR_DOMAIN, metadata)
}

impl From<AppError> for Status {
    fn from(err: AppError) -> Status {
        match err {
            AppError::InvalidArgument(violations) => {
                let shown = &violations[..violations.len().min(MAX_REPORTED_VIOLATIONS)];
                let more = violations.len() - shown.len();
                let mut listed: Vec<FieldViolation> = shown
                    .iter()
                    .map(|v| {
                        FieldViolation::new(
                            bounded(&v.field, MAX_ERROR_TEXT_CHARS),
                            bounded(&v.description, MAX_ERROR_TEXT_CHARS),
                        )
                    })
                    .collect();
                let mut message = format!(
                    "invalid request: {}",
                    listed.iter().map(|v| v.field.as_str()).collect::<Vec<_>>().join(", ")
                );
                if more > 0 {
                    message.push_str(&format!(" and {more} more"));
                    listed.push(FieldViolation::new(
                        "request",
                        format!("and {more} more violations, not listed: correct these and send again"),
                    ));
                }
                let message = bounded(&message, MAX_ERROR_MESSAGE_CHARS);
                let mut details = ErrorDetails::with_bad_request(listed);
                details.set_error_info(
                    ReasonCode::from(CommonReason::InvalidArgument).as_str(),
                    ERROR_DOMAIN,
                    HashMap::new(),
                );
                Status::with_error_details(Code::InvalidArgument, message, details)
            }
            AppError::FailedPrecondition {
                reason,
                message,
                metadata,
            } => Status::with_error_details(
                Code::FailedPrecondition,
                bounded(&message, MAX_ERROR_MESSAGE_CHARS),
                info(
                    reason,
                    metadata
                        .into_iter()
                        .take(MAX_REPORTED_VIOLATIONS * 2)
                        .map(|(k, v)| (k, bounded(&v, MAX_ERROR_TEXT_CHARS)))
                        .collect(),
                ),
            ),
            AppError::NotFound { what, id } => Status::with_error_details(
                Code::NotFound,
                format!("{what} {} not found", bounded(&id, MAX_ERROR_TEXT_CHARS)),
                info(
                    CommonReason::NotFound,
                    HashMap::from([("kind".to_owned(), what.to_owned())]),
                ),
            ),
            AppError::AlreadyExists { reason, message } => Status::with_error_details(
                Code::AlreadyExists,
                bounded(&message, MAX_ERROR_MESSAGE_CHARS),
                info(reason, HashMap::new()),
            ),
            AppError::Aborted(message) => Status::with_error_details(
                Code::Aborted,
                bounded(&message, MAX_ERROR_MESSAGE_CHARS),
                info(CommonReason::Aborted, HashMap::new()),
            ),
            AppError::Unauthenticated(message) => Status::unauthenticated(bounded(&message, MAX_ERROR_MESSAGE_CHARS)),
            AppError::PermissionDenied(message) => {
                Status::permission_denied(bounded(&message, MAX_ERROR_MESSAGE_CHARS))
            }
            AppError::Unavailable(message) => Status::with_error_details(
                Code::Unavailable,
                bounded(&message, MAX_ERROR_MESSAGE_CHARS),
                info(CommonReason::Unavailable, HashMap::new()),
            ),
            AppError::Internal(error) => {
                // The details go to the log (inside the request's span, so with its trace id);
                // the caller learns only that it failed.
                tracing::error!(error = format!("{error:#}"), "internal error");
                Status::with_error_details(
                    Code::Internal,
                    "internal error; the service logged the details under this call's trace id",
                    info(CommonReason::Internal, HashMap::new()),
                )
            }
        }
    }
}

impl From<Violation> for Violations {
    fn from(v: Violation) -> Self {
        Violations(vec![v])
    }
}

impl From<Violations> for AppError {
    fn from(bad: Violations) -> Self {
        AppError::InvalidArgument(bad.0)
    }
}

impl From<Violation> for AppError {
    fn from(bad: Violation) -> Self {
        AppError::InvalidArgument(vec![bad])
    }
}

/// Collects field violations so one response names every bad field.
#[derive(Debug, Default)]
pub struct Violations(Vec<Violation>);

impl Violations {
    /// An empty collector.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a violation.
    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.0.push(Violation {
            field: field.into(),
            description: description.into(),
        });
    }

    /// Keeps the value of a conversion, or records its violation.
    pub fn take<T>(&mut self, result: Result<T, Violation>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(v) => {
                self.0.push(v);
                None
            }
        }
    }

    /// Appends the violations of `other`.
    pub fn extend(&mut self, other: Violations) {
        self.0.extend(other.0);
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The recorded violations, in order.
    pub fn into_list(self) -> Vec<Violation> {
        self.0
    }

    /// `Ok(value)` if nothing was recorded, else these violations (a field parsed in parts).
    pub fn or<T>(self, value: T) -> Result<T, Violations> {
        if self.0.is_empty() { Ok(value) } else { Err(self) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_that_went_away_is_unavailable_and_a_wrong_statement_internal() {
        use std::sync::Arc;
        let sqlx = |e: sea_orm::sqlx::Error| RuntimeErr::SqlxError(Arc::new(e));
        let reset = || sea_orm::sqlx::Error::Io(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset"));
        for gone in [
            DbErr::Query(sqlx(reset())),
            DbErr::Exec(sqlx(reset())),
            DbErr::Exec(sqlx(sea_orm::sqlx::Error::PoolTimedOut)),
            DbErr::Query(sqlx(sea_orm::sqlx::Error::Protocol("unexpected end of stream".into()))),
            DbErr::Conn(sqlx(sea_orm::sqlx::Error::PoolClosed)),
        ] {
            assert_eq!(Status::from(AppError::from(gone)).code(), Code::Unavailable);
        }
        for wrong in [
            DbErr::Query(sqlx(sea_orm::sqlx::Error::RowNotFound)),
            DbErr::Custom("a stored value no version writes".into()),
            DbErr::RecordNotFound("counter".into()),
        ] {
            assert_eq!(Status::from(AppError::from(wrong)).code(), Code::Internal);
        }
    }

    #[test]
    fn invalid_argument_carries_every_field_violation() {
        let mut v = Violations::new();
        v.add("request_id", "must be a UUID");
        v.add("values[2].decimal_value", "not a decimal");
        let status: Status = AppError::from(v).into();
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = status.get_error_details();
        let fields: Vec<_> = details
            .bad_request()
            .map(|b| b.field_violations.iter().map(|f| f.field.clone()).collect())
            .unwrap_or_default();
        assert_eq!(fields, ["request_id", "values[2].decimal_value"]);
        assert_eq!(reason(&status), "INVALID_ARGUMENT");
    }

    fn reason(status: &Status) -> String {
        let details = status.get_error_details();
        details.error_info().map(|i| i.reason.clone()).unwrap_or_default()
    }

    #[test]
    fn every_status_names_its_common_reason() {
        let cases = [
            (AppError::Aborted("stale etag".into()), Code::Aborted, "ABORTED"),
            (AppError::Unavailable("down".into()), Code::Unavailable, "UNAVAILABLE"),
            (
                AppError::NotFound {
                    what: "subject",
                    id: "X-1".into(),
                },
                Code::NotFound,
                "NOT_FOUND",
            ),
        ];
        for (error, code, expected) in cases {
            let status: Status = error.into();
            assert_eq!((status.code(), reason(&status).as_str()), (code, expected));
        }
    }

    #[test]
    fn answers_list_twenty_violations_and_cut_echoed_text() {
        let mut v = Violations::new();
        for i in 0..25 {
            v.add(
                format!("values[{i}].variable_id"),
                format!("unknown variable \"{}\"", "é".repeat(500)),
            );
        }
        let status: Status = AppError::from(v).into();
        let details = status.get_error_details();
        let listed = details
            .bad_request()
            .map(|b| b.field_violations.clone())
            .unwrap_or_default();
        assert_eq!(listed.len(), 21);
        assert_eq!(listed[20].field, "request");
        assert!(listed[20].description.starts_with("and 5 more"));
        // 200 characters and the ellipsis: "é" is two bytes, so this counts characters.
        assert_eq!(listed[0].description.chars().count(), 201);
        assert!(listed[0].description.ends_with('…'));
        assert!(status.message().ends_with("values[19].variable_id and 5 more"));
        assert_eq!(bounded("short", 200), "short");
    }

    #[test]
    fn precondition_carries_reason_and_metadata() {
        let err = AppError::FailedPrecondition {
            reason: trialops_proto::enrollment::v1::EnrollmentReason::SubjectIneligible.into(),
            message: "not eligible".into(),
            metadata: vec![("failed_criteria".into(), "anc,platelets".into())],
        };
        let status: Status = err.into();
        assert_eq!(status.code(), Code::FailedPrecondition);
        let details = status.get_error_details();
        let info = details.error_info().cloned().unwrap_or_else(|| panic!("no ErrorInfo"));
        assert_eq!(
            (info.reason.as_str(), info.domain.as_str()),
            ("SUBJECT_INELIGIBLE", ERROR_DOMAIN)
        );
        assert_eq!(
            info.metadata.get("failed_criteria").map(String::as_str),
            Some("anc,platelets")
        );
    }

    #[test]
    fn internal_errors_do_not_leak_their_details() {
        let status: Status = AppError::internal(anyhow::anyhow!("password=hunter2 at db.internal")).into();
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("hunter2"));
        assert!(!status.message().contains("db.internal"));
        assert_eq!(reason(&status), "INTERNAL");
    }
}
