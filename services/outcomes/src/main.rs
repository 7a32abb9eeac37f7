//! `trialops-outcomes`: runs the outcomes service, or applies its database migrations.

use trialops_outcomes::{DEFAULT_PORT, Migrator, Options, SERVICE_NAME, build};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    trialops_platform::cli::main::<Migrator, _, _>(SERVICE_NAME, DEFAULT_PORT, |settings, shutdown| async move {
        build(settings, Options::default()).await?.run(shutdown).await
    })
    .await
}
