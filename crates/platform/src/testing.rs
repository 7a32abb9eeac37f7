//! Test support (feature `testing`): a fresh database per test, on SQLite always and on
//! PostgreSQL when `TRIALOPS_TEST_POSTGRES_URL` is set, and a macro that runs one scenario on
//! both. Tests read that variable but never set any.

use sea_orm::{ConnectionTrait, Database};

pub mod load;

/// The environment variable naming the PostgreSQL server tests use.
pub const POSTGRES_URL_VARIABLE: &str = "TRIALOPS_TEST_POSTGRES_URL";

/// A database backend for a test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A fresh SQLite file in a temporary folder.
    Sqlite,
    /// A fresh database on the PostgreSQL server.
    Postgres,
}

/// A database that exists for one test and is removed afterwards.
pub struct TestDatabase {
    /// Its URL.
    pub url: String,
    /// Which backend.
    pub backend: Backend,
    _dir: Option<tempfile::TempDir>,
    postgres: Option<(String, String)>,
}

/// The URL of database `name` on the server of `server_url`.
pub fn with_database(server_url: &str, name: &str) -> String {
    let (base, query) = server_url.split_once('?').map_or((server_url, ""), |(b, q)| (b, q));
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let root = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    if query.is_empty() {
        format!("{root}/{name}")
    } else {
        format!("{root}/{name}?{query}")
    }
}

impl TestDatabase {
    /// A new, empty database; `None` for PostgreSQL when the variable is not set. Panics when
    /// PostgreSQL is configured but unreachable: a configured backend is never silently skipped.
    pub async fn create(backend: Backend) -> Option<TestDatabase> {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temporary folder: {e}"));
                let url = format!("sqlite://{}?mode=rwc", dir.path().join("test.db").display());
                Some(TestDatabase {
                    url,
                    backend,
                    _dir: Some(dir),
                    postgres: None,
                })
            }
            Backend::Postgres => {
                let server = std::env::var(POSTGRES_URL_VARIABLE).ok().filter(|u| !u.is_empty())?;
                let name = format!("trialops_test_{}", uuid::Uuid::new_v4().simple());
                let admin = Database::connect(&server)
                    .await
                    .unwrap_or_else(|e| panic!("{POSTGRES_URL_VARIABLE} is set but PostgreSQL is unreachable: {e}"));
                admin
                    .execute_unprepared(&format!("CREATE DATABASE {name}"))
                    .await
                    .unwrap_or_else(|e| panic!("cannot create test database: {e}"));
                let _ = admin.close().await;
                let url = with_database(&server, &name);
                Some(TestDatabase {
                    url,
                    backend,
                    _dir: None,
                    postgres: Some((server, name)),
                })
            }
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some((server, name)) = self.postgres.take() else {
            return;
        };
        // Drop runs outside async code: use a short-lived runtime on its own thread.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let admin = Database::connect(&server).await.ok()?;
                admin
                    .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await
                    .ok()?;
                admin.close().await.ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            eprintln!("warning: a test database could not be dropped");
        }
    }
}

/// A fresh PostgreSQL database for a test that only PostgreSQL can run (SQLite's single writer,
/// a proxy between the service and the server); `None`, said on stderr, when
/// `TRIALOPS_TEST_POSTGRES_URL` is not set.
pub async fn postgres_only() -> Option<TestDatabase> {
    let db = TestDatabase::create(Backend::Postgres).await;
    if db.is_none() {
        eprintln!("{POSTGRES_URL_VARIABLE} is not set: a PostgreSQL-only test");
    }
    db
}

