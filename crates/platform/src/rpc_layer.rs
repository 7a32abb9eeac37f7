//! The tower layer in front of every trialops service: it continues the caller's W3C trace,
//! opens the RPC span (OpenTelemetry RPC conventions), authenticates the caller and attaches a
//! [`CallContext`]. Health checks pass without credentials (kubelet probes carry none).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{HeaderMap, Request, Response};
use opentelemetry::propagation::Extractor;
use opentelemetry::trace::TraceContextExt;
use tower::{Layer, Service};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::auth::{Authenticator, CallContext};
use crate::error::AppError;

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

/// Layer that wraps a service with [`RpcService`].
#[derive(Clone)]
pub struct RpcLayer {
    authenticator: Arc<dyn Authenticator>,
}

impl RpcLayer {
    /// A layer authenticating with `authenticator`.
    pub fn new(authenticator: Arc<dyn Authenticator>) -> Self {
        RpcLayer { authenticator }
    }
}

impl<S> Layer<S> for RpcLayer {
    type Service = RpcService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RpcService {
            inner,
            authenticator: self.authenticator.clone(),
        }
    }
}

/// See [`RpcLayer`].
#[derive(Clone)]
pub struct RpcService<S> {
    inner: S,
    authenticator: Arc<dyn Authenticator>,
}

type BoxFuture<T, E> = Pin<Box<dyn std::future::Future<Output = Result<T, E>> + Send>>;

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

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        // The clone is ready-checked by tower's contract only for `self.inner`; swap it in.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);

        let started = std::time::Instant::now();
        let path = request.uri().path().to_owned();
        let (service, method) = path
            .trim_start_matches('/')
            .split_once('/')
            .unwrap_or((path.as_str(), ""));
        let span = tracing::info_span!(
            "rpc",
            otel.name = %format!("{service}/{method}"),
            otel.kind = "server",
            otel.status_code = tracing::field::Empty,
            rpc.system = "grpc",
            rpc.service = %service,
            rpc.method = %method,
            rpc.grpc.status_code = tracing::field::Empty,
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
        let is_health = service == "grpc.health.v1.Health";
        if !is_health {
            match self.authenticator.authenticate(request.headers()) {
                Ok(principal)
                    if self.authenticator.enforces_policy() && !crate::policy::allows(&path, principal.role) =>
                {
                    span.record("enduser.role", principal.role.as_str());
                    let status: tonic::Status = AppError::PermissionDenied(format!(
                        "the {} role may not call {method}",
                        principal.role.as_str()
                    ))
                    .into();
                    span.record("rpc.grpc.status_code", status.code() as i32);
                    crate::metrics::observe(service, method, status.code() as i32, started.elapsed().as_secs_f64());
                    return Box::pin(async move { Ok(status.into_http()) });
                }
                Ok(principal) => {
                    span.record("enduser.role", principal.role.as_str());
                    let credentials = request
                        .headers()
                        .get(crate::auth::AUTHORIZATION_HEADER)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    // Verified site-bound callers see only their site; without a site claim they
                    // can see nothing, so they are refused here.
                    let site_scope = if self.authenticator.enforces_policy() && principal.role.is_site_bound() {
                        match principal.site.clone() {
                            Some(site) => Some(site),
                            None => {
                                let status: tonic::Status = AppError::PermissionDenied(format!(
                                    "the {} role needs a site claim",
                                    principal.role.as_str()
                                ))
                                .into();
                                span.record("rpc.grpc.status_code", status.code() as i32);
                                return Box::pin(async move { Ok(status.into_http()) });
                            }
                        }
                    } else {
                        None
                    };
                    request.extensions_mut().insert(CallContext {
                        principal,
                        trace_id,
                        credentials,
                        site_scope,
                    });
                }
                Err(err) => {
                    let status: tonic::Status = err.into();
                    span.record("rpc.grpc.status_code", status.code() as i32);
                    crate::metrics::observe(service, method, status.code() as i32, started.elapsed().as_secs_f64());
                    return Box::pin(async move { Ok(status.into_http()) });
                }
            }
        }

        let record_span = span.clone();
        let (service, method) = (service.to_owned(), method.to_owned());
        Box::pin(
            async move {
                let response = inner.call(request).await?;
                // Unary errors are trailers-only responses with grpc-status in the headers;
                // a success carries it in the trailers, so no header means OK.
                let code = response
                    .headers()
                    .get("grpc-status")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<i32>().ok())
                    .unwrap_or(0);
                record_span.record("rpc.grpc.status_code", code);
                crate::metrics::observe(&service, &method, code, started.elapsed().as_secs_f64());
                if code != 0 {
                    record_span.record("otel.status_code", "ERROR");
                }
                Ok(response)
            }
            .instrument(span),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
