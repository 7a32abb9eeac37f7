//! Settings: defaults → optional TOML file → `TRIALOPS_*` environment variables.
//!
//! The environment comes in as a map so tests inject it instead of mutating the process
//! environment; `main` passes `std::env::vars()`. Every key is documented in the README's
//! settings table, and the environment variable of key `database_url` is
//! `TRIALOPS_DATABASE_URL`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// Settings shared by every trialops service. A service's own keys (where dosing and outcomes
/// reach the services they call) are in its own section type, read from the same sources with
/// [`Sources::section`].
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Address the gRPC server binds, for example `127.0.0.1:50051` or `0.0.0.0:50051`.
    pub listen_addr: SocketAddr,
    /// Optional plaintext address serving only gRPC health (for kubelet probes when the main
    /// port needs TLS or credentials), for example `0.0.0.0:8081`.
    pub health_listen_addr: Option<SocketAddr>,
    /// Optional address serving Prometheus metrics at `/metrics`, for example `0.0.0.0:9090`.
    pub metrics_listen_addr: Option<SocketAddr>,
    /// Database URL: `postgres://…` in production; empty for the embedded SQLite default,
    /// a file `<data_dir>/<service>.db`.
    pub database_url: Option<String>,
    /// File holding the database URL (a mounted Kubernetes Secret), used when `database_url`
    /// is not set; surrounding whitespace is ignored.
    pub database_url_file: Option<PathBuf>,
    /// Folder for embedded SQLite files and, locally, the development randomization secret.
    pub data_dir: PathBuf,
    /// Largest database connection pool.
    pub database_max_connections: u32,
    /// Longest a call waits for a database connection before it answers UNAVAILABLE, ms (the
    /// database unreachable, or every connection busy).
    pub database_acquire_timeout_ms: u64,
    /// Run database migrations at start: `auto` (yes on SQLite, no on PostgreSQL, where the
    /// `migrate` subcommand runs them once, as a Kubernetes Job), `always` or `never`.
    pub migrate_on_start: MigrateOnStart,
    /// Log line format: `text` or `json`.
    pub log_format: LogFormat,
    /// Log filter, `tracing` directive syntax, for example `info` or `info,trialops=debug`.
    pub log_level: String,
    /// Largest gRPC message accepted or sent, bytes.
    pub max_message_bytes: usize,
    /// Connections are closed (gracefully) after this many seconds, so long-lived gRPC
    /// connections spread over new replicas.
    pub max_connection_age_seconds: u64,
    /// After SIGTERM, health reports NOT_SERVING for this many seconds before the server stops
    /// accepting calls, so load balancers and kubelet see it first.
    pub drain_delay_seconds: u64,
    /// After the drain delay, in-flight calls get this many seconds to finish.
    pub shutdown_grace_seconds: u64,
    /// Folder of additional protocol definition files (`*.toml`) beside the bundled ones.
    pub protocol_dir: Option<PathBuf>,
    /// How callers are authenticated: `development` (default) or `jwt`.
    pub auth_mode: AuthMode,
    /// JWT: signature algorithm, `ES256`, `RS256` or (development only) `HS256`.
    pub jwt_algorithm: String,
    /// JWT: PEM public key file (ES256, RS256) or secret file (HS256).
    pub jwt_key_file: Option<PathBuf>,
    /// JWT: required issuer (`iss`).
    pub jwt_issuer: Option<String>,
    /// JWT: required audience (`aud`).
    pub jwt_audience: String,
    /// JWT: clock skew tolerated on `exp` and `nbf`, seconds.
    pub jwt_leeway_seconds: u64,
    /// Electronic signatures: how long ago, at most, the signer authenticated (minutes).
    pub signature_max_auth_age_minutes: u32,
    /// Deadline of each call to another trialops service, milliseconds.
    pub dependency_timeout_ms: u64,
    /// TLS: PEM certificate chain of this service. With `tls_key_file`, the gRPC port speaks
    /// only TLS, and calls to other services present it as the client certificate.
    pub tls_cert_file: Option<PathBuf>,
    /// TLS: PEM private key of `tls_cert_file`.
    pub tls_key_file: Option<PathBuf>,
    /// Mutual TLS: PEM CA bundle that client certificates must chain to. Callers with a
    /// certificate from it are identified by `tls_client_identities`.
    pub tls_client_ca_file: Option<PathBuf>,
    /// Mutual TLS: refuse the TLS handshake of a client without a certificate from
    /// `tls_client_ca_file` (otherwise a bearer token alone is enough).
    pub tls_require_client_cert: bool,
    /// Mutual TLS: which certificate names act in which role, comma-separated
    /// `name=role` or `name=role@site`, for example
    /// `dosing.trialops.svc=service,his.cog-101.example=site_coordinator@COG-101`. The name must
    /// be a DNS name the certificate is valid for.
    pub tls_client_identities: String,
    /// TLS: PEM CA bundle that other trialops services' certificates must chain to; calls to
    /// their `https://…` URLs (a service's own settings name them) use TLS with it.
    pub tls_ca_file: Option<PathBuf>,
    /// Serve a non-loopback `listen_addr` without TLS or without verified authentication.
    /// Never in production: clinical data would cross the network unprotected.
    pub insecure_expose_unprotected: bool,
    /// Calls handled at once by one replica; beyond it calls are refused at once with
    /// RESOURCE_EXHAUSTED (retryable) instead of queueing.
    pub max_in_flight_calls: usize,
    /// Concurrent HTTP/2 streams (calls) one connection may open.
    pub max_concurrent_streams: u32,
    /// Longest any call may run, seconds (a caller's shorter deadline wins).
    pub request_timeout_seconds: u64,
    /// Origins whose browser pages may call the API over gRPC-Web (CORS), comma-separated, for
    /// example `https://tools.hospital.example`; empty: none. gRPC-Web itself is always served
    /// on the gRPC port; this only lets pages of other origins use it.
    pub grpc_web_allowed_origins: String,
    /// How often a WatchEvents subscriber that has every event so far looks for new ones, ms.
    pub watch_poll_interval_ms: u64,
    /// How long an event may wait for a WatchEvents subscriber that does not read (its buffer
    /// full) before its stream ends with SUBSCRIBER_TOO_SLOW, ms.
    pub watch_slow_subscriber_ms: u64,
    /// Events a WatchEvents subscriber may leave unread in the server's buffer.
    pub watch_buffer_events: usize,
    /// File holding the audit log's Ed25519 signing key (`trialops audit keygen` writes one; a
    /// Kubernetes Secret in production). Required with PostgreSQL; with the embedded database a
    /// key is generated once into `<data_dir>/<service>-audit-log.key`.
    pub audit_signing_key_file: Option<PathBuf>,
    /// How often the sequencer gives committed audit entries their position in the log, ms.
    pub audit_integrate_interval_ms: u64,
    /// How often a new checkpoint is signed when the log grew, seconds.
    pub audit_checkpoint_interval_seconds: u64,
}

