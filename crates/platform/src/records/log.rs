//! The audit trail as a transparency log (RFC 6962 / RFC 9162 Merkle tree, C2SP tlog-checkpoint
//! signed notes), in the manner of Certificate Transparency and Trillian.
//!
//! - **Writing** ([`crate::records::audit::append`]) inserts the entry into `audit_pending` in the
//!   transaction of the change. Nothing every write must lock is touched.
//! - **Sequencing** ([`integrate`]): one pass at a time (the head row's lock) takes the committed
//!   pending entries in insertion order, gives them the next positions, stores their leaf hashes
//!   and the completed subtree hashes (the Go checksum database's stored-hash layout, through
//!   `tlog_tiles`), moves them to `audit_events` inside the database (the entries are not sent
//!   back, only their ids, positions and leaf hashes) and sets the head's size and root, in one
//!   transaction. There is no cursor, so an entry whose transaction commits late simply gets a
//!   later position, and a rolled-back one never appears: positions have no gaps by construction.
//!   Lists and streams read `audit_events` only, so they see whole batches in position order.
//! - **Checkpoints** ([`checkpoint`]): the signed note `<origin>\n<size>\n<base64 root>\ntime
//!   <RFC 3339>\n` with the service's Ed25519 key ([`LogKey`]), which is read from a file and
//!   never enters the database. The service refuses to sign a tree that is not an extension of the
//!   last checkpoint it signed.
//! - **Proofs** ([`inclusion_proof`], [`consistency_proof`]) come from the stored hashes.
//! - **Verification** ([`verify`]) recomputes every leaf from its entry, the tree from the leaves,
//!   and compares them with the stored tree, the head and every signed checkpoint.
//!
//! An entry's leaf data is the compact JSON array of [`LeafFields`]; it embeds the position, so
//! two entries swapped in place no longer match their leaves.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, SecondsFormat, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use signed_note::{Note, Signer as _, StandardSigner, StandardVerifier, VerifierList};
use tlog_tiles::{Checkpoint, HashReader};

pub use tlog_tiles::Hash;
use trialops_proto::common::v1::{self as common, CommonReason};

use crate::records::store::{
    audit_checkpoint as checkpoint_row, audit_event as event, audit_log_head as head, audit_pending as pending,
    audit_tree_hash as tree_hash_row,
};
use crate::wire::convert::to_timestamp;
use crate::wire::error::AppError;

/// The first element of every leaf's data: the format of the array that follows.
pub const LEAF_FORMAT: &str = "trialops-audit-entry/1";

/// Entries read per statement when building the tree over existing entries, and moved into the
/// log per integration pass on PostgreSQL.
const BATCH: u64 = 500;

/// Entries moved into the log per integration pass on SQLite. A pass holds SQLite's one writer,
/// so every write of the service waits for it; a short pass lets the writers queued behind it
/// take their turns between passes instead of waiting out one long one.
const SQLITE_BATCH: u64 = 32;

/// Entries moved into the log per integration pass on `db`'s backend.
fn pass_size(db: &DatabaseConnection) -> u64 {
    match db.get_database_backend() {
        sea_orm::DbBackend::Sqlite => SQLITE_BATCH,
        _ => BATCH,
    }
}

/// How often the sequencer runs and checkpoints are signed.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    /// Between integration passes.
    pub integrate_every: Duration,
    /// Between checkpoints (one is signed only when the log grew).
    pub checkpoint_every: Duration,
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule {
            integrate_every: Duration::from_millis(50),
            checkpoint_every: Duration::from_secs(60),
        }
    }
}

/// What a service's audit handlers and its sequencer need beyond the database.
#[derive(Debug, Clone)]
pub struct Trail {
    /// The log's signing key.
    pub key: LogKey,
    /// How WatchEvents serves subscribers.
    pub watch: crate::records::watch::Options,
    /// How often the log is sequenced and checkpointed.
    pub schedule: Schedule,
    /// The service's kinds of record, checked against the trail by VerifyAuditTrail.
    pub records: &'static [crate::records::replay::RecordKind],
    /// Training trials, whose changes WatchEvents delivers only to a subscriber asking for them.
    pub training_trials: std::sync::Arc<[String]>,
}

impl Trail {
    /// The trail of `service` per the settings, with `key` instead of the configured key if given.
    pub fn load(settings: &crate::Settings, service: &str, key: Option<LogKey>) -> anyhow::Result<Trail> {
        let key = match key {
            Some(key) => key,
            None => LogKey::load(settings, service)?,
        };
        Ok(Trail {
            key,
            watch: settings.watch(),
            schedule: settings.audit_log(),
            records: &[],
            training_trials: std::sync::Arc::new([]),
        })
    }

    /// The same trail, checking these kinds of record against it.
    pub fn with_records(self, records: &'static [crate::records::replay::RecordKind]) -> Trail {
        Trail { records, ..self }
    }

    /// The same trail, knowing which of the loaded trials are training trials.
    pub fn with_training_trials<'a>(
        self,
        protocols: impl IntoIterator<Item = &'a trialops_domain::protocol::Protocol>,
    ) -> Trail {
        let training: Vec<String> = protocols
            .into_iter()
            .filter(|p| p.trial.training)
            .map(|p| p.trial.id.clone())
            .collect();
        Trail {
            training_trials: training.into(),
            ..self
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Keys

/// The log's Ed25519 signing key, as a C2SP signed-note private key
/// (`PRIVATE+KEY+<name>+<key id>+<base64>`, the format of Go's `note.GenerateKey`). Its name is
/// the log's origin.
#[derive(Clone)]
pub struct LogKey {
    signer: Arc<StandardSigner>,
    verifier_key: String,
}

impl std::fmt::Debug for LogKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogKey")
            .field("verifier_key", &self.verifier_key)
            .finish_non_exhaustive()
    }
}

impl LogKey {
    /// Reads a private key's text (surrounding white space ignored).
    pub fn parse(text: &str) -> anyhow::Result<LogKey> {
        let text = text.trim();
        let signer =
            StandardSigner::new(text).map_err(|e| anyhow::anyhow!("not a signed-note Ed25519 private key: {e}"))?;
        // PRIVATE+KEY+<name>+<id>+<base64>: the base64 may itself hold '+'.
        let encoded = text.splitn(5, '+').nth(4).unwrap_or_default();
        let bytes = BASE64
            .decode(encoded)
            .map_err(|e| anyhow::anyhow!("not a signed-note Ed25519 private key: {e}"))?;
        let seed: [u8; 32] = bytes
            .get(1..)
            .and_then(|k| k.try_into().ok())
            .ok_or_else(|| anyhow::anyhow!("not a signed-note Ed25519 private key: the key is not 32 bytes"))?;
        let public = ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key();
        let verifier_key = signed_note::new_ed25519_verifier_key(signer.name(), &public);
        Ok(LogKey {
            signer: Arc::new(signer),
            verifier_key,
        })
    }

