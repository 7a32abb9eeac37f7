//! `trialops audit`: keep each service's signed checkpoints outside the database, and prove
//! against the running service that its log still holds them unchanged.
//!
//! - `audit keygen` writes a log signing key (for `TRIALOPS_AUDIT_SIGNING_KEY_FILE`) and prints
//!   its verifier key.
//! - `audit checkpoint --save DIR` saves each service's latest checkpoint as
//!   `DIR/<service>-<size>.checkpoint` (the signed note, exactly) and, the first time, the
//!   service's verifier key as `DIR/<service>.vkey`. Later saves refuse a checkpoint signed with
//!   another key.
//! - `audit verify --checkpoints DIR` checks, per service: every saved checkpoint's signature with
//!   the pinned key; the current checkpoint's; that the log did not shrink below a saved one; the
//!   RFC 6962 consistency proof from each saved checkpoint to the current one; and every entry,
//!   recomputed from what ListAuditEvents returns, against each checkpoint's root. A problem names
//!   the first bad position, or the range it lies in when the tree itself was rewritten. The
//!   service's own VerifyAuditTrail runs too, which also compares each record with what its trail
//!   recorded. Exit status 1 when anything does not verify.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand, ValueEnum};
use trialops_platform::records::log::{self, LeafFields, LogKey, Verified};
use trialops_proto::common::v1::{AuditEvent, AuditVerification, Checkpoint};
use trialops_proto::dosing::v1 as dpb;
use trialops_proto::enrollment::v1 as epb;
use trialops_proto::outcomes::v1 as opb;

use super::Session;

/// Which services' logs.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Which {
    /// All three.
    All,
    /// Enrollment.
    Enrollment,
    /// Dosing.
    Dosing,
    /// Outcomes.
    Outcomes,
}

