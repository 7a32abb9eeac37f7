//! Server bootstrap shared by every service: gRPC health (`grpc.health.v1`, NOT_SERVING while
//! draining), reflection, message-size and connection-age limits, the RPC layer, and graceful
//! shutdown (stop reporting healthy, wait the drain delay, stop accepting, let in-flight calls
//! finish within the grace period).

pub mod cli;
pub mod client;
pub mod fhir;
pub mod handlers;
pub mod metrics;
pub mod protocol_versions;
pub mod rpc_layer;
pub mod telemetry;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;

use crate::config::settings::Settings;
use crate::identity::auth::Authenticator;
use crate::identity::tls::ClientIdentities;
use crate::records::refusals::RefusalRecorder;
use crate::server::rpc_layer::RpcLayer;

/// A service ready to serve: its routes and the names health reports for it.
pub struct ServiceRoutes {
    /// The service's gRPC routes.
    pub routes: Routes,
    /// Fully qualified service names, for example `trialops.enrollment.v1.EnrollmentService`.
    pub names: Vec<&'static str>,
    /// The service's FHIR resources, served read-only under `/fhir` on the same port.
    pub fhir: Option<Arc<dyn fhir::Resources>>,
}

impl ServiceRoutes {
    /// One gRPC service's routes under its fully qualified name.
    pub fn one(routes: Routes, name: &'static str) -> Self {
        ServiceRoutes {
            routes,
            names: vec![name],
            fhir: None,
        }
    }

    /// The same, also serving `resources` under `/fhir`.
    pub fn with_fhir(self, resources: impl fhir::Resources) -> Self {
        ServiceRoutes {
            fhir: Some(Arc::new(resources)),
            ..self
        }
    }
}

/// What a caller may replace when building a service (tests, the all-in-one binary, a replay).
#[derive(Clone, Default)]
pub struct Options {
    /// The authenticator, instead of the one the settings configure.
    pub authenticator: Option<Arc<dyn Authenticator>>,
    /// The clock the service runs on (the system clock by default; a replay simulates one).
    pub clock: crate::clock::Clock,
    /// The subscriber the service's calls are traced and logged with, instead of the process's
    /// global one: `trialops up` gives each service its own, so traces name the service.
    pub tracing: Option<tracing::Dispatch>,
    /// The audit log's signing key, instead of the one the settings name.
    pub audit_key: Option<crate::records::log::LogKey>,
}

/// A built, bound service, ready to run: what every service's `build` returns.
pub struct Application {
    listener: TcpListener,
    health_listener: Option<TcpListener>,
    metrics_listener: Option<TcpListener>,
    service: ServiceRoutes,
    settings: Settings,
    authenticator: Arc<dyn Authenticator>,
    db: sea_orm::DatabaseConnection,
    clock: crate::clock::Clock,
    tracing: Option<tracing::Dispatch>,
    trail: Option<crate::records::log::Trail>,
}

impl Application {
    /// Binds the settings' listen address for `service`, which uses `db`; authenticated by the
    /// options' authenticator or else the one the settings configure.
    pub async fn bind(
        service: ServiceRoutes,
        settings: Settings,
        db: sea_orm::DatabaseConnection,
        options: Options,
    ) -> anyhow::Result<Application> {
        settings.check_exposure()?;
        let authenticator = match options.authenticator {
            Some(a) => a,
            None => crate::identity::auth::from_settings(&settings)?,
        };
        if settings.insecure_expose_unprotected && !settings.listen_addr.ip().is_loopback() {
            tracing::warn!(
                address = %settings.listen_addr,
                tls = settings.tls_enabled(),
                "INSECURE: insecure_expose_unprotected is set; clinical data may cross the network unprotected"
            );
        }
        let listener = bind(settings.listen_addr).await?;
        let health_listener = match settings.health_listen_addr {
            Some(addr) => Some(bind(addr).await?),
            None => None,
        };
        let metrics_listener = match settings.metrics_listen_addr {
            Some(addr) => Some(bind(addr).await?),
            None => None,
        };
        Ok(Application {
            listener,
            health_listener,
            metrics_listener,
            service,
            settings,
            authenticator,
            db,
            clock: options.clock,
            tracing: options.tracing,
            trail: None,
        })
    }

    /// Sequences and checkpoints the service's audit log with `trail` while it runs.
    pub fn with_trail(mut self, trail: crate::records::log::Trail) -> Self {
        self.trail = Some(trail);
        self
    }

