//! Operating characteristics of a protocol's allocation method before go-live: synthetic
//! enrollment streams run through the method, measuring how balanced the arms stay and how
//! often an observer who knows every earlier allocation guesses the next one right.
//!
//! A run draws a fresh master secret and `subjects` candidates, each in a stratum drawn
//! uniformly from every combination of the protocol's factor values, and allocates them in
//! order with the protocol's method — permuted blocks' sequences
//! ([`crate::randomization::Sequence`]) or minimization ([`crate::minimization`]) — exactly as
//! EnrollSubject does. Imbalance among arms is `max(n_a / r_a) − min(n_a / r_a)` over arms `a`
//! with allocation ratio `r_a`: for two arms at 1:1, `|n_A − n_B|`. The observer follows the
//! convergence strategy (Blackwell and Hodges, 1957): it guesses the arm furthest behind its
//! share in the candidate's stratum, splitting a tie evenly, so a guess among `k` tied arms that
//! include the true one counts `1/k`. Under minimization the observer guesses the arm the
//! method prefers — it knows every earlier allocation, so it can compute the scores — and only
//! the secret draw stands between it and the next arm.

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};

use crate::minimization::{FactorCounts, Minimization};
use crate::protocol::Protocol;
use crate::randomization::{BlockScheme, InvalidScheme, Method, Sequence, TrialKey};

/// A summary of one measure over the runs (or over every stratum of every run).
#[derive(Debug, Clone, PartialEq)]
pub struct Distribution {
    /// Mean.
    pub mean: f64,
    /// Median.
    pub median: f64,
    /// 95th percentile (nearest rank).
    pub p95: f64,
    /// Largest value.
    pub max: f64,
}

impl Distribution {
    /// The summary of `values` (empty: all zero).
    pub fn of(mut values: Vec<f64>) -> Distribution {
        if values.is_empty() {
            return Distribution {
                mean: 0.0,
                median: 0.0,
                p95: 0.0,
                max: 0.0,
            };
        }
        values.sort_by(f64::total_cmp);
        let rank = |q: f64| values[((q * values.len() as f64).ceil() as usize).clamp(1, values.len()) - 1];
        Distribution {
            mean: values.iter().sum::<f64>() / values.len() as f64,
            median: rank(0.5),
            p95: rank(0.95),
            max: values[values.len() - 1],
        }
    }
}

/// What the simulation found.
#[derive(Debug, Clone, PartialEq)]
pub struct OperatingCharacteristics {
    /// Runs made.
    pub runs: u32,
    /// Subjects per run.
    pub subjects: u32,
    /// Strata (combinations of factor values) candidates were drawn from.
    pub strata: usize,
    /// Imbalance of the whole trial at the end of each run.
    pub final_imbalance: Distribution,
    /// Largest imbalance of the whole trial at any point of each run.
    pub running_imbalance: Distribution,
    /// Imbalance of each stratum (with at least one subject) at the end of each run.
    pub stratum_final_imbalance: Distribution,
    /// Largest imbalance of each stratum at any point of each run.
    pub stratum_running_imbalance: Distribution,
    /// Share of allocations the convergence-strategy observer guessed right.
    pub correct_guess_rate: f64,
}

/// Every combination of the protocol's stratification factor values, as stratum keys.
pub fn strata_of(protocol: &Protocol) -> Vec<String> {
    let mut keys = vec![Vec::<String>::new()];
    for factor in &protocol.strata {
        keys = keys
            .into_iter()
            .flat_map(|prefix| {
                factor.values.iter().map(move |v| {
                    let mut key = prefix.clone();
                    key.push(format!("{}={v}", factor.id));
                    key
                })
            })
            .collect();
    }
    keys.into_iter().map(|parts| parts.join("|")).collect()
}

/// Counts of each arm, and the imbalance and the observer's guess they imply.
struct Tally<'a> {
    counts: Vec<u64>,
    ratios: &'a [u32],
}

impl Tally<'_> {
    fn shares(&self) -> impl Iterator<Item = f64> + '_ {
        self.counts
            .iter()
            .zip(self.ratios)
            .map(|(n, r)| *n as f64 / f64::from(*r))
    }

    fn imbalance(&self) -> f64 {
        let (low, high) = self
            .shares()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), s| (lo.min(s), hi.max(s)));
        high - low
    }

    /// The credit of a convergence-strategy guess when `arm` comes next.
    fn guess_credit(&self, arm: usize) -> f64 {
        let lowest = self.shares().fold(f64::INFINITY, f64::min);
        let tied: Vec<usize> = self
            .shares()
            .enumerate()
            .filter(|(_, s)| *s == lowest)
            .map(|(i, _)| i)
            .collect();
        if tied.contains(&arm) {
            1.0 / tied.len() as f64
        } else {
            0.0
        }
    }
}