    /// Reads the key file at `path`.
    pub fn read(path: &Path) -> anyhow::Result<LogKey> {
        let text =
            std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("audit signing key {}: {e}", path.display()))?;
        LogKey::parse(&text).map_err(|e| anyhow::anyhow!("audit signing key {}: {e}", path.display()))
    }

    /// A new random key for the log named `origin`: (private key text, verifier key text).
    pub fn generate(origin: &str) -> anyhow::Result<(String, String)> {
        if !signed_note::is_key_name_valid(origin) {
            anyhow::bail!("origin {origin:?}: a log name has no spaces and no '+'");
        }
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| anyhow::anyhow!("no randomness for the key: {e}"))?;
        let signing = ed25519_dalek::SigningKey::from_bytes(&seed);
        let mut typed = vec![1u8];
        typed.extend_from_slice(signing.verifying_key().as_bytes());
        let id = signed_note::key_id(origin, &typed);
        let mut private = vec![1u8];
        private.extend_from_slice(&seed);
        let skey = format!("PRIVATE+KEY+{origin}+{id:08x}+{}", BASE64.encode(private));
        let vkey = signed_note::new_ed25519_verifier_key(origin, &signing.verifying_key());
        Ok((skey, vkey))
    }

    /// The log's name: the first line of every checkpoint.
    pub fn origin(&self) -> &str {
        self.signer.name()
    }

    /// The verifier key text, `<origin>+<key id>+<base64 key>`, for auditors to pin.
    pub fn verifier_key(&self) -> &str {
        &self.verifier_key
    }

    /// Where the embedded database's generated key is kept.
    pub fn local_path(data_dir: &Path, service: &str) -> PathBuf {
        data_dir.join(format!("{service}-audit-log.key"))
    }

    /// The key the settings name; with the embedded database and no key file, the one generated
    /// into the data folder (created the first time). PostgreSQL without a key file is refused:
    /// a key that changes with each start would leave every saved checkpoint unverifiable.
    pub fn load(settings: &crate::Settings, service: &str) -> anyhow::Result<LogKey> {
        if let Some(path) = &settings.audit_signing_key_file {
            return LogKey::read(path);
        }
        if settings
            .database_url
            .as_deref()
            .is_some_and(|u| !u.starts_with("sqlite:"))
        {
            anyhow::bail!(
                "audit_signing_key_file is required with an external database: set TRIALOPS_AUDIT_SIGNING_KEY_FILE to \
                 a file `trialops audit keygen` wrote"
            );
        }
        let path = LogKey::local_path(&settings.data_dir, service);
        LogKey::ensure(&path, &format!("localhost/trialops/{service}"))
    }

    /// The key at `path`, generated for `origin` first if the file does not exist (mode 0600).
    pub fn ensure(path: &Path, origin: &str) -> anyhow::Result<LogKey> {
        if !path.exists() {
            if let Some(dir) = path.parent() {
                crate::config::private_files::create_dir(dir)?;
            }
            let (skey, _) = LogKey::generate(origin)?;
            crate::config::private_files::write_new(path, format!("{skey}\n").as_bytes())
                .map_err(|e| anyhow::anyhow!("audit signing key {}: {e}", path.display()))?;
            tracing::warn!(path = %path.display(), "generated a local audit signing key; keep it with the database");
        }
        LogKey::read(path)
    }

    fn sign(&self, text: &[u8]) -> Result<String, AppError> {
        let mut note = Note::new(text, &[]).map_err(|e| AppError::internal(anyhow::anyhow!("checkpoint note: {e}")))?;
        note.add_sigs(&[self.signer.as_ref()])
            .map_err(|e| AppError::internal(anyhow::anyhow!("signing a checkpoint: {e}")))?;
        String::from_utf8(note.to_bytes()).map_err(AppError::internal)
    }
}

// ---------------------------------------------------------------------------------------------
// Leaves

/// The fields of an entry that its leaf commits to, in the leaf's order.
#[derive(Debug, Clone, Copy)]
pub struct LeafFields<'a> {
    /// Position, from 1.
    pub sequence: i64,
    /// Commit time.
    pub occurred_at: DateTime<Utc>,
    /// Who acted.
    pub actor: &'a str,
    /// In which role.
    pub actor_role: &'a str,
    /// At which site.
    pub actor_site: &'a str,
    /// Through which system.
    pub actor_via: &'a str,
    /// What was done.
    pub action: &'a str,
    /// Kind of record.
    pub entity_type: &'a str,
    /// Which record.
    pub entity_id: &'a str,
    /// JSON before.
    pub old_value: &'a str,
    /// JSON after.
    pub new_value: &'a str,
    /// Reason given.
    pub reason: &'a str,
    /// Client request id.
    pub request_id: &'a str,
    /// Trace id.
    pub trace_id: &'a str,
    /// Trial of the record.
    pub trial_id: &'a str,
    /// Site of the record.
    pub site_code: &'a str,
    /// Legacy chain: previous hash.
    pub previous_hash: &'a str,
    /// Legacy chain: this entry's hash.
    pub chain_hash: &'a str,
}

impl<'a> LeafFields<'a> {
    /// The fields of a stored entry.
    pub fn of(e: &'a event::Model) -> Self {
        LeafFields {
            sequence: e.sequence,
            occurred_at: e.occurred_at,
            actor: &e.actor,
            actor_role: &e.actor_role,
            actor_site: &e.actor_site,
            actor_via: &e.actor_via,
            action: &e.action,
            entity_type: &e.entity_type,
            entity_id: &e.entity_id,
            old_value: &e.old_value,
            new_value: &e.new_value,
            reason: &e.reason,
            request_id: &e.request_id,
            trace_id: &e.trace_id,
            trial_id: &e.trial_id,
            site_code: &e.site_code,
            previous_hash: &e.previous_hash,
            chain_hash: &e.hash,
        }
    }

