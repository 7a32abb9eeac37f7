//! `trialops simulate-allocation`: a protocol's allocation method run over synthetic enrollment
//! streams before go-live, reporting how balanced the arms stay and how predictable the next
//! allocation is (see `trialops_domain::simulation`). Runs locally; no service is needed.

use std::path::PathBuf;

use trialops_domain::protocol;
use trialops_domain::randomization::Method;
use trialops_domain::simulation::{Distribution, OperatingCharacteristics, simulate};

use crate::report::{say, table};

/// Most subjects per run, and most allocations in all runs (a few seconds' work).
const MAX_SUBJECTS: u32 = 100_000;
const MAX_ALLOCATIONS: u64 = 20_000_000;

/// What to simulate.
pub struct SimulateOptions {
    /// A protocol definition file; the bundled ANBL1221 without one.
    pub protocol: Option<PathBuf>,
    /// Subjects enrolled in each run.
    pub subjects: u32,
    /// Runs.
    pub runs: u32,
    /// Makes the figures repeatable.
    pub seed: u64,
    /// Print JSON instead of a table.
    pub json: bool,
}

/// Simulates and prints the operating characteristics.
pub fn run(options: SimulateOptions) -> anyhow::Result<()> {
    if !(1..=MAX_SUBJECTS).contains(&options.subjects) {
        anyhow::bail!("--subjects must be from 1 to {MAX_SUBJECTS}");
    }
    if options.runs == 0 || u64::from(options.subjects) * u64::from(options.runs) > MAX_ALLOCATIONS {
        anyhow::bail!("--runs must be at least 1, and --subjects × --runs at most {MAX_ALLOCATIONS}");
    }
    let definition = match &options.protocol {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            protocol::load(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
        }
        None => protocol::anbl1221()?,
    };
    let oc = simulate(&definition, options.subjects, options.runs, options.seed)
        .map_err(|e| anyhow::anyhow!("the protocol's randomization: {e:?}"))?;
    let method =
        Method::from_protocol(&definition).map_err(|e| anyhow::anyhow!("the protocol's randomization: {e}"))?;
    let parameters = method.parameters();
    let observer = match method {
        Method::PermutedBlocks(_) => "the arm furthest behind in the stratum, the convergence strategy",
        Method::Minimization(_) => "the arm minimization prefers, from the scores",
    };
    if options.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json(&definition.trial.id, &parameters, options.seed, &oc))?
        );
        return Ok(());
    }
    say(format!(
        "Allocation of {} ({parameters}): {} runs of {} subjects over {} strata (seed {}).",
        definition.trial.id, oc.runs, oc.subjects, oc.strata, options.seed
    ));
    let mut t = table(&["imbalance (arms apart)", "mean", "median", "95th percentile", "largest"]);
    for (name, d) in rows(&oc) {
        t.add_row([
            name.to_owned(),
            number(d.mean),
            number(d.median),
            number(d.p95),
            number(d.max),
        ]);
    }
    println!("{t}");
    say(format!(
        "An observer who knows every earlier allocation guesses the next one right {:.1}% of the \
         time (guessing {observer}; 50% would be unpredictable).",
        100.0 * oc.correct_guess_rate
    ));
    Ok(())
}

fn rows(oc: &OperatingCharacteristics) -> [(&'static str, &Distribution); 4] {
    [
        ("trial, at the end", &oc.final_imbalance),
        ("trial, largest on the way", &oc.running_imbalance),
        ("stratum, at the end", &oc.stratum_final_imbalance),
        ("stratum, largest on the way", &oc.stratum_running_imbalance),
    ]
}

fn number(x: f64) -> String {
    format!("{x:.2}")
}

fn json(trial_id: &str, parameters: &str, seed: u64, oc: &OperatingCharacteristics) -> serde_json::Value {
    let d = |d: &Distribution| serde_json::json!({ "mean": d.mean, "median": d.median, "p95": d.p95, "max": d.max });
    serde_json::json!({
        "trial_id": trial_id,
        "allocation_parameters": parameters,
        "seed": seed,
        "runs": oc.runs,
        "subjects": oc.subjects,
        "strata": oc.strata,
        "final_imbalance": d(&oc.final_imbalance),
        "running_imbalance": d(&oc.running_imbalance),
        "stratum_final_imbalance": d(&oc.stratum_final_imbalance),
        "stratum_running_imbalance": d(&oc.stratum_running_imbalance),
        "correct_guess_rate": oc.correct_guess_rate,
    })
}
