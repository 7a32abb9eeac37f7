//! What outcomes asks the other services, over gRPC (never their tables): subjects and
//! allocation from enrollment; exposure and the treatment active on a date from dosing. Lists
//! are read page by page (500 at a time), so an analysis makes a bounded number of calls.

use std::collections::BTreeMap;
use std::sync::Arc;

use tonic::transport::Channel;
use trialops_domain::protocol::Protocol;
use trialops_platform::config::protocols::Source;
use trialops_platform::identity::auth::CallContext;
use trialops_platform::server::client::{dependency_error, lazy_channel, outgoing};
use trialops_platform::server::protocol_versions::ProtocolVersions;
use trialops_platform::{AppError, Settings};
use trialops_proto::common::v1::{AuditEvent, Date};
use trialops_proto::dosing::v1 as dpb;
use trialops_proto::dosing::v1::dosing_service_client::DosingServiceClient;
use trialops_proto::enrollment::v1 as epb;
use trialops_proto::enrollment::v1::enrollment_service_client::EnrollmentServiceClient;

use crate::error::Reason;

/// Clients of enrollment and dosing.
#[derive(Clone)]
pub struct Dependencies {
    enrollment: EnrollmentServiceClient<Channel>,
    dosing: DosingServiceClient<Channel>,
    /// The trials' protocol versions, as enrollment records them.
    protocols: ProtocolVersions,
}

const PAGE: i32 = 500;

/// Every row of a list, page after page: `fetch` reads the page at a token and returns its rows
/// and the next token (empty on the last page).
pub(crate) async fn every_page<T, Page>(mut fetch: impl FnMut(String) -> Page) -> Result<Vec<T>, AppError>
where
    Page: Future<Output = Result<(Vec<T>, String), AppError>>,
{
    let (mut out, mut token) = (Vec::new(), String::new());
    loop {
        let (rows, next) = fetch(token).await?;
        out.extend(rows);
        if next.is_empty() {
            return Ok(out);
        }
        token = next;
    }
}

/// Every row of one of the other services' paged lists: `$request` (built with the page token
/// bound to `$token`) sent to `$client.$method` page after page, the rows read from `$rows`; a
/// failed call is `$dependency`'s.
macro_rules! every_row {
    (
        $self:ident, $call:expr, $client:ident, $dependency:literal, $method:ident, $rows:ident,
        |$token:ident| $request:expr
    ) => {
        every_page(|$token| {
            let request = Self::request($request, $call);
            let mut client = $self.$client.clone();
            async move {
                let page = client
                    .$method(request)
                    .await
                    .map_err(|s| dependency_error($dependency, s))?
                    .into_inner();
                Ok((page.$rows, page.next_page_token))
            }
        })
        .await
    };
}

impl Dependencies {
    /// Clients for the configured URLs (connecting on first use).
    /// The service's own protocol files (`loaded`) are the definitions it knows already.
    pub fn new(settings: &Settings, config: &crate::Config, loaded: &BTreeMap<String, Source>) -> anyhow::Result<Self> {
        let enrollment = lazy_channel(&config.enrollment_url, settings)?;
        Ok(Dependencies {
            enrollment: EnrollmentServiceClient::new(enrollment.clone()),
            dosing: DosingServiceClient::new(lazy_channel(&config.dosing_url, settings)?),
            protocols: ProtocolVersions::new(enrollment, crate::SERVICE_NAME, loaded),
        })
    }

    /// The protocol of `trial_id` in force on `on`.
    pub async fn protocol_on(
        &self,
        call: &CallContext,
        trial_id: &str,
        on: chrono::NaiveDate,
    ) -> Result<Arc<Protocol>, AppError> {
        self.protocols.on(call, trial_id, on).await
    }

    fn request<T>(message: T, call: &CallContext) -> tonic::Request<T> {
        outgoing(message, crate::SERVICE_NAME, call)
    }

    /// An enrolled subject; FAILED_PRECONDITION when enrollment does not know it.
    pub async fn subject(&self, call: &CallContext, subject_id: &str) -> Result<epb::Subject, AppError> {
        let request = Self::request(
            epb::GetSubjectRequest {
                subject_id: subject_id.to_owned(),
            },
            call,
        );
        match self.enrollment.clone().get_subject(request).await {
            Ok(r) => Ok(r.into_inner().subject.unwrap_or_default()),
            Err(s) if s.code() == tonic::Code::NotFound => Err(AppError::precondition(
                Reason::SubjectNotEnrolled,
                format!("subject {subject_id} is not enrolled"),
            )),
            Err(s) => Err(dependency_error("enrollment", s)),
        }
    }

    /// A trial's protocol summary from enrollment; NOT_FOUND for an unknown trial.
    pub async fn trial_exists(&self, call: &CallContext, trial_id: &str) -> Result<(), AppError> {
        let request = Self::request(
            epb::GetTrialRequest {
                trial_id: trial_id.to_owned(),
            },
            call,
        );
        match self.enrollment.clone().get_trial(request).await {
            Ok(_) => Ok(()),
            Err(s) if s.code() == tonic::Code::NotFound => Err(AppError::NotFound {
                what: "trial",
                id: trial_id.to_owned(),
            }),
            Err(s) => Err(dependency_error("enrollment", s)),
        }
    }

    /// Version `version` of a trial's protocol, as enrollment recorded it.
    pub async fn protocol_version(
        &self,
        call: &CallContext,
        trial_id: &str,
        version: &str,
    ) -> Result<Arc<Protocol>, AppError> {
        self.protocols.version(call, trial_id, version).await
    }

