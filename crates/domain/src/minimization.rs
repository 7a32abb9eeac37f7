//! Pocock–Simon minimization with a random element, as an allocation method a protocol selects
//! instead of permuted blocks.
//!
//! For a new subject, each candidate arm `k` is scored by the imbalance the trial would have if
//! the subject went to `k`: for every stratification factor `f`, the subjects already allocated
//! who share the new subject's value of `f` are counted per arm, `k`'s count is raised by one,
//! each count is divided by its arm's allocation ratio, and the imbalance of those shares is
//! measured (the range, or the variance); the score is the sum over factors of
//! `weight_f × imbalance_f` (Pocock and Simon, Biometrics 1975). The arms with the lowest score
//! are preferred.
//!
//! Algorithm (version 1; never change it for a running trial — write a version 2 instead):
//! 1. Counts are kept exact: with `L` the least common multiple of the ratios, arm `j`'s share
//!    is the integer `n_j × L / r_j`. The range is `max − min` of the shares; the variance is
//!    taken as `K·Σx² − (Σx)²` over the `K` shares, which is the variance times `K(K − 1)`, a
//!    constant that leaves the choice unchanged. Weights are exact decimals.
//! 2. The draw of allocation `position` (0-based, in the trial's allocation order) comes from
//!    ChaCha20 (stream 0) seeded with HMAC-SHA256(trial key, "minimization" ‖ 0x00 ‖ position
//!    as 8 bytes big-endian), read as little-endian 32-bit words, each `uniform(n)` rejecting
//!    words ≥ n·⌊2³²/n⌋ and returning word mod n (as permuted blocks draw).
//! 3. When every arm has the lowest score, one arm is drawn with chances in proportion to the
//!    allocation ratios: `uniform(Σr)` read against the cumulative ratios in protocol order.
//!    Otherwise `uniform(10000) < p × 10000` chooses the preferred arms (with probability `p`,
//!    the protocol's `preferred_arm_probability`) or else the others, and one arm of the chosen
//!    group is drawn in proportion to its ratio the same way.
//!
//! The allocation depends on every earlier allocation, so a trial's allocations are made one at
//! a time in the order of their positions; the enrollment service serializes them on the
//! trial's subject-number counter. Concealment rests on the secret draw: an observer who knows
//! every earlier allocation can compute the preferred arm, but is right only with probability
//! `p` — what `trialops simulate-allocation` measures before go-live.

use std::collections::HashMap;

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

use crate::protocol::{ImbalanceMeasure, Protocol};
use crate::randomization::{InvalidScheme, TrialKey, hmac, uniform};
use crate::strata::parse_stratum_key;

/// The denominator of the preferred arm's probability: `p` has at most 4 decimal places.
const PROBABILITY_SCALE: u32 = 10_000;

/// A minimization scheme: arms with their ratios, weighted factors, the measure and `p`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Minimization {
    arms: Vec<(String, u32)>,
    factors: Vec<(String, Decimal)>,
    measure: ImbalanceMeasure,
    probability: Decimal,
    preferred_in_scale: u32,
}

/// Earlier allocations counted per (factor, value) and arm: what the next allocation is judged on.
#[derive(Debug, Clone, Default)]
pub struct FactorCounts {
    counts: HashMap<(String, String), Vec<u64>>,
}

impl FactorCounts {
    /// Adds `subjects` allocated to arm `arm` (an index in protocol order) in `stratum` (a key of
    /// [`crate::strata::stratum_key`]), of `arms` arms.
    pub fn add(&mut self, stratum: &str, arm: usize, arms: usize, subjects: u64) {
        for level in parse_stratum_key(stratum) {
            let row = self.counts.entry(level).or_insert_with(|| vec![0; arms]);
            if let Some(n) = row.get_mut(arm) {
                *n += subjects;
            }
        }
    }

    fn of(&self, factor: &str, value: &str, arms: usize) -> Vec<u64> {
        self.counts
            .get(&(factor.to_owned(), value.to_owned()))
            .cloned()
            .unwrap_or_else(|| vec![0; arms])
    }
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

impl Minimization {
    /// A scheme; arms need ratios of at least 1, weights above 0, and `probability` in
    /// (1/arms, 1) with at most 4 decimal places.
    pub fn new(
        arms: Vec<(String, u32)>,
        factors: Vec<(String, Decimal)>,
        measure: ImbalanceMeasure,
        probability: Decimal,
    ) -> Result<Self, InvalidScheme> {
        if arms.len() < 2 || arms.iter().any(|(_, r)| *r == 0) {
            return Err(InvalidScheme(
                "minimization needs two arms or more, each with a ratio of at least 1",
            ));
        }
        if factors.iter().any(|(_, w)| *w <= Decimal::ZERO) {
            return Err(InvalidScheme("factor weights must be above 0"));
        }
        let scaled = probability * Decimal::from(PROBABILITY_SCALE);
        let preferred_in_scale = scaled.to_u32().filter(|_| scaled.fract().is_zero());
        let in_range = probability * Decimal::from(arms.len() as u64) > Decimal::ONE && probability < Decimal::ONE;
        match preferred_in_scale {
            Some(preferred_in_scale) if in_range => Ok(Minimization {
                arms,
                factors,
                measure,
                probability: probability.normalize(),
                preferred_in_scale,
            }),
            _ => Err(InvalidScheme(
                "the preferred arm's probability must be above 1/arms and below 1, with at most 4 decimal places",
            )),
        }
    }

