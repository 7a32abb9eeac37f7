//! Exact (Clopper-Pearson) confidence interval of a binomial proportion:
//! lower = Beta⁻¹(α/2; x, n − x + 1), upper = Beta⁻¹(1 − α/2; x + 1, n − x), with lower = 0
//! when x = 0 and upper = 1 when x = n.

use statrs::distribution::{Beta, ContinuousCDF};

/// A proportion with its exact interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Proportion {
    /// Successes.
    pub successes: u64,
    /// Trials.
    pub trials: u64,
    /// successes ÷ trials (0 when there are no trials).
    pub rate: f64,
    /// Lower bound.
    pub lower: f64,
    /// Upper bound.
    pub upper: f64,
}

/// Why an interval cannot be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IntervalError {
    /// More successes than trials.
    #[error("{successes} successes out of {trials} trials")]
    Impossible {
        /// Successes.
        successes: u64,
        /// Trials.
        trials: u64,
    },
    /// The confidence level is not strictly between 0 and 1.
    #[error("confidence level must be between 0 and 1")]
    Level,
}

/// The Clopper-Pearson interval of `successes` out of `trials` at `level` (for example 0.95).
/// With no trials the interval is the whole range [0, 1].
pub fn clopper_pearson(successes: u64, trials: u64, level: f64) -> Result<Proportion, IntervalError> {
    if successes > trials {
        return Err(IntervalError::Impossible { successes, trials });
    }
    if !(level > 0.0 && level < 1.0) {
        return Err(IntervalError::Level);
    }
    let alpha = 1.0 - level;
    let (x, n) = (successes as f64, trials as f64);
    let quantile = |p: f64, a: f64, b: f64| Beta::new(a, b).map(|d| d.inverse_cdf(p)).unwrap_or(f64::NAN);
    let lower = if successes == 0 {
        0.0
    } else {
        quantile(alpha / 2.0, x, n - x + 1.0)
    };
    let upper = if successes == trials {
        1.0
    } else {
        quantile(1.0 - alpha / 2.0, x + 1.0, n - x)
    };
    let rate = if trials == 0 { 0.0 } else { x / n };
    Ok(Proportion {
        successes,
        trials,
        rate,
        lower,
        upper,
    })
}
