//! The trialops outcomes service: response assessments (revised INRC), adverse events with
//! expedited-reporting deadlines, follow-up, and the trial's endpoint statistics over gRPC
//! (`trialops.outcomes.v1.OutcomesService`). Subjects come from enrollment, exposure from dosing.

pub mod analysis;
mod api;
pub mod deps;
pub mod error;
mod export;
mod fhir;
pub mod store;

use std::sync::Arc;

use tonic::service::Routes;
use trialops_platform::server::{Application, ServiceRoutes};
use trialops_platform::{Settings, config::protocols, records::database};
use trialops_proto::outcomes::v1::outcomes_service_server::OutcomesServiceServer;

pub use store::Migrator;

/// Service name: database file, telemetry service name.
pub const SERVICE_NAME: &str = "outcomes";
/// Default gRPC port.
pub const DEFAULT_PORT: u16 = 50053;
/// Fully qualified gRPC service name.
pub const GRPC_SERVICE: &str = "trialops.outcomes.v1.OutcomesService";

/// What a caller may replace when building the service.
pub use trialops_platform::server::Options;

/// Outcomes' own settings, beside the shared ones.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(default)]
pub struct Config {
    /// Where outcomes reaches enrollment (`TRIALOPS_ENROLLMENT_URL`).
    pub enrollment_url: String,
    /// Where outcomes reaches dosing (`TRIALOPS_DOSING_URL`).
    pub dosing_url: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            enrollment_url: "http://127.0.0.1:50051".to_owned(),
            dosing_url: "http://127.0.0.1:50052".to_owned(),
        }
    }
}

/// Connects and migrates the database, loads the protocols and binds the listen address.
pub async fn build(settings: Settings, config: Config, options: Options) -> anyhow::Result<Application> {
    let db = database::open::<Migrator>(&settings, SERVICE_NAME).await?;
    let sources = protocols::load_sources(settings.protocol_dir.as_deref())?;
    let protocols = Arc::new(sources.iter().map(|(id, s)| (id.clone(), s.protocol.clone())).collect());
    let deps = deps::Dependencies::new(&settings, &config, &sources)?;
    let trail = trialops_platform::records::log::Trail::load(&settings, SERVICE_NAME, options.audit_key.clone())?
        .with_records(api::RECORDS)
        .with_training_trials(sources.values().map(|s| s.protocol.as_ref()));
    let signing = trialops_platform::records::signature::Signing::from_settings(&settings);
    let api = api::OutcomesApi::new(db.clone(), protocols, deps, trail.clone(), signing);
    let limit = settings.max_message_bytes;
    let server = OutcomesServiceServer::new(api)
        .max_decoding_message_size(limit)
        .max_encoding_message_size(limit);
    Application::bind(
        ServiceRoutes::one(Routes::new(server), GRPC_SERVICE).with_fhir(fhir::OutcomesFhir),
        settings,
        db,
        options,
    )
    .await
    .map(|app| app.with_trail(trail))
}
