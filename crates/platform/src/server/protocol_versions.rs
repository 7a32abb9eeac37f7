//! Which version of a trial's protocol governs a record, for the services that do not record
//! versions themselves (dosing, outcomes): enrollment records them and answers
//! `ListProtocolVersions` and `GetProtocolVersion`; this keeps each definition it parsed by the
//! SHA-256 of its text (the service's own files first) and each trial's version list for the day
//! it was read. An amendment takes effect tomorrow at the earliest, so a list read today answers
//! for today and every earlier date; a later date reads it again.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use chrono::NaiveDate;
use sha2::{Digest, Sha256};
use tonic::transport::Channel;
use trialops_domain::protocol::amendment::{self, Activation};
use trialops_domain::protocol::{self, Protocol};
use trialops_proto::enrollment::v1 as pb;
use trialops_proto::enrollment::v1::enrollment_service_client::EnrollmentServiceClient;

use crate::config::protocols::Source;
use crate::identity::auth::CallContext;
use crate::server::client::{dependency_error, outgoing};
use crate::wire::convert as wire;
use crate::wire::error::AppError;

/// A trial's recorded versions, oldest first.
type Versions = Arc<Vec<pb::ProtocolVersion>>;

/// Protocol versions as enrollment records them, with what was read kept.
#[derive(Clone)]
pub struct ProtocolVersions {
    client: EnrollmentServiceClient<Channel>,
    service: &'static str,
    /// Parsed definitions by the SHA-256 of their text.
    definitions: Arc<Mutex<HashMap<String, Arc<Protocol>>>>,
    /// Per trial, the day its versions were read and the versions.
    versions: Arc<Mutex<HashMap<String, (NaiveDate, Versions)>>>,
}

/// SHA-256 of a definition's text, hex: how versions are told apart.
pub fn digest(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

impl ProtocolVersions {
    /// Versions read from the enrollment service on `channel`, for `service` (named in the
    /// calls it forwards); the definitions `loaded` from the service's files are known already.
    pub fn new(channel: Channel, service: &'static str, loaded: &BTreeMap<String, Source>) -> Self {
        let definitions = loaded.values().map(|s| (digest(&s.text), s.protocol.clone())).collect();
        ProtocolVersions {
            client: EnrollmentServiceClient::new(channel),
            service,
            definitions: Arc::new(Mutex::new(definitions)),
            versions: Arc::default(),
        }
    }

    /// The protocol of `trial_id` in force on `on`.
    pub async fn on(&self, call: &CallContext, trial_id: &str, on: NaiveDate) -> Result<Arc<Protocol>, AppError> {
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
        self.definition(call, trial_id, in_force).await
    }

    /// Version `version` of `trial_id`'s protocol; NOT_FOUND when enrollment records none such.
    pub async fn version(&self, call: &CallContext, trial_id: &str, version: &str) -> Result<Arc<Protocol>, AppError> {
        let today = crate::clock::now().date_naive();
        let mut versions = self.versions(call, trial_id, today).await?;
        if !versions.iter().any(|v| v.version == version) {
            // Recorded since the list was read (an amendment today): read it again.
            self.forget(trial_id);
            versions = self.versions(call, trial_id, today).await?;
        }
        match versions.iter().find(|v| v.version == version) {
            Some(found) => self.definition(call, trial_id, found).await,
            None => Err(AppError::NotFound {
                what: "protocol version",
                id: format!("{trial_id} {version}"),
            }),
        }
    }

    fn forget(&self, trial_id: &str) {
        if let Ok(mut kept) = self.versions.lock() {
            kept.remove(trial_id);
        }
    }

    /// The recorded versions of `trial_id`, as read today (again for a later date).
    async fn versions(&self, call: &CallContext, trial_id: &str, on: NaiveDate) -> Result<Versions, AppError> {
        let today = crate::clock::now().date_naive();
        let kept = self.versions.lock().ok().and_then(|v| v.get(trial_id).cloned());
        if let Some((_, versions)) = kept.filter(|(day, _)| *day == today && on <= today) {
            return Ok(versions);
        }
        let request = outgoing(
            pb::ListProtocolVersionsRequest {
                trial_id: trial_id.to_owned(),
            },
            self.service,
            call,
        );
        let versions = match self.client.clone().list_protocol_versions(request).await {
            Ok(response) => Arc::new(response.into_inner().versions),
            Err(status) if status.code() == tonic::Code::NotFound => {
                return Err(AppError::NotFound {
                    what: "trial",
                    id: trial_id.to_owned(),
                });
            }
            Err(status) => return Err(dependency_error("enrollment", status)),
        };
        if let Ok(mut kept) = self.versions.lock() {
            kept.insert(trial_id.to_owned(), (today, versions.clone()));
        }
        Ok(versions)
    }

    /// The definition of a listed version: known by its hash, or read from enrollment.
    async fn definition(
        &self,
        call: &CallContext,
        trial_id: &str,
        listed: &pb::ProtocolVersion,
    ) -> Result<Arc<Protocol>, AppError> {
        let known = self
            .definitions
            .lock()
            .ok()
            .and_then(|d| d.get(&listed.definition_sha256).cloned());
        if let Some(protocol) = known {
            return Ok(protocol);
        }
        let request = outgoing(
            pb::GetProtocolVersionRequest {
                trial_id: trial_id.to_owned(),
                version: listed.version.clone(),
            },
            self.service,
            call,
        );
        let text = match self.client.clone().get_protocol_version(request).await {
            Ok(response) => response.into_inner().definition,
            Err(status) => return Err(dependency_error("enrollment", status)),
        };
        let parsed = protocol::load(&text).map_err(|e| {
            AppError::internal(anyhow::anyhow!(
                "protocol {trial_id} {} from enrollment: {e}",
                listed.version
            ))
        })?;
        let parsed = Arc::new(parsed);
        if let Ok(mut d) = self.definitions.lock() {
            d.insert(listed.definition_sha256.clone(), parsed.clone());
        }
        Ok(parsed)
    }
}
