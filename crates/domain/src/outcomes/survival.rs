//! Kaplan–Meier survival with Greenwood standard errors and log(−log) confidence bands, the
//! median, and the log-rank test between two groups.
//!
//! Ŝ(t) = ∏ (1 − d_j / Y_j); Var Ŝ = Ŝ² Σ d_j / (Y_j (Y_j − d_j)) (Greenwood). Band:
//! exp(−exp(log(−log Ŝ) ± z·σ)), σ² = Σ d/(Y(Y − d)) / (log Ŝ)². Median: the first time Ŝ ≤ 0.5.
//! Log-rank: Z² = (Σ O₁ − E₁)² / Σ V with E₁ = d·Y₁/Y and V = Y₁Y₂d(Y − d)/(Y²(Y − 1)).

use statrs::distribution::{ChiSquared, ContinuousCDF, Normal};

/// One subject's follow-up: time from enrollment (days) and whether it ended in an event.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Observation {
    /// Days from enrollment to the event or last contact.
    pub time: f64,
    /// True for an event, false for censoring.
    pub event: bool,
}

/// One step of the curve (a time with at least one event).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step {
    /// Time, days.
    pub time: f64,
    /// At risk just before.
    pub at_risk: u64,
    /// Events at this time.
    pub events: u64,
    /// Survival after this time.
    pub survival: f64,
    /// Greenwood standard error.
    pub standard_error: f64,
    /// Lower band.
    pub lower: f64,
    /// Upper band.
    pub upper: f64,
}

/// A Kaplan–Meier curve.
#[derive(Debug, Clone, PartialEq)]
pub struct Curve {
    /// Steps at event times.
    pub steps: Vec<Step>,
    /// Median survival, days; `None` when not reached.
    pub median: Option<f64>,
}

fn z(level: f64) -> f64 {
    Normal::new(0.0, 1.0)
        .map(|n| n.inverse_cdf(1.0 - (1.0 - level) / 2.0))
        .unwrap_or(f64::NAN)
}

/// Distinct times (sorted) with (events, censored) at each.
fn tally(observations: &[Observation]) -> Vec<(f64, u64, u64)> {
    let mut sorted: Vec<_> = observations.iter().filter(|o| o.time.is_finite()).copied().collect();
    sorted.sort_by(|a, b| a.time.total_cmp(&b.time));
    let mut out: Vec<(f64, u64, u64)> = Vec::new();
    for o in sorted {
        match out.last_mut() {
            Some(last) if last.0 == o.time => {
                if o.event {
                    last.1 += 1
                } else {
                    last.2 += 1
                }
            }
            _ => out.push((o.time, u64::from(o.event), u64::from(!o.event))),
        }
    }
    out
}

/// The Kaplan–Meier curve of `observations` with bands at `level` (for example 0.95).
pub fn kaplan_meier(observations: &[Observation], level: f64) -> Curve {
    let z = z(level);
    let mut at_risk = observations.iter().filter(|o| o.time.is_finite()).count() as u64;
    let mut survival = 1.0f64;
    let mut greenwood = 0.0f64;
    let mut steps = Vec::new();
    for (time, events, censored) in tally(observations) {
        if events > 0 {
            let (y, d) = (at_risk as f64, events as f64);
            survival *= 1.0 - d / y;
            if at_risk > events {
                greenwood += d / (y * (y - d));
            }
            let standard_error = survival * greenwood.sqrt();
            let (lower, upper) = if survival > 0.0 && survival < 1.0 {
                let sigma = greenwood.sqrt() / survival.ln().abs();
                let centre = (-survival.ln()).ln();
                ((-(centre + z * sigma).exp()).exp(), (-(centre - z * sigma).exp()).exp())
            } else {
                (survival, survival)
            };
            steps.push(Step {
                time,
                at_risk,
                events,
                survival,
                standard_error,
                lower,
                upper,
            });
        }
        at_risk -= events + censored;
    }
    let median = steps.iter().find(|s| s.survival <= 0.5).map(|s| s.time);
    Curve { steps, median }
}

/// A log-rank test result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LogRank {
    /// Chi-square statistic (1 degree of freedom).
    pub chi_square: f64,
    /// Two-sided p-value.
    pub p_value: f64,
    /// Observed events in group 1.
    pub observed_1: f64,
    /// Expected events in group 1.
    pub expected_1: f64,
}

/// The log-rank test of group 1 against group 2.
pub fn log_rank(group_1: &[Observation], group_2: &[Observation]) -> LogRank {
    let mut all: Vec<(Observation, bool)> = group_1
        .iter()
        .map(|o| (*o, true))
        .chain(group_2.iter().map(|o| (*o, false)))
        .collect();
    all.retain(|(o, _)| o.time.is_finite());
    all.sort_by(|a, b| a.0.time.total_cmp(&b.0.time));
    let (mut y1, mut y2) = (group_1.len() as f64, group_2.len() as f64);
    let (mut observed, mut expected, mut variance) = (0.0, 0.0, 0.0);
    let mut i = 0;
    while i < all.len() {
        let t = all[i].0.time;
        let (mut d1, mut d, mut c1, mut c2) = (0.0, 0.0, 0.0, 0.0);
        while i < all.len() && all[i].0.time == t {
            let (o, first) = all[i];
            match (o.event, first) {
                (true, true) => {
                    d1 += 1.0;
                    d += 1.0;
                }
                (true, false) => d += 1.0,
                (false, true) => c1 += 1.0,
                (false, false) => c2 += 1.0,
            }
            i += 1;
        }
        let y = y1 + y2;
        if d > 0.0 && y > 0.0 {
            observed += d1;
            expected += d * y1 / y;
            if y > 1.0 {
                variance += y1 * y2 * d * (y - d) / (y * y * (y - 1.0));
            }
        }
        let d2 = d - d1;
        y1 -= d1 + c1;
        y2 -= d2 + c2;
    }
    let chi_square = if variance > 0.0 {
        (observed - expected).powi(2) / variance
    } else {
        0.0
    };
    let p_value = ChiSquared::new(1.0)
        .map(|c| 1.0 - c.cdf(chi_square))
        .unwrap_or(f64::NAN);
    LogRank {
        chi_square,
        p_value,
        observed_1: observed,
        expected_1: expected,
    }
}