/// A service running in the test's runtime.
pub struct RunningServer {
    /// Where it listens.
    pub addr: std::net::SocketAddr,
    /// Cancel to drain and stop it.
    pub shutdown: tokio_util::sync::CancellationToken,
    /// Its task.
    pub handle: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl RunningServer {
    /// Runs a built service.
    pub fn spawn(app: crate::server::Application) -> RunningServer {
        let addr = app.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let shutdown = tokio_util::sync::CancellationToken::new();
        let handle = tokio::spawn(app.run(shutdown.clone()));
        RunningServer { addr, shutdown, handle }
    }

    /// `http://addr`, for clients and dependency URLs.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Drains and stops it; panics if it failed.
    pub async fn stop(self) {
        self.shutdown.cancel();
        let result = self.handle.await.unwrap_or_else(|e| panic!("server task: {e}"));
        result.unwrap_or_else(|e| panic!("server: {e}"));
    }
}

/// The audit log signing key file of this test process's servers (generated once, origin
/// `test.trialops/log`).
pub fn audit_key_file() -> std::path::PathBuf {
    static FILE: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    FILE.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("trialops-test-audit-key")
            .tempdir()
            .unwrap_or_else(|e| panic!("temporary folder: {e}"))
            .keep();
        let path = dir.join("audit-log.key");
        crate::records::log::LogKey::ensure(&path, "test.trialops/log").unwrap_or_else(|e| panic!("{e}"));
        path
    })
    .clone()
}

/// The verifier key of [`audit_key_file`].
pub fn audit_verifier_key() -> String {
    crate::records::log::LogKey::read(&audit_key_file())
        .unwrap_or_else(|e| panic!("{e}"))
        .verifier_key()
        .to_owned()
}

/// Settings for a test server on 127.0.0.1:0 over `database_url`, migrating at start, signing
/// its audit log with [`audit_key_file`].
pub fn settings(database_url: &str) -> crate::Settings {
    crate::Settings {
        listen_addr: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        database_url: Some(database_url.to_owned()),
        migrate_on_start: crate::config::settings::MigrateOnStart::Always,
        audit_signing_key_file: Some(audit_key_file()),
        ..crate::Settings::default()
    }
}

/// The field names of an INVALID_ARGUMENT status (panics on another code).
pub fn violated_fields(status: &tonic::Status) -> Vec<String> {
    use tonic_types::StatusExt;
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    status
        .get_error_details()
        .bad_request()
        .map(|b| b.field_violations.iter().map(|f| f.field.clone()).collect())
        .unwrap_or_default()
}

/// The ErrorInfo reason of a status.
pub fn reason(status: &tonic::Status) -> String {
    use tonic_types::StatusExt;
    status
        .get_error_details()
        .error_info()
        .map(|i| i.reason.clone())
        .unwrap_or_default()
}

/// Asserts that `status` is a refusal with `code` and the ErrorInfo `reason`.
#[track_caller]
pub fn assert_refused(status: &tonic::Status, code: tonic::Code, reason: &str) {
    assert_eq!(
        (status.code(), self::reason(status).as_str()),
        (code, reason),
        "{status:?}"
    );
}

/// An ErrorInfo metadata value of a status.
pub fn metadata(status: &tonic::Status, key: &str) -> String {
    use tonic_types::StatusExt;
    status
        .get_error_details()
        .error_info()
        .and_then(|i| i.metadata.get(key).cloned())
        .unwrap_or_default()
}

/// Issuer of the test tokens.
pub const JWT_ISSUER: &str = "https://idp.hospital.test";

fn jwt_fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// `settings` switched to JWT mode, verifying with the test-only public key.
pub fn jwt_settings(mut settings: crate::Settings) -> crate::Settings {
    settings.auth_mode = crate::config::settings::AuthMode::Jwt;
    settings.jwt_key_file = Some(jwt_fixture("jwt-test-public.pem"));
    settings.jwt_issuer = Some(JWT_ISSUER.to_owned());
    settings
}

/// A token valid for 10 minutes, signed with the test-only private key.
pub fn jwt_token(sub: &str, role: &str, site: Option<&str>) -> String {
    jwt_token_with_header(
        jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256),
        sub,
        role,
        site,
    )
}

