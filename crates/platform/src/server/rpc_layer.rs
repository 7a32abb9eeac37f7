//! The tower layer in front of every trialops service: it continues the caller's W3C trace,
//! opens the RPC span (OpenTelemetry RPC conventions), authenticates the caller and attaches a
//! [`CallContext`]. Health checks pass without credentials (kubelet probes carry none).
//!
//! It also sheds load (RESOURCE_EXHAUSTED beyond `max_in_flight_calls`, never queueing) and
//! hands every refused call (UNAUTHENTICATED, PERMISSION_DENIED) to the audit trail.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{HeaderMap, Request, Response};
use opentelemetry::propagation::Extractor;
use opentelemetry::trace::TraceContextExt;
use tower::{Layer, Service};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use tokio::sync::Semaphore;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};

use crate::identity::auth::{Authenticator, CallContext, Principal};
use crate::identity::tls::ClientIdentities;
use crate::records::refusals::{Refusal, RefusalRecorder, is_refusal};
use crate::wire::error::AppError;

/// Reads W3C trace context from request metadata.
struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// The trace id of an incoming `traceparent` header (used when no OpenTelemetry exporter runs).
fn trace_id_of(headers: &HeaderMap) -> Option<String> {
    let value = headers.get("traceparent")?.to_str().ok()?;
    let mut parts = value.split('-');
    let (_version, trace_id) = (parts.next()?, parts.next()?);
    let valid = trace_id.len() == 32 && trace_id.bytes().all(|b| b.is_ascii_hexdigit()) && trace_id != "0".repeat(32);
    valid.then(|| trace_id.to_ascii_lowercase())
}

/// What the RPC layer applies to every call of a server.
#[derive(Clone)]
pub struct RpcLayer {
    authenticator: Arc<dyn Authenticator>,
    identities: Arc<ClientIdentities>,
    in_flight: Arc<Semaphore>,
    refusals: Option<RefusalRecorder>,
    clock: crate::clock::Clock,
    dispatch: Option<tracing::Dispatch>,
}

impl RpcLayer {
    /// A layer authenticating bearer credentials with `authenticator` and verified client
    /// certificates with `identities`, serving at most `max_in_flight` calls at once, and
    /// recording refused calls with `refusals`.
    pub fn new(
        authenticator: Arc<dyn Authenticator>,
        identities: ClientIdentities,
        max_in_flight: usize,
        refusals: Option<RefusalRecorder>,
    ) -> Self {
        RpcLayer {
            authenticator,
            identities: Arc::new(identities),
            in_flight: Arc::new(Semaphore::new(max_in_flight)),
            refusals,
            clock: crate::clock::Clock::system(),
            dispatch: None,
        }
    }

    /// The layer tracing and logging every call with `dispatch` instead of the process's global
    /// subscriber (several services in one process each name themselves in their traces).
    pub fn with_dispatch(mut self, dispatch: Option<tracing::Dispatch>) -> Self {
        self.dispatch = dispatch;
        self
    }

    /// The layer running every call on `clock` (what `clock::now` reads in the handlers).
    pub fn with_clock(mut self, clock: crate::clock::Clock) -> Self {
        self.clock = clock;
        self
    }
}

impl<S> Layer<S> for RpcLayer {
    type Service = RpcService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RpcService {
            inner,
            config: self.clone(),
        }
    }
}

/// See [`RpcLayer`].
#[derive(Clone)]
pub struct RpcService<S> {
    inner: S,
    config: RpcLayer,
}

type BoxFuture<T, E> = Pin<Box<dyn std::future::Future<Output = Result<T, E>> + Send>>;

/// The principal of a verified client certificate on this connection, if it is mapped.
fn certificate_principal<B>(request: &Request<B>, identities: &ClientIdentities) -> Option<Principal> {
    if identities.is_empty() {
        return None;
    }
    let certs = request
        .extensions()
        .get::<TlsConnectInfo<TcpConnectInfo>>()?
        .peer_certs()?;
    identities.identify(&certs)
}

/// The address a call came from (plain TCP or TLS), when the transport tells.
fn peer_ip<B>(request: &Request<B>) -> Option<std::net::IpAddr> {
    let extensions = request.extensions();
    let tcp = extensions
        .get::<TcpConnectInfo>()
        .or_else(|| extensions.get::<TlsConnectInfo<TcpConnectInfo>>().map(|t| t.get_ref()))?;
    tcp.remote_addr().map(|a| a.ip())
}

/// What to do with a call, decided before the service sees it.
enum Admission {
    Admit(CallContext),
    Refuse(tonic::Status, Option<Principal>),
}

