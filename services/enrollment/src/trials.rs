//! The trials this service runs, each with its allocation method and randomization key, and the
//! versions of their protocol definitions: the first as the protocol files hold it, each later
//! one recorded by an amendment.
//!
//! An amendment takes effect tomorrow at the earliest, so the versions a replica read on day D
//! still tell which version is in force on D or any earlier date, whatever another replica
//! records later that day: each replica keeps the list it last read with the day it read it,
//! reading again on a new day or for a later date. Parsed definitions are kept by hash.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};

use chrono::NaiveDate;
use sea_orm::{ConnectionTrait, DatabaseConnection, TransactionTrait};
use trialops_domain::protocol::amendment::{self, Activation};
use trialops_domain::protocol::{self, Protocol};
use trialops_domain::randomization::{Assignment, BlockCursor, BlockScheme, Method, Sequence, TrialKey};
use trialops_platform::{AppError, config::protocols};

use crate::store::protocol_version;

/// One trial under one version of its protocol, ready to screen and randomize.
#[derive(Debug)]
pub struct Trial {
    /// The validated protocol definition.
    pub protocol: Arc<Protocol>,
    /// Its allocation method.
    pub method: Method,
    /// Its randomization key (secret).
    pub key: TrialKey,
    /// Where each stratum's last assignment's block begins (permuted blocks), so the next
    /// assignment walks from there and not from the sequence's start.
    cursors: Mutex<HashMap<String, BlockCursor>>,
}

impl Trial {
    /// The assignment at `position` of `stratum`'s concealed sequence under `scheme` (this
    /// trial's), walked from the stratum's last assignment.
    pub fn assignment(&self, scheme: &BlockScheme, stratum: &str, position: u64) -> Assignment {
        let mut cursors = self.cursors.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let cursor = cursors.entry(stratum.to_owned()).or_default();
        Sequence::new(&self.key, scheme, stratum).assignment_from(position, cursor)
    }
}

/// A trial as of a date: the version in force then, and every recorded version (no definitions).
#[derive(Debug)]
pub struct InForce {
    /// The trial under the version in force.
    pub trial: Arc<Trial>,
    /// The recorded versions, oldest first.
    pub versions: Versions,
}

/// A trial's recorded versions, oldest first (without their definitions).
pub type Versions = Arc<Vec<protocol_version::Model>>;

/// The loaded trials by id.
#[derive(Debug, Default)]
pub struct Trials {
    loaded: BTreeMap<String, (Arc<Trial>, protocols::Source)>,
    /// The trial under each recorded definition, by the definition's hash.
    parsed: Mutex<HashMap<String, Arc<Trial>>>,
    /// Per trial: the day the versions were read, and the versions.
    read: Mutex<HashMap<String, (NaiveDate, Versions)>>,
}

pub use trialops_platform::server::protocol_versions::digest;

impl Trials {
    /// Loads the bundled definitions and those in `dir`, deriving each trial's key.
    pub fn load(dir: Option<&Path>, master_secret: &[u8]) -> anyhow::Result<Trials> {
        let mut loaded = BTreeMap::new();
        for (id, source) in protocols::load_sources(dir)? {
            let trial = build(source.protocol.clone(), TrialKey::derive(master_secret, &id))
                .map_err(|e| anyhow::anyhow!("trial {id}: {e}"))?;
            loaded.insert(id, (Arc::new(trial), source));
        }
        Ok(Trials {
            loaded,
            parsed: Mutex::default(),
            read: Mutex::default(),
        })
    }

    /// The trial with this id under the definition the service loaded, or NOT_FOUND: for what
    /// no amendment changes (its id and key).
    pub fn get(&self, id: &str) -> Result<Arc<Trial>, AppError> {
        self.loaded
            .get(id)
            .map(|(trial, _)| trial.clone())
            .ok_or_else(|| AppError::NotFound {
                what: "trial",
                id: id.to_owned(),
            })
    }

    /// All trials, by id, under their loaded definitions.
    pub fn all(&self) -> impl Iterator<Item = &Arc<Trial>> {
        self.loaded.values().map(|(trial, _)| trial)
    }

    /// The trial `id` under the version in force on `date`, with every recorded version.
    pub async fn in_force<C: ConnectionTrait>(&self, conn: &C, id: &str, date: NaiveDate) -> Result<InForce, AppError> {
        let loaded = self.get(id)?;
        let versions = self.versions(conn, id, date).await?;
        let activations = activations(&versions);
        let Some(current) = amendment::in_force_on(&activations, date) else {
            return Err(AppError::internal(anyhow::anyhow!(
                "trial {id} has no recorded protocol version"
            )));
        };
        let trial = match versions.iter().find(|v| v.version == current.version) {
            Some(v) => self.under(conn, &loaded, v).await?,
            None => loaded,
        };
        Ok(InForce { trial, versions })
    }

    /// The recorded versions of `id`, as read today (again when `date` is after today).
    async fn versions<C: ConnectionTrait>(&self, conn: &C, id: &str, date: NaiveDate) -> Result<Versions, AppError> {
        let today = trialops_platform::clock::now().date_naive();
        let kept = self.read.lock().ok().and_then(|read| read.get(id).cloned());
        if let Some((_, versions)) = kept.filter(|(day, _)| *day == today && date <= *day) {
            return Ok(versions);
        }
        let versions = Arc::new(protocol_version::of_trial(conn, id).await?);
        if let Ok(mut read) = self.read.lock() {
            read.insert(id.to_owned(), (today, versions.clone()));
        }
        Ok(versions)
    }