    /// The bound address (the real port when the setting asked for port 0).
    pub fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        Ok(self.listener.local_addr()?)
    }

    /// The bound health-only address, if one was configured.
    pub fn health_addr(&self) -> anyhow::Result<Option<SocketAddr>> {
        Ok(self.health_listener.as_ref().map(TcpListener::local_addr).transpose()?)
    }

    /// Serves until `shutdown` is cancelled, then drains and closes the database.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let bound = |l: Option<&TcpListener>| l.and_then(|l| l.local_addr().ok()).map(|a| a.to_string());
        tracing::info!(
            address = %self.local_addr()?,
            health_address = bound(self.health_listener.as_ref()).unwrap_or_default(),
            metrics_address = bound(self.metrics_listener.as_ref()).unwrap_or_default(),
            services = ?self.service.names,
            "listening"
        );
        let metrics_stop = CancellationToken::new();
        let metrics = self
            .metrics_listener
            .map(|l| tokio::spawn(crate::server::metrics::serve(l, metrics_stop.clone())));
        let listeners = Listeners {
            main: self.listener,
            health: self.health_listener,
        };
        let refusals_stop = CancellationToken::new();
        let (refusals, refusal_writer) = crate::records::refusals::RefusalRecorder::start(
            self.db.clone(),
            self.clock.clone(),
            refusals_stop.clone(),
        );
        let sequencer_stop = CancellationToken::new();
        let sequencer = self.trail.map(|trail| {
            let work =
                crate::records::log::run_sequencer(self.db.clone(), trail.key, trail.schedule, sequencer_stop.clone());
            tokio::spawn(crate::clock::scope(self.clock.clone(), work))
        });
        let served = serve(
            self.service,
            listeners,
            &self.settings,
            (self.authenticator, self.clock, self.tracing),
            Some(refusals),
            shutdown,
        )
        .await;
        // The server stopped serving: the writer finishes the queue and ends. A connection that
        // outlived the grace period (an open WatchEvents stream) may still hold a recorder, so
        // the writer is told to stop rather than waited on until every recorder is gone.
        refusals_stop.cancel();
        let _ = refusal_writer.await;
        // Then the sequencer integrates what the last calls wrote and signs a last checkpoint.
        sequencer_stop.cancel();
        if let Some(task) = sequencer {
            let _ = task.await;
        }
        metrics_stop.cancel();
        if let Some(task) = metrics {
            let _ = task.await;
        }
        // Closing waits for connections checked out; a lingering call's is not waited on past
        // the grace period.
        let grace = Duration::from_secs(self.settings.shutdown_grace_seconds);
        match tokio::time::timeout(grace, self.db.close()).await {
            Ok(Err(e)) => tracing::warn!(error = %e, "closing the database"),
            Err(_) => tracing::warn!("database connections still in use after the grace period; stopping"),
            Ok(Ok(())) => {}
        }
        served
    }
}

/// The CORS policy that lets pages of `origins` call over gRPC-Web with a bearer token; none
/// without origins.
fn web_cors(origins: &[String]) -> anyhow::Result<Option<tower_http::cors::CorsLayer>> {
    use http::header::{AUTHORIZATION, CONTENT_TYPE, HeaderName, HeaderValue};
    use tower_http::cors::{AllowOrigin, CorsLayer};
    if origins.is_empty() {
        return Ok(None);
    }
    let origins = origins
        .iter()
        .map(|o| HeaderValue::from_str(o))
        .collect::<Result<Vec<_>, _>>()?;
    let name = HeaderName::from_static;
    Ok(Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([http::Method::POST])
            .allow_headers([
                AUTHORIZATION,
                CONTENT_TYPE,
                name("x-grpc-web"),
                name("x-user-agent"),
                name("grpc-timeout"),
                name("traceparent"),
            ])
            .expose_headers([
                name("grpc-status"),
                name("grpc-message"),
                name("grpc-status-details-bin"),
            ])
            .max_age(Duration::from_secs(600)),
    ))
}

/// Binds the listen address. Port 0 picks a free port (tests).
pub async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))
}

/// Completes on SIGTERM or SIGINT (Ctrl-C).
pub async fn termination_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("Ctrl-C received: draining"),
        () = term => tracing::info!("SIGTERM received: draining"),
    }
}