    /// The fields of an entry as ListAuditEvents returns it; `None` without a valid time.
    pub fn of_wire(e: &'a common::AuditEvent) -> Option<Self> {
        let at = e.occurred_at.as_ref()?;
        let occurred_at = DateTime::<Utc>::from_timestamp(at.seconds, u32::try_from(at.nanos).ok()?)?;
        Some(LeafFields {
            sequence: e.sequence,
            occurred_at,
            actor: &e.actor,
            actor_role: &e.actor_role,
            actor_site: &e.actor_site,
            actor_via: &e.actor_via,
            action: &e.action,
            entity_type: &e.entity_type,
            entity_id: &e.entity_id,
            old_value: &e.old_value_json,
            new_value: &e.new_value_json,
            reason: &e.reason,
            request_id: &e.request_id,
            trace_id: &e.trace_id,
            trial_id: &e.trial_id,
            site_code: &e.site_code,
            previous_hash: &e.previous_hash,
            chain_hash: &e.hash,
        })
    }

    /// The leaf data: the compact JSON array of the format and the fields.
    pub fn data(&self) -> Vec<u8> {
        serde_json::json!([
            LEAF_FORMAT,
            self.sequence,
            self.occurred_at.to_rfc3339_opts(SecondsFormat::Micros, true),
            self.actor,
            self.actor_role,
            self.actor_site,
            self.actor_via,
            self.action,
            self.entity_type,
            self.entity_id,
            self.old_value,
            self.new_value,
            self.reason,
            self.request_id,
            self.trace_id,
            self.trial_id,
            self.site_code,
            self.previous_hash,
            self.chain_hash,
        ])
        .to_string()
        .into_bytes()
    }

    /// The RFC 6962 leaf hash, SHA-256(0x00 || data).
    pub fn leaf_hash(&self) -> Hash {
        tlog_tiles::record_hash(&self.data())
    }
}

/// Lowercase hex of a hash.
pub fn hex_of(hash: &Hash) -> String {
    hex::encode(hash.0)
}

/// A hash from lowercase or uppercase hex; `None` unless 32 bytes.
pub fn hash_of_hex(text: &str) -> Option<Hash> {
    hex::decode(text).ok()?.try_into().ok().map(Hash)
}

/// A hash from raw bytes; `None` unless 32 bytes.
pub fn hash_of_bytes(bytes: &[u8]) -> Option<Hash> {
    bytes.try_into().ok().map(Hash)
}

// ---------------------------------------------------------------------------------------------
// The stored tree

/// Stored hashes known so far, fetched from `audit_tree_hashes` as the tree functions ask for
/// them.
#[derive(Default)]
struct Hashes {
    known: HashMap<u64, Hash>,
}

/// A reader over the known hashes that notes which were missing.
struct Lookup<'a> {
    known: &'a HashMap<u64, Hash>,
    missing: RefCell<Vec<u64>>,
}

impl HashReader for Lookup<'_> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog_tiles::Error> {
        let mut found = Vec::with_capacity(indexes.len());
        let mut missing = Vec::new();
        for index in indexes {
            match self.known.get(index) {
                Some(hash) => found.push(*hash),
                None => missing.push(*index),
            }
        }
        if missing.is_empty() {
            Ok(found)
        } else {
            *self.missing.borrow_mut() = missing;
            Err(tlog_tiles::Error::IndexesNotInTree)
        }
    }
}

/// Why the stored tree could not answer.
#[derive(Debug)]
enum TreeError {
    /// A stored hash is not in the database (the tree was cut short or damaged).
    Missing(u64),
    /// The tree functions refused the inputs.
    Tree(tlog_tiles::Error),
    /// The database failed.
    Db(sea_orm::DbErr),
}

impl From<sea_orm::DbErr> for TreeError {
    fn from(e: sea_orm::DbErr) -> Self {
        TreeError::Db(e)
    }
}

impl From<TreeError> for AppError {
    fn from(e: TreeError) -> Self {
        match e {
            TreeError::Db(e) => e.into(),
            TreeError::Missing(index) => inconsistent(&format!("stored tree hash {index} is missing")),
            TreeError::Tree(e) => AppError::internal(anyhow::anyhow!("audit log tree: {e}")),
        }
    }
}

/// FAILED_PRECONDITION / `AUDIT_LOG_INCONSISTENT`.
fn inconsistent(detail: &str) -> AppError {
    AppError::precondition(
        CommonReason::AuditLogInconsistent,
        format!(
            "the audit log in the database is not consistent with what this service signed ({detail}); it signs \
             nothing more until this is resolved: run VerifyAuditTrail"
        ),
    )
}

