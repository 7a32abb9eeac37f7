//! Simon's (1989) two-stage designs. Stage 1 enrols n1; stop if ≤ r1 respond. Otherwise enrol to
//! n; the treatment is promising if > r respond in total. PET = P(X1 ≤ r1 | p0);
//! EN = n1 + (1 − PET)(n − n1). A design is admissible when the type I error at p0 is ≤ α and
//! the power at p1 is ≥ 1 − β. Optimal: smallest EN under p0 (ties: smaller n). Minimax:
//! smallest n (ties: smaller EN).

use statrs::distribution::{Binomial, Discrete};

/// A two-stage design and its operating characteristics.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Design {
    /// Stage-1 size.
    pub n1: u64,
    /// Stop after stage 1 with this many responses or fewer.
    pub r1: u64,
    /// Total size.
    pub n: u64,
    /// Promising with more than this many responses in total.
    pub r: u64,
    /// Expected size under p0.
    pub expected_n: f64,
    /// Probability of early termination under p0.
    pub pet: f64,
    /// Type I error at p0.
    pub alpha: f64,
    /// Power at p1.
    pub power: f64,
}

/// Why no design is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimonError {
    /// Parameters out of range.
    #[error("need 0 < p0 < p1 < 1, 0 < alpha < 1, 0 < beta < 1")]
    Parameters,
    /// No admissible design up to the size searched.
    #[error("no design with at most {0} subjects meets the error rates")]
    TooLarge(u64),
}

fn pmf(n: u64, p: f64) -> Vec<f64> {
    match Binomial::new(p, n) {
        Ok(b) => (0..=n).map(|k| b.pmf(k)).collect(),
        Err(_) => vec![f64::NAN; n as usize + 1],
    }
}

fn cumulative(pmf: &[f64]) -> Vec<f64> {
    pmf.iter()
        .scan(0.0, |acc, p| {
            *acc += p;
            Some(acc.min(1.0))
        })
        .collect()
}

/// Binomial probabilities of sizes 0..=max under one response rate.
struct Tables {
    pmf: Vec<Vec<f64>>,
    cdf: Vec<Vec<f64>>,
}

impl Tables {
    fn new(max_n: u64, p: f64) -> Tables {
        let pmf: Vec<Vec<f64>> = (0..=max_n).map(|n| pmf(n, p)).collect();
        let cdf = pmf.iter().map(|row| cumulative(row)).collect();
        Tables { pmf, cdf }
    }

    /// P(X1 ≤ r1) for stage 1 of size n1.
    fn early_stop(&self, n1: u64, r1: u64) -> f64 {
        self.cdf[n1 as usize][r1 as usize]
    }

    /// P(accept) = P(X1 ≤ r1) + P(X1 > r1, X1 + X2 ≤ r).
    fn accept(&self, n1: u64, r1: u64, n: u64, r: u64) -> f64 {
        let s1 = &self.pmf[n1 as usize];
        let s2 = &self.cdf[(n - n1) as usize];
        let continued: f64 = (r1 + 1..=r.min(n1))
            .map(|x1| s1[x1 as usize] * s2[(r - x1).min(n - n1) as usize])
            .sum();
        self.early_stop(n1, r1) + continued
    }
}

/// The optimal and minimax designs with at most `max_n` subjects.
pub fn designs(p0: f64, p1: f64, alpha: f64, beta: f64, max_n: u64) -> Result<(Design, Design), SimonError> {
    let ok = |x: f64| x > 0.0 && x < 1.0;
    if !(ok(p0) && ok(p1) && p0 < p1 && ok(alpha) && ok(beta)) || max_n > 500 {
        return Err(SimonError::Parameters);
    }
    let (t0, t1) = (Tables::new(max_n, p0), Tables::new(max_n, p1));
    let mut optimal: Option<Design> = None;
    let mut minimax: Option<Design> = None;
    for n in 2..=max_n {
        for n1 in 1..n {
            for r1 in 0..n1 {
                let pet0 = t0.early_stop(n1, r1);
                let expected_n = n1 as f64 + (1.0 - pet0) * (n - n1) as f64;
                // Neither smaller in expected size nor in total size: cannot win either criterion.
                if optimal.is_some_and(|o| expected_n > o.expected_n + 1e-9) && minimax.is_some_and(|m| n > m.n) {
                    continue;
                }
                // The smallest r with type I error ≤ α gives the most power for (n1, r1, n).
                let Some(r) = (r1..n).find(|r| 1.0 - t0.accept(n1, r1, n, *r) <= alpha) else {
                    continue;
                };
                let power = 1.0 - t1.accept(n1, r1, n, r);
                if power < 1.0 - beta {
                    continue;
                }
                let design = Design {
                    n1,
                    r1,
                    n,
                    r,
                    expected_n,
                    pet: pet0,
                    alpha: 1.0 - t0.accept(n1, r1, n, r),
                    power,
                };
                if optimal.is_none_or(|o| {
                    expected_n < o.expected_n - 1e-9 || ((expected_n - o.expected_n).abs() <= 1e-9 && n < o.n)
                }) {
                    optimal = Some(design);
                }
                if minimax.is_none_or(|m| n < m.n || (n == m.n && expected_n < m.expected_n - 1e-9)) {
                    minimax = Some(design);
                }
            }
        }
    }
    match (optimal, minimax) {
        (Some(o), Some(m)) => Ok((o, m)),
        _ => Err(SimonError::TooLarge(max_n)),
    }
}

/// What an interim look at a configured design says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interim {
    /// Stage 1 is not complete yet.
    EnrollingStageOne,
    /// ≤ r1 responses in the first n1: stop for futility.
    Stop,
    /// Stage 1 passed; stage 2 is enrolling.
    Continue,
    /// > r responses: the treatment is promising (can be declared as soon as it happens).
    Promising,
    /// All n assessed with ≤ r responses: not promising.
    NotPromising,
}

/// Evaluates a design given the responses among the first `n1` assessed subjects and overall.
pub fn evaluate(
    design: &Design,
    stage_one_assessed: u64,
    stage_one_responses: u64,
    assessed: u64,
    responses: u64,
) -> Interim {
    if responses > design.r {
        return Interim::Promising;
    }
    if stage_one_assessed < design.n1 {
        return Interim::EnrollingStageOne;
    }
    if stage_one_responses <= design.r1 {
        return Interim::Stop;
    }
    if assessed >= design.n {
        Interim::NotPromising
    } else {
        Interim::Continue
    }
}