/// Where a service listens: the main gRPC port, and optionally a plaintext port that serves
/// only `grpc.health.v1` without credentials, for kubelet's native gRPC probes (which cannot
/// speak TLS or send credentials). Both report the same status, NOT_SERVING while draining.
pub struct Listeners {
    /// The service's gRPC port.
    pub main: TcpListener,
    /// The health-only port, if configured.
    pub health: Option<TcpListener>,
}

/// Serves `service` until `shutdown` is cancelled, then drains.
pub async fn serve(
    service: ServiceRoutes,
    listeners: Listeners,
    settings: &Settings,
    (authenticator, clock, tracing): (Arc<dyn Authenticator>, crate::clock::Clock, Option<tracing::Dispatch>),
    refusals: Option<RefusalRecorder>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let tls = crate::identity::tls::server_config(settings)?;
    let identities = ClientIdentities::parse(&settings.tls_client_identities)?;
    let (health, health_service) = tonic_health::server::health_reporter();
    for name in service.names.iter().copied().chain([""]) {
        health.set_service_status(name, ServingStatus::Serving).await;
    }
    // Reflection in both versions: v1, and v1alpha, which Python's grpcio-reflection, Postman
    // and older grpcurl still speak.
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(trialops_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let (reflection, reflection_v1alpha) = (reflection().build_v1()?, reflection().build_v1alpha()?);
    let health_only = listeners.health.map(|l| {
        let server = tonic::transport::Server::builder().add_service(health_service.clone());
        (server, l)
    });
    let routes = service
        .routes
        .add_service(health_service)
        .add_service(reflection)
        .add_service(reflection_v1alpha);
    let health_stopped = CancellationToken::new();
    let health_task = health_only.map(|(server, l)| {
        let stop = health_stopped.clone();
        tokio::spawn(async move {
            let incoming = TcpIncoming::from(l).with_nodelay(Some(true));
            if let Err(e) = server
                .serve_with_incoming_shutdown(incoming, stop.cancelled_owned())
                .await
            {
                tracing::error!(error = %e, "health port stopped");
            }
        })
    });

    let drain_delay = Duration::from_secs(settings.drain_delay_seconds);
    let grace = Duration::from_secs(settings.shutdown_grace_seconds);
    let names = service.names.clone();
    let draining = shutdown.clone();
    let stop_accepting = async move {
        draining.cancelled().await;
        for name in names.iter().copied().chain([""]) {
            health.set_service_status(name, ServingStatus::NotServing).await;
        }
        tracing::info!(delay_seconds = drain_delay.as_secs(), "health NOT_SERVING; draining");
        tokio::time::sleep(drain_delay).await;
    };

    let incoming = TcpIncoming::from(listeners.main).with_nodelay(Some(true));
    let mut builder = tonic::transport::Server::builder()
        .max_connection_age(settings.max_connection_age())
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)))
        .max_concurrent_streams(settings.max_concurrent_streams)
        .timeout(settings.request_timeout());
    if let Some(tls) = tls {
        builder = builder
            .tls_config(tls)
            .map_err(|e| anyhow::anyhow!("TLS settings: {e}"))?;
    }
    // gRPC-Web on the same port (HTTP/1.1 too), translated before the RPC layer sees a call, so
    // it is authenticated, authorized and audited as any other; CORS for the configured origins.
    let cors = web_cors(&settings.web_origins()?)?;
    // FHIR in front of it all: a FHIR read becomes gRPC calls made through the layers below.
    let server = builder
        .accept_http1(true)
        .layer(fhir::FhirLayer::new(service.fhir.clone(), settings.tls_enabled()))
        .layer(tower::util::option_layer(cors))
        .layer(tonic_web::GrpcWebLayer::new())
        .layer(
            RpcLayer::new(authenticator, identities, settings.max_in_flight_calls, refusals)
                .with_clock(clock)
                .with_dispatch(tracing),
        )
        .add_routes(routes)
        .serve_with_incoming_shutdown(incoming, stop_accepting);

    tokio::pin!(server);
    let deadline = async {
        shutdown.cancelled().await;
        tokio::time::sleep(drain_delay + grace).await;
    };
    tokio::select! {
        result = &mut server => result?,
        () = deadline => {
            tracing::warn!(grace_seconds = grace.as_secs(), "calls still running after the grace period; stopping");
        }
    }
    health_stopped.cancel();
    if let Some(task) = health_task {
        let _ = task.await;
    }
    tracing::info!("stopped");
    Ok(())
}
