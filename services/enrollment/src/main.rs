//! `trialops-enrollment`: runs the enrollment service, or applies its database migrations.

use trialops_enrollment::{DEFAULT_PORT, Migrator, Options, SERVICE_NAME, build};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let build = |settings, config| build(settings, config, Options::default());
    trialops_platform::server::cli::main::<Migrator, _, _, _>(SERVICE_NAME, DEFAULT_PORT, build).await
}
