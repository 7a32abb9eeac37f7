//! The trials this service runs (the protocol definitions the platform loads), each with its
//! allocation method and randomization key.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use trialops_domain::protocol::Protocol;
use trialops_domain::randomization::{Method, TrialKey};
use trialops_platform::{AppError, config::protocols};

/// One trial, ready to screen and randomize.
#[derive(Debug)]
pub struct Trial {
    /// The validated protocol definition.
    pub protocol: Arc<Protocol>,
    /// Its allocation method.
    pub method: Method,
    /// Its randomization key (secret).
    pub key: TrialKey,
}

/// The loaded trials by id.
#[derive(Debug, Default)]
pub struct Trials(BTreeMap<String, Arc<Trial>>);

impl Trials {
    /// Loads the bundled definitions and those in `dir`, deriving each trial's key.
    pub fn load(dir: Option<&Path>, master_secret: &[u8]) -> anyhow::Result<Trials> {
        let mut trials = BTreeMap::new();
        for (id, protocol) in protocols::load(dir)? {
            let method = Method::from_protocol(&protocol).map_err(|e| anyhow::anyhow!("trial {id}: {e}"))?;
            let key = TrialKey::derive(master_secret, &id);
            trials.insert(id, Arc::new(Trial { protocol, method, key }));
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
