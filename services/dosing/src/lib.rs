//! The trialops dosing-schedule service: treatment plans, cycle doses from body surface area,
//! cycle-start criteria, dose modifications and administrations over gRPC
//! (`trialops.dosing.v1.DosingService`). Subjects' arms and statuses come from enrollment.

mod api;
pub mod enrollment;
pub mod error;
pub mod store;

use std::sync::Arc;

use tonic::service::Routes;
use trialops_platform::auth::{self, Authenticator};
use trialops_platform::server::{Application, ServiceRoutes};
use trialops_platform::{Settings, database, protocols};
use trialops_proto::dosing::v1::dosing_service_server::DosingServiceServer;

pub use store::Migrator;

/// Service name: database file, telemetry service name.
pub const SERVICE_NAME: &str = "dosing";
/// Default gRPC port.
pub const DEFAULT_PORT: u16 = 50052;
/// Fully qualified gRPC service name.
pub const GRPC_SERVICE: &str = "trialops.dosing.v1.DosingService";

/// What a caller may replace when building the service.
#[derive(Default)]
pub struct Options {
    /// The authenticator, instead of the development one.
    pub authenticator: Option<Arc<dyn Authenticator>>,
}

/// Connects and migrates the database, loads the protocols and binds the listen address.
pub async fn build(settings: Settings, options: Options) -> anyhow::Result<Application> {
    let db = database::connect(&settings, SERVICE_NAME).await?;
    database::prepare::<Migrator>(&db, &settings).await?;
    let protocols = Arc::new(protocols::load(settings.protocol_dir.as_deref())?);
    let enrollment = enrollment::Enrollment::new(&settings)?;
    let api = api::DosingApi::new(db.clone(), protocols, enrollment);
    let server = DosingServiceServer::new(api)
        .max_decoding_message_size(settings.max_message_bytes)
        .max_encoding_message_size(settings.max_message_bytes);
    let service = ServiceRoutes {
        routes: Routes::new(server),
        names: vec![GRPC_SERVICE],
    };
    let authenticator = match options.authenticator {
        Some(a) => a,
        None => auth::from_settings(&settings)?,
    };
    Application::bind(service, settings, authenticator, db).await
}
