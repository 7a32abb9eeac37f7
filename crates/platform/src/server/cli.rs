//! The command line every service binary shares: `serve` (the default) and `migrate` (apply
//! database migrations and exit: the Kubernetes Job before a rollout).

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use sea_orm_migration::MigratorTrait;
use tokio_util::sync::CancellationToken;

use crate::config::settings::Sources;
use crate::server::Application;
use crate::{Settings, records::database, server, server::telemetry};

/// A trialops service.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Settings file (TOML); `TRIALOPS_*` environment variables override it.
    #[arg(long, env = "TRIALOPS_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve gRPC (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
}

/// Runs a service binary: parses the command line, loads settings from the process environment,
/// starts telemetry, then migrates or serves. `build` gets the shared settings and the service's
/// own section `C`; the application it builds serves until SIGTERM or Ctrl-C.
pub async fn main<M, C, F, Fut>(service_name: &str, default_port: u16, build: F) -> anyhow::Result<()>
where
    M: MigratorTrait,
    C: serde::de::DeserializeOwned,
    F: FnOnce(Settings, C) -> Fut,
    Fut: Future<Output = anyhow::Result<Application>>,
{
    let cli = Cli::parse();
    let env: HashMap<String, String> = std::env::vars().collect();
    let settings = Settings::load(default_port, cli.config.as_deref(), env.clone())?;
    let section = Sources::new(cli.config.as_deref(), env.clone()).section()?;
    let _telemetry = telemetry::init(service_name, &settings, &env)?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Migrate => {
            let db = database::connect(&settings, service_name).await?;
            let applied = database::migrate::<M>(&db).await?;
            tracing::info!(applied, "migrations applied");
            db.close().await?;
            Ok(())
        }
        Command::Serve => {
            let shutdown = CancellationToken::new();
            let trigger = shutdown.clone();
            tokio::spawn(async move {
                server::termination_signal().await;
                trigger.cancel();
            });
            build(settings, section).await?.run(shutdown).await
        }
    }
}