/// How callers are authenticated.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AuthMode {
    /// Trust the x-trialops-* identity headers (local development only; verifies nothing).
    Development,
    /// Verify bearer JWTs (signature, issuer, audience, expiry, not-before).
    Jwt,
}

/// When migrations run at start.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum MigrateOnStart {
    /// On SQLite only.
    Auto,
    /// Always.
    Always,
    /// Never; the service refuses to start if migrations are pending.
    Never,
}

/// Log line format.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, with the trace id.
    Json,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            listen_addr: SocketAddr::from(([127, 0, 0, 1], 50051)),
            health_listen_addr: None,
            metrics_listen_addr: None,
            database_url: None,
            database_url_file: None,
            data_dir: PathBuf::from("./data"),
            database_max_connections: 10,
            database_acquire_timeout_ms: 3000,
            migrate_on_start: MigrateOnStart::Auto,
            log_format: LogFormat::Text,
            log_level: "info".to_owned(),
            max_message_bytes: 4 * 1024 * 1024,
            max_connection_age_seconds: 300,
            drain_delay_seconds: 0,
            shutdown_grace_seconds: 20,
            protocol_dir: None,
            auth_mode: AuthMode::Development,
            jwt_algorithm: "ES256".to_owned(),
            jwt_key_file: None,
            jwt_issuer: None,
            jwt_audience: "trialops".to_owned(),
            jwt_leeway_seconds: 30,
            signature_max_auth_age_minutes: 5,
            dependency_timeout_ms: 5000,
            tls_cert_file: None,
            tls_key_file: None,
            tls_client_ca_file: None,
            tls_require_client_cert: false,
            tls_client_identities: String::new(),
            tls_ca_file: None,
            insecure_expose_unprotected: false,
            max_in_flight_calls: 512,
            max_concurrent_streams: 128,
            request_timeout_seconds: 60,
            grpc_web_allowed_origins: String::new(),
            watch_poll_interval_ms: 250,
            watch_slow_subscriber_ms: 30_000,
            watch_buffer_events: 256,
            audit_signing_key_file: None,
            audit_integrate_interval_ms: 50,
            audit_checkpoint_interval_seconds: 60,
        }
    }
}

