//! Calls from one trialops service to another: lazily connected channels with deadlines, the
//! caller's W3C trace context injected into the request metadata, and one mapping of a failed
//! dependency to `UNAVAILABLE` (retryable) so a caller never sees another service's internals.

use std::time::Duration;

use opentelemetry::propagation::Injector;
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::config::settings::Settings;
use crate::identity::auth::{ACTOR_HEADER, CallContext, ROLE_HEADER};
use crate::wire::error::AppError;

/// A channel to the trialops service at `url` that connects on first use (so a service starts
/// while its dependency is down), with a connect timeout, the settings' deadline on every call,
/// and TLS for `https://` URLs ([`crate::identity::tls::client_config`]).
pub fn lazy_channel(url: &str, settings: &Settings) -> anyhow::Result<Channel> {
    let mut endpoint = Endpoint::from_shared(url.to_owned())
        .map_err(|e| anyhow::anyhow!("dependency URL {url}: {e}"))?
        .connect_timeout(Duration::from_secs(2))
        .timeout(settings.dependency_timeout());
    if let Some(tls) = crate::identity::tls::client_config(settings, url)? {
        endpoint = endpoint
            .tls_config(tls)
            .map_err(|e| anyhow::anyhow!("dependency URL {url}: {e}"))?;
    }
    Ok(endpoint.connect_lazy())
}

struct MetadataInjector<'a>(&'a mut MetadataMap);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(key), Ok(value)) = (
            MetadataKey::from_bytes(key.as_bytes()),
            MetadataValue::try_from(value.as_str()),
        ) {
            self.0.insert(key, value);
        }
    }
}

/// A request to another service on behalf of `call`: carries the current trace context, the
/// caller's bearer credentials (so the callee authenticates the original caller), and, for the
/// development authenticator, this service's identity.
pub fn outgoing<T>(message: T, service_name: &str, call: &CallContext) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    let context = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|p| {
        p.inject_context(&context, &mut MetadataInjector(request.metadata_mut()))
    });
    if let Ok(actor) = MetadataValue::try_from(format!("{service_name}-service")) {
        request.metadata_mut().insert(ACTOR_HEADER, actor);
    }
    request
        .metadata_mut()
        .insert(ROLE_HEADER, MetadataValue::from_static("service"));
    if let Some(credentials) = call
        .credentials
        .as_deref()
        .and_then(|c| MetadataValue::try_from(c).ok())
    {
        request
            .metadata_mut()
            .insert(crate::identity::auth::AUTHORIZATION_HEADER, credentials);
    }
    request
}

/// Maps a failed call to `dependency`: unreachable, overloaded or too slow is `UNAVAILABLE`
/// (retry with the same request id); anything else is an internal error, logged.
pub fn dependency_error(dependency: &str, status: Status) -> AppError {
    match status.code() {
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::ResourceExhausted | Code::Unknown => {
            tracing::warn!(dependency, code = ?status.code(), "dependency unavailable");
            AppError::Unavailable(format!(
                "the {dependency} service cannot be reached; retry with the same request_id"
            ))
        }
        code => AppError::internal(anyhow::anyhow!("{dependency} answered {code:?}: {}", status.message())),
    }
}