impl Which {
    fn services(self) -> Vec<Service> {
        match self {
            Which::All => vec![Service::Enrollment, Service::Dosing, Service::Outcomes],
            Which::Enrollment => vec![Service::Enrollment],
            Which::Dosing => vec![Service::Dosing],
            Which::Outcomes => vec![Service::Outcomes],
        }
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Service {
    Enrollment,
    Dosing,
    Outcomes,
}

impl Service {
    fn name(self) -> &'static str {
        match self {
            Service::Enrollment => "enrollment",
            Service::Dosing => "dosing",
            Service::Outcomes => "outcomes",
        }
    }
}

/// The audit log commands.
#[derive(Args, Debug)]
pub struct Audit {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Write a new log signing key to a file (mode 0600) and print its verifier key.
    Keygen(Keygen),
    /// Save each service's latest signed checkpoint into a folder (administrator).
    Checkpoint(Save),
    /// Prove that each service's log still holds the saved checkpoints unchanged (administrator).
    Verify(Verify),
}

/// `audit keygen`.
#[derive(Args, Debug)]
pub struct Keygen {
    /// The log's name, a URL without scheme, for example `trialops.hospital.example/enrollment`.
    #[arg(long)]
    origin: String,
    /// The key file to create (it must not exist).
    #[arg(long)]
    out: PathBuf,
}

/// `audit checkpoint`.
#[derive(Args, Debug)]
pub struct Save {
    /// Folder to save into (created if missing).
    #[arg(long)]
    save: PathBuf,
    /// Whose log.
    #[arg(long, value_enum, default_value = "all")]
    service: Which,
}

/// `audit verify`.
#[derive(Args, Debug)]
pub struct Verify {
    /// Folder of checkpoints saved with `audit checkpoint --save`.
    #[arg(long)]
    checkpoints: PathBuf,
    /// Whose log.
    #[arg(long, value_enum, default_value = "all")]
    service: Which,
    /// The verifier key to trust (with one service), instead of `<folder>/<service>.vkey`.
    #[arg(long)]
    verifier_key: Option<String>,
}

impl Audit {
    /// Runs the command.
    pub async fn run(self, session: &mut Session) -> anyhow::Result<()> {
        match self.command {
            Command::Keygen(k) => k.run(),
            Command::Checkpoint(s) => s.run(session).await,
            Command::Verify(v) => v.run(session).await,
        }
    }
}

impl Keygen {
    fn run(self) -> anyhow::Result<()> {
        if self.out.exists() {
            anyhow::bail!("{} exists: a log key is never overwritten", self.out.display());
        }
        let key = LogKey::ensure(&self.out, &self.origin)?;
        println!("{}", key.verifier_key());
        Ok(())
    }
}

// The three contracts declare the same audit messages; only the package differs.
macro_rules! each_service {
    ($session:expr, $service:expr, |$client:ident, $pb:ident| $call:expr) => {
        match $service {
            Service::Enrollment => {
                let $client = &mut $session.clients.enrollment;
                #[allow(unused_imports)]
                use epb as $pb;
                $call
            }
            Service::Dosing => {
                let $client = &mut $session.clients.dosing;
                #[allow(unused_imports)]
                use dpb as $pb;
                $call
            }
            Service::Outcomes => {
                let $client = &mut $session.clients.outcomes;
                #[allow(unused_imports)]
                use opb as $pb;
                $call
            }
        }
    };
}

async fn current(session: &mut Session, service: Service) -> anyhow::Result<Checkpoint> {
    let token = session.token.clone();
    let action = format!("getting {}'s checkpoint", service.name());
    let response = each_service!(session, service, |client, pb| client
        .get_checkpoint(crate::api::with_token(pb::GetCheckpointRequest {}, &token)?)
        .await
        .map(|r| r.into_inner().checkpoint));
    let checkpoint = crate::api::Context::doing(response.map(tonic::Response::new), action)?;
    checkpoint.ok_or_else(|| anyhow::anyhow!("{} returned no checkpoint", service.name()))
}

async fn consistency(session: &mut Session, service: Service, old: u64, new: u64) -> anyhow::Result<Vec<Vec<u8>>> {
    let token = session.token.clone();
    let (old_size, new_size) = (i64::try_from(old)?, i64::try_from(new)?);
    let response = each_service!(session, service, |client, pb| client
        .get_consistency_proof(crate::api::with_token(
            pb::GetConsistencyProofRequest { old_size, new_size },
            &token
        )?)
        .await
        .map(|r| r.into_inner().proof));
    Ok(crate::api::Context::doing(
        response.map(tonic::Response::new),
        format!("getting {}'s consistency proof {old}..{new}", service.name()),
    )?)
}

async fn entries(session: &mut Session, service: Service, up_to: u64) -> anyhow::Result<Vec<AuditEvent>> {
    let token = session.token.clone();
    let mut all = Vec::new();
    let mut page_token = String::new();
    loop {
        let request_token = page_token.clone();
        let response = each_service!(session, service, |client, pb| client
            .list_audit_events(crate::api::with_token(
                pb::ListAuditEventsRequest {
                    page_size: 500,
                    page_token: request_token,
                    ..Default::default()
                },
                &token
            )?)
            .await
            .map(|r| {
                let r = r.into_inner();
                (r.events, r.next_page_token)
            }));
        let (events, next) = crate::api::Context::doing(
            response.map(tonic::Response::new),
            format!("listing {}'s audit trail", service.name()),
        )?;
        let done = next.is_empty() || events.last().is_some_and(|e| e.sequence as u64 >= up_to);
        all.extend(events.into_iter().filter(|e| e.sequence as u64 <= up_to));
        if done {
            return Ok(all);
        }
        page_token = next;
    }
}

async fn own_verification(session: &mut Session, service: Service) -> anyhow::Result<AuditVerification> {
    let token = session.token.clone();
    let response = each_service!(session, service, |client, pb| client
        .verify_audit_trail(crate::api::with_token(pb::VerifyAuditTrailRequest {}, &token)?)
        .await
        .map(|r| r.into_inner().verification.unwrap_or_default()));
    Ok(crate::api::Context::doing(
        response.map(tonic::Response::new),
        format!("verifying {}'s audit trail", service.name()),
    )?)
}

fn vkey_path(dir: &Path, service: Service) -> PathBuf {
    dir.join(format!("{}.vkey", service.name()))
}

impl Save {
    async fn run(self, session: &mut Session) -> anyhow::Result<()> {
        for service in self.service.services() {
            let (verified, file) = save_one(session, service, &self.save).await?;
            println!(
                "{:<11} {} entries, root {}, saved {}",
                service.name(),
                verified.size,
                log::hex_of(&verified.root),
                file.display()
            );
        }
        Ok(())
    }
}

/// Saves `service`'s latest checkpoint into `dir`, pinning its verifier key the first time.
async fn save_one(session: &mut Session, service: Service, dir: &Path) -> anyhow::Result<(Verified, PathBuf)> {
    trialops_platform::config::private_files::create_dir(dir)?;
    let checkpoint = current(session, service).await?;
    let pinned = vkey_path(dir, service);
    let key = if pinned.exists() {
        std::fs::read_to_string(&pinned)?.trim().to_owned()
    } else {
        std::fs::write(&pinned, format!("{}\n", checkpoint.verifier_key))?;
        checkpoint.verifier_key.clone()
    };
    let verified = log::verify_note(&checkpoint.note, &key).map_err(|e| {
        anyhow::anyhow!(
            "{}: the checkpoint does not verify with the key saved in {}: {e}",
            service.name(),
            pinned.display()
        )
    })?;
    let file = dir.join(format!("{}-{}.checkpoint", service.name(), verified.size));
    std::fs::write(&file, &checkpoint.note)?;
    Ok((verified, file))
}

/// Saves the three services' latest checkpoints into `dir` (the demo, during its replay).
pub(crate) async fn save_all(session: &mut Session, dir: &Path) -> anyhow::Result<()> {
    for service in Which::All.services() {
        save_one(session, service, dir).await?;
    }
    Ok(())
}

/// Verifies the three services' logs against the checkpoints saved in `dir` (the demo, at its
/// end): every problem, naming its service, and how many checkpoints were saved.
pub(crate) async fn verify_all(session: &mut Session, dir: &Path) -> anyhow::Result<(Vec<String>, usize)> {
    let mut problems = Vec::new();
    let mut count = 0;
    for service in Which::All.services() {
        let key = std::fs::read_to_string(vkey_path(dir, service))?.trim().to_owned();
        let (found, summary) = verify_service(session, service, dir, &key).await?;
        count += summary.saved;
        problems.extend(found.into_iter().map(|p| format!("{}: {p}", service.name())));
    }
    Ok((problems, count))
}

/// One finding of `audit verify`.
struct Problem {
    service: Service,
    text: String,
}

impl Verify {
    async fn run(self, session: &mut Session) -> anyhow::Result<()> {
        let services = self.service.services();
        if self.verifier_key.is_some() && services.len() != 1 {
            anyhow::bail!("--verifier-key goes with one --service");
        }
        let mut problems = Vec::new();
        for service in services {
            let key = match &self.verifier_key {
                Some(key) => key.clone(),
                None => {
                    let path = vkey_path(&self.checkpoints, service);
                    std::fs::read_to_string(&path)
                        .map_err(|e| {
                            anyhow::anyhow!("{}: no pinned verifier key {}: {e}", service.name(), path.display())
                        })?
                        .trim()
                        .to_owned()
                }
            };
            let (found, summary) = verify_service(session, service, &self.checkpoints, &key).await?;
            if found.is_empty() {
                println!(
                    "{:<11} intact: {} entries, {} saved checkpoints consistent, current root {}",
                    service.name(),
                    summary.size,
                    summary.saved,
                    log::hex_of(&summary.root)
                );
            }
            problems.extend(found.into_iter().map(|text| Problem { service, text }));
        }
        if problems.is_empty() {
            return Ok(());
        }
        for p in &problems {
            eprintln!("{}: {}", p.service.name(), p.text);
        }
        anyhow::bail!("the audit log does not verify ({} problems)", problems.len())
    }
}

/// The saved checkpoints of `service` in `dir`, smallest first, each verified with `key`.
fn saved(
    dir: &Path,
    service: Service,
    key: &str,
    problems: &mut Vec<String>,
) -> anyhow::Result<Vec<(Verified, PathBuf)>> {
    let prefix = format!("{}-", service.name());
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if !(name.starts_with(&prefix) && name.ends_with(".checkpoint")) {
            continue;
        }
        let note = std::fs::read_to_string(&path)?;
        match log::verify_note(&note, key) {
            Ok(v) => found.push((v, path)),
            Err(e) => problems.push(format!("saved checkpoint {} does not verify: {e}", path.display())),
        }
    }
    found.sort_by_key(|(v, _)| v.size);
    Ok(found)
}