/// Where settings come from: the optional TOML file and the `TRIALOPS_*` environment. A service
/// reads its own section from the same sources, so one file and one environment configure it.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    file: Option<PathBuf>,
    env: HashMap<String, String>,
}

impl Sources {
    /// The file (if any) and the environment (only its `TRIALOPS_*` variables are read).
    pub fn new(file: Option<&Path>, env: impl IntoIterator<Item = (String, String)>) -> Sources {
        Sources {
            file: file.map(Path::to_owned),
            env: env.into_iter().filter(|(k, _)| k.starts_with("TRIALOPS_")).collect(),
        }
    }

    fn config(&self, default_port: u16) -> Result<::config::Config, SettingsError> {
        let mut builder = ::config::Config::builder()
            .set_default("listen_addr", format!("127.0.0.1:{default_port}"))
            .map_err(|e| SettingsError(e.to_string()))?;
        if let Some(path) = &self.file {
            builder = builder.add_source(
                ::config::File::from(path.as_path())
                    .format(::config::FileFormat::Toml)
                    .required(true),
            );
        }
        builder
            .add_source(
                ::config::Environment::with_prefix("TRIALOPS")
                    .prefix_separator("_")
                    .try_parsing(true)
                    .source(Some(self.env.clone().into_iter().collect())),
            )
            .build()
            .map_err(|e| SettingsError(e.to_string()))
    }

    /// A service's own settings: its keys from the file and the environment (the environment
    /// variable of key `enrollment_url` is `TRIALOPS_ENROLLMENT_URL`), defaults for the rest.
    pub fn section<T: serde::de::DeserializeOwned>(&self) -> Result<T, SettingsError> {
        self.config(0)?
            .try_deserialize()
            .map_err(|e| SettingsError(e.to_string()))
    }
}

/// Settings could not be loaded; the message names the key or file.
#[derive(Debug, thiserror::Error)]
#[error("settings: {0}")]
pub struct SettingsError(String);

