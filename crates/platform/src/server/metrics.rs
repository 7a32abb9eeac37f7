//! RPC metrics in Prometheus format on an optional admin port (`metrics_listen_addr`, path
//! `/metrics`): per service and method, requests by gRPC status code
//! (`trialops_rpc_requests_total`; errors are the codes other than 0) and latency
//! (`trialops_rpc_duration_seconds`), SQL statements per call (`trialops_rpc_database_statements`:
//! each write's round trips to the database, which bound its throughput), the writes committed
//! together per transaction (`trialops_write_batch_size`), refused calls the audit trail could not take
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
    statements: HistogramVec,
    batches: prometheus::Histogram,
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
    let statements = HistogramVec::new(
        HistogramOpts::new(
            "trialops_rpc_database_statements",
            "SQL statements an RPC sent to the database (transaction control not counted), by service and method",
        )
        .buckets(vec![
            0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 10.0, 12.0, 16.0, 24.0, 32.0, 64.0, 128.0,
        ]),
        &["service", "method"],
    )
    .ok()?;
    let batches = prometheus::Histogram::with_opts(
        HistogramOpts::new(
            "trialops_write_batch_size",
            "Writes committed together in one transaction (a trial's enrollments)",
        )
        .buckets(vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0]),
    )
    .ok()?;
    let refusals_not_recorded = IntCounter::new(
        "trialops_refused_calls_not_recorded_total",
        "Refused calls not written to the audit trail because its queue was full",
    )
    .ok()?;
    registry.register(Box::new(requests.clone())).ok()?;
    registry.register(Box::new(duration.clone())).ok()?;
    registry.register(Box::new(statements.clone())).ok()?;
    registry.register(Box::new(batches.clone())).ok()?;
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
        statements,
        batches,
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

/// Records the SQL statements one call sent.
pub fn observe_statements(service: &str, method: &str, statements: u64) {
    if let Some(m) = METRICS.as_ref() {
        m.statements
            .with_label_values(&[service, method])
            .observe(statements as f64);
    }
}

/// Records the size of one batch of writes committed together.
pub fn observe_batch(writes: usize) {
    if let Some(m) = METRICS.as_ref() {
        m.batches.observe(writes as f64);
    }
}

/// Batches of writes committed together so far, and the writes in them.
pub fn batches() -> (u64, u64) {
    METRICS.as_ref().map_or((0, 0), |m| {
        (m.batches.get_sample_count(), m.batches.get_sample_sum() as u64)
    })
}

/// The SQL statements of one method's calls served by this process so far.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct StatementFigures {
    /// Fully qualified gRPC service.
    pub service: String,
    /// Method, for example `EnrollSubject`.
    pub method: String,
    /// Calls served.
    pub calls: u64,
    /// Statements those calls sent.
    pub statements: u64,
    /// The smallest bucket bound no call exceeded: every call sent at most this many statements.
    pub at_most: u64,
    /// Calls with at most `n` statements, per bucket bound `n`, ascending.
    #[serde(skip)]
    pub buckets: Vec<(u64, u64)>,
}

impl StatementFigures {
    /// The figures of the calls since `earlier` (the same method's figures read before).
    pub fn since(&self, earlier: &StatementFigures) -> StatementFigures {
        let before = |bound: u64| earlier.buckets.iter().find(|(b, _)| *b == bound).map_or(0, |(_, n)| *n);
        let buckets: Vec<(u64, u64)> = self.buckets.iter().map(|(b, n)| (*b, n - before(*b))).collect();
        let calls = self.calls - earlier.calls;
        StatementFigures {
            calls,
            statements: self.statements - earlier.statements,
            at_most: smallest_bound(&buckets, calls),
            buckets,
            ..self.clone()
        }
    }
}

fn smallest_bound(buckets: &[(u64, u64)], calls: u64) -> u64 {
    buckets
        .iter()
        .find(|(_, n)| *n >= calls)
        .map_or(u64::MAX, |(bound, _)| *bound)
}

/// Every method's statement figures, by service and method.
pub fn statements_by_method() -> Vec<StatementFigures> {
    use prometheus::core::Collector;
    let Some(m) = METRICS.as_ref() else {
        return Vec::new();
    };
    let mut figures = Vec::new();
    for family in m.statements.collect() {
        for metric in family.get_metric() {
            let label = |name: &str| {
                metric
                    .get_label()
                    .iter()
                    .find(|l| l.name() == name)
                    .map(|l| l.value().to_owned())
                    .unwrap_or_default()
            };
            let histogram = metric.get_histogram();
            let buckets: Vec<(u64, u64)> = histogram
                .get_bucket()
                .iter()
                .map(|b| (b.upper_bound() as u64, b.cumulative_count()))
                .collect();
            let calls = histogram.get_sample_count();
            figures.push(StatementFigures {
                service: label("service"),
                method: label("method"),
                calls,
                statements: histogram.get_sample_sum() as u64,
                at_most: smallest_bound(&buckets, calls),
                buckets,
            });
        }
    }
    figures.sort_by(|a, b| (&a.service, &a.method).cmp(&(&b.service, &b.method)));
    figures
}

/// The statement figures of `method` (of the first service, by name, that has a method so named).
pub fn statements_of(method: &str) -> StatementFigures {
    statements_by_method()
        .into_iter()
        .find(|f| f.method == method)
        .unwrap_or_else(|| StatementFigures {
            method: method.to_owned(),
            ..Default::default()
        })
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