    /// Forgets the versions read for `id` (this replica just recorded one).
    pub fn forget_versions(&self, id: &str) {
        if let Ok(mut read) = self.read.lock() {
            read.remove(id);
        }
    }

    /// The trial `id` under its recorded version `version`, with the version's row (definition
    /// included); NOT_FOUND when no such version is recorded.
    pub async fn version<C: ConnectionTrait>(
        &self,
        conn: &C,
        id: &str,
        version: &str,
    ) -> Result<(Arc<Trial>, protocol_version::Model), AppError> {
        let loaded = self.get(id)?;
        let Some(row) = protocol_version::find(conn, id, version).await? else {
            return Err(AppError::NotFound {
                what: "protocol version",
                id: format!("{id} {version}"),
            });
        };
        Ok((self.under(conn, &loaded, &row).await?, row))
    }

    /// `loaded` under the recorded version `row`: built once per definition (read and parsed the
    /// first time), then kept by its hash.
    async fn under<C: ConnectionTrait>(
        &self,
        conn: &C,
        loaded: &Arc<Trial>,
        row: &protocol_version::Model,
    ) -> Result<Arc<Trial>, AppError> {
        if let Some(trial) = self.cached(&row.definition_sha256) {
            return Ok(trial);
        }
        let text = if row.definition.is_empty() {
            protocol_version::find(conn, &row.trial_id, &row.version)
                .await?
                .map(|r| r.definition)
                .unwrap_or_default()
        } else {
            row.definition.clone()
        };
        let unusable = |e: String| {
            AppError::internal(anyhow::anyhow!(
                "recorded protocol {} {}: {e}",
                row.trial_id,
                row.version
            ))
        };
        let protocol = protocol::load(&text).map_err(|e| unusable(e.to_string()))?;
        let trial = if protocol == *loaded.protocol {
            loaded.clone()
        } else {
            Arc::new(build(Arc::new(protocol), loaded.key.clone()).map_err(unusable)?)
        };
        if let Ok(mut cache) = self.parsed.lock() {
            cache.insert(row.definition_sha256.clone(), trial.clone());
        }
        Ok(trial)
    }

    fn cached(&self, sha: &str) -> Option<Arc<Trial>> {
        self.parsed.lock().ok().and_then(|cache| cache.get(sha).cloned())
    }

    /// At start: records each trial's first version from its file when none is recorded (filling
    /// in the version of screenings and subjects recorded before versions were), and otherwise
    /// refuses to start when the file defines a version never recorded or differs from the
    /// recorded one of the same number: a running trial's definition changes only by amendment.
    pub async fn record_first_versions(&self, db: &DatabaseConnection) -> anyhow::Result<()> {
        for (id, (_, source)) in &self.loaded {
            let mut versions = protocol_version::of_trial(db, id).await?;
            let label = &source.protocol.trial.protocol_version;
            if versions.is_empty() {
                // Another replica starting at the same moment may record it first: then this
                // one records nothing and checks its file against that one's below.
                let tx = db.begin().await?;
                record_first(&tx, source).await.map_err(|e| anyhow::anyhow!("{e}"))?;
                tx.commit().await?;
                versions = protocol_version::of_trial(db, id).await?;
            }
            let Some(recorded) = protocol_version::find(db, id, label).await? else {
                let known: Vec<&str> = versions.iter().map(|v| v.version.as_str()).collect();
                anyhow::bail!(
                    "{}: trial {id} version {label} was never recorded (recorded: {}); a running trial's \
                     definition changes by amendment (AmendProtocol, `trialops amend-protocol`), after which \
                     the file may hold the amended version",
                    source.origin,
                    known.join(", ")
                );
            };
            let same = protocol::load(&recorded.definition).is_ok_and(|p| p == *source.protocol);
            if !same {
                anyhow::bail!(
                    "{}: trial {id} version {label} differs from the version {label} recorded on {}; \
                     restore the file, or amend the protocol with a new version",
                    source.origin,
                    recorded.activated_at.date_naive()
                );
            }
            // Reads today's versions once, so the first calls find them.
            self.in_force(db, id, trialops_platform::clock::now().date_naive())
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        Ok(())
    }
}

/// The trial's first version, recorded; earlier screenings and subjects were judged under it. It
/// has no audit entry of its own (the service writes none of its own accord): each start checks
/// the file against it, and every amendment's entry follows it.
async fn record_first<C: ConnectionTrait>(conn: &C, source: &protocols::Source) -> Result<(), AppError> {
    let id = &source.protocol.trial.id;
    let record = protocol_version::Model {
        trial_id: id.clone(),
        ordinal: 1,
        version: source.protocol.trial.protocol_version.clone(),
        effective_on: None,
        reason: format!("first version, from {}", source.origin),
        activated_by: "protocol file".to_owned(),
        activated_at: trialops_platform::clock::now_stored(),
        definition_sha256: digest(&source.text),
        definition: source.text.clone(),
    };
    if protocol_version::insert_first(conn, &record).await? {
        protocol_version::fill_in_earlier_records(conn, id, &record.version).await?;
    }
    Ok(())
}

/// The trial under `protocol`, with its method.
fn build(protocol: Arc<Protocol>, key: TrialKey) -> Result<Trial, String> {
    let method = Method::from_protocol(&protocol).map_err(|e| e.to_string())?;
    Ok(Trial {
        protocol,
        method,
        key,
        cursors: Mutex::default(),
    })
}

/// The activations of recorded versions, in order.
pub fn activations(versions: &[protocol_version::Model]) -> Vec<Activation> {
    versions
        .iter()
        .map(|v| Activation {
            version: v.version.clone(),
            effective_on: v.effective_on,
        })
        .collect()
}