impl RpcLayer {
    fn admit<B>(&self, request: &Request<B>, path: &str, method: &str, trace_id: &str) -> Admission {
        let headers = request.headers();
        let certificate = certificate_principal(request, &self.identities);
        let has_bearer = headers.contains_key(crate::identity::auth::AUTHORIZATION_HEADER);
        // A system calling with only its certificate acts as itself; with a bearer token it acts
        // for the token's principal.
        let (principal, verified, via) = match certificate {
            Some(system) if !has_bearer => (system, true, None),
            certificate => match self.authenticator.authenticate(headers) {
                Ok(principal) => (
                    principal,
                    self.authenticator.enforces_policy(),
                    certificate.map(|c| c.subject),
                ),
                Err(err) => return Admission::Refuse(err.into(), None),
            },
        };
        // A path no trialops server serves is answered UNIMPLEMENTED by the router, once the
        // caller is authenticated; the policy speaks only of methods that exist.
        if verified && crate::identity::policy::is_known(path) && !crate::identity::policy::allows(path, principal.role)
        {
            let status =
                AppError::PermissionDenied(format!("the {} role may not call {method}", principal.role.as_str()))
                    .into();
            return Admission::Refuse(status, Some(principal));
        }
        // Verified site-bound callers see only their site; without a site claim they can see
        // nothing, so they are refused here.
        let site_scope = if verified && principal.role.is_site_bound() {
            match principal.site.clone() {
                Some(site) => Some(site),
                None => {
                    let status =
                        AppError::PermissionDenied(format!("the {} role needs a site claim", principal.role.as_str()))
                            .into();
                    return Admission::Refuse(status, Some(principal));
                }
            }
        } else {
            None
        };
        let credentials = headers
            .get(crate::identity::auth::AUTHORIZATION_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Admission::Admit(CallContext {
            principal,
            trace_id: trace_id.to_owned(),
            credentials,
            site_scope,
            via,
        })
    }

    fn record_refusal(
        &self,
        path: &str,
        principal: Option<Principal>,
        trace_id: &str,
        status: &tonic::Status,
        source: Option<std::net::IpAddr>,
    ) {
        if let Some(recorder) = &self.refusals {
            recorder.record(Refusal {
                path: path.to_owned(),
                principal,
                trace_id: trace_id.to_owned(),
                code: status.code(),
                message: status.message().to_owned(),
                source,
            });
        }
    }
}

impl<S, B> Service<Request<B>> for RpcService<S>
where
    S: Service<Request<B>, Response = Response<tonic::body::Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<S::Response, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        use tracing::instrument::WithSubscriber;
        match self.config.dispatch.clone() {
            None => self.handle(request),
            Some(dispatch) => {
                let answer = tracing::dispatcher::with_default(&dispatch, || self.handle(request));
                Box::pin(answer.with_subscriber(dispatch))
            }
        }
    }
}