/// Like [`jwt_token`] with a JOSE header of the test's choosing (an ES256 one), for tests of
/// header handling such as `crit`.
pub fn jwt_token_with_header(header: jsonwebtoken::Header, sub: &str, role: &str, site: Option<&str>) -> String {
    let now = chrono::Utc::now().timestamp();
    let mut claims =
        serde_json::json!({ "sub": sub, "role": role, "iss": JWT_ISSUER, "aud": "trialops", "exp": now + 600 });
    if let (Some(site), Some(map)) = (site, claims.as_object_mut()) {
        map.insert("site".into(), site.into());
    }
    let pem = std::fs::read(jwt_fixture("jwt-test-private.pem")).unwrap_or_else(|e| panic!("test key: {e}"));
    let key = jsonwebtoken::EncodingKey::from_ec_pem(&pem).unwrap_or_else(|e| panic!("test key: {e}"));
    jsonwebtoken::encode(&header, &claims, &key).unwrap_or_else(|e| panic!("signing: {e}"))
}

/// A token like [`jwt_token`] for a person named `name` who authenticated `minutes_ago` (OpenID
/// Connect `auth_time`; issued now): what an electronic signature needs when recent enough.
pub fn jwt_signing_token(sub: &str, role: &str, site: Option<&str>, name: &str, minutes_ago: i64) -> String {
    let now = chrono::Utc::now().timestamp();
    let mut claims = serde_json::json!({
        "sub": sub, "role": role, "iss": JWT_ISSUER, "aud": "trialops", "exp": now + 600, "iat": now,
        "auth_time": now - minutes_ago * 60, "name": name,
    });
    if let (Some(site), Some(map)) = (site, claims.as_object_mut()) {
        map.insert("site".into(), site.into());
    }
    let pem = std::fs::read(jwt_fixture("jwt-test-private.pem")).unwrap_or_else(|e| panic!("test key: {e}"));
    let key = jsonwebtoken::EncodingKey::from_ec_pem(&pem).unwrap_or_else(|e| panic!("test key: {e}"));
    let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    jsonwebtoken::encode(&header, &claims, &key).unwrap_or_else(|e| panic!("signing: {e}"))
}

/// A request carrying `authorization: Bearer <token>`.
pub fn with_bearer<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    let value = tonic::metadata::MetadataValue::try_from(format!("Bearer {token}")).unwrap_or_else(|e| panic!("{e}"));
    request.metadata_mut().insert("authorization", value);
    request
}

/// One reading of the clock from which a test builds every date and instant it sends, so the
/// test means the same at any time of day: two readings straddle midnight now and then, and an
/// instant "30 hours ago" is two calendar days back in the small hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TestTime {
    now: chrono::DateTime<chrono::Utc>,
}

impl TestTime {
    /// Reads the clock once.
    pub fn now() -> TestTime {
        TestTime {
            now: chrono::Utc::now(),
        }
    }

    /// Reads the clock at least 10 seconds before the next UTC midnight (waiting past midnight
    /// when closer), so a test of a date boundary sees the server on the same calendar day.
    pub async fn away_from_midnight() -> TestTime {
        let now = chrono::Utc::now();
        let midnight = (now.date_naive() + chrono::Duration::days(1))
            .and_time(chrono::NaiveTime::MIN)
            .and_utc();
        let left = midnight - now;
        if left < chrono::Duration::seconds(10) {
            tokio::time::sleep(left.to_std().unwrap_or_default() + std::time::Duration::from_millis(100)).await;
        }
        TestTime::now()
    }

    /// The instant read.
    pub fn instant(&self) -> chrono::DateTime<chrono::Utc> {
        self.now
    }

    /// The UTC calendar date `days` after the reading (negative: before).
    pub fn day(&self, days: i64) -> chrono::NaiveDate {
        self.now.date_naive() + chrono::Duration::days(days)
    }

    /// [`TestTime::day`] as a contract date.
    pub fn date(&self, days: i64) -> Option<trialops_proto::common::v1::Date> {
        Some(crate::wire::convert::to_date(self.day(days)))
    }

    /// The instant `hours` before the reading.
    pub fn hours_ago(&self, hours: i64) -> chrono::DateTime<chrono::Utc> {
        self.now - chrono::Duration::hours(hours)
    }

