//! `trialops-enrollment`: runs the enrollment service, or applies its database migrations.

use trialops_enrollment::{DEFAULT_PORT, Migrator, Options, SERVICE_NAME, build};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    trialops_platform::server::cli::main::<Migrator, _, _>(
        SERVICE_NAME,
        DEFAULT_PORT,
        |settings, sources, shutdown| async move {
            build(settings, sources.section()?, Options::default())
                .await?
                .run(shutdown)
                .await
        },
    )
    .await
}
