//! `trialops verify-allocation`: proves, offline, that every allocation of a trial followed from
//! the sequence it committed to before its first enrollment, from the revealed key and the
//! exported allocations (`trialops allocations`). No service is needed, and nothing here trusts
//! the server beyond the file it exported: the commitment to check is the one you saved.

use std::path::PathBuf;

use trialops_domain::protocol;
use trialops_domain::randomization::{Method, RecordedAllocation, TrialKey, verify};

use crate::report::say;

/// What to verify.
pub struct VerifyOptions {
    /// The export of `trialops allocations`.
    pub allocations: PathBuf,
    /// The revealed key (64 hex digits).
    pub key: String,
    /// The commitment saved before the first enrollment; the export's when not given.
    pub commitment: Option<String>,
    /// The protocol definition file; the bundled ANBL1221 without one.
    pub protocol: Option<PathBuf>,
}

/// Verifies and says what was proven; an error (exit 1) names the first allocation that does
/// not follow.
pub fn run(options: VerifyOptions) -> anyhow::Result<()> {
    let path = &options.allocations;
    let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let export: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{}: not an export: {e}", path.display()))?;
    let field = |name: &str| export[name].as_str().map(str::to_owned);
    let trial_id = field("trial_id").ok_or_else(|| anyhow::anyhow!("{}: no trial_id", path.display()))?;
    let definition = match &options.protocol {
        Some(file) => {
            let text = std::fs::read_to_string(file).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            protocol::load(&text).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?
        }
        None => protocol::anbl1221()?,
    };
    if definition.trial.id != trial_id {
        anyhow::bail!(
            "the allocations are of trial {trial_id}, the protocol of {}: give its file with --protocol",
            definition.trial.id
        );
    }
    let method = Method::from_protocol(&definition).map_err(|e| anyhow::anyhow!("{e}"))?;
    let key = TrialKey::from_revealed(&options.key).ok_or_else(|| anyhow::anyhow!("--key: 64 hex digits expected"))?;
    let (commitment, whose) = match options.commitment {
        // As `trialops trial` prints it (groups of 8) or in one piece.
        Some(c) => (c.split_whitespace().collect::<String>(), "the commitment given"),
        None => (
            field("allocation_commitment")
                .ok_or_else(|| anyhow::anyhow!("{}: no allocation_commitment", path.display()))?,
            "the export's commitment (give the one you saved before the first enrollment with --commitment)",
        ),
    };
    let mut allocations = Vec::new();
    for (i, row) in export["allocations"].as_array().into_iter().flatten().enumerate() {
        let text = |name: &str| {
            row[name]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| anyhow::anyhow!("allocations[{i}].{name}: missing"))
        };
        let position = row["position"]
            .as_u64()
            .or_else(|| row["position"].as_str().and_then(|p| p.parse().ok()))
            .ok_or_else(|| anyhow::anyhow!("allocations[{i}].position: missing"))?;
        allocations.push(RecordedAllocation {
            subject_id: text("subject_id")?,
            stratum: text("stratum")?,
            position,
            arm_code: text("arm_code")?,
        });
    }
    let strata =
        verify(&trial_id, &method, &key, &commitment, &allocations).map_err(|e| anyhow::anyhow!("NOT PROVEN: {e}"))?;
    say(format!(
        "proven: all {} allocations of {trial_id} in {strata} strata follow from the sequence committed to \
         ({whose}: {commitment}); no position skipped or repeated.",
        allocations.len()
    ));
    Ok(())
}