/// What was verified of a log.
#[derive(Default)]
struct Summary {
    size: u64,
    saved: usize,
    root: log::Hash,
}

/// Every problem with `service`'s log, and what was checked.
async fn verify_service(
    session: &mut Session,
    service: Service,
    dir: &Path,
    key: &str,
) -> anyhow::Result<(Vec<String>, Summary)> {
    let mut problems = Vec::new();
    let mut summary = Summary::default();
    let saved = saved(dir, service, key, &mut problems)?;
    let now = match current(session, service).await {
        Ok(checkpoint) => checkpoint,
        Err(e) => {
            problems.push(format!("no current checkpoint: {e:#}"));
            return Ok((problems, summary));
        }
    };
    let now = match log::verify_note(&now.note, key) {
        Ok(v) => v,
        Err(e) => {
            problems.push(format!("the current checkpoint does not verify: {e}"));
            return Ok((problems, summary));
        }
    };
    // The entries as the service lists them, recomputed into leaves.
    let listed = entries(session, service, now.size).await?;
    let mut leaves = Vec::with_capacity(listed.len());
    for (i, e) in listed.iter().enumerate() {
        let position = i as i64 + 1;
        if e.sequence != position {
            problems.push(format!(
                "entry {position} is missing (the trail skips from {} to {})",
                position - 1,
                e.sequence
            ));
            break;
        }
        match LeafFields::of_wire(e) {
            Some(fields) => leaves.push(fields.leaf_hash()),
            None => {
                problems.push(format!("entry {position} has no valid time"));
                break;
            }
        }
    }
    let complete = problems.is_empty() && leaves.len() as u64 == now.size;
    if problems.is_empty() && !complete {
        problems.push(if (leaves.len() as u64) < now.size {
            format!(
                "entry {} is missing: the trail ends at {}, the current checkpoint covers {}",
                leaves.len() + 1,
                leaves.len(),
                now.size
            )
        } else {
            format!(
                "the trail lists {} entries, the current checkpoint {}",
                leaves.len(),
                now.size
            )
        });
    }
    // Each saved checkpoint: still a prefix of the current tree, and of the entries.
    let mut intact_before = 0u64;
    for (old, path) in &saved {
        let name = path.display();
        if old.size > now.size {
            problems.push(format!(
                "the log was cut short: {name} covers {} entries, the log now {}; position {} onward is gone",
                old.size,
                now.size,
                now.size + 1
            ));
            continue;
        }
        let proof = if old.size > 0 && old.size < now.size {
            consistency(session, service, old.size, now.size).await?
        } else {
            Vec::new()
        };
        if !log::consistent(*old, now, &proof) {
            problems.push(format!(
                "the log was rewritten: its first {} entries are not those {name} covers; \
                 the change lies at positions {}..={}",
                old.size,
                intact_before + 1,
                old.size
            ));
            continue;
        }
        if complete && log::root_of(&leaves[..old.size as usize]) != old.root {
            let first = first_changed(session, service, &leaves, *old).await?;
            problems.push(format!(
                "entry {first} is not what {name} covers: it was changed or moved after the checkpoint was signed"
            ));
            continue;
        }
        intact_before = old.size;
    }
    if complete && log::root_of(&leaves) != now.root {
        let first = first_changed(session, service, &leaves, now).await?;
        problems.push(format!("entry {first} does not match the log's current tree"));
    }
    let own = own_verification(session, service).await?;
    if !own.intact && own.first_broken_sequence > 0 {
        problems.push(format!(
            "the service's own check fails at entry {}: {}",
            own.first_broken_sequence, own.problem
        ));
    }
    for record in &own.records_differing {
        problems.push(format!("record differs from its trail: {record}"));
    }
    summary = Summary {
        size: now.size,
        saved: saved.len(),
        root: now.root,
    };
    Ok((problems, summary))
}

/// The first position (from 1) whose recomputed leaf is not in the tree of `checkpoint`: the
/// smallest k whose prefix of k leaves the consistency proof from k to the checkpoint rejects.
async fn first_changed(
    session: &mut Session,
    service: Service,
    leaves: &[log::Hash],
    checkpoint: Verified,
) -> anyhow::Result<u64> {
    // Invariant: the first `good` leaves are intact, the first `bad` are not.
    let (mut good, mut bad) = (0u64, checkpoint.size);
    while bad - good > 1 {
        let mid = good + (bad - good) / 2;
        let prefix = Verified {
            size: mid,
            root: log::root_of(&leaves[..mid as usize]),
        };
        let proof = consistency(session, service, mid, checkpoint.size).await?;
        if log::consistent(prefix, checkpoint, &proof) {
            good = mid;
        } else {
            bad = mid;
        }
    }
    Ok(bad)
}
