//! The randomization master secret. Whoever holds it can reproduce every allocation, so it is
//! never logged, never stored in the database and never sent over the API.
//!
//! - `randomization_secret_file` set: read from that file (a Kubernetes Secret in production).
//! - Embedded SQLite default without it: a random secret is generated once into
//!   `<data_dir>/enrollment-randomization.secret` (mode 0600) for local use.
//! - PostgreSQL without it: refusing to start, since a lost or changed secret breaks the
//!   sequence.

use std::path::Path;

use trialops_platform::Settings;

/// Smallest accepted secret, bytes.
pub const MIN_SECRET_BYTES: usize = 32;

/// Loads (or, locally, creates) the master secret.
pub fn load(settings: &Settings, secret_file: Option<&Path>) -> anyhow::Result<Vec<u8>> {
    if let Some(path) = secret_file {
        return read(path);
    }
    if settings.database_url.is_some() {
        anyhow::bail!(
            "randomization_secret_file is required with an external database: set TRIALOPS_RANDOMIZATION_SECRET_FILE \
             to a file holding at least {MIN_SECRET_BYTES} random bytes"
        );
    }
    let path = settings.data_dir.join("enrollment-randomization.secret");
    if path.exists() {
        return read(&path);
    }
    trialops_platform::config::private_files::create_dir(&settings.data_dir)?;
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness for the secret: {e}"))?;
    write_private(&path, hex::encode(bytes).as_bytes())?;
    tracing::warn!(path = %path.display(), "generated a local randomization secret; keep it with the database");
    read(&path)
}

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    let bytes = std::fs::read(path).map_err(|e| anyhow::anyhow!("randomization secret {}: {e}", path.display()))?;
    let trimmed = bytes.trim_ascii().to_vec();
    if trimmed.len() < MIN_SECRET_BYTES {
        anyhow::bail!(
            "randomization secret {} is shorter than {MIN_SECRET_BYTES} bytes",
            path.display()
        );
    }
    Ok(trimmed)
}

fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut file = trialops_platform::config::private_files::open_options()
        .write(true)
        .create_new(true)
        .open(path)?;
    file.write_all(contents)?;
    file.sync_all()?;
    Ok(())
}