    /// The scheme a validated protocol defines (`None` when it does not select minimization).
    pub fn from_protocol(protocol: &Protocol) -> Option<Result<Self, InvalidScheme>> {
        let rules = protocol.randomization.minimization.as_ref()?;
        let factors = protocol
            .strata
            .iter()
            .map(|f| (f.id.clone(), rules.weights.get(&f.id).copied().unwrap_or(Decimal::ONE)))
            .collect();
        let arms = protocol
            .arms
            .iter()
            .map(|a| (a.code.clone(), a.allocation_ratio))
            .collect();
        Some(Self::new(
            arms,
            factors,
            rules.imbalance,
            rules.preferred_arm_probability,
        ))
    }

    /// The arms and their ratios.
    pub fn arms(&self) -> &[(String, u32)] {
        &self.arms
    }

    /// The method and its parameters as committed:
    /// `minimization/v1;arms=A:1,B:1;factors=prior_therapy:1,mycn_status:2;imbalance=range;p=0.8`
    /// (arms and factors in protocol order, weights and `p` without trailing zeros).
    pub fn parameters(&self) -> String {
        let arms: Vec<String> = self.arms.iter().map(|(c, r)| format!("{c}:{r}")).collect();
        let factors: Vec<String> = self
            .factors
            .iter()
            .map(|(f, w)| format!("{f}:{}", w.normalize()))
            .collect();
        let measure = match self.measure {
            ImbalanceMeasure::Range => "range",
            ImbalanceMeasure::Variance => "variance",
        };
        format!(
            "minimization/v1;arms={};factors={};imbalance={measure};p={}",
            arms.join(","),
            factors.join(","),
            self.probability
        )
    }

    /// Each arm's score for a subject in `stratum`, given the earlier allocations: the weighted
    /// sum over factors of the imbalance the subject would leave by going to that arm.
    pub fn scores(&self, counts: &FactorCounts, stratum: &str) -> Vec<Decimal> {
        let arms = self.arms.len();
        let lcm = self
            .arms
            .iter()
            .fold(1u64, |l, (_, r)| l / gcd(l, u64::from(*r)) * u64::from(*r));
        let levels = parse_stratum_key(stratum);
        (0..arms)
            .map(|candidate| {
                self.factors
                    .iter()
                    .filter_map(|(factor, weight)| {
                        let (_, value) = levels.iter().find(|(f, _)| f == factor)?;
                        let mut n = counts.of(factor, value, arms);
                        n[candidate] += 1;
                        let shares: Vec<i128> = n
                            .iter()
                            .zip(&self.arms)
                            .map(|(n, (_, r))| i128::from(*n) * i128::from(lcm / u64::from(*r)))
                            .collect();
                        Some(*weight * Decimal::from(self.imbalance(&shares)))
                    })
                    .sum()
            })
            .collect()
    }

    fn imbalance(&self, shares: &[i128]) -> i128 {
        match self.measure {
            ImbalanceMeasure::Range => {
                shares.iter().copied().max().unwrap_or(0) - shares.iter().copied().min().unwrap_or(0)
            }
            ImbalanceMeasure::Variance => {
                let k = shares.len() as i128;
                let sum: i128 = shares.iter().sum();
                k * shares.iter().map(|x| x * x).sum::<i128>() - sum * sum
            }
        }
    }

    /// The arms with the lowest score (every arm when all tie), in protocol order.
    pub fn preferred(&self, counts: &FactorCounts, stratum: &str) -> Vec<usize> {
        let scores = self.scores(counts, stratum);
        let lowest = scores.iter().copied().min().unwrap_or_default();
        (0..scores.len()).filter(|i| scores[*i] == lowest).collect()
    }

    /// The arm (index in protocol order) of the allocation at `position` for a subject in
    /// `stratum`, given every earlier allocation.
    pub fn allocate(&self, key: &TrialKey, position: u64, counts: &FactorCounts, stratum: &str) -> usize {
        self.allocate_among(key, position, self.preferred(counts, stratum))
    }

