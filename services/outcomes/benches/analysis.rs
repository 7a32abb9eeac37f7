//! Benchmark (not a test): the response-rate and Kaplan–Meier computations of the outcomes
//! service for 10,000 and 100,000 synthetic subjects, on the same code the RPCs run once their
//! inputs are read. Prints the median of several runs and the ratio against 10,000 subjects.
//!
//!     cargo bench -p trialops-outcomes --bench analysis

use std::collections::HashSet;
use std::time::{Duration, Instant};

use chrono::{Days, NaiveDate};
use trialops_domain::outcomes::binomial::clopper_pearson;
use trialops_domain::outcomes::inrc::Response;
use trialops_domain::outcomes::survival::{kaplan_meier, log_rank};
use trialops_outcomes::analysis::{self, Assessment, Data, Endpoint, FollowUp, Subject};

/// A deterministic pseudo-random sequence (xorshift), so runs are comparable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn trial(n: usize) -> Data {
    let mut rng = Rng(0x1221);
    let start = NaiveDate::from_ymd_opt(2020, 1, 1).unwrap_or_default();
    let mut data = Data {
        evaluation_cycle: 6,
        arms: vec!["A".into(), "B".into()],
        ..Default::default()
    };
    let mut treated = HashSet::new();
    for i in 0..n {
        let id = format!("T-{i:06}");
        let enrolled_on = start + Days::new(rng.next() % 1500);
        data.subjects.push(Subject {
            subject_id: id.clone(),
            arm_code: if i % 2 == 0 { "A" } else { "B" }.into(),
            enrolled_on,
            in_error: None,
        });
        treated.insert(id.clone());
        let responses = [Response::Cr, Response::Pr, Response::Mr, Response::Sd, Response::Pd];
        for (k, cycle) in [0, 2, 4, 6].into_iter().enumerate() {
            data.assessments.push(Assessment {
                subject_id: id.clone(),
                after_cycle: cycle,
                central: true,
                overall: (cycle > 0).then(|| responses[(rng.next() % 5) as usize]),
                assessed_on: enrolled_on + Days::new(42 * k as u64),
                awaiting_curie_segments: false,
            });
        }
        data.follow_ups.push(FollowUp {
            subject_id: id,
            last_contact_on: enrolled_on + Days::new(rng.next() % 900),
            dead: rng.next().is_multiple_of(4),
            progression_on: rng
                .next()
                .is_multiple_of(3)
                .then(|| enrolled_on + Days::new(rng.next() % 600)),
            second_malignancy_on: None,
        });
    }
    data.treated = treated;
    data
}

fn median_of(mut runs: Vec<Duration>) -> Duration {
    runs.sort();
    runs[runs.len() / 2]
}

fn time(repeats: usize, mut f: impl FnMut()) -> Duration {
    median_of(
        (0..repeats)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed()
            })
            .collect(),
    )
}

fn main() {
    println!(
        "{:>9}  {:>16}  {:>16}  {:>10}  {:>10}",
        "subjects", "response rate", "KM + log-rank", "rate x", "KM x"
    );
    let mut baseline: Option<(Duration, Duration)> = None;
    for n in [10_000, 100_000] {
        let data = trial(n);
        let response = time(5, || {
            for t in analysis::response_table(&data) {
                std::hint::black_box(clopper_pearson(t.responders, t.evaluable, 0.95).ok());
            }
        });
        let km = time(5, || {
            let groups = analysis::observations(&data, Endpoint::EventFree);
            let curves: Vec<_> = groups.values().map(|g| kaplan_meier(g, 0.95)).collect();
            let groups: Vec<_> = groups.into_values().collect();
            std::hint::black_box((curves, log_rank(&groups[0], &groups[1])));
        });
        let (r0, k0) = *baseline.get_or_insert((response, km));
        println!(
            "{n:>9}  {:>13.2} ms  {:>13.2} ms  {:>9.1}x  {:>9.1}x",
            response.as_secs_f64() * 1e3,
            km.as_secs_f64() * 1e3,
            response.as_secs_f64() / r0.as_secs_f64(),
            km.as_secs_f64() / k0.as_secs_f64()
        );
    }
}
