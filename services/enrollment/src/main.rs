//! `trialops-enrollment`: runs the enrollment service, or applies its database migrations.

use trialops_enrollment::{DEFAULT_PORT, Migrator, Options, SERVICE_NAME, build};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    trialops_platform::server::cli::main::<Migrator, _, _>(
        SERVICE_NAME,
        DEFAULT_PORT,
        |settings, _sources, shutdown| async move { build(settings, Options::default()).await?.run(shutdown).await },
    )
    .await
}
