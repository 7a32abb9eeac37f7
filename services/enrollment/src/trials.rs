//! The trials this service runs: the bundled ANBL1221 definition plus any `*.toml` definition
//! in `protocol_dir`, each with its block scheme and randomization key.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use trialops_domain::protocol::{self, Protocol};
use trialops_domain::randomization::{BlockScheme, TrialKey};
use trialops_platform::AppError;

/// One trial, ready to screen and randomize.
#[derive(Debug)]
pub struct Trial {
    /// The validated protocol definition.
    pub protocol: Protocol,
    /// Its block scheme.
    pub scheme: BlockScheme,
    /// Its randomization key (secret).
    pub key: TrialKey,
}

/// The loaded trials by id.
#[derive(Debug, Default)]
pub struct Trials(BTreeMap<String, Arc<Trial>>);

impl Trials {
    /// Loads the bundled definitions and those in `dir`; a bad file stops the start with its
    /// problems named.
    pub fn load(dir: Option<&Path>, master_secret: &[u8]) -> anyhow::Result<Trials> {
        let mut definitions = vec![(
            "bundled anbl1221.toml".to_owned(),
            protocol::ANBL1221_TOML.to_owned(),
        )];
        if let Some(dir) = dir {
            let entries = std::fs::read_dir(dir)
                .map_err(|e| anyhow::anyhow!("protocol_dir {}: {e}", dir.display()))?;
            let mut paths: Vec<_> = entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .collect();
            paths.sort();
            for path in paths {
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
                definitions.push((path.display().to_string(), text));
            }
        }
        let mut trials = BTreeMap::new();
        for (source, text) in definitions {
            let protocol = protocol::load(&text).map_err(|e| anyhow::anyhow!("{source}: {e}"))?;
            let scheme = BlockScheme::from_protocol(&protocol)
                .map_err(|e| anyhow::anyhow!("{source}: {e}"))?;
            let key = TrialKey::derive(master_secret, &protocol.trial.id);
            let id = protocol.trial.id.clone();
            if trials
                .insert(
                    id.clone(),
                    Arc::new(Trial {
                        protocol,
                        scheme,
                        key,
                    }),
                )
                .is_some()
            {
                anyhow::bail!("{source}: trial {id} is defined twice");
            }
        }
        Ok(Trials(trials))
    }

    /// The trial with this id, or NOT_FOUND.
    pub fn get(&self, id: &str) -> Result<Arc<Trial>, AppError> {
        self.0.get(id).cloned().ok_or_else(|| AppError::NotFound {
            what: "trial",
            id: id.to_owned(),
        })
    }

    /// All trials, by id.
    pub fn all(&self) -> impl Iterator<Item = &Arc<Trial>> {
        self.0.values()
    }
}
