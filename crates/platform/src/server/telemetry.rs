//! Logs and traces for every service: `tracing` log lines (text or JSON, each inside its RPC
//! span so JSON lines carry the trace id), and OTLP trace export when the standard
//! `OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` variables are set.
//! W3C trace context is the propagation format. SQL statement logging stays off.

use std::collections::HashMap;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::settings::{LogFormat, Settings};

/// Keeps the trace pipeline alive; dropping it flushes pending spans.
#[must_use = "dropping the guard stops trace export"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(e) = provider.shutdown()
        {
            eprintln!("trace export shutdown: {e}");
        }
    }
}

/// Whether the standard variables ask for OTLP trace export.
pub fn otlp_requested(env: &HashMap<String, String>) -> bool {
    ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]
        .iter()
        .any(|k| env.get(*k).is_some_and(|v| !v.trim().is_empty()))
        && env.get("OTEL_SDK_DISABLED").is_none_or(|v| v != "true")
}

/// Installs the global subscriber and propagator. Call once, inside the tokio runtime (the
/// OTLP exporter's gRPC client needs it). `env` is the process environment.
pub fn init(service_name: &str, settings: &Settings, env: &HashMap<String, String>) -> anyhow::Result<Telemetry> {
    opentelemetry::global::set_text_map_propagator(opentelemetry_sdk::propagation::TraceContextPropagator::new());
    let (subscriber, provider) = pipeline(service_name, settings, env)?;
    if let Some(p) = &provider {
        opentelemetry::global::set_tracer_provider(p.clone());
    }
    subscriber.try_init()?;
    if provider.is_some() {
        tracing::info!("exporting traces over OTLP");
    }
    Ok(Telemetry { provider })
}

/// A subscriber of its own for one service of several in a process (`trialops up`), when traces
/// are exported: its spans carry `service_name` as the service (OTLP resource), as they would
/// from the service's own deployment. `None` when nothing is exported (the global subscriber
/// then logs for every service). Keep the guard as long as the service runs.
pub fn service_dispatch(
    service_name: &str,
    settings: &Settings,
    env: &HashMap<String, String>,
) -> anyhow::Result<Option<(tracing::Dispatch, Telemetry)>> {
    if !otlp_requested(env) {
        return Ok(None);
    }
    let mut own = env.clone();
    own.remove("OTEL_SERVICE_NAME");
    let (subscriber, provider) = pipeline(service_name, settings, &own)?;
    Ok(Some((tracing::Dispatch::new(subscriber), Telemetry { provider })))
}

/// The log layer and, when OTLP export is requested, the trace layer with its provider.
fn pipeline(
    service_name: &str,
    settings: &Settings,
    env: &HashMap<String, String>,
) -> anyhow::Result<(
    impl tracing::Subscriber + Send + Sync + 'static,
    Option<SdkTracerProvider>,
)> {
    // sqlx and sea-orm log every statement at info/debug: keep them at warn whatever the level.
    let filter = EnvFilter::try_new(format!(
        "{},sqlx=warn,sea_orm=warn,h2=warn,tower=warn",
        settings.log_level
    ))?;
    let fmt = match settings.log_format {
        LogFormat::Text => tracing_subscriber::fmt::layer().with_target(false).boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .flatten_event(true)
            .boxed(),
    };
    let provider = if otlp_requested(env) {
        let exporter = opentelemetry_otlp::SpanExporter::builder().with_tonic().build()?;
        let name = env
            .get("OTEL_SERVICE_NAME")
            .cloned()
            .unwrap_or_else(|| service_name.to_owned());
        let resource = opentelemetry_sdk::Resource::builder().with_service_name(name).build();
        Some(
            SdkTracerProvider::builder()
                .with_batch_exporter(exporter)
                .with_resource(resource)
                .build(),
        )
    } else {
        None
    };
    let otel = provider
        .as_ref()
        .map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer("trialops")));
    let subscriber = tracing_subscriber::registry().with(filter).with(fmt).with(otel);
    Ok((subscriber, provider))
}
