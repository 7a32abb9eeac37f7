//! What dosing asks enrollment (over gRPC, never its tables): a subject's trial, arm, site and
//! whether they are on protocol therapy, and which version of the trial's protocol is in force
//! on a date (enrollment records the versions; dosing keeps each definition it parsed, by hash).

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::NaiveDate;
use tonic::transport::Channel;
use trialops_domain::protocol::Protocol;
use trialops_platform::config::protocols::Source;
use trialops_platform::identity::auth::CallContext;
use trialops_platform::server::client::{dependency_error, lazy_channel, outgoing};
use trialops_platform::server::protocol_versions::ProtocolVersions;
use trialops_platform::{AppError, Settings};
use trialops_proto::enrollment::v1 as pb;
use trialops_proto::enrollment::v1::enrollment_service_client::EnrollmentServiceClient;

use crate::error::Reason;

/// A subject as dosing needs it.
#[derive(Debug, Clone)]
pub struct EnrolledSubject {
    /// Trial.
    pub trial_id: String,
    /// Arm.
    pub arm_code: String,
    /// Site.
    pub site_code: String,
}

/// The enrollment service client.
#[derive(Clone)]
pub struct Enrollment {
    client: EnrollmentServiceClient<Channel>,
    /// The trials' protocol versions, as enrollment records them.
    protocols: ProtocolVersions,
}

impl Enrollment {
    /// A client for the configured enrollment URL (connects on first use), knowing the
    /// definitions this service loaded.
    pub fn new(settings: &Settings, enrollment_url: &str, loaded: &BTreeMap<String, Source>) -> anyhow::Result<Self> {
        let channel = lazy_channel(enrollment_url, settings)?;
        Ok(Enrollment {
            client: EnrollmentServiceClient::new(channel.clone()),
            protocols: ProtocolVersions::new(channel, crate::SERVICE_NAME, loaded),
        })
    }

    /// The protocol of `trial_id` in force on `on`, as enrollment records its versions.
    pub async fn protocol_on(
        &self,
        call: &CallContext,
        trial_id: &str,
        on: NaiveDate,
    ) -> Result<Arc<Protocol>, AppError> {
        self.protocols.on(call, trial_id, on).await
    }

    /// The subject, refused unless enrolled and on protocol therapy.
    pub async fn subject_on_therapy(&self, call: &CallContext, subject_id: &str) -> Result<EnrolledSubject, AppError> {
        let request = outgoing(
            pb::GetSubjectRequest {
                subject_id: subject_id.to_owned(),
            },
            crate::SERVICE_NAME,
            call,
        );
        let subject = match self.client.clone().get_subject(request).await {
            Ok(response) => response.into_inner().subject.unwrap_or_default(),
            Err(status) if status.code() == tonic::Code::NotFound => {
                return Err(AppError::precondition(
                    Reason::SubjectNotEnrolled,
                    format!("subject {subject_id} is not enrolled"),
                ));
            }
            Err(status) => return Err(dependency_error("enrollment", status)),
        };
        if subject.status != pb::SubjectStatus::OnProtocolTherapy as i32 {
            let status = pb::SubjectStatus::try_from(subject.status).map_or("unknown", |s| s.as_str_name());
            return Err(AppError::FailedPrecondition {
                reason: Reason::SubjectNotOnProtocolTherapy.into(),
                message: format!("subject {subject_id} is not on protocol therapy (enrollment status {status})"),
                metadata: vec![("enrollment_status".into(), status.to_owned())],
            });
        }
        Ok(EnrolledSubject {
            trial_id: subject.trial_id,
            arm_code: subject.arm_code,
            site_code: subject.site_code,
        })
    }
}
