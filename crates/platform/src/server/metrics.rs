//! RPC metrics in Prometheus format on an optional admin port (`metrics_listen_addr`, path
//! `/metrics`): per service and method, requests by gRPC status code
//! (`trialops_rpc_requests_total`; errors are the codes other than 0) and latency
//! (`trialops_rpc_duration_seconds`), refused calls the audit trail could not take
//! (`trialops_refused_calls_not_recorded_total`) and calls refused for want of valid credentials
//! (`trialops_unauthenticated_calls_total`, recorded in the audit trail only per source and
//! minute). The RPC layer records every call.

use std::sync::LazyLock;

use prometheus::{Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry, TextEncoder};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

struct RpcMetrics {
    registry: Registry,
    requests: IntCounterVec,
    duration: HistogramVec,
    refusals_not_recorded: IntCounter,
    unauthenticated: IntCounter,
}

static METRICS: LazyLock<Option<RpcMetrics>> = LazyLock::new(|| {
    let registry = Registry::new();
    let requests = IntCounterVec::new(
        Opts::new(
            "trialops_rpc_requests_total",
            "RPCs served, by service, method and gRPC status code",
        ),
        &["service", "method", "code"],
    )
    .ok()?;
    let buckets = vec![
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ];
    let duration = HistogramVec::new(
        HistogramOpts::new(
            "trialops_rpc_duration_seconds",
            "RPC latency in seconds, by service and method",
        )
        .buckets(buckets),
        &["service", "method"],
    )
    .ok()?;
    let refusals_not_recorded = IntCounter::new(
        "trialops_refused_calls_not_recorded_total",
        "Refused calls not written to the audit trail because its queue was full",
    )
    .ok()?;
    registry.register(Box::new(requests.clone())).ok()?;
    registry.register(Box::new(duration.clone())).ok()?;
    let unauthenticated = IntCounter::new(
        "trialops_unauthenticated_calls_total",
        "Calls refused as UNAUTHENTICATED (no or invalid credentials)",
    )
    .ok()?;
    registry.register(Box::new(refusals_not_recorded.clone())).ok()?;
    registry.register(Box::new(unauthenticated.clone())).ok()?;
    Some(RpcMetrics {
        registry,
        requests,
        duration,
        refusals_not_recorded,
        unauthenticated,
    })
});

/// Records one call.
pub fn observe(service: &str, method: &str, code: i32, seconds: f64) {
    if let Some(m) = METRICS.as_ref() {
        m.requests
            .with_label_values(&[service, method, &code.to_string()])
            .inc();
        m.duration.with_label_values(&[service, method]).observe(seconds);
    }
}

/// Counts one refused call the audit trail could not take.
pub fn refusal_not_recorded() {
    if let Some(m) = METRICS.as_ref() {
        m.refusals_not_recorded.inc();
    }
}

/// Counts one call refused as UNAUTHENTICATED.
pub fn unauthenticated_refused() {
    if let Some(m) = METRICS.as_ref() {
        m.unauthenticated.inc();
    }
}

/// The metrics in Prometheus text format.
pub fn render() -> String {
    let Some(m) = METRICS.as_ref() else {
        return String::new();
    };
    let mut out = Vec::new();
    if let Err(e) = TextEncoder::new().encode(&m.registry.gather(), &mut out) {
        tracing::warn!(error = %e, "encoding metrics");
    }
    String::from_utf8(out).unwrap_or_default()
}

/// Serves `/metrics` on `listener` until `shutdown` is cancelled.
pub async fn serve(listener: TcpListener, shutdown: CancellationToken) {
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(|| async { ([(http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], render()) }),
    );
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
    {
        tracing::error!(error = %e, "metrics port stopped");
    }
}
