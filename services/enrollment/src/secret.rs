//! The randomization master secret. Whoever holds it can reproduce every allocation, so it is
//! never logged, never stored in the database and never sent over the API.
//!
//! - `randomization_secret_file` set: read from that file (a Kubernetes Secret in production).
//! - Embedded SQLite default without it: a random secret is generated once into
//!   `<data_dir>/enrollment-randomization.secret` (mode 0600) for local use.
//! - PostgreSQL without it: refusing to start, since a lost or changed secret breaks the
//!   sequence.
//!
//! A secret file holds the secret as text (surrounding white space is not part of it), or
//! `hex:` and the secret's bytes in hexadecimal, which keeps any bytes exactly (`trialops demo`
//! writes its seed's secret so).

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
    let path = local_path(&settings.data_dir);
    if path.exists() {
        return read(&path);
    }
    trialops_platform::config::private_files::create_dir(&settings.data_dir)?;
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness for the secret: {e}"))?;
    trialops_platform::config::private_files::write_new(&path, hex::encode(bytes).as_bytes())?;
    tracing::warn!(path = %path.display(), "generated a local randomization secret; keep it with the database");
    read(&path)
}

/// Where a local (embedded database) secret is kept in a data folder.
pub fn local_path(data_dir: &Path) -> std::path::PathBuf {
    data_dir.join("enrollment-randomization.secret")
}

/// Writes `secret` to a new private file at `path`, exactly (as `hex:` and its bytes).
pub fn write(path: &Path, secret: &[u8]) -> anyhow::Result<()> {
    trialops_platform::config::private_files::write_new(path, format!("hex:{}\n", hex::encode(secret)).as_bytes())
        .map_err(|e| anyhow::anyhow!("randomization secret {}: {e}", path.display()))
}

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    let bytes = std::fs::read(path).map_err(|e| anyhow::anyhow!("randomization secret {}: {e}", path.display()))?;
    let text = bytes.trim_ascii();
    let trimmed = match text.strip_prefix(b"hex:") {
        Some(digits) => hex::decode(digits).map_err(|e| {
            anyhow::anyhow!(
                "randomization secret {}: not hexadecimal after hex: ({e})",
                path.display()
            )
        })?,
        None => text.to_vec(),
    };
    if trimmed.len() < MIN_SECRET_BYTES {
        anyhow::bail!(
            "randomization secret {} is shorter than {MIN_SECRET_BYTES} bytes",
            path.display()
        );
    }
    Ok(trimmed)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_written_secret_reads_back_exactly_even_with_white_space_bytes_at_its_ends() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        let mut secret = vec![b' '; 34];
        secret[1..33].copy_from_slice(&[0x0a; 32]);
        write(&path, &secret).unwrap();
        assert_eq!(read(&path).unwrap(), secret);
        assert!(
            write(&path, &secret).is_err(),
            "an existing secret is never overwritten"
        );
    }

    #[test]
    fn text_secrets_are_trimmed_and_hex_ones_decoded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "  thirty-two bytes of secret text, at least\n").unwrap();
        assert_eq!(read(&path).unwrap(), b"thirty-two bytes of secret text, at least");
        std::fs::write(&path, format!("hex:{}\n", "ab".repeat(32))).unwrap();
        assert_eq!(read(&path).unwrap(), vec![0xab; 32]);
        std::fs::write(&path, format!("hex:{}", "ab".repeat(16))).unwrap();
        assert!(read(&path).is_err(), "16 bytes are too short");
        std::fs::write(&path, "hex:not hexadecimal at all, but long enough to pass").unwrap();
        assert!(read(&path).is_err());
    }
}