    /// Every enrolled subject of a trial, in subject id order.
    pub async fn subjects(&self, call: &CallContext, trial_id: &str) -> Result<Vec<epb::Subject>, AppError> {
        every_row!(
            self,
            call,
            enrollment,
            "enrollment",
            list_subjects,
            subjects,
            |page_token| {
                epb::ListSubjectsRequest {
                    trial_id: trial_id.to_owned(),
                    page_size: PAGE,
                    page_token,
                    ..Default::default()
                }
            }
        )
    }

    /// Every status change of a trial's subjects, oldest first.
    pub async fn status_changes(&self, call: &CallContext, trial_id: &str) -> Result<Vec<epb::StatusChange>, AppError> {
        every_row!(
            self,
            call,
            enrollment,
            "enrollment",
            list_status_changes,
            changes,
            |page_token| {
                epb::ListStatusChangesRequest {
                    trial_id: trial_id.to_owned(),
                    page_size: PAGE,
                    page_token,
                }
            }
        )
    }

    /// Every registered site, in site code order.
    pub async fn sites(&self, call: &CallContext) -> Result<Vec<epb::Site>, AppError> {
        every_row!(self, call, enrollment, "enrollment", list_sites, sites, |page_token| {
            epb::ListSitesRequest {
                page_size: PAGE,
                page_token,
            }
        })
    }

    /// Enrollment's whole audit log in sequence order (administrators: the caller's token is
    /// forwarded).
    pub async fn enrollment_audit_log(&self, call: &CallContext) -> Result<Vec<AuditEvent>, AppError> {
        every_row!(
            self,
            call,
            enrollment,
            "enrollment",
            list_audit_events,
            events,
            |page_token| {
                epb::ListAuditEventsRequest {
                    page_size: PAGE,
                    page_token,
                    ..Default::default()
                }
            }
        )
    }

    /// Dosing's whole audit log in sequence order (administrators).
    pub async fn dosing_audit_log(&self, call: &CallContext) -> Result<Vec<AuditEvent>, AppError> {
        every_row!(self, call, dosing, "dosing", list_audit_events, events, |page_token| {
            dpb::ListAuditEventsRequest {
                page_size: PAGE,
                page_token,
                ..Default::default()
            }
        })
    }

    /// A trial's emergency unblindings, oldest first.
    pub async fn unblindings(&self, call: &CallContext, trial_id: &str) -> Result<Vec<epb::Unblinding>, AppError> {
        every_row!(
            self,
            call,
            enrollment,
            "enrollment",
            list_unblindings,
            unblindings,
            |page_token| {
                epb::ListUnblindingsRequest {
                    trial_id: trial_id.to_owned(),
                    page_size: PAGE,
                    page_token,
                }
            }
        )
    }

    /// Subjects per arm and stratum.
    pub async fn allocation(
        &self,
        call: &CallContext,
        trial_id: &str,
    ) -> Result<epb::GetAllocationSummaryResponse, AppError> {
        let request = Self::request(
            epb::GetAllocationSummaryRequest {
                trial_id: trial_id.to_owned(),
            },
            call,
        );
        Ok(self
            .enrollment
            .clone()
            .get_allocation_summary(request)
            .await
            .map_err(|s| dependency_error("enrollment", s))?
            .into_inner())
    }

    /// Every subject's exposure in a trial.
    pub async fn exposures(
        &self,
        call: &CallContext,
        trial_id: &str,
    ) -> Result<Vec<dpb::GetCumulativeExposureResponse>, AppError> {
        every_row!(self, call, dosing, "dosing", list_exposures, exposures, |page_token| {
            dpb::ListExposuresRequest {
                trial_id: trial_id.to_owned(),
                page_size: PAGE,
                page_token,
            }
        })
    }

    /// A subject's administrations recorded (any status but planned), in planned order.
    pub async fn administrations(
        &self,
        call: &CallContext,
        subject_id: &str,
    ) -> Result<Vec<dpb::Administration>, AppError> {
        every_row!(
            self,
            call,
            dosing,
            "dosing",
            list_subject_administrations,
            administrations,
            |page_token| {
                dpb::ListSubjectAdministrationsRequest {
                    subject_id: subject_id.to_owned(),
                    recorded_only: true,
                    page_size: PAGE,
                    page_token,
                }
            }
        )
    }

    /// One cycle of a subject with its dose calculations; `None` when it was not started.
    pub async fn cycle(
        &self,
        call: &CallContext,
        subject_id: &str,
        number: i32,
    ) -> Result<Option<dpb::Cycle>, AppError> {
        let request = Self::request(
            dpb::GetCycleRequest {
                subject_id: subject_id.to_owned(),
                cycle_number: number,
            },
            call,
        );
        match self.dosing.clone().get_cycle(request).await {
            Ok(r) => Ok(r.into_inner().cycle),
            Err(s) if s.code() == tonic::Code::NotFound => Ok(None),
            Err(s) => Err(dependency_error("dosing", s)),
        }
    }

    /// The cycle and agents active on a date.
    pub async fn active_treatment(
        &self,
        call: &CallContext,
        subject_id: &str,
        on: Date,
    ) -> Result<dpb::GetActiveTreatmentResponse, AppError> {
        let request = Self::request(
            dpb::GetActiveTreatmentRequest {
                subject_id: subject_id.to_owned(),
                on_date: Some(on),
            },
            call,
        );
        Ok(self
            .dosing
            .clone()
            .get_active_treatment(request)
            .await
            .map_err(|s| dependency_error("dosing", s))?
            .into_inner())
    }

    /// Day 1 of the subject's first cycle, `None` before any cycle started.
    pub async fn first_cycle_start(&self, call: &CallContext, subject_id: &str) -> Result<Option<Date>, AppError> {
        Ok(self.cycle(call, subject_id, 1).await?.and_then(|c| c.start_date))
    }
}
