//! What every trialops service shares, grouped by concern:
//! - `server`: the server bootstrap (health, reflection, limits, graceful shutdown), the RPC
//!   layer, metrics, telemetry, calls to other services, the service binaries' command line;
//! - `identity`: authentication and the access policy;
//! - `records`: database, audit trail, refused calls, idempotency;
//! - `wire`: conversions, the error mapping, pagination;
//! - `config`: settings, protocol definitions, private files;
//! - `clock`: the services' clock; `testing` (feature): the test support.
//!
//! None of it knows a service.

pub mod clock;
pub mod config;
pub mod identity;
pub mod records;
pub mod server;
#[cfg(feature = "testing")]
pub mod testing;
pub mod wire;

pub use config::settings::Settings;
pub use wire::error::{AppError, Violation, Violations};