impl Settings {
    /// Loads settings for a service whose default port is `default_port`: defaults, then the
    /// file (if given), then `TRIALOPS_*` variables from `env`.
    pub fn load(
        default_port: u16,
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Settings, SettingsError> {
        let config = Sources::new(file, env).config(default_port)?;
        let mut settings: Settings = config.try_deserialize().map_err(|e| SettingsError(e.to_string()))?;
        if settings.database_url.is_none()
            && let Some(path) = &settings.database_url_file
        {
            let url = std::fs::read_to_string(path)
                .map_err(|e| SettingsError(format!("database_url_file {}: {e}", path.display())))?;
            settings.database_url = Some(url.trim().to_owned());
        }
        settings.check()?;
        Ok(settings)
    }

    fn check(&self) -> Result<(), SettingsError> {
        if self.database_max_connections == 0 {
            return Err(SettingsError("database_max_connections must be at least 1".into()));
        }
        if self.max_message_bytes < 1024 {
            return Err(SettingsError("max_message_bytes must be at least 1024".into()));
        }
        if let Some(url) = &self.database_url
            && !(url.starts_with("postgres://") || url.starts_with("postgresql://") || url.starts_with("sqlite:"))
        {
            return Err(SettingsError(
                "database_url must start with postgres://, postgresql:// or sqlite:".into(),
            ));
        }
        if self.tls_cert_file.is_some() != self.tls_key_file.is_some() {
            return Err(SettingsError("tls_cert_file and tls_key_file go together".into()));
        }
        if self.tls_client_ca_file.is_some() && self.tls_cert_file.is_none() {
            return Err(SettingsError(
                "tls_client_ca_file needs tls_cert_file and tls_key_file (mutual TLS is TLS)".into(),
            ));
        }
        if self.tls_require_client_cert && self.tls_client_ca_file.is_none() {
            return Err(SettingsError("tls_require_client_cert needs tls_client_ca_file".into()));
        }
        if !self.tls_client_identities.trim().is_empty() && self.tls_client_ca_file.is_none() {
            return Err(SettingsError("tls_client_identities needs tls_client_ca_file".into()));
        }
        if self.max_in_flight_calls == 0 || self.max_concurrent_streams == 0 || self.request_timeout_seconds == 0 {
            return Err(SettingsError(
                "max_in_flight_calls, max_concurrent_streams and request_timeout_seconds must be at least 1".into(),
            ));
        }
        if self.watch_poll_interval_ms == 0 || self.watch_slow_subscriber_ms == 0 || self.watch_buffer_events == 0 {
            return Err(SettingsError(
                "watch_poll_interval_ms, watch_slow_subscriber_ms and watch_buffer_events must be at least 1".into(),
            ));
        }
        if !(1..=1440).contains(&self.signature_max_auth_age_minutes) {
            return Err(SettingsError(
                "signature_max_auth_age_minutes must be 1 to 1440 (a day)".into(),
            ));
        }
        self.web_origins()?;
        self.check_exposure()
    }

    /// The origins of `grpc_web_allowed_origins`, each `scheme://host[:port]`.
    pub fn web_origins(&self) -> Result<Vec<String>, SettingsError> {
        let origins: Vec<String> = self
            .grpc_web_allowed_origins
            .split(',')
            .map(str::trim)
            .filter(|o| !o.is_empty())
            .map(str::to_owned)
            .collect();
        for origin in &origins {
            let well_formed = origin.split_once("://").is_some_and(|(scheme, rest)| {
                matches!(scheme, "http" | "https") && !rest.is_empty() && !rest.contains(['/', '?', '#', ' ', '*'])
            });
            if !well_formed {
                return Err(SettingsError(format!(
                    "grpc_web_allowed_origins: {origin:?} is not an origin like https://tools.hospital.example"
                )));
            }
        }
        Ok(origins)
    }

    /// Whether the gRPC port speaks TLS.
    pub fn tls_enabled(&self) -> bool {
        self.tls_cert_file.is_some() && self.tls_key_file.is_some()
    }

    /// Refuses to serve a non-loopback address without TLS and verified authentication, unless
    /// `insecure_expose_unprotected` says so. (The health and metrics ports carry no clinical
    /// data and are exempt.)
    pub fn check_exposure(&self) -> Result<(), SettingsError> {
        if self.listen_addr.ip().is_loopback() || self.insecure_expose_unprotected {
            return Ok(());
        }
        let mut missing = Vec::new();
        if !self.tls_enabled() {
            missing.push("TLS (tls_cert_file, tls_key_file)");
        }
        if self.auth_mode == AuthMode::Development {
            missing.push("verified authentication (auth_mode = jwt)");
        }
        if missing.is_empty() {
            return Ok(());
        }
        Err(SettingsError(format!(
            "listen_addr {} is not a loopback address and {} is not configured; configure it, or set \
             TRIALOPS_INSECURE_EXPOSE_UNPROTECTED=true to expose clinical data unprotected (never in production)",
            self.listen_addr,
            missing.join(" and ")
        )))
    }

    /// Longest a call may run.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_seconds)
    }

    /// How WatchEvents serves its subscribers.
    pub fn watch(&self) -> crate::records::watch::Options {
        crate::records::watch::Options {
            poll_interval: Duration::from_millis(self.watch_poll_interval_ms),
            slow_after: Duration::from_millis(self.watch_slow_subscriber_ms),
            buffer: self.watch_buffer_events,
            ..Default::default()
        }
    }