impl Hashes {
    fn attempt<T>(&self, work: &impl Fn(&Lookup<'_>) -> Result<T, tlog_tiles::Error>) -> Result<T, Vec<u64>> {
        let lookup = Lookup {
            known: &self.known,
            missing: RefCell::new(Vec::new()),
        };
        match work(&lookup) {
            Ok(value) => Ok(value),
            Err(e) => {
                let missing = lookup.missing.take();
                if missing.is_empty() {
                    // Reported below as a tree error; the indexes are only for missing hashes.
                    tracing::debug!(error = %e, "audit log tree function failed");
                }
                Err(missing)
            }
        }
    }

    /// Runs a tree function, fetching the stored hashes it asks for until it has them all.
    async fn run<C: ConnectionTrait, T>(
        &mut self,
        conn: &C,
        work: impl Fn(&Lookup<'_>) -> Result<T, tlog_tiles::Error>,
    ) -> Result<T, TreeError> {
        // A proof or a root reads at most about 2 log2(n) hashes in one request; a few rounds
        // are plenty, and the bound keeps a damaged tree from looping.
        for _ in 0..8 {
            match self.attempt(&work) {
                Ok(value) => return Ok(value),
                Err(missing) if missing.is_empty() => break,
                Err(missing) => self.fetch(conn, &missing).await?,
            }
        }
        let lookup = Lookup {
            known: &self.known,
            missing: RefCell::new(Vec::new()),
        };
        work(&lookup).map_err(TreeError::Tree)
    }

    async fn fetch<C: ConnectionTrait>(&mut self, conn: &C, indexes: &[u64]) -> Result<(), TreeError> {
        for chunk in indexes.chunks(500) {
            let wanted: Vec<i64> = chunk.iter().filter_map(|i| i64::try_from(*i).ok()).collect();
            let rows = tree_hash_row::Entity::find()
                .filter(tree_hash_row::Column::StoredIndex.is_in(wanted))
                .all(conn)
                .await?;
            for row in rows {
                if let (Ok(index), Some(hash)) = (u64::try_from(row.stored_index), hash_of_bytes(&row.hash)) {
                    self.known.insert(index, hash);
                }
            }
            if let Some(absent) = chunk.iter().find(|i| !self.known.contains_key(i)) {
                return Err(TreeError::Missing(*absent));
            }
        }
        Ok(())
    }
}

/// The RFC 6962 root of the stored tree of `size` entries.
async fn stored_root<C: ConnectionTrait>(conn: &C, hashes: &mut Hashes, size: u64) -> Result<Hash, TreeError> {
    hashes.run(conn, |r| tlog_tiles::tree_hash(size, r)).await
}

/// The roots of perfect subtrees a Merkle tree is built from, left to right, computed as leaves
/// are added: the RFC 6962 root of any prefix without keeping the leaves.
#[derive(Debug, Default, Clone)]
pub struct CompactRange {
    size: u64,
    stack: Vec<(u64, Hash)>,
}

impl CompactRange {
    /// Adds the next leaf hash.
    pub fn push(&mut self, leaf: Hash) {
        let mut node = (1u64, leaf);
        while let Some(&(size, left)) = self.stack.last() {
            if size != node.0 {
                break;
            }
            self.stack.pop();
            node = (size * 2, tlog_tiles::node_hash(left, node.1));
        }
        self.stack.push(node);
        self.size += 1;
    }

    /// Leaves added.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The root of the tree of the leaves added so far (RFC 6962 `MTH`).
    pub fn root(&self) -> Hash {
        let mut nodes = self.stack.iter().rev();
        let Some(&(_, mut root)) = nodes.next() else {
            return tlog_tiles::EMPTY_HASH;
        };
        for &(_, left) in nodes {
            root = tlog_tiles::node_hash(left, root);
        }
        root
    }
}

// ---------------------------------------------------------------------------------------------
// Sequencing

/// Takes the head row's lock (only integrators and signers take it) and reads the head, in one
/// statement.
async fn lock_head<C: ConnectionTrait>(conn: &C) -> Result<head::Model, AppError> {
    head::Entity::update_many()
        .col_expr(head::Column::TreeSize, Expr::col(head::Column::TreeSize).add(0))
        .filter(head::Column::Id.eq(1))
        .exec_with_returning(conn)
        .await?
        .pop()
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("the audit log head is missing")))
}

fn size_of(head: &head::Model) -> Result<u64, AppError> {
    u64::try_from(head.tree_size).map_err(|_| inconsistent("the head's size is negative"))
}

/// One integration pass over at most `limit` pending entries; how many it integrated.
async fn integrate_batch(db: &DatabaseConnection, limit: u64) -> Result<u64, AppError> {
    let tx = crate::records::database::begin_write(db).await?;
    let current = lock_head(&tx).await?;
    let batch = pending::Entity::find()
        .order_by_asc(pending::Column::Id)
        .limit(limit)
        .all(&tx)
        .await?;
    if batch.is_empty() {
        tx.rollback().await?;
        return Ok(0);
    }
    let size = size_of(&current)?;
    let mut hashes = Hashes::default();
    if size > 0 {
        // The right edge of the tree: every hash the new leaves combine with.
        hashes
            .fetch(&tx, &tlog_tiles::sub_tree_index(0, size, Vec::new()))
            .await?;
    }
    let mut placed = Vec::with_capacity(batch.len());
    let mut stored = Vec::new();
    for (offset, p) in batch.into_iter().enumerate() {
        let n = size + offset as u64;
        let (id, entry) = positioned(p, n)?;
        let leaf = LeafFields::of(&entry).leaf_hash();
        let new = hashes
            .run(&tx, |r| tlog_tiles::stored_hashes_for_record_hash(n, leaf, r))
            .await?;
        let first = tlog_tiles::stored_hash_index(0, n);
        for (k, hash) in new.into_iter().enumerate() {
            hashes.known.insert(first + k as u64, hash);
            stored.push((first + k as u64, hash));
        }
        placed.push(Placed {
            id,
            sequence: entry.sequence,
            leaf_hash: hex_of(&leaf),
        });
    }
    let new_size = size + placed.len() as u64;
    let root = stored_root(&tx, &mut hashes, new_size).await?;
    move_entries(&tx, &placed).await?;
    insert_tree_hashes(&tx, stored).await?;
    let moved = head::Entity::update_many()
        .col_expr(
            head::Column::TreeSize,
            Expr::value(i64::try_from(new_size).map_err(AppError::internal)?),
        )
        .col_expr(head::Column::RootHash, Expr::value(hex_of(&root)))
        .col_expr(head::Column::IntegratedAt, Expr::value(crate::clock::now()))
        .filter(head::Column::Id.eq(1))
        .filter(head::Column::TreeSize.eq(current.tree_size))
        .exec(&tx)
        .await?;
    if moved.rows_affected != 1 {
        // Another integrator moved the head (it cannot while this one holds the lock; the check
        // keeps a broken lock from forking the tree).
        tx.rollback().await?;
        return Ok(0);
    }
    tx.commit().await?;
    Ok(new_size - size)
}

/// `p` as the log's entry at leaf index `n`, with its queue id.
fn positioned(p: pending::Model, n: u64) -> Result<(i64, event::Model), AppError> {
    let entry = event::Model {
        sequence: i64::try_from(n + 1).map_err(AppError::internal)?,
        occurred_at: p.occurred_at,
        actor: p.actor,
        actor_role: p.actor_role,
        actor_site: p.actor_site,
        action: p.action,
        entity_type: p.entity_type,
        entity_id: p.entity_id,
        old_value: p.old_value,
        new_value: p.new_value,
        reason: p.reason,
        request_id: p.request_id,
        trace_id: p.trace_id,
        previous_hash: String::new(),
        hash: String::new(),
        actor_via: p.actor_via,
        trial_id: p.trial_id,
        site_code: p.site_code,
        leaf_hash: String::new(),
    };
    Ok((p.id, entry))
}

/// A queued entry's place in the log.
#[derive(serde::Serialize)]
struct Placed {
    id: i64,
    sequence: i64,
    leaf_hash: String,
}