/// Simulates `runs` enrollment streams of `subjects` each through the protocol's allocation
/// method; `seed` makes the result reproducible.
pub fn simulate(
    protocol: &Protocol,
    subjects: u32,
    runs: u32,
    seed: u64,
) -> Result<OperatingCharacteristics, InvalidScheme> {
    let method = Method::from_protocol(protocol)?;
    let ratios: Vec<u32> = method.arms().iter().map(|(_, r)| *r).collect();
    let strata = strata_of(protocol);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (mut finals, mut runnings, mut stratum_finals, mut stratum_runnings) = (vec![], vec![], vec![], vec![]);
    let (mut credit, mut guesses) = (0.0, 0u64);
    for _ in 0..runs {
        let mut secret = [0u8; 32];
        rng.fill_bytes(&mut secret);
        let key = TrialKey::derive(&secret, &protocol.trial.id);
        let drawn: Vec<usize> = (0..subjects)
            .map(|_| (rng.next_u64() % strata.len() as u64) as usize)
            .collect();
        // Each candidate's arm, and for minimization the observer's credit.
        let allocated: Vec<(usize, Option<f64>)> = match &method {
            Method::PermutedBlocks(scheme) => by_blocks(&key, scheme, &strata, &drawn),
            Method::Minimization(scheme) => by_minimization(&key, scheme, &strata, &drawn),
        };
        let tally = || Tally {
            counts: vec![0; ratios.len()],
            ratios: &ratios,
        };
        let mut overall = tally();
        let mut per_stratum: Vec<Tally> = strata.iter().map(|_| tally()).collect();
        let mut taken = vec![0usize; strata.len()];
        let mut running = 0.0f64;
        let mut stratum_running = vec![0.0f64; strata.len()];
        for (s, (arm, observed)) in drawn.into_iter().zip(allocated) {
            taken[s] += 1;
            credit += observed.unwrap_or_else(|| per_stratum[s].guess_credit(arm));
            guesses += 1;
            per_stratum[s].counts[arm] += 1;
            overall.counts[arm] += 1;
            running = running.max(overall.imbalance());
            stratum_running[s] = stratum_running[s].max(per_stratum[s].imbalance());
        }
        finals.push(overall.imbalance());
        runnings.push(running);
        for (s, t) in per_stratum.iter().enumerate() {
            if taken[s] > 0 {
                stratum_finals.push(t.imbalance());
                stratum_runnings.push(stratum_running[s]);
            }
        }
    }
    Ok(OperatingCharacteristics {
        runs,
        subjects,
        strata: strata.len(),
        final_imbalance: Distribution::of(finals),
        running_imbalance: Distribution::of(runnings),
        stratum_final_imbalance: Distribution::of(stratum_finals),
        stratum_running_imbalance: Distribution::of(stratum_runnings),
        correct_guess_rate: if guesses == 0 { 0.0 } else { credit / guesses as f64 },
    })
}

/// Permuted blocks: each stratum's arms are the first positions of its sequence.
fn by_blocks(key: &TrialKey, scheme: &BlockScheme, strata: &[String], drawn: &[usize]) -> Vec<(usize, Option<f64>)> {
    let arm_index = |code: &str| scheme.arms().iter().position(|(c, _)| c == code).unwrap_or(0);
    let mut sequences: Vec<std::vec::IntoIter<usize>> = strata
        .iter()
        .enumerate()
        .map(|(s, stratum)| {
            let needed = drawn.iter().filter(|d| **d == s).count() as u64;
            let arms: Vec<usize> = Sequence::new(key, scheme, stratum)
                .take(needed)
                .iter()
                .map(|a| arm_index(&a.arm_code))
                .collect();
            arms.into_iter()
        })
        .collect();
    drawn
        .iter()
        .map(|s| (sequences[*s].next().unwrap_or(0), None))
        .collect()
}

/// Minimization: each arm follows from every earlier one. The observer guesses the arm the
/// method prefers (it can compute the scores), splitting a tie evenly.
fn by_minimization(
    key: &TrialKey,
    scheme: &Minimization,
    strata: &[String],
    drawn: &[usize],
) -> Vec<(usize, Option<f64>)> {
    let mut counts = FactorCounts::default();
    let arms = scheme.arms().len();
    drawn
        .iter()
        .enumerate()
        .map(|(position, s)| {
            let stratum = &strata[*s];
            let preferred = scheme.preferred(&counts, stratum);
            let arm = scheme.allocate_among(key, position as u64, preferred.clone());
            counts.add(stratum, arm, arms, 1);
            let credit = if preferred.contains(&arm) {
                1.0 / preferred.len() as f64
            } else {
                0.0
            };
            (arm, Some(credit))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distributions_by_nearest_rank() {
        let d = Distribution::of((1..=20).map(f64::from).collect());
        assert_eq!((d.mean, d.median, d.p95, d.max), (10.5, 10.0, 19.0, 20.0));
        assert_eq!(Distribution::of(vec![]).max, 0.0);
    }

    #[test]
    fn anbl1221_has_six_strata() {
        let p = crate::protocol::anbl1221().unwrap_or_else(|e| panic!("{e}"));
        let strata = strata_of(&p);
        assert_eq!(strata.len(), 6, "2 prior-therapy values x 3 MYCN values");
        assert!(strata.contains(&"prior_therapy=no_prior_irinotecan_temozolomide|mycn_status=amplified".to_owned()));
    }
}
