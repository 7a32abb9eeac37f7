//! `trialops-enrollment`: runs the enrollment service, or applies its database migrations.

use trialops_enrollment::{Application, DEFAULT_PORT, Migrator, Options, SERVICE_NAME};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    trialops_platform::cli::main::<Migrator, _, _>(
        SERVICE_NAME,
        DEFAULT_PORT,
        |settings, shutdown| async move {
            Application::build(settings, Options::default())
                .await?
                .run(shutdown)
                .await
        },
    )
    .await
}