/// The columns an entry keeps from the queue to the log, in both tables' names. None is also a
/// column of the JSON rows the statements join them with, so none needs its table's name.
macro_rules! entry_columns {
    () => {
        "occurred_at, actor, actor_role, actor_site, actor_via, action, entity_type, entity_id, old_value, \
         new_value, reason, request_id, trace_id, trial_id, site_code"
    };
}

/// The move on PostgreSQL: one statement, the queue's rows deleted and inserted into the log.
const MOVE_POSTGRES: &[&str] = &[concat!(
    "WITH placed AS (SELECT * FROM json_to_recordset($1::text::json) AS u(id bigint, sequence bigint, \
     leaf_hash text)), moved AS (DELETE FROM audit_pending p USING placed WHERE p.id = placed.id RETURNING p.*) \
     INSERT INTO audit_events (sequence, leaf_hash, previous_hash, hash, ",
    entry_columns!(),
    ") SELECT placed.sequence, placed.leaf_hash, '', '', ",
    entry_columns!(),
    " FROM moved JOIN placed ON placed.id = moved.id"
)];

/// The move on SQLite (no data-modifying subqueries): insert into the log, then delete.
const MOVE_SQLITE: &[&str] = &[
    concat!(
        "INSERT INTO audit_events (sequence, leaf_hash, previous_hash, hash, ",
        entry_columns!(),
        ") SELECT json_extract(u.value, '$.sequence'), json_extract(u.value, '$.leaf_hash'), '', '', ",
        entry_columns!(),
        " FROM json_each(?1) u JOIN audit_pending p ON p.id = json_extract(u.value, '$.id')"
    ),
    "DELETE FROM audit_pending WHERE id IN (SELECT json_extract(value, '$.id') FROM json_each(?1))",
];

/// Moves the placed entries from the queue into the log inside the database: only their ids,
/// positions and leaf hashes travel (one JSON parameter), not the entries again. The rows moved
/// are the rows the leaves were computed from: queued rows are only ever inserted, and this runs
/// in the transaction that read them.
async fn move_entries<C: ConnectionTrait>(conn: &C, placed: &[Placed]) -> Result<(), AppError> {
    let json = serde_json::to_string(placed).map_err(AppError::internal)?;
    let backend = conn.get_database_backend();
    let statements = match backend {
        sea_orm::DbBackend::Postgres => MOVE_POSTGRES,
        _ => MOVE_SQLITE,
    };
    for sql in statements {
        let done = conn
            .execute_raw(sea_orm::Statement::from_sql_and_values(
                backend,
                *sql,
                [json.clone().into()],
            ))
            .await?;
        if done.rows_affected() != placed.len() as u64 {
            return Err(inconsistent(
                "queued entries changed while they were moved into the log",
            ));
        }
    }
    Ok(())
}

/// Stores tree hashes by index: one statement per 5,000, each with one JSON parameter of
/// `[index, hex]` pairs, so every pass runs the same prepared statement whatever its size.
async fn insert_tree_hashes<C: ConnectionTrait>(conn: &C, stored: Vec<(u64, Hash)>) -> Result<(), AppError> {
    let backend = conn.get_database_backend();
    let sql = match backend {
        sea_orm::DbBackend::Postgres => {
            "INSERT INTO audit_tree_hashes (stored_index, hash) SELECT (e->>0)::bigint, decode(e->>1, 'hex') \
             FROM json_array_elements($1::text::json) e"
        }
        _ => {
            "INSERT INTO audit_tree_hashes (stored_index, hash) SELECT json_extract(value, '$[0]'), \
             unhex(json_extract(value, '$[1]')) FROM json_each(?1)"
        }
    };
    for chunk in stored.chunks(5000) {
        let rows: Vec<(u64, String)> = chunk.iter().map(|(index, hash)| (*index, hex_of(hash))).collect();
        let json = serde_json::to_string(&rows).map_err(AppError::internal)?;
        let done = conn
            .execute_raw(sea_orm::Statement::from_sql_and_values(backend, sql, [json.into()]))
            .await?;
        if done.rows_affected() != chunk.len() as u64 {
            return Err(AppError::internal(anyhow::anyhow!(
                "stored {} of {} tree hashes",
                done.rows_affected(),
                chunk.len()
            )));
        }
    }
    Ok(())
}

