//! Files that hold clinical data or secrets are readable by their owner only: the data folder is
//! created 0700, database files (with SQLite's `-wal` and `-shm` companions) and secrets 0600.
//! A folder the operator made keeps its mode; files an earlier version left wider are narrowed.

use std::path::Path;

/// Creates `dir` (and missing parents) readable by its owner only; an existing folder is left as
/// it is.
pub fn create_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))
}

/// Options that create a file readable by its owner only.
pub fn open_options() -> std::fs::OpenOptions {
    let mut options = std::fs::OpenOptions::new();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

/// Writes `contents` to a new file at `path` readable by its owner only, synced to disk; an
/// existing file is never overwritten (a secret or a key is written once).
pub fn write_new(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut file = open_options().write(true).create_new(true).open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

/// Makes sure the SQLite database at `path` exists readable by its owner only, and narrows the
/// database and its `-wal` and `-shm` files if an earlier version created them wider. SQLite
/// creates the companions with the database file's mode.
pub fn prepare_sqlite_file(path: &Path) -> anyhow::Result<()> {
    open_options()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", path.display()))?;
    #[cfg(unix)]
    for suffix in ["", "-wal", "-shm"] {
        use std::os::unix::fs::PermissionsExt;
        let file = std::path::PathBuf::from(format!("{}{suffix}", path.display()));
        if let Ok(meta) = std::fs::metadata(&file)
            && meta.permissions().mode() & 0o077 != 0
        {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| anyhow::anyhow!("cannot restrict {}: {e}", file.display()))?;
        }
    }
    Ok(())
}
