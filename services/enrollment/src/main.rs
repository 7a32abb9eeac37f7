//! `trialops-enrollment`: runs the enrollment service, or applies its database migrations.

use std::collections::HashMap;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;
use trialops_enrollment::{Application, DEFAULT_PORT, Migrator, Options, SERVICE_NAME};
use trialops_platform::{Settings, database, server, telemetry};

/// The trialops enrollment service.
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
    /// Apply pending database migrations and exit (a Kubernetes Job before a rollout).
    Migrate,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let env: HashMap<String, String> = std::env::vars().collect();
    let settings = Settings::load(DEFAULT_PORT, cli.config.as_deref(), env.clone())?;
    let _telemetry = telemetry::init(SERVICE_NAME, &settings, &env)?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Migrate => {
            let db = database::connect(&settings, SERVICE_NAME).await?;
            let applied = database::migrate::<Migrator>(&db).await?;
            tracing::info!(applied, "migrations applied");
            db.close().await?;
        }
        Command::Serve => {
            let app = Application::build(settings, Options::default()).await?;
            let shutdown = CancellationToken::new();
            let trigger = shutdown.clone();
            tokio::spawn(async move {
                server::termination_signal().await;
                trigger.cancel();
            });
            app.run(shutdown).await?;
        }
    }
    Ok(())
}
