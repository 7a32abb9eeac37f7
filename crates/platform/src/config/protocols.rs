//! Loading protocol definitions: the bundled ones plus every `*.toml` file of `protocol_dir`.
//! A bad file stops the service at start, with each problem named.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use trialops_domain::protocol::{self, Protocol};

/// Loads the bundled definitions and those in `dir`, by trial id.
pub fn load(dir: Option<&Path>) -> anyhow::Result<BTreeMap<String, Arc<Protocol>>> {
    let mut sources = vec![("bundled anbl1221.toml".to_owned(), protocol::ANBL1221_TOML.to_owned())];
    if let Some(dir) = dir {
        let entries = std::fs::read_dir(dir).map_err(|e| anyhow::anyhow!("protocol_dir {}: {e}", dir.display()))?;
        let mut paths: Vec<_> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        paths.sort();
        for path in paths {
            let text = std::fs::read_to_string(&path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            sources.push((path.display().to_string(), text));
        }
    }
    let mut protocols = BTreeMap::new();
    for (source, text) in sources {
        let protocol = protocol::load(&text).map_err(|e| anyhow::anyhow!("{source}: {e}"))?;
        let id = protocol.trial.id.clone();
        if protocols.insert(id.clone(), Arc::new(protocol)).is_some() {
            anyhow::bail!("{source}: trial {id} is defined twice");
        }
    }
    Ok(protocols)
}
