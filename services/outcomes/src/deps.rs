//! What outcomes asks the other services, over gRPC (never their tables): subjects and
//! allocation from enrollment; exposure and the treatment active on a date from dosing. Lists
//! are read page by page (500 at a time), so an analysis makes a bounded number of calls.

use tonic::transport::Channel;
use trialops_platform::identity::auth::CallContext;
use trialops_platform::server::client::{dependency_error, lazy_channel, outgoing};
use trialops_platform::{AppError, Settings};
use trialops_proto::common::v1::Date;
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
}

const PAGE: i32 = 500;

/// Every row of a list, page after page: `fetch` reads the page at a token and returns its rows
/// and the next token (empty on the last page).
async fn every_page<T, Page>(mut fetch: impl FnMut(String) -> Page) -> Result<Vec<T>, AppError>
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

impl Dependencies {
    /// Clients for the configured URLs (connecting on first use).
    pub fn new(settings: &Settings, config: &crate::Config) -> anyhow::Result<Self> {
        Ok(Dependencies {
            enrollment: EnrollmentServiceClient::new(lazy_channel(&config.enrollment_url, settings)?),
            dosing: DosingServiceClient::new(lazy_channel(&config.dosing_url, settings)?),
        })
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

    /// Every enrolled subject of a trial, in subject id order.
    pub async fn subjects(&self, call: &CallContext, trial_id: &str) -> Result<Vec<epb::Subject>, AppError> {
        every_page(|page_token| {
            let request = Self::request(
                epb::ListSubjectsRequest {
                    trial_id: trial_id.to_owned(),
                    page_size: PAGE,
                    page_token,
                    ..Default::default()
                },
                call,
            );
            let mut client = self.enrollment.clone();
            async move {
                let page = client
                    .list_subjects(request)
                    .await
                    .map_err(|s| dependency_error("enrollment", s))?;
                let page = page.into_inner();
                Ok((page.subjects, page.next_page_token))
            }
        })
        .await
    }

    /// Every registered site, in site code order.
    pub async fn sites(&self, call: &CallContext) -> Result<Vec<epb::Site>, AppError> {
        every_page(|page_token| {
            let request = Self::request(
                epb::ListSitesRequest {
                    page_size: PAGE,
                    page_token,
                },
                call,
            );
            let mut client = self.enrollment.clone();
            async move {
                let page = client
                    .list_sites(request)
                    .await
                    .map_err(|s| dependency_error("enrollment", s))?;
                let page = page.into_inner();
                Ok((page.sites, page.next_page_token))
            }
        })
        .await
    }

    /// One page of enrollment's or dosing's audit log (administrators: the caller's token is
    /// forwarded), in sequence order, with the next page's token.
    pub async fn audit_events(
        &self,
        call: &CallContext,
        service: &str,
        page_token: String,
    ) -> Result<(Vec<trialops_proto::common::v1::AuditEvent>, String), AppError> {
        let page = if service == "enrollment" {
            let request = Self::request(
                epb::ListAuditEventsRequest {
                    page_size: PAGE,
                    page_token,
                    ..Default::default()
                },
                call,
            );
            let r = self.enrollment.clone().list_audit_events(request).await;
            r.map(|r| r.into_inner()).map(|r| (r.events, r.next_page_token))
        } else {
            let request = Self::request(
                dpb::ListAuditEventsRequest {
                    page_size: PAGE,
                    page_token,
                    ..Default::default()
                },
                call,
            );
            let r = self.dosing.clone().list_audit_events(request).await;
            r.map(|r| r.into_inner()).map(|r| (r.events, r.next_page_token))
        };
        page.map_err(|s| {
            dependency_error(
                if service == "enrollment" {
                    "enrollment"
                } else {
                    "dosing"
                },
                s,
            )
        })
    }

    /// A trial's emergency unblindings, oldest first.
    pub async fn unblindings(&self, call: &CallContext, trial_id: &str) -> Result<Vec<epb::Unblinding>, AppError> {
        every_page(|page_token| {
            let request = Self::request(
                epb::ListUnblindingsRequest {
                    trial_id: trial_id.to_owned(),
                    page_size: PAGE,
                    page_token,
                },
                call,
            );
            let mut client = self.enrollment.clone();
            async move {
                let page = client
                    .list_unblindings(request)
                    .await
                    .map_err(|s| dependency_error("enrollment", s))?;
                let page = page.into_inner();
                Ok((page.unblindings, page.next_page_token))
            }
        })
        .await
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
        every_page(|page_token| {
            let request = Self::request(
                dpb::ListExposuresRequest {
                    trial_id: trial_id.to_owned(),
                    page_size: PAGE,
                    page_token,
                },
                call,
            );
            let mut client = self.dosing.clone();
            async move {
                let page = client
                    .list_exposures(request)
                    .await
                    .map_err(|s| dependency_error("dosing", s))?;
                let page = page.into_inner();
                Ok((page.exposures, page.next_page_token))
            }
        })
        .await
    }

    /// A subject's administrations recorded (any status but planned), in planned order.
    pub async fn administrations(
        &self,
        call: &CallContext,
        subject_id: &str,
    ) -> Result<Vec<dpb::Administration>, AppError> {
        every_page(|page_token| {
            let request = Self::request(
                dpb::ListSubjectAdministrationsRequest {
                    subject_id: subject_id.to_owned(),
                    recorded_only: true,
                    page_size: PAGE,
                    page_token,
                },
                call,
            );
            let mut client = self.dosing.clone();
            async move {
                let page = client
                    .list_subject_administrations(request)
                    .await
                    .map_err(|s| dependency_error("dosing", s))?;
                let page = page.into_inner();
                Ok((page.administrations, page.next_page_token))
            }
        })
        .await
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
