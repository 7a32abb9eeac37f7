//! The trialops enrollment service: trials, sites, eligibility screening, consent and
//! concealed stratified randomization over gRPC (`trialops.enrollment.v1.EnrollmentService`).

mod api;
pub mod error;
mod fhir;
pub mod secret;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;
pub mod trials;

use std::sync::Arc;

use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use tonic::service::Routes;
use trialops_platform::server::{Application, ServiceRoutes};
use trialops_platform::{Settings, records::database};
use trialops_proto::enrollment::v1::enrollment_service_server::EnrollmentServiceServer;

pub use store::Migrator;
use trials::Trials;

/// Service name: database file, telemetry service name.
pub const SERVICE_NAME: &str = "enrollment";
/// Default gRPC port.
pub const DEFAULT_PORT: u16 = 50051;
/// Fully qualified gRPC service name.
pub const GRPC_SERVICE: &str = "trialops.enrollment.v1.EnrollmentService";

/// What a caller may replace when building the service (tests, the all-in-one binary).
#[derive(Default)]
pub struct Options {
    /// What any service lets a caller replace: the authenticator and the clock.
    pub server: trialops_platform::server::Options,
    /// The randomization master secret, instead of loading it per the settings.
    pub randomization_secret: Option<Vec<u8>>,
}

/// Enrollment's own settings, beside the shared ones.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default)]
pub struct Config {
    /// File holding the randomization master secret, at least 32 bytes
    /// (`TRIALOPS_RANDOMIZATION_SECRET_FILE`); required with PostgreSQL.
    pub randomization_secret_file: Option<std::path::PathBuf>,
}

/// Connects and migrates the database, loads the trials and binds the listen address.
pub async fn build(settings: Settings, config: Config, options: Options) -> anyhow::Result<Application> {
    let db = database::open::<Migrator>(&settings, SERVICE_NAME).await?;
    let secret = match options.randomization_secret {
        Some(secret) => secret,
        None => secret::load(&settings, config.randomization_secret_file.as_deref())?,
    };
    let trials = Arc::new(Trials::load(settings.protocol_dir.as_deref(), &secret)?);
    check_trial_keys(&db, &trials).await?;
    trials.record_first_versions(&db).await?;

    let trail =
        trialops_platform::records::log::Trail::load(&settings, SERVICE_NAME, options.server.audit_key.clone())?
            .with_records(api::RECORDS)
            .with_training_trials(trials.all().map(|t| t.protocol.as_ref()));
    let signing = trialops_platform::records::signature::Signing::from_settings(&settings);
    let api = api::EnrollmentApi::new(db.clone(), trials, trail.clone(), signing);
    let limit = settings.max_message_bytes;
    let server = EnrollmentServiceServer::new(api)
        .max_decoding_message_size(limit)
        .max_encoding_message_size(limit);
    Application::bind(
        ServiceRoutes::one(Routes::new(server), GRPC_SERVICE).with_fhir(fhir::EnrollmentFhir),
        settings,
        db,
        options.server,
    )
    .await
    .map(|app| app.with_trail(trail))
}

/// Refuses to start when a trial's stored key fingerprint differs from the loaded secret's: a
/// changed secret would silently break every stratum's block balance.
async fn check_trial_keys(db: &DatabaseConnection, trials: &Trials) -> anyhow::Result<()> {
    for trial in trials.all() {
        let stored = store::trial_key::Entity::find()
            .filter(store::trial_key::Column::TrialId.eq(trial.protocol.trial.id.as_str()))
            .one(db)
            .await?;
        if let Some(stored) = stored
            && stored.fingerprint != trial.key.fingerprint()
        {
            anyhow::bail!(
                "the randomization secret is not the one trial {} started with (fingerprint {} stored); \
                 restore the original secret",
                trial.protocol.trial.id,
                stored.fingerprint
            );
        }
    }
    Ok(())
}