    /// [`TestTime::hours_ago`] as a contract timestamp.
    pub fn ago(&self, hours: i64) -> Option<prost_types::Timestamp> {
        Some(crate::wire::convert::to_timestamp(self.hours_ago(hours)))
    }

    /// The UTC calendar date of the instant `hours` before the reading.
    pub fn date_hours_ago(&self, hours: i64) -> Option<trialops_proto::common::v1::Date> {
        Some(crate::wire::convert::to_date(self.hours_ago(hours).date_naive()))
    }
}

/// The lines read so far, and whether the stream has closed.
type Printed = (Vec<String>, bool);

/// The lines a child process prints, read as they come on a thread of their own (so the pipe
/// never fills), for tests that learn from a process's output where it listens instead of
/// choosing a port for it.
pub struct OutputLines {
    shared: std::sync::Arc<(std::sync::Mutex<Printed>, std::sync::Condvar)>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl OutputLines {
    /// Starts reading `stream` (a child's stdout or stderr).
    pub fn read(stream: impl std::io::Read + Send + 'static) -> OutputLines {
        use std::io::BufRead;
        let printed: Printed = (Vec::new(), false);
        let shared = std::sync::Arc::new((std::sync::Mutex::new(printed), std::sync::Condvar::new()));
        let writer = shared.clone();
        let reader = std::thread::spawn(move || {
            let (lines, changed) = &*writer;
            for line in std::io::BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                lines
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .0
                    .push(line);
                changed.notify_all();
            }
            lines.lock().unwrap_or_else(std::sync::PoisonError::into_inner).1 = true;
            changed.notify_all();
        });
        OutputLines {
            shared,
            reader: Some(reader),
        }
    }

    /// The first line for which `find` gives a value, waiting up to `limit`; panics with the
    /// output so far when the stream closes or time runs out first.
    pub fn wait_for<T>(&self, limit: std::time::Duration, what: &str, find: impl Fn(&str) -> Option<T>) -> T {
        let (lines, changed) = &*self.shared;
        let deadline = std::time::Instant::now() + limit;
        let mut guard = lines.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        loop {
            if let Some(found) = guard.0.iter().find_map(|l| find(l)) {
                return found;
            }
            let now = std::time::Instant::now();
            if guard.1 || now >= deadline {
                panic!("{what} never printed; the output was:\n{}", guard.0.join("\n"));
            }
            guard = changed
                .wait_timeout(guard, deadline - now)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
    }

    /// Everything printed, once the stream closed (the process exited).
    pub fn all(mut self) -> String {
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        let (lines, _) = &*self.shared;
        lines
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .0
            .join("\n")
    }
}

/// A new client request id.
pub fn request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A throwaway certificate authority for TLS tests: certificates are written as PEM files in a
/// temporary folder that lives as long as the value.
pub struct TestPki {
    dir: tempfile::TempDir,
    issuer: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
}

/// A certificate and key issued by a [`TestPki`].
#[derive(Debug, Clone)]
pub struct TestCert {
    /// PEM certificate file.
    pub cert: std::path::PathBuf,
    /// PEM private key file.
    pub key: std::path::PathBuf,
}

impl TestPki {
    /// A new CA named `name`.
    pub fn new(name: &str) -> TestPki {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temporary folder: {e}"));
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap_or_else(|e| panic!("{e}"));
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, name);
        params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
        let key = rcgen::KeyPair::generate().unwrap_or_else(|e| panic!("{e}"));
        let issuer = rcgen::CertifiedIssuer::self_signed(params, key).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(dir.path().join("ca.crt"), issuer.pem()).unwrap_or_else(|e| panic!("{e}"));
        TestPki { dir, issuer }
    }

    /// The CA certificate file.
    pub fn ca(&self) -> std::path::PathBuf {
        self.dir.path().join("ca.crt")
    }

