//! Loading protocol definitions: the bundled ones plus every `*.toml` file of `protocol_dir`. A
//! file of `protocol_dir` defining a bundled trial replaces the bundled definition (a trial team's
//! own copy wins). A bad file stops the service at start, with each problem named.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use trialops_domain::protocol::{self, Protocol};

/// A loaded definition with the text it was read from.
#[derive(Debug, Clone)]
pub struct Source {
    /// The validated definition.
    pub protocol: Arc<Protocol>,
    /// The file's text, as a trial's first recorded version keeps it.
    pub text: String,
    /// Where it came from, for messages: "bundled anbl1221.toml" or the file's path.
    pub origin: String,
}

/// Loads the bundled definitions and those in `dir`, by trial id.
pub fn load(dir: Option<&Path>) -> anyhow::Result<BTreeMap<String, Arc<Protocol>>> {
    Ok(load_sources(dir)?
        .into_iter()
        .map(|(id, source)| (id, source.protocol))
        .collect())
}

/// Loads the bundled definitions and those in `dir`, by trial id, with their texts.
pub fn load_sources(dir: Option<&Path>) -> anyhow::Result<BTreeMap<String, Source>> {
    let mut protocols = BTreeMap::new();
    let bundled = parse("bundled anbl1221.toml".to_owned(), protocol::ANBL1221_TOML.to_owned())?;
    protocols.insert(bundled.protocol.trial.id.clone(), bundled);
    let Some(dir) = dir else {
        return Ok(protocols);
    };
    let entries = std::fs::read_dir(dir).map_err(|e| anyhow::anyhow!("protocol_dir {}: {e}", dir.display()))?;
    let mut paths: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort();
    for path in paths {
        let text = std::fs::read_to_string(&path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let source = parse(path.display().to_string(), text)?;
        let id = source.protocol.trial.id.clone();
        match protocols.insert(id.clone(), source) {
            Some(earlier) if !earlier.origin.starts_with("bundled ") => {
                anyhow::bail!(
                    "{}: trial {id} is defined twice (also in {})",
                    path.display(),
                    earlier.origin
                )
            }
            _ => {}
        }
    }
    Ok(protocols)
}

fn parse(origin: String, text: String) -> anyhow::Result<Source> {
    let protocol = protocol::load(&text).map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
    Ok(Source {
        protocol: Arc::new(protocol),
        text,
        origin,
    })
}