/// Gives every entry committed so far its position in the log; how many it integrated. Safe to
/// run from several tasks and replicas at once: passes take the head row's lock in turn.
pub async fn integrate(db: &DatabaseConnection) -> Result<u64, AppError> {
    let (mut total, limit) = (0, pass_size(db));
    loop {
        let moved = integrate_batch(db, limit).await?;
        total += moved;
        if moved < limit {
            return Ok(total);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Checkpoints

/// The checkpoint text (what is signed): origin, size, base64 root and the time extension line.
fn checkpoint_text(origin: &str, size: u64, root: Hash, at: DateTime<Utc>) -> Result<Vec<u8>, AppError> {
    let extension = format!("time {}\n", at.to_rfc3339_opts(SecondsFormat::Secs, true));
    Checkpoint::new(origin, size, root, &extension)
        .map(|c| c.to_bytes())
        .map_err(|e| AppError::internal(anyhow::anyhow!("checkpoint for origin {origin:?}: {e}")))
}

fn to_wire(row: checkpoint_row::Model, key: &LogKey) -> common::Checkpoint {
    common::Checkpoint {
        note: row.note,
        origin: key.origin().to_owned(),
        tree_size: row.tree_size,
        root_hash: row.root_hash,
        signed_at: Some(to_timestamp(row.signed_at)),
        verifier_key: key.verifier_key().to_owned(),
    }
}

/// The latest checkpoint, after integrating every committed entry and signing a new checkpoint if
/// the log grew since the last (or none was signed). Refuses (`AUDIT_LOG_INCONSISTENT`) when the
/// stored tree is not an extension of the last checkpoint signed.
pub async fn checkpoint(db: &DatabaseConnection, key: &LogKey) -> Result<common::Checkpoint, AppError> {
    integrate(db).await?;
    let tx = crate::records::database::begin_write(db).await?;
    let current = lock_head(&tx).await?;
    let size = size_of(&current)?;
    let last = checkpoint_row::Entity::find()
        .order_by_desc(checkpoint_row::Column::TreeSize)
        .one(&tx)
        .await?;
    let mut hashes = Hashes::default();
    let root = stored_root(&tx, &mut hashes, size).await?;
    if hex_of(&root) != current.root_hash {
        return Err(inconsistent("the head's root is not the stored tree's root"));
    }
    if let Some(last) = last {
        let last_size = u64::try_from(last.tree_size).map_err(|_| inconsistent("a checkpoint's size is negative"))?;
        if last_size > size {
            return Err(inconsistent(&format!(
                "checkpoint {last_size} covers more entries than the log's {size}"
            )));
        }
        let then = stored_root(&tx, &mut hashes, last_size).await?;
        if hex_of(&then) != last.root_hash {
            return Err(inconsistent(&format!(
                "the first {last_size} entries' tree is not the one checkpoint {last_size} signed"
            )));
        }
        if last_size == size {
            tx.rollback().await?;
            return Ok(to_wire(last, key));
        }
    }
    let now = crate::clock::now();
    let note = key.sign(&checkpoint_text(key.origin(), size, root, now)?)?;
    let row = checkpoint_row::Model {
        tree_size: current.tree_size,
        root_hash: hex_of(&root),
        note,
        signed_at: now,
    };
    checkpoint_row::Entity::insert(checkpoint_row::ActiveModel::from(row.clone()))
        .exec_without_returning(&tx)
        .await?;
    tx.commit().await?;
    Ok(to_wire(row, key))
}

/// A verified checkpoint: its size and root.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Verified {
    /// Origin checked; entries covered.
    pub size: u64,
    /// Root hash.
    pub root: Hash,
}

/// Checks a signed checkpoint note against the pinned verifier key and origin.
pub fn verify_note(note: &str, verifier_key: &str) -> Result<Verified, String> {
    let verifier = StandardVerifier::new(verifier_key.trim()).map_err(|e| format!("verifier key: {e}"))?;
    let origin = verifier_name(verifier_key);
    let parsed = Note::from_bytes(note.as_bytes()).map_err(|e| format!("not a signed note: {e}"))?;
    parsed
        .verify(&VerifierList::new(vec![Box::new(verifier)]))
        .map_err(|e| format!("signature does not verify with {origin}'s key: {e}"))?;
    let checkpoint = Checkpoint::from_bytes(parsed.text()).map_err(|e| format!("not a checkpoint: {e}"))?;
    if checkpoint.origin() != origin {
        return Err(format!("checkpoint of log {:?}, not {origin:?}", checkpoint.origin()));
    }
    Ok(Verified {
        size: checkpoint.size(),
        root: *checkpoint.hash(),
    })
}

/// Whether `proof` shows the tree of checkpoint `old` to be a prefix of the tree of `new`
/// (RFC 9162 section 2.1.4.2, with the edge cases of equal sizes and the empty tree).
pub fn consistent(old: Verified, new: Verified, proof: &[Vec<u8>]) -> bool {
    if old.size > new.size {
        return false;
    }
    if old.size == 0 {
        return old.root == tlog_tiles::EMPTY_HASH && proof.is_empty();
    }
    if old.size == new.size {
        return old.root == new.root && proof.is_empty();
    }
    let Some(proof) = proof.iter().map(|h| hash_of_bytes(h)).collect::<Option<Vec<_>>>() else {
        return false;
    };
    tlog_tiles::check_tree(&proof, new.size, new.root, old.size, old.root).is_ok()
}

/// The RFC 6962 root of the first `size` of `leaves`.
pub fn root_of(leaves: &[Hash]) -> Hash {
    let mut range = CompactRange::default();
    for leaf in leaves {
        range.push(*leaf);
    }
    range.root()
}

fn verifier_name(verifier_key: &str) -> &str {
    verifier_key.trim().split('+').next().unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Proofs

fn positive(field: &str, value: i64) -> Result<u64, AppError> {
    u64::try_from(value)
        .ok()
        .filter(|v| *v > 0)
        .ok_or_else(|| AppError::invalid(field, "must be at least 1"))
}

/// Two positions a proof is asked for, `(lower, upper)`, each at least 1, the lower at most the
/// upper, and the upper at most the latest checkpoint's size.
async fn proof_range<C: ConnectionTrait>(
    conn: &C,
    (lower_field, lower): (&str, i64),
    (upper_field, upper): (&str, i64),
) -> Result<(u64, u64), AppError> {
    let (lower, upper) = (positive(lower_field, lower)?, positive(upper_field, upper)?);
    if lower > upper {
        return Err(AppError::invalid(lower_field, format!("must be at most {upper_field}")));
    }
    let last = checkpoint_row::Entity::find()
        .order_by_desc(checkpoint_row::Column::TreeSize)
        .one(conn)
        .await?;
    let signed = last.map_or(0, |c| u64::try_from(c.tree_size).unwrap_or(0));
    if upper > signed {
        return Err(AppError::invalid(
            upper_field,
            format!("must be at most the latest checkpoint's size, {signed} (GetCheckpoint signs a newer one)"),
        ));
    }
    Ok((lower, upper))
}

/// Entry `sequence` and its inclusion proof in the tree of `tree_size` entries.
pub async fn inclusion_proof<C: ConnectionTrait>(
    conn: &C,
    sequence: i64,
    tree_size: i64,
) -> Result<(common::AuditEvent, Vec<Vec<u8>>), AppError> {
    let (n, t) = proof_range(conn, ("sequence", sequence), ("tree_size", tree_size)).await?;
    let entry = event::Entity::find_by_id(sequence)
        .one(conn)
        .await?
        .ok_or_else(|| AppError::NotFound {
            what: "audit entry",
            id: sequence.to_string(),
        })?;
    let proof = Hashes::default()
        .run(conn, |r| tlog_tiles::prove_record(t, n - 1, r))
        .await?;
    Ok((
        crate::records::audit::to_proto(entry),
        proof.into_iter().map(|h| h.0.to_vec()).collect(),
    ))
}

/// The consistency proof from the tree of `old_size` entries to the tree of `new_size`.
pub async fn consistency_proof<C: ConnectionTrait>(
    conn: &C,
    old_size: i64,
    new_size: i64,
) -> Result<Vec<Vec<u8>>, AppError> {
    let (m, n) = proof_range(conn, ("old_size", old_size), ("new_size", new_size)).await?;
    let proof = Hashes::default().run(conn, |r| tlog_tiles::prove_tree(n, m, r)).await?;
    Ok(proof.into_iter().map(|h| h.0.to_vec()).collect())
}

// ---------------------------------------------------------------------------------------------
// Verification

/// What [`verify`] found.
fn broken(sequence: i64, checked: i64, problem: String) -> common::AuditVerification {
    common::AuditVerification {
        intact: false,
        events_checked: checked,
        first_broken_sequence: sequence,
        problem,
        records_differing: Vec::new(),
    }
}

/// Checks the whole log: positions without gaps, every entry against its stored leaf, the
/// entries written before the log against their hash chain, the tree rebuilt from the entries
/// against the stored tree and the head, and every signed checkpoint (signature and root)
/// against it; then the service's records against the trail ([`crate::records::replay`]).
/// Reports the first entry that does not verify and every record that differs.
pub async fn verify(db: &DatabaseConnection, trail: &Trail) -> Result<common::AuditVerification, AppError> {
    let mut verification = verify_log(db, &trail.key).await?;
    verification.records_differing = crate::records::replay::differing(db, trail.records).await?;
    if verification.intact && !verification.records_differing.is_empty() {
        verification.intact = false;
        verification.problem = "records differ from what their trail recorded".into();
    }
    Ok(verification)
}

async fn verify_log(db: &DatabaseConnection, key: &LogKey) -> Result<common::AuditVerification, AppError> {
    integrate(db).await?;
    let current = head::Entity::find_by_id(1)
        .one(db)
        .await?
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("the audit log head is missing")))?;
    let checkpoints = checkpoint_row::Entity::find()
        .order_by_asc(checkpoint_row::Column::TreeSize)
        .all(db)
        .await?;
    let mut pending_checkpoints = checkpoints.iter().peekable();
    let mut last_good_checkpoint = 0i64;
    let mut range = CompactRange::default();
    while let Some(c) = pending_checkpoints.next_if(|c| c.tree_size == 0) {
        if let Some(problem) = checkpoint_problem(c, key, range.root()) {
            return Ok(broken(1, 0, problem));
        }
    }
    let mut chain = crate::records::audit::LegacyChain::default();
    let mut expected = 1i64;
    loop {
        let batch = event::Entity::find()
            .filter(event::Column::Sequence.gte(expected))
            .order_by_asc(event::Column::Sequence)
            .limit(1000)
            .all(db)
            .await?;
        let done = batch.len() < 1000;
        let indexes: Vec<i64> = batch
            .iter()
            .filter_map(|e| u64::try_from(e.sequence - 1).ok())
            .filter_map(|n| i64::try_from(tlog_tiles::stored_hash_index(0, n)).ok())
            .collect();
        let mut leaves = HashMap::new();
        for chunk in indexes.chunks(500) {
            for row in tree_hash_row::Entity::find()
                .filter(tree_hash_row::Column::StoredIndex.is_in(chunk.to_vec()))
                .all(db)
                .await?
            {
                leaves.insert(row.stored_index, row.hash);
            }
        }
        for e in batch {
            let checked = expected - 1;
            if e.sequence != expected {
                return Ok(broken(
                    expected,
                    checked,
                    "entry missing: the sequence has a gap".into(),
                ));
            }
            if let Some(problem) = chain.check(&e) {
                return Ok(broken(e.sequence, checked, problem.into()));
            }
            let leaf = LeafFields::of(&e).leaf_hash();
            let stored = u64::try_from(e.sequence - 1)
                .ok()
                .and_then(|n| i64::try_from(tlog_tiles::stored_hash_index(0, n)).ok())
                .and_then(|i| leaves.get(&i))
                .and_then(|h| hash_of_bytes(h));
            if stored != Some(leaf) || e.leaf_hash != hex_of(&leaf) {
                return Ok(broken(
                    e.sequence,
                    checked,
                    "hash does not match the entry's content".into(),
                ));
            }
            range.push(leaf);
            while let Some(c) = pending_checkpoints.next_if(|c| c.tree_size == e.sequence) {
                if let Some(problem) = checkpoint_problem(c, key, range.root()) {
                    return Ok(broken(last_good_checkpoint + 1, checked + 1, problem));
                }
                last_good_checkpoint = c.tree_size;
            }
            expected += 1;
        }
        if done {
            break;
        }
    }
    let checked = expected - 1;
    if checked < current.tree_size {
        return Ok(broken(
            expected,
            checked,
            format!("entries missing at the end: the log holds {}", current.tree_size),
        ));
    }
    if checked > current.tree_size || hex_of(&range.root()) != current.root_hash {
        return Ok(broken(
            last_good_checkpoint + 1,
            checked,
            "the log's head does not match its entries".into(),
        ));
    }
    if let Some(c) = pending_checkpoints.next() {
        return Ok(broken(
            expected,
            checked,
            format!(
                "entries missing at the end: checkpoint {} signed {} entries",
                c.signed_at.to_rfc3339_opts(SecondsFormat::Secs, true),
                c.tree_size
            ),
        ));
    }
    Ok(common::AuditVerification {
        intact: true,
        events_checked: checked,
        first_broken_sequence: 0,
        problem: String::new(),
        records_differing: Vec::new(),
    })
}

fn checkpoint_problem(c: &checkpoint_row::Model, key: &LogKey, root: Hash) -> Option<String> {
    let signed = c.signed_at.to_rfc3339_opts(SecondsFormat::Secs, true);
    match verify_note(&c.note, key.verifier_key()) {
        Err(e) => Some(format!("checkpoint {} (signed {signed}): {e}", c.tree_size)),
        Ok(v) if u64::try_from(c.tree_size).ok() != Some(v.size) || hex_of(&v.root) != c.root_hash => {
            Some(format!("checkpoint {} (signed {signed}) was altered", c.tree_size))
        }
        Ok(v) if v.root != root => Some(format!(
            "an entry at or before {} changed after checkpoint {} was signed ({signed})",
            c.tree_size, c.tree_size
        )),
        Ok(_) => None,
    }
}

// ---------------------------------------------------------------------------------------------
// The sequencer task

/// Integrates committed entries every `integrate_every` and signs a checkpoint every
/// `checkpoint_every` (when the log grew) until `stop`, then integrates and signs once more.
pub async fn run_sequencer(
    db: DatabaseConnection,
    key: LogKey,
    schedule: Schedule,
    stop: tokio_util::sync::CancellationToken,
) {
    let mut integrate_tick = tokio::time::interval(schedule.integrate_every);
    integrate_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut checkpoint_tick = tokio::time::interval(schedule.checkpoint_every);
    checkpoint_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            _ = integrate_tick.tick() => {
                if let Err(e) = integrate(&db).await {
                    tracing::warn!(error = %e, "audit log: integrating committed entries failed; retrying");
                }
            }
            _ = checkpoint_tick.tick() => {
                if let Err(e) = checkpoint(&db, &key).await {
                    tracing::error!(error = %e, "audit log: no checkpoint signed");
                }
            }
        }
    }
    if let Err(e) = checkpoint(&db, &key).await {
        tracing::warn!(error = %e, "audit log: no checkpoint signed at shutdown");
    }
}