    /// A certificate valid for `names` (DNS names or IP addresses) for server and client use.
    pub fn issue(&self, file_stem: &str, names: &[&str]) -> TestCert {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = rcgen::CertificateParams::new(names).unwrap_or_else(|e| panic!("{e}"));
        params.extended_key_usages = vec![
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let key = rcgen::KeyPair::generate().unwrap_or_else(|e| panic!("{e}"));
        let cert = params.signed_by(&key, &self.issuer).unwrap_or_else(|e| panic!("{e}"));
        let issued = TestCert {
            cert: self.dir.path().join(format!("{file_stem}.crt")),
            key: self.dir.path().join(format!("{file_stem}.key")),
        };
        std::fs::write(&issued.cert, cert.pem()).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(&issued.key, key.serialize_pem()).unwrap_or_else(|e| panic!("{e}"));
        issued
    }
}

/// `settings` serving TLS with `server`, requesting client certificates from `pki`'s CA mapped
/// by `identities`, and verifying other services with the same CA.
pub fn tls_settings(
    mut settings: crate::Settings,
    pki: &TestPki,
    server: &TestCert,
    identities: &str,
) -> crate::Settings {
    settings.tls_cert_file = Some(server.cert.clone());
    settings.tls_key_file = Some(server.key.clone());
    settings.tls_client_ca_file = Some(pki.ca());
    settings.tls_client_identities = identities.to_owned();
    settings.tls_ca_file = Some(pki.ca());
    settings
}

/// A TLS channel to `https://localhost:<port>` trusting `pki`, presenting `client` if given.
pub async fn tls_channel(
    port: u16,
    pki: &TestPki,
    client: Option<&TestCert>,
) -> Result<tonic::transport::Channel, tonic::transport::Error> {
    use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};
    let read = |p: &std::path::Path| std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read(&pki.ca())));
    if let Some(c) = client {
        tls = tls.identity(Identity::from_pem(read(&c.cert), read(&c.key)));
    }
    Endpoint::from_shared(format!("https://localhost:{port}"))?
        .tls_config(tls)?
        .connect()
        .await
}

/// A gRPC codec that sends and receives message bytes as they are, for hostile-input tests:
/// whatever bytes a test builds reach the server's decoder unchanged.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawCodec;

/// Encoder and decoder of [`RawCodec`].
#[derive(Debug, Clone, Copy, Default)]
pub struct RawBytes;

impl tonic::codec::Encoder for RawBytes {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut tonic::codec::EncodeBuf<'_>) -> Result<(), tonic::Status> {
        prost::bytes::BufMut::put_slice(dst, &item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawBytes {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut tonic::codec::DecodeBuf<'_>) -> Result<Option<Vec<u8>>, tonic::Status> {
        let mut out = vec![0; prost::bytes::Buf::remaining(src)];
        prost::bytes::Buf::copy_to_slice(src, &mut out);
        Ok(Some(out))
    }
}

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawBytes;
    type Decoder = RawBytes;

    fn encoder(&mut self) -> RawBytes {
        RawBytes
    }

    fn decoder(&mut self) -> RawBytes {
        RawBytes
    }
}

/// Calls the unary method at `path` (for example
/// `/trialops.enrollment.v1.EnrollmentService/RegisterSite`) with `body` as the message bytes.
pub async fn raw_call(channel: tonic::transport::Channel, path: &str, body: Vec<u8>) -> Result<Vec<u8>, tonic::Status> {
    let path = http::uri::PathAndQuery::try_from(path).map_err(|e| tonic::Status::invalid_argument(e.to_string()))?;
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    grpc.unary(tonic::Request::new(body), path, RawCodec)
        .await
        .map(tonic::Response::into_inner)
}

