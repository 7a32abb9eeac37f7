//! What every trialops service shares: settings, telemetry, the server bootstrap (health,
//! reflection, limits, graceful shutdown), the RPC layer and the principal seam, database
//! connection and migrations, idempotency, the audit trail, pagination, wire conversions and
//! the one error → `tonic::Status` mapping.

pub mod audit;
pub mod auth;
pub mod cli;
pub mod client;
pub mod clock;
pub mod convert;
pub mod database;
pub mod devkeys;
pub mod error;
pub mod idempotency;
pub mod metrics;
pub mod pagination;
pub mod policy;
pub mod private_files;
pub mod protocols;
pub mod refusals;
pub mod rpc_layer;
pub mod server;
pub mod settings;
pub mod store;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tls;

pub use error::{AppError, Violation, Violations};
pub use settings::Settings;