impl<S> RpcService<S> {
    /// The call, traced by the current subscriber.
    fn handle<B>(&mut self, mut request: Request<B>) -> BoxFuture<S::Response, S::Error>
    where
        S: Service<Request<B>, Response = Response<tonic::body::Body>> + Clone + Send + 'static,
        S::Future: Send + 'static,
        B: Send + 'static,
    {
        // The clone is ready-checked by tower's contract only for `self.inner`; swap it in.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);

        let started = std::time::Instant::now();
        let path = request.uri().path().to_owned();
        // Metrics and spans name only methods that exist: a caller cannot mint labels.
        let (service, method) = if crate::identity::policy::is_known(&path) {
            path.trim_start_matches('/')
                .split_once('/')
                .unwrap_or(("unknown", "unknown"))
        } else {
            ("unknown", "unknown")
        };
        let span = tracing::info_span!(
            "rpc",
            otel.name = %format!("{service}/{method}"),
            otel.kind = "server",
            otel.status_code = tracing::field::Empty,
            rpc.system = "grpc",
            rpc.service = %service,
            rpc.method = %method,
            rpc.grpc.status_code = tracing::field::Empty,
            db.statements = tracing::field::Empty,
            enduser.role = tracing::field::Empty,
            trace_id = tracing::field::Empty,
        );
        let parent = opentelemetry::global::get_text_map_propagator(|p| p.extract(&HeaderExtractor(request.headers())));
        // Without an OpenTelemetry layer there is nothing to parent; that is not an error.
        let _ = span.set_parent(parent);

        let otel_trace = span.context().span().span_context().trace_id();
        let trace_id = if otel_trace == opentelemetry::trace::TraceId::INVALID {
            trace_id_of(request.headers()).unwrap_or_default()
        } else {
            otel_trace.to_string()
        };
        if !trace_id.is_empty() {
            // Every log line of the call (JSON logs include the current span) names its trace.
            span.record("trace_id", trace_id.as_str());
        }

        let answer_now = |status: tonic::Status| -> BoxFuture<S::Response, S::Error> {
            span.record("rpc.grpc.status_code", status.code() as i32);
            span.record("otel.status_code", "ERROR");
            crate::server::metrics::observe(service, method, status.code() as i32, started.elapsed().as_secs_f64());
            Box::pin(async move { Ok(status.into_http()) })
        };

        let is_health = service == "grpc.health.v1.Health";
        let mut principal = None;
        if !is_health {
            match self.config.admit(&request, &path, method, &trace_id) {
                Admission::Admit(call) => {
                    span.record("enduser.role", call.principal.role.as_str());
                    principal = Some(call.principal.clone());
                    request.extensions_mut().insert(call);
                }
                Admission::Refuse(status, who) => {
                    if let Some(p) = &who {
                        span.record("enduser.role", p.role.as_str());
                    }
                    self.config
                        .record_refusal(&path, who, &trace_id, &status, peer_ip(&request));
                    return answer_now(status);
                }
            }
        }
        // Shed load rather than queue it: a caller retries elsewhere or later.
        let permit = if is_health {
            None
        } else {
            match self.config.in_flight.clone().try_acquire_owned() {
                Ok(permit) => Some(permit),
                Err(_) => {
                    return answer_now(tonic::Status::resource_exhausted(
                        "the service is at its limit of calls in flight (max_in_flight_calls); retry with backoff",
                    ));
                }
            }
        };

        let record_span = span.clone();
        let source = peer_ip(&request);
        let (service, method) = (service.to_owned(), method.to_owned());
        let config = self.config.clone();
        let clock = self.config.clock.clone();
        Box::pin(
            crate::clock::scope(clock, async move {
                let (response, statements) = crate::records::database::counting_statements(inner.call(request)).await;
                let response = response?;
                drop(permit);
                record_span.record("db.statements", statements);
                crate::server::metrics::observe_statements(&service, &method, statements);
                // Unary errors are trailers-only responses with grpc-status in the headers;
                // a success carries it in the trailers, so no header means OK.
                let code = response
                    .headers()
                    .get("grpc-status")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<i32>().ok())
                    .unwrap_or(0);
                record_span.record("rpc.grpc.status_code", code);
                crate::server::metrics::observe(&service, &method, code, started.elapsed().as_secs_f64());
                if code != 0 {
                    record_span.record("otel.status_code", "ERROR");
                }
                let code = tonic::Code::from_i32(code);
                if is_refusal(code) {
                    let message = tonic::Status::from_header_map(response.headers())
                        .map(|s| s.message().to_owned())
                        .unwrap_or_default();
                    let status = tonic::Status::new(code, message);
                    config.record_refusal(&path, principal, &trace_id, &status, source);
                }
                Ok(response)
            })
            .instrument(span),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::auth::DevelopmentAuthenticator;

    fn grpc_status(response: &Response<tonic::body::Body>) -> Option<String> {
        response
            .headers()
            .get("grpc-status")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }

    #[tokio::test]
    async fn calls_beyond_the_in_flight_limit_are_shed_and_health_never_is() {
        let release = Arc::new(tokio::sync::Notify::new());
        let inner = {
            let release = release.clone();
            // ListSites waits for a release; everything else answers at once.
            tower::service_fn(move |request: Request<()>| {
                let release = release.clone();
                let waits = request.uri().path().ends_with("/ListSites");
                async move {
                    if waits {
                        release.notified().await;
                    }
                    Ok::<_, std::convert::Infallible>(Response::new(tonic::body::Body::empty()))
                }
            })
        };
        let mut service =
            RpcLayer::new(Arc::new(DevelopmentAuthenticator), ClientIdentities::default(), 1, None).layer(inner);
        let call = |path: &str| {
            Request::builder()
                .uri(format!("http://localhost{path}"))
                .body(())
                .unwrap_or_else(|e| panic!("{e}"))
        };
        const LIST: &str = "/trialops.enrollment.v1.EnrollmentService/ListSites";

        let first = tokio::spawn(service.call(call(LIST)));
        tokio::task::yield_now().await;
        // The only slot is taken: the next call is answered at once, without reaching the
        // service.
        let shed = service.call(call(LIST)).await.unwrap_or_else(|e| match e {});
        assert_eq!(grpc_status(&shed).as_deref(), Some("8"), "RESOURCE_EXHAUSTED");
        // Health passes (kubelet must see a busy replica alive).
        let health = service
            .call(call("/grpc.health.v1.Health/Check"))
            .await
            .unwrap_or_else(|e| match e {});
        assert_eq!(grpc_status(&health), None);

        release.notify_one();
        let first = first
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|e| match e {});
        assert_eq!(grpc_status(&first), None);
        // The slot is free again.
        let after = service
            .call(call("/trialops.enrollment.v1.EnrollmentService/ListTrials"))
            .await
            .unwrap_or_else(|e| match e {});
        assert_eq!(grpc_status(&after), None);
    }

    #[test]
    fn trace_ids_come_from_valid_traceparent_headers_only() {
        let mut h = HeaderMap::new();
        assert_eq!(trace_id_of(&h), None);
        h.insert(
            "traceparent",
            http::HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        );
        assert_eq!(trace_id_of(&h).as_deref(), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
        h.insert(
            "traceparent",
            http::HeaderValue::from_static("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
        );
        assert_eq!(trace_id_of(&h), None);
        h.insert("traceparent", http::HeaderValue::from_static("garbage"));
        assert_eq!(trace_id_of(&h), None);
    }
}
