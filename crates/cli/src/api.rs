//! The public gRPC API as the `trialops` command uses it: clients for the three services, bearer
//! credentials on every call, and errors shown the way a person at a hospital can act on them
//! (code, message, reason, every field violation).

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use tonic::transport::Channel;
use tonic_types::StatusExt;
use trialops_proto::common::v1 as common;
use trialops_proto::dosing::v1::dosing_service_client::DosingServiceClient;
use trialops_proto::enrollment::v1::enrollment_service_client::EnrollmentServiceClient;
use trialops_proto::outcomes::v1::outcomes_service_client::OutcomesServiceClient;

/// Clients of the three services.
#[derive(Clone)]
pub struct Clients {
    /// Enrollment.
    pub enrollment: EnrollmentServiceClient<Channel>,
    /// Dosing.
    pub dosing: DosingServiceClient<Channel>,
    /// Outcomes.
    pub outcomes: OutcomesServiceClient<Channel>,
}

impl Clients {
    /// Clients for the three URLs (connecting on first use).
    pub fn new(enrollment: &str, dosing: &str, outcomes: &str) -> anyhow::Result<Clients> {
        let channel = |url: &str| -> anyhow::Result<Channel> {
            Ok(tonic::transport::Endpoint::from_shared(url.to_owned())
                .map_err(|e| anyhow::anyhow!("{url}: {e}"))?
                .connect_timeout(std::time::Duration::from_secs(5))
                .timeout(std::time::Duration::from_secs(60))
                .connect_lazy())
        };
        Ok(Clients {
            enrollment: EnrollmentServiceClient::new(channel(enrollment)?),
            dosing: DosingServiceClient::new(channel(dosing)?),
            outcomes: OutcomesServiceClient::new(channel(outcomes)?),
        })
    }
}

impl Clients {
    /// Every administration of `site` planned from `from` to `to`, all pages.
    pub async fn worklist(
        &mut self,
        token: &str,
        site: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> anyhow::Result<Vec<trialops_proto::dosing::v1::Administration>> {
        let mut all = Vec::new();
        let mut page_token = String::new();
        loop {
            let request = trialops_proto::dosing::v1::ListAdministrationsRequest {
                site_code: site.to_owned(),
                from_date: Some(date(from)),
                to_date: Some(date(to)),
                page_size: 500,
                page_token,
            };
            let page = self
                .dosing
                .list_administrations(with_token(request, token)?)
                .await
                .doing(format!("reading the worklist of {site}"))?;
            all.extend(page.administrations);
            if page.next_page_token.is_empty() {
                return Ok(all);
            }
            page_token = page.next_page_token;
        }
    }
}

/// A request carrying `token` as bearer credentials (none when empty).
pub fn with_token<T>(message: T, token: &str) -> anyhow::Result<tonic::Request<T>> {
    let mut request = tonic::Request::new(message);
    if !token.is_empty() {
        let value = tonic::metadata::MetadataValue::try_from(format!("Bearer {token}"))
            .map_err(|_| anyhow::anyhow!("the token holds characters a header cannot carry"))?;
        request.metadata_mut().insert("authorization", value);
    }
    Ok(request)
}

/// A refused or failed call, described for a person: the code, the message, the machine reason
/// and each field violation on its own line.
#[derive(Debug)]
pub struct CallError {
    /// What was being done, for example "enrolling SCR-12".
    pub action: String,
    /// The status.
    pub status: tonic::Status,
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = &self.status;
        write!(f, "{}: {:?}: {}", self.action, s.code(), s.message())?;
        let details = s.get_error_details();
        if let Some(info) = details.error_info() {
            write!(f, "\n  reason: {}", info.reason)?;
            let mut metadata: Vec<_> = info.metadata.iter().collect();
            metadata.sort();
            for (k, v) in metadata {
                write!(f, "\n  {k}: {v}")?;
            }
        }
        if let Some(bad) = details.bad_request() {
            for v in &bad.field_violations {
                write!(f, "\n  field {}: {}", v.field, v.description)?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for CallError {}

/// Adds what was being done to a failed call.
pub trait Context<T> {
    /// The result, or a [`CallError`] naming `action`.
    fn doing(self, action: impl Into<String>) -> Result<T, CallError>;
}

impl<T> Context<T> for Result<tonic::Response<T>, tonic::Status> {
    fn doing(self, action: impl Into<String>) -> Result<T, CallError> {
        self.map(tonic::Response::into_inner).map_err(|status| CallError {
            action: action.into(),
            status,
        })
    }
}

/// A wire date.
pub fn date(d: NaiveDate) -> common::Date {
    common::Date {
        year: d.year(),
        month: d.month() as i32,
        day: d.day() as i32,
    }
}

/// A date from the wire, if valid.
pub fn from_date(d: Option<&common::Date>) -> Option<NaiveDate> {
    let d = d?;
    NaiveDate::from_ymd_opt(d.year, u32::try_from(d.month).ok()?, u32::try_from(d.day).ok()?)
}

/// A wire date as text (YYYY-MM-DD), empty when absent or invalid.
pub fn date_text(d: Option<&common::Date>) -> String {
    from_date(d).map(|d| d.to_string()).unwrap_or_default()
}

/// A wire instant.
pub fn timestamp(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: 0,
    }
}

/// A wire decimal.
pub fn dec(value: impl std::fmt::Display) -> Option<common::Decimal> {
    Some(common::Decimal {
        value: value.to_string(),
    })
}

/// A decimal's text, empty when absent.
pub fn text(d: Option<&common::Decimal>) -> String {
    d.map(|d| d.value.clone()).unwrap_or_default()
}