    /// The arm of the allocation at `position` given its [`Minimization::preferred`] arms (for a
    /// caller that has them already, such as the simulation's observer).
    pub fn allocate_among(&self, key: &TrialKey, position: u64, preferred: Vec<usize>) -> usize {
        let seed = hmac(key.secret(), &[b"minimization", &[0], &position.to_be_bytes()]);
        let mut rng = ChaCha20Rng::from_seed(seed);
        // Every arm tied: no draw for the preferred group (the rule's order of draws matters).
        let all_tied = preferred.len() == self.arms.len();
        let group: Vec<usize> = if all_tied || uniform(&mut rng, PROBABILITY_SCALE) < self.preferred_in_scale {
            preferred
        } else {
            (0..self.arms.len()).filter(|i| !preferred.contains(i)).collect()
        };
        let total: u32 = group.iter().map(|i| self.arms[*i].1).sum();
        let mut draw = uniform(&mut rng, total);
        for arm in &group {
            let ratio = self.arms[*arm].1;
            if draw < ratio {
                return *arm;
            }
            draw -= ratio;
        }
        group.last().copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scheme(measure: ImbalanceMeasure, weights: [u32; 2]) -> Minimization {
        Minimization::new(
            vec![("A".into(), 1), ("B".into(), 1)],
            vec![
                ("sex".into(), Decimal::from(weights[0])),
                ("age".into(), Decimal::from(weights[1])),
            ],
            measure,
            Decimal::new(8, 1),
        )
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn counts(rows: &[(&str, usize, u64)]) -> FactorCounts {
        let mut c = FactorCounts::default();
        for (stratum, arm, n) in rows {
            c.add(stratum, *arm, 2, *n);
        }
        c
    }

    /// Worked by hand. Earlier subjects: (M, young) A×1 B×1, (M, old) A×2 B×4, (F, young) A×3 B×1.
    /// For a new (M, young): sex=M counts A 3, B 5; age=young counts A 4, B 2.
    /// To A: |4−5| + w·|5−2|; to B: |3−6| + w·|4−3|.
    #[test]
    fn range_scores_by_hand() {
        let c = counts(&[
            ("sex=M|age=young", 0, 1),
            ("sex=M|age=young", 1, 1),
            ("sex=M|age=old", 0, 2),
            ("sex=M|age=old", 1, 4),
            ("sex=F|age=young", 0, 3),
            ("sex=F|age=young", 1, 1),
        ]);
        let equal = scheme(ImbalanceMeasure::Range, [1, 1]);
        assert_eq!(
            equal.scores(&c, "sex=M|age=young"),
            vec![Decimal::from(4), Decimal::from(4)]
        );
        assert_eq!(equal.preferred(&c, "sex=M|age=young"), vec![0, 1]);
        let age_twice = scheme(ImbalanceMeasure::Range, [1, 2]);
        assert_eq!(
            age_twice.scores(&c, "sex=M|age=young"),
            vec![Decimal::from(7), Decimal::from(5)]
        );
        assert_eq!(age_twice.preferred(&c, "sex=M|age=young"), vec![1]);
        // Variance as 2·Σx² − (Σx)² = (x₁ − x₂)² for two arms: to A 1 + 9, to B 9 + 1.
        let variance = scheme(ImbalanceMeasure::Variance, [1, 1]);
        assert_eq!(
            variance.scores(&c, "sex=M|age=young"),
            vec![Decimal::from(10), Decimal::from(10)]
        );
    }

    /// Three arms at 2:1:1, one factor, counts A 2, B 3, C 0 (shares ×1, ×2, ×2 of L = 2:
    /// 2, 6, 0). To A: 3,3,0 → shares 3, 6, 0; to B: 2, 8, 0; to C: 2, 6, 2.
    /// Range: 6, 8, 4. Variance as 3·Σx² − (Σx)²: 3·45 − 81 = 54; 3·68 − 100 = 104; 3·44 − 100 = 32.
    #[test]
    fn unequal_ratios_divide_counts_by_ratio() {
        let arms = vec![("A".into(), 2), ("B".into(), 1), ("C".into(), 1)];
        let factors = vec![("f".into(), Decimal::ONE)];
        let mut c = FactorCounts::default();
        c.add("f=x", 0, 3, 2);
        c.add("f=x", 1, 3, 3);
        let range = Minimization::new(
            arms.clone(),
            factors.clone(),
            ImbalanceMeasure::Range,
            Decimal::new(6, 1),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let d = |v: [i64; 3]| v.map(Decimal::from).to_vec();
        assert_eq!(range.scores(&c, "f=x"), d([6, 8, 4]));
        let variance = Minimization::new(arms, factors, ImbalanceMeasure::Variance, Decimal::new(6, 1))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(variance.scores(&c, "f=x"), d([54, 104, 32]));
        assert_eq!(variance.preferred(&c, "f=x"), vec![2]);
    }

    #[test]
    fn probability_must_leave_a_random_element() {
        let arms = || vec![("A".into(), 1), ("B".into(), 1)];
        let new = |p: Decimal| Minimization::new(arms(), vec![], ImbalanceMeasure::Range, p);
        assert!(new(Decimal::ONE).is_err());
        assert!(new(Decimal::new(5, 1)).is_err());
        assert!(new(Decimal::new(80001, 5)).is_err(), "five decimal places");
        assert!(new(Decimal::new(7501, 4)).is_ok());
    }

    #[test]
    fn parameters_name_everything_committed() {
        let s = scheme(ImbalanceMeasure::Variance, [1, 2]);
        assert_eq!(
            s.parameters(),
            "minimization/v1;arms=A:1,B:1;factors=sex:1,age:2;imbalance=variance;p=0.8"
        );
    }
}