    /// How the audit log is sequenced and checkpointed.
    pub fn audit_log(&self) -> crate::records::log::Schedule {
        crate::records::log::Schedule {
            integrate_every: Duration::from_millis(self.audit_integrate_interval_ms.max(1)),
            checkpoint_every: Duration::from_secs(self.audit_checkpoint_interval_seconds.max(1)),
        }
    }

    /// Deadline of calls to other trialops services.
    pub fn dependency_timeout(&self) -> Duration {
        Duration::from_millis(self.dependency_timeout_ms)
    }

    /// Connection age limit.
    pub fn max_connection_age(&self) -> Duration {
        Duration::from_secs(self.max_connection_age_seconds)
    }
}

#[cfg(test)]
mod tests {

    #[derive(Debug, Default, serde::Deserialize, PartialEq)]
    #[serde(default)]
    struct OwnSection {
        enrollment_url: String,
        dependency_timeout_ms: u64,
    }

    #[test]
    fn a_service_reads_its_own_section_from_the_same_file_and_environment() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let file = dir.path().join("dosing.toml");
        std::fs::write(
            &file,
            "enrollment_url = \"http://file:1\"\ndependency_timeout_ms = 900\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let from_file: OwnSection = Sources::new(Some(&file), env(&[]))
            .section()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(from_file.enrollment_url, "http://file:1");
        // The environment overrides the file, key by key; other services' variables are ignored.
        let overridden: OwnSection = Sources::new(
            Some(&file),
            env(&[
                ("TRIALOPS_ENROLLMENT_URL", "https://enrollment:50051"),
                ("OTHER_ENROLLMENT_URL", "x"),
            ]),
        )
        .section()
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            overridden,
            OwnSection {
                enrollment_url: "https://enrollment:50051".into(),
                dependency_timeout_ms: 900
            }
        );
        let empty: OwnSection = Sources::default().section().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(empty, OwnSection::default());
    }

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn defaults_use_the_service_port_and_embedded_sqlite() {
        let s = Settings::load(50052, None, env(&[("PATH", "/bin")])).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            s.listen_addr,
            "127.0.0.1:50052".parse().unwrap_or_else(|_| unreachable!())
        );
        assert_eq!(s.database_url, None);
        assert_eq!(s.migrate_on_start, MigrateOnStart::Auto);
    }

    #[test]
    fn environment_overrides_the_file_which_overrides_defaults() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let file = dir.path().join("settings.toml");
        std::fs::write(
            &file,
            "log_format = \"json\"\nmax_message_bytes = 2048\ndrain_delay_seconds = 3\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let s = Settings::load(
            50051,
            Some(&file),
            env(&[
                ("TRIALOPS_DRAIN_DELAY_SECONDS", "7"),
                ("TRIALOPS_DATABASE_URL", "postgres://db/x"),
                ("TRIALOPS_LISTEN_ADDR", "127.0.0.1:6000"),
                ("TRIALOPS_MIGRATE_ON_START", "never"),
            ]),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.log_format, LogFormat::Json);
        assert_eq!(s.max_message_bytes, 2048);
        assert_eq!(s.drain_delay_seconds, 7);
        assert_eq!(s.database_url.as_deref(), Some("postgres://db/x"));
        assert_eq!(s.listen_addr.port(), 6000);
        assert_eq!(s.migrate_on_start, MigrateOnStart::Never);
    }

    #[test]
    fn the_database_url_can_come_from_a_file() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let file = dir.path().join("url");
        std::fs::write(&file, "postgres://db/enrollment\n").unwrap_or_else(|e| panic!("{e}"));
        let path = file.display().to_string();
        let s = Settings::load(50051, None, env(&[("TRIALOPS_DATABASE_URL_FILE", path.as_str())]))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.database_url.as_deref(), Some("postgres://db/enrollment"));
        let missing = Settings::load(50051, None, env(&[("TRIALOPS_DATABASE_URL_FILE", "/nonexistent/url")]));
        assert!(
            missing
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
                .contains("database_url_file")
        );
    }

    #[test]
    fn a_non_loopback_address_needs_tls_and_verified_authentication_or_the_loud_flag() {
        let refused = |pairs: &[(&str, &str)]| {
            Settings::load(50051, None, env(pairs))
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        let plain = refused(&[("TRIALOPS_LISTEN_ADDR", "0.0.0.0:50051")]);
        assert!(plain.contains("TLS (tls_cert_file, tls_key_file)"), "{plain}");
        assert!(plain.contains("auth_mode = jwt"), "{plain}");
        assert!(plain.contains("TRIALOPS_INSECURE_EXPOSE_UNPROTECTED"), "{plain}");

        // TLS without verified callers is refused too, and so is verification without TLS.
        let tls_only = refused(&[
            ("TRIALOPS_LISTEN_ADDR", "10.0.0.5:50051"),
            ("TRIALOPS_TLS_CERT_FILE", "/tls/tls.crt"),
            ("TRIALOPS_TLS_KEY_FILE", "/tls/tls.key"),
        ]);
        assert!(
            tls_only.contains("auth_mode = jwt") && !tls_only.contains("tls_cert_file,"),
            "{tls_only}"
        );
        let jwt_only = refused(&[("TRIALOPS_LISTEN_ADDR", "0.0.0.0:50051"), ("TRIALOPS_AUTH_MODE", "jwt")]);
        assert!(
            jwt_only.contains("TLS (") && !jwt_only.contains("auth_mode = jwt"),
            "{jwt_only}"
        );

        let both = Settings::load(
            50051,
            None,
            env(&[
                ("TRIALOPS_LISTEN_ADDR", "0.0.0.0:50051"),
                ("TRIALOPS_AUTH_MODE", "jwt"),
                ("TRIALOPS_TLS_CERT_FILE", "/tls/tls.crt"),
                ("TRIALOPS_TLS_KEY_FILE", "/tls/tls.key"),
            ]),
        );
        assert!(both.is_ok(), "{:?}", both.err());
        let flagged = Settings::load(
            50051,
            None,
            env(&[
                ("TRIALOPS_LISTEN_ADDR", "0.0.0.0:50051"),
                ("TRIALOPS_INSECURE_EXPOSE_UNPROTECTED", "true"),
            ]),
        );
        assert!(flagged.is_ok(), "{:?}", flagged.err());
        let loopback = Settings::load(50051, None, env(&[("TRIALOPS_LISTEN_ADDR", "[::1]:50051")]));
        assert!(loopback.is_ok(), "{:?}", loopback.err());
    }

    #[test]
    fn tls_settings_must_be_complete() {
        let err = |pairs: &[(&str, &str)]| {
            Settings::load(50051, None, env(pairs))
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        assert!(err(&[("TRIALOPS_TLS_CERT_FILE", "/tls/tls.crt")]).contains("tls_key_file"));
        assert!(err(&[("TRIALOPS_TLS_CLIENT_CA_FILE", "/tls/ca.crt")]).contains("tls_client_ca_file needs"));
        assert!(err(&[("TRIALOPS_TLS_REQUIRE_CLIENT_CERT", "true")]).contains("tls_require_client_cert"));
        assert!(err(&[("TRIALOPS_TLS_CLIENT_IDENTITIES", "dosing=service")]).contains("tls_client_identities"));
        for bad in [
            "*",
            "tools.hospital.example",
            "https://tools.example/path",
            "ftp://tools.example",
        ] {
            let message = err(&[("TRIALOPS_GRPC_WEB_ALLOWED_ORIGINS", bad)]);
            assert!(message.contains("grpc_web_allowed_origins"), "{bad}: {message}");
        }
    }

    #[test]
    fn bad_values_name_the_key() {
        let err = Settings::load(50051, None, env(&[("TRIALOPS_DRAIN_DELAY_SECONDS", "soon")]))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("drain_delay_seconds"), "{err}");
        let err = Settings::load(50051, None, env(&[("TRIALOPS_DATABASE_URL", "mysql://x")]))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("database_url"), "{err}");
    }
}