/// The audit events a service lists for one record (`entity_type`, `entity_id`), or for all
/// with no record named, through its generated client; `$pb` names the service's proto module
/// (`audit_events!(client, pb, "administration", id)`). With `bearer: token`, the first 500
/// entries, asked with that token.
#[macro_export]
macro_rules! audit_events {
    ($client:expr, $pb:ident, $entity_type:expr, $entity_id:expr, bearer: $token:expr) => {
        $client
            .list_audit_events($crate::testing::with_bearer(
                $pb::ListAuditEventsRequest {
                    entity_type: ($entity_type).into(),
                    entity_id: ($entity_id).into(),
                    page_size: 500,
                    ..Default::default()
                },
                $token,
            ))
            .await
            .unwrap_or_else(|e| panic!("listing audit events: {e}"))
            .into_inner()
            .events
    };
    ($client:expr, $pb:ident) => {
        $crate::audit_events!($client, $pb, "", "")
    };
    ($client:expr, $pb:ident, $entity_type:expr, $entity_id:expr) => {
        $client
            .list_audit_events($pb::ListAuditEventsRequest {
                entity_type: ($entity_type).into(),
                entity_id: ($entity_id).into(),
                ..Default::default()
            })
            .await
            .unwrap_or_else(|e| panic!("listing audit events: {e}"))
            .into_inner()
            .events
    };
}

/// Runs each named scenario `async fn name(backend: Backend)` as two tests, `sqlite::name` and
/// `postgres::name`; the PostgreSQL one says it is skipped when no server is configured.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::testing::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if std::env::var($crate::testing::POSTGRES_URL_VARIABLE).map_or(true, |v| v.is_empty()) {
                        eprintln!("skipped: {} is not set", $crate::testing::POSTGRES_URL_VARIABLE);
                        return;
                    }
                    super::$name($crate::testing::Backend::Postgres).await;
                }
            )*
        }
    };
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn database_names_replace_the_path_and_keep_the_query() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/test", "t1"),
            "postgres://postgres@127.0.0.1:5432/t1"
        );
        assert_eq!(
            with_database("postgres://u:p@h/test?sslmode=disable", "t1"),
            "postgres://u:p@h/t1?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h:5432", "t1"), "postgres://h:5432/t1");
    }
}

/// A TCP proxy a test puts between a service and PostgreSQL to cut and restore the database:
/// [`FaultProxy::cut`] closes every connection and refuses new ones (as a stopped server does),
/// [`FaultProxy::restore`] accepts again.
pub struct FaultProxy {
    addr: std::net::SocketAddr,
    state: std::sync::Arc<ProxyState>,
    accept: tokio::task::JoinHandle<()>,
}

#[derive(Default)]
struct ProxyState {
    cut: std::sync::atomic::AtomicBool,
    connections: std::sync::Mutex<Vec<tokio::task::AbortHandle>>,
}

impl FaultProxy {
    /// A proxy on 127.0.0.1 forwarding to `target` (host:port).
    pub async fn start(target: String) -> FaultProxy {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("proxy: {e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("proxy: {e}"));
        let state = std::sync::Arc::new(ProxyState::default());
        let shared = state.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if shared.cut.load(Ordering::SeqCst) {
                    // A stopped server: the connection is closed at once.
                    drop(inbound);
                    continue;
                }
                let target = target.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                let mut connections = shared
                    .connections
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                connections.retain(|c| !c.is_finished());
                connections.push(task.abort_handle());
            }
        });
        FaultProxy { addr, state, accept }
    }

    /// `url` (a PostgreSQL URL) through the proxy.
    pub fn url(&self, url: &str) -> String {
        let start = url
            .find('@')
            .map_or_else(|| url.find("://").map_or(0, |i| i + 3), |i| i + 1);
        let end = url[start..].find('/').map_or(url.len(), |i| start + i);
        format!("{}{}{}", &url[..start], self.addr, &url[end..])
    }

    /// The database goes away: open connections are closed, new ones refused.
    pub fn cut(&self) {
        self.state.cut.store(true, std::sync::atomic::Ordering::SeqCst);
        let connections = std::mem::take(
            &mut *self
                .state
                .connections
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for connection in connections {
            connection.abort();
        }
    }

    /// The database accepts connections again.
    pub fn restore(&self) {
        self.state.cut.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

/// The host and port of a PostgreSQL URL.
pub fn postgres_address(url: &str) -> String {
    let start = url
        .find('@')
        .map_or_else(|| url.find("://").map_or(0, |i| i + 3), |i| i + 1);
    let end = url[start..].find(['/', '?']).map_or(url.len(), |i| start + i);
    url[start..end].to_owned()
}
