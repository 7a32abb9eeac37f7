//! What dosing asks enrollment (over gRPC, never its tables): a subject's trial, arm, site and
//! whether they are on protocol therapy, and which version of the trial's protocol is in force
//! on a date (enrollment records the versions; dosing keeps each definition it parsed, by hash).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use chrono::NaiveDate;
use sha2::{Digest, Sha256};
use tonic::transport::Channel;
use trialops_domain::protocol::amendment::{self, Activation};
use trialops_domain::protocol::{self, Protocol};
use trialops_platform::config::protocols::Source;
use trialops_platform::identity::auth::CallContext;
use trialops_platform::server::client::{dependency_error, lazy_channel, outgoing};
use trialops_platform::wire::convert as wire;
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

/// A trial's recorded protocol versions, oldest first.
type Versions = Arc<Vec<pb::ProtocolVersion>>;

/// The enrollment service client.
#[derive(Clone)]
pub struct Enrollment {
    client: EnrollmentServiceClient<Channel>,
    /// Parsed definitions by the SHA-256 of their text: the loaded files first.
    definitions: Arc<Mutex<HashMap<String, Arc<Protocol>>>>,
    /// Per trial, the day its versions were read and the versions. An amendment takes effect
    /// tomorrow at the earliest, so a list read today answers for today and every earlier date.
    versions: Arc<Mutex<HashMap<String, (NaiveDate, Versions)>>>,
}

impl Enrollment {
    /// A client for the configured enrollment URL (connects on first use), knowing the
    /// definitions this service loaded.
    pub fn new(settings: &Settings, enrollment_url: &str, loaded: &BTreeMap<String, Source>) -> anyhow::Result<Self> {
        let channel = lazy_channel(enrollment_url, settings)?;
        let definitions = loaded
            .values()
            .map(|s| (hex::encode(Sha256::digest(s.text.as_bytes())), s.protocol.clone()))
            .collect();
        Ok(Enrollment {
            client: EnrollmentServiceClient::new(channel),
            definitions: Arc::new(Mutex::new(definitions)),
            versions: Arc::default(),
        })
    }

    /// The recorded versions of `trial_id`, as read today (again for a later date).
    async fn versions(&self, call: &CallContext, trial_id: &str, on: NaiveDate) -> Result<Versions, AppError> {
        let today = trialops_platform::clock::now().date_naive();
        let kept = self.versions.lock().ok().and_then(|v| v.get(trial_id).cloned());
        if let Some((_, versions)) = kept.filter(|(day, _)| *day == today && on <= today) {
            return Ok(versions);
        }
        let request = outgoing(
            pb::ListProtocolVersionsRequest {
                trial_id: trial_id.to_owned(),
            },
            crate::SERVICE_NAME,
            call,
        );
        let versions = match self.client.clone().list_protocol_versions(request).await {
            Ok(response) => Arc::new(response.into_inner().versions),
            Err(status) => return Err(dependency_error("enrollment", status)),
        };
        if let Ok(mut kept) = self.versions.lock() {
            kept.insert(trial_id.to_owned(), (today, versions.clone()));
        }
        Ok(versions)
    }

    /// The protocol of `trial_id` in force on `on`, as enrollment records its versions.
    pub async fn protocol_on(
        &self,
        call: &CallContext,
        trial_id: &str,
        on: NaiveDate,
    ) -> Result<Arc<Protocol>, AppError> {
        let versions = self.versions(call, trial_id, on).await?;
        let activations: Vec<Activation> = versions
            .iter()
            .map(|v| Activation {
                version: v.version.clone(),
                effective_on: v
                    .effective_on
                    .as_ref()
                    .and_then(|d| wire::date("effective_on", Some(d)).ok()),
            })
            .collect();
        let in_force = amendment::in_force_on(&activations, on)
            .and_then(|a| versions.iter().find(|v| v.version == a.version))
            .ok_or_else(|| {
                AppError::internal(anyhow::anyhow!(
                    "enrollment records no protocol version of trial {trial_id}"
                ))
            })?;
        let known = self
            .definitions
            .lock()
            .ok()
            .and_then(|d| d.get(&in_force.definition_sha256).cloned());
        if let Some(protocol) = known {
            return Ok(protocol);
        }
        let request = outgoing(
            pb::GetProtocolVersionRequest {
                trial_id: trial_id.to_owned(),
                version: in_force.version.clone(),
            },
            crate::SERVICE_NAME,
            call,
        );
        let text = match self.client.clone().get_protocol_version(request).await {
            Ok(response) => response.into_inner().definition,
            Err(status) => return Err(dependency_error("enrollment", status)),
        };
        let parsed = protocol::load(&text).map_err(|e| {
            AppError::internal(anyhow::anyhow!(
                "protocol {trial_id} {} from enrollment: {e}",
                in_force.version
            ))
        })?;
        let parsed = Arc::new(parsed);
        if let Ok(mut d) = self.definitions.lock() {
            d.insert(in_force.definition_sha256.clone(), parsed.clone());
        }
        Ok(parsed)
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