/// Runs the transaction-free part of a migration: gives the entries written before the log
/// their leaves and builds the tree over them (their chain is checked first: a broken chain is
/// not carried into a log that would then vouch for it).
pub async fn adopt_chained_entries<C: ConnectionTrait>(conn: &C) -> Result<u64, anyhow::Error> {
    let mut chain = crate::records::audit::LegacyChain::default();
    let mut hashes = Hashes::default();
    let mut range = CompactRange::default();
    let mut after = 0i64;
    loop {
        let batch = event::Entity::find()
            .filter(event::Column::Sequence.gt(after))
            .order_by_asc(event::Column::Sequence)
            .limit(BATCH)
            .all(conn)
            .await?;
        let Some(last) = batch.last() else { break };
        after = last.sequence;
        let mut stored = Vec::new();
        for e in batch {
            if e.sequence != range.size() as i64 + 1 {
                anyhow::bail!(
                    "the audit trail has a gap at sequence {}: restore it before upgrading",
                    range.size() + 1
                );
            }
            if let Some(problem) = chain.check(&e) {
                anyhow::bail!(
                    "the audit trail's entry {} does not verify ({problem}): restore it before upgrading",
                    e.sequence
                );
            }
            let leaf = LeafFields::of(&e).leaf_hash();
            let n = range.size();
            let new = hashes
                .run(conn, |r| tlog_tiles::stored_hashes_for_record_hash(n, leaf, r))
                .await
                .map_err(|e| anyhow::anyhow!("building the audit log's tree: {e:?}"))?;
            let first = tlog_tiles::stored_hash_index(0, n);
            for (k, hash) in new.into_iter().enumerate() {
                hashes.known.insert(first + k as u64, hash);
                stored.push((first + k as u64, hash));
            }
            event::Entity::update_many()
                .col_expr(event::Column::LeafHash, Expr::value(hex_of(&leaf)))
                .filter(event::Column::Sequence.eq(e.sequence))
                .exec(conn)
                .await?;
            range.push(leaf);
        }
        insert_tree_hashes(conn, stored)
            .await
            .map_err(|e| anyhow::anyhow!("building the audit log's tree: {e}"))?;
    }
    head::Entity::update_many()
        .col_expr(head::Column::TreeSize, Expr::value(range.size() as i64))
        .col_expr(head::Column::RootHash, Expr::value(hex_of(&range.root())))
        .filter(head::Column::Id.eq(1))
        .exec(conn)
        .await?;
    Ok(range.size())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6962 MTH by its definition, over leaf hashes.
    fn mth(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => tlog_tiles::EMPTY_HASH,
            1 => leaves[0],
            n => {
                // The largest power of two strictly smaller than n: the highest bit of n - 1.
                let k = 1usize << (usize::BITS - 1 - (n - 1).leading_zeros());
                tlog_tiles::node_hash(mth(&leaves[..k]), mth(&leaves[k..]))
            }
        }
    }

    #[test]
    fn a_leaf_is_sha256_of_a_zero_byte_and_the_compact_json_array() {
        // Python: hashlib.sha256(b"\x00" + json.dumps([...], separators=(",", ":")).encode())
        let at = DateTime::parse_from_rfc3339("2026-12-06T10:00:00.123456Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(|e| panic!("{e}"));
        let fields = LeafFields {
            sequence: 3,
            occurred_at: at,
            actor: "coordinator-1",
            actor_role: "site_coordinator",
            actor_site: "COG-101",
            actor_via: "",
            action: "subject.enrolled",
            entity_type: "subject",
            entity_id: "ANBL1221-0001",
            old_value: "",
            new_value: r#"{"arm_code":"A"}"#,
            reason: "",
            request_id: "req-1",
            trace_id: "",
            trial_id: "ANBL1221",
            site_code: "COG-101",
            previous_hash: "",
            chain_hash: "",
        };
        assert_eq!(
            hex_of(&fields.leaf_hash()),
            "1e050e39ff11c88e89fa68484265c6311411f9b7a6a7bf860022e2c92459cb84"
        );
    }

    #[test]
    fn the_compact_range_root_is_the_rfc_6962_root_of_every_prefix() {
        let leaves: Vec<Hash> = (0..70u8).map(|i| tlog_tiles::record_hash(&[i])).collect();
        let mut range = CompactRange::default();
        assert_eq!(range.root(), tlog_tiles::EMPTY_HASH);
        for (i, leaf) in leaves.iter().enumerate() {
            range.push(*leaf);
            assert_eq!(range.root(), mth(&leaves[..=i]), "size {}", i + 1);
        }
    }

    #[test]
    fn a_generated_key_signs_checkpoints_its_verifier_key_accepts_and_another_key_does_not() {
        let (skey, vkey) = LogKey::generate("example.org/trialops/enrollment").unwrap_or_else(|e| panic!("{e}"));
        let key = LogKey::parse(&skey).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(key.verifier_key(), vkey);
        assert_eq!(key.origin(), "example.org/trialops/enrollment");
        let at = DateTime::<Utc>::from_timestamp(1_780_000_000, 0).unwrap_or_default();
        let root = tlog_tiles::record_hash(b"x");
        let note = key
            .sign(&checkpoint_text(key.origin(), 7, root, at).unwrap_or_else(|e| panic!("{e}")))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(note.starts_with("example.org/trialops/enrollment\n7\n"), "{note}");
        assert!(
            note.contains("\ntime 2026-05-28T20:26:40Z\n\n\u{2014} example.org/trialops/enrollment "),
            "{note}"
        );
        assert_eq!(verify_note(&note, &vkey), Ok(Verified { size: 7, root }));
        let (_, other) = LogKey::generate("example.org/trialops/enrollment").unwrap_or_else(|e| panic!("{e}"));
        assert!(verify_note(&note, &other).is_err());
        let forged = note.replacen("\n7\n", "\n8\n", 1);
        assert!(verify_note(&forged, &vkey).is_err());
    }
}
