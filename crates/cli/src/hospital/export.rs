//! `trialops export sdtm`: the trial's SDTM datasets (Dataset-JSON) and Define-XML, read from
//! ExportSdtm and written to a folder only once every file has arrived whole; `trialops export
//! odm`: the trial's CDISC ODM file with its audit trail, from ExportOdm, written once whole.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use trialops_proto::outcomes::v1 as opb;

use super::Session;
use crate::api::{CallError, Clients, with_token};
use crate::report::table;

/// Export a trial in a regulatory format (statistician, administrator).
#[derive(Args, Debug)]
pub struct Export {
    #[command(subcommand)]
    format: Format,
}

/// The formats.
#[derive(Subcommand, Debug)]
enum Format {
    /// SDTM datasets as CDISC Dataset-JSON 1.1 files with a Define-XML 2.1 (`define.xml`).
    Sdtm {
        /// Trial.
        #[arg(long, default_value = "ANBL1221")]
        trial: String,
        /// Folder to write the files to (created when missing; files of the same name are
        /// replaced).
        #[arg(long)]
        out: PathBuf,
    },
    /// CDISC ODM 1.3.2 with every change's audit record (administrator), to standard output or
    /// --out.
    Odm {
        /// Trial.
        #[arg(long, default_value = "ANBL1221")]
        trial: String,
        /// File to write (replaced whole); standard output without it.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// One exported file.
pub(crate) struct Exported {
    /// File name.
    pub name: String,
    /// Content.
    pub content: Vec<u8>,
}

/// A name the server sent is a plain file name, never a path.
fn plain(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

/// Every file of the trial's SDTM export, read whole.
pub(crate) async fn read_sdtm(clients: &mut Clients, token: &str, trial: &str) -> anyhow::Result<Vec<Exported>> {
    let action = || format!("exporting {trial} as SDTM");
    let request = with_token(
        opb::ExportSdtmRequest {
            trial_id: trial.to_owned(),
        },
        token,
    )?;
    let mut stream = clients
        .outcomes
        .export_sdtm(request)
        .await
        .map_err(|status| CallError {
            action: action(),
            status,
        })?
        .into_inner();
    let mut files: Vec<Exported> = Vec::new();
    let mut open: Option<Exported> = None;
    while let Some(chunk) = stream.message().await.map_err(|status| CallError {
        action: action(),
        status,
    })? {
        if !plain(&chunk.file_name) {
            anyhow::bail!("{}: the server sent the file name {:?}", action(), chunk.file_name);
        }
        let file = open.get_or_insert_with(|| Exported {
            name: chunk.file_name.clone(),
            content: Vec::new(),
        });
        if file.name != chunk.file_name {
            anyhow::bail!("{}: {} ended without its last chunk", action(), file.name);
        }
        file.content.extend_from_slice(&chunk.content);
        if chunk.last_chunk {
            files.extend(open.take());
        }
    }
    if let Some(file) = open {
        anyhow::bail!("{}: the stream ended inside {}", action(), file.name);
    }
    Ok(files)
}

/// Writes each file through a temporary name, so a file is either whole or absent.
pub(crate) fn write_all(dir: &Path, files: &[Exported]) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("--out {}: {e}", dir.display()))?;
    for file in files {
        let target = dir.join(&file.name);
        let partial = dir.join(format!(".{}.partial", file.name));
        std::fs::write(&partial, &file.content).map_err(|e| anyhow::anyhow!("writing {}: {e}", partial.display()))?;
        std::fs::rename(&partial, &target).map_err(|e| anyhow::anyhow!("writing {}: {e}", target.display()))?;
    }
    Ok(())
}

/// Writes one file whole (through a temporary name beside it); `option` names the path's option
/// in an error.
pub(crate) fn write_file(option: &str, path: &Path, content: Vec<u8>) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| anyhow::anyhow!("{option} {}: not a file name", path.display()))?;
    write_all(dir, &[Exported { name, content }])
}

/// The number of rows a Dataset-JSON file says it holds.
fn records(file: &Exported) -> Option<u64> {
    let value: serde_json::Value = serde_json::from_slice(&file.content).ok()?;
    value.get("records")?.as_u64()
}

/// The trial's ODM file, read whole.
pub(crate) async fn read_odm(clients: &mut Clients, token: &str, trial: &str) -> anyhow::Result<Vec<u8>> {
    let action = || format!("exporting {trial} as ODM");
    let request = with_token(
        opb::ExportOdmRequest {
            trial_id: trial.to_owned(),
        },
        token,
    )?;
    let failed = |status| CallError {
        action: action(),
        status,
    };
    let mut stream = clients.outcomes.export_odm(request).await.map_err(failed)?.into_inner();
    let mut content = Vec::new();
    while let Some(chunk) = stream.message().await.map_err(failed)? {
        content.extend_from_slice(&chunk.content);
    }
    Ok(content)
}

impl Export {
    /// Reads the export, writes it and lists the files.
    pub async fn run(self, session: &mut Session) -> anyhow::Result<()> {
        let (trial, out) = match self.format {
            Format::Sdtm { trial, out } => (trial, out),
            Format::Odm { trial, out } => {
                let content = read_odm(&mut session.clients, &session.token, &trial).await?;
                return match out {
                    Some(path) => write_file("--out", &path, content),
                    None => {
                        use std::io::Write;
                        let mut stdout = std::io::stdout().lock();
                        stdout.write_all(&content)?;
                        stdout.flush()?;
                        Ok(())
                    }
                };
            }
        };
        let files = read_sdtm(&mut session.clients, &session.token, &trial).await?;
        write_all(&out, &files)?;
        if session.out.json {
            let listed: Vec<_> = files
                .iter()
                .map(|f| serde_json::json!({"file": f.name, "bytes": f.content.len(), "records": records(f)}))
                .collect();
            println!("{}", serde_json::to_string_pretty(&listed)?);
        } else {
            let mut t = table(&["file", "records", "bytes"]);
            for f in &files {
                t.add_row(vec![
                    f.name.clone(),
                    records(f).map(|r| r.to_string()).unwrap_or_default(),
                    f.content.len().to_string(),
                ]);
            }
            println!("SDTM export of {trial} written to {}", out.display());
            println!("{t}");
        }
        Ok(())
    }
}
