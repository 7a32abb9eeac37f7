//! The trialops dosing-schedule service: treatment plans, cycle doses from body surface area,
//! cycle-start criteria, dose modifications and administrations over gRPC
//! (`trialops.dosing.v1.DosingService`). Subjects' arms and statuses come from enrollment.

mod api;
pub mod enrollment;
pub mod error;
mod fhir;
pub mod store;

use tonic::service::Routes;
use trialops_platform::server::{Application, ServiceRoutes};
use trialops_platform::{Settings, config::protocols, records::database};
use trialops_proto::dosing::v1::dosing_service_server::DosingServiceServer;

pub use store::Migrator;

/// Service name: database file, telemetry service name.
pub const SERVICE_NAME: &str = "dosing";
/// Default gRPC port.
pub const DEFAULT_PORT: u16 = 50052;
/// Fully qualified gRPC service name.
pub const GRPC_SERVICE: &str = "trialops.dosing.v1.DosingService";

/// What a caller may replace when building the service.
pub use trialops_platform::server::Options;

/// Dosing's own settings, beside the shared ones.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(default)]
pub struct Config {
    /// Where dosing reaches enrollment (`TRIALOPS_ENROLLMENT_URL`).
    pub enrollment_url: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            enrollment_url: "http://127.0.0.1:50051".to_owned(),
        }
    }
}

/// Connects and migrates the database, loads the protocols and binds the listen address.
pub async fn build(settings: Settings, config: Config, options: Options) -> anyhow::Result<Application> {
    let db = database::open::<Migrator>(&settings, SERVICE_NAME).await?;
    let sources = protocols::load_sources(settings.protocol_dir.as_deref())?;
    for (trial_id, source) in &sources {
        store::cycle::fill_in_version(&db, trial_id, &source.protocol.trial.protocol_version).await?;
    }
    let enrollment = enrollment::Enrollment::new(&settings, &config.enrollment_url, &sources)?;
    let trail = trialops_platform::records::log::Trail::load(&settings, SERVICE_NAME, options.audit_key.clone())?
        .with_records(api::RECORDS)
        .with_training_trials(sources.values().map(|s| s.protocol.as_ref()));
    let api = api::DosingApi::new(db.clone(), enrollment, trail.clone());
    let limit = settings.max_message_bytes;
    let server = DosingServiceServer::new(api)
        .max_decoding_message_size(limit)
        .max_encoding_message_size(limit);
    Application::bind(
        ServiceRoutes::one(Routes::new(server), GRPC_SERVICE).with_fhir(fhir::DosingFhir),
        settings,
        db,
        options,
    )
    .await
    .map(|app| app.with_trail(trail))
}
