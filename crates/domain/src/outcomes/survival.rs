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

/// Distinct times (ascending) with (events, censored) at each; non-finite times are left out.
/// Follow-up times are whole days, which are counted in a table indexed by day, in time linear
/// in the number of observations; other times are sorted.
fn tally(observations: &[Observation]) -> Vec<(f64, u64, u64)> {
    if let Some(counted) = tally_days(observations) {
        return counted;
    }
    let mut sorted: Vec<_> = observations.iter().filter(|o| o.time.is_finite()).copied().collect();
    sorted.sort_unstable_by(|a, b| a.time.total_cmp(&b.time));
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

/// [`tally`] by counting, when every finite time is a whole number of days from 0 and the table
/// of days stays within a few times the observations; `None` otherwise.
fn tally_days(observations: &[Observation]) -> Option<Vec<(f64, u64, u64)>> {
    let limit = 4 * observations.len() + 1024;
    let mut last = 0usize;
    for o in observations.iter().filter(|o| o.time.is_finite()) {
        if o.time < 0.0 || o.time.fract() != 0.0 || o.time >= limit as f64 {
            return None;
        }
        // A whole number below `limit`: exact as an index.
        last = last.max(o.time as usize);
    }
    let mut days = vec![(0u64, 0u64); last + 1];
    for o in observations.iter().filter(|o| o.time.is_finite()) {
        let day = &mut days[o.time as usize];
        if o.event {
            day.0 += 1;
        } else {
            day.1 += 1;
        }
    }
    Some(
        days.into_iter()
            .enumerate()
            .filter(|(_, (events, censored))| events + censored > 0)
            .map(|(day, (events, censored))| (day as f64, events, censored))
            .collect(),
    )
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

/// The log-rank test of group 1 against group 2: each group's distinct times in one pass, the
/// two walked together (no second sort).
pub fn log_rank(group_1: &[Observation], group_2: &[Observation]) -> LogRank {
    let (times_1, times_2) = (tally(group_1), tally(group_2));
    let at_risk = |times: &[(f64, u64, u64)]| times.iter().map(|(_, d, c)| d + c).sum::<u64>() as f64;
    let (mut y1, mut y2) = (at_risk(&times_1), at_risk(&times_2));
    let (mut observed, mut expected, mut variance) = (0.0, 0.0, 0.0);
    let (mut i, mut j) = (0, 0);
    while i < times_1.len() || j < times_2.len() {
        let t = match (times_1.get(i), times_2.get(j)) {
            (Some(a), Some(b)) => a.0.min(b.0),
            (Some(a), None) => a.0,
            (None, Some(b)) => b.0,
            (None, None) => break,
        };
        let take = |times: &[(f64, u64, u64)], k: &mut usize| match times.get(*k) {
            Some(&(time, d, c)) if time == t => {
                *k += 1;
                (d as f64, c as f64)
            }
            _ => (0.0, 0.0),
        };
        let ((d1, c1), (d2, c2)) = (take(&times_1, &mut i), take(&times_2, &mut j));
        let (d, y) = (d1 + d2, y1 + y2);
        if d > 0.0 && y > 0.0 {
            observed += d1;
            expected += d * y1 / y;
            if y > 1.0 {
                variance += y1 * y2 * d * (y - d) / (y * y * (y - 1.0));
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn group(times: &[(f64, bool)]) -> Vec<Observation> {
        times.iter().map(|&(time, event)| Observation { time, event }).collect()
    }

    #[test]
    fn whole_days_are_counted_and_other_times_sorted_to_the_same_curves_and_test() {
        // The same follow-up in whole days and in half days (each time halved): the table of
        // days and the sort must give the same steps, survival and log-rank statistic.
        let days = [
            (6.0, true),
            (6.0, true),
            (6.0, false),
            (7.0, true),
            (10.0, false),
            (13.0, true),
            (16.0, true),
            (22.0, false),
            (23.0, true),
            (0.0, false),
        ];
        let other = [
            (1.0, true),
            (3.0, false),
            (6.0, true),
            (8.0, true),
            (8.0, false),
            (12.0, true),
        ];
        let halved = |g: &[(f64, bool)]| g.iter().map(|&(t, e)| (t / 2.0 + 0.25, e)).collect::<Vec<_>>();
        assert!(tally_days(&group(&days)).is_some());
        assert!(tally_days(&group(&halved(&days))).is_none());
        let (whole, half) = (
            kaplan_meier(&group(&days), 0.95),
            kaplan_meier(&group(&halved(&days)), 0.95),
        );
        assert_eq!(whole.steps.len(), 5);
        for (w, h) in whole.steps.iter().zip(&half.steps) {
            assert_eq!((w.at_risk, w.events, w.survival), (h.at_risk, h.events, h.survival));
            assert_eq!(h.time, w.time / 2.0 + 0.25);
        }
        // By hand: at 6 days 9 at risk (one at day 0 censored), 2 events: 7/9.
        assert_eq!((whole.steps[0].at_risk, whole.steps[0].events), (9, 2));
        assert!((whole.steps[0].survival - 7.0 / 9.0).abs() < 1e-15);
        let (a, b) = (
            log_rank(&group(&days), &group(&other)),
            log_rank(&group(&halved(&days)), &group(&halved(&other))),
        );
        assert_eq!(
            (a.chi_square, a.observed_1, a.expected_1),
            (b.chi_square, b.observed_1, b.expected_1)
        );
    }

    #[test]
    fn a_day_far_beyond_the_observations_is_sorted_not_tabled() {
        let sparse = group(&[(3.0, true), (5_000_000.0, false)]);
        assert!(tally_days(&sparse).is_none());
        let curve = kaplan_meier(&sparse, 0.95);
        assert_eq!(curve.steps.len(), 1);
        assert_eq!(curve.steps[0].survival, 0.5);
    }
}
