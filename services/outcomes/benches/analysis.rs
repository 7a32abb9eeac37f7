//! Benchmark (not a test): the outcomes statistics over 10,000, 100,000 and 1,000,000 synthetic
//! subjects, beside the reference libraries on the same data in the same run.
//!
//! - Survival: Kaplan–Meier per arm (Greenwood variance, log(−log) band) and the log-rank test,
//!   from each subject's follow-up time and event, against lifelines.
//! - Responses: each subject's best central response from the trial's assessments, the table
//!   per arm and the exact (Clopper-Pearson) interval, against pandas and scipy.
//!
//! Each figure is the median of several runs. The reference side is
//! `tools/reference/stats_bench.py`, run with `TRIALOPS_BENCH_PYTHON` (default `python3`; it
//! needs lifelines and scipy, see the script); its results must agree with trialops' to 1e-9,
//! or the benchmark fails. Without those libraries only trialops' figures are printed.
//!
//!     TRIALOPS_BENCH_PYTHON=/tmp/statsbench/bin/python cargo bench -p trialops-outcomes --bench analysis
//!
//! `TRIALOPS_BENCH_LARGEST` (default 1000000) sets the largest trial.

// A benchmark program, not service code: a failed step ends it with the reason shown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use chrono::{Days, NaiveDate};
use serde_json::Value;
use trialops_domain::outcomes::binomial::clopper_pearson;
use trialops_domain::outcomes::inrc::Response;
use trialops_domain::outcomes::survival::{Curve, LogRank, Observation, kaplan_meier, log_rank};
use trialops_outcomes::analysis::{self, Assessment, Data, Endpoint, FollowUp, Shared, Subject};

const LEVEL: f64 = 0.95;
/// Agreement required with the reference libraries.
const TOLERANCE: f64 = 1e-9;

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
    // Ids and arm codes held once and shared, as the service's analyses hold them.
    let arms = [Shared::from("A"), Shared::from("B")];
    for i in 0..n {
        let id = Shared::from(format!("T-{i:07}"));
        let enrolled_on = start + Days::new(rng.next() % 1500);
        data.subjects.push(Subject {
            subject_id: id.clone(),
            arm_code: arms[i % 2].clone(),
            enrolled_on,
            in_error: None,
            treated: true,
        });
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

/// trialops' survival analysis of two arms: both curves and the test.
fn survival(arms: &[Vec<Observation>]) -> (Vec<Curve>, LogRank) {
    let curves = arms.iter().map(|g| kaplan_meier(g, LEVEL)).collect();
    (curves, log_rank(&arms[0], &arms[1]))
}

/// trialops' response table with each arm's exact interval: (arm, responders, evaluable, lower,
/// upper).
fn responses(data: &Data) -> Vec<(String, u64, u64, f64, f64)> {
    analysis::response_table(data)
        .into_iter()
        .map(|t| {
            let p = clopper_pearson(t.responders, t.evaluable, LEVEL).unwrap();
            (t.arm_code, t.responders, t.evaluable, p.lower, p.upper)
        })
        .collect()
}

/// The data as the reference script reads it (see `tools/reference/stats_bench.py`).
fn write_reference_input(dir: &std::path::Path, data: &Data, arms: &[(String, Vec<Observation>)]) {
    let mut survival = String::from("arm,time,event\n");
    for (arm, group) in arms {
        for o in group {
            writeln!(survival, "{arm},{},{}", o.time, u8::from(o.event)).unwrap();
        }
    }
    std::fs::write(dir.join("survival.csv"), survival).unwrap();
    let arm_of: std::collections::HashMap<&str, &str> =
        data.subjects.iter().map(|s| (&*s.subject_id, &*s.arm_code)).collect();
    let mut assessed = String::from("arm,subject,rank\n");
    for a in &data.assessments {
        let Some(overall) = a.overall else { continue };
        if a.central && (1..=data.evaluation_cycle).contains(&a.after_cycle) {
            writeln!(
                assessed,
                "{},{},{}",
                arm_of[&*a.subject_id],
                a.subject_id,
                overall.rank()
            )
            .unwrap();
        }
    }
    std::fs::write(dir.join("responses.csv"), assessed).unwrap();
    let mut subjects = String::from("arm,subject\n");
    for s in &data.subjects {
        writeln!(subjects, "{},{}", s.arm_code, s.subject_id).unwrap();
    }
    std::fs::write(dir.join("subjects.csv"), subjects).unwrap();
}

/// The reference script's answer, or why there is none.
fn reference(dir: &std::path::Path, repeats: usize) -> Result<Value, String> {
    let python = std::env::var("TRIALOPS_BENCH_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools/reference/stats_bench.py");
    let out = std::process::Command::new(&python)
        .arg(script)
        .arg(dir)
        .arg(repeats.to_string())
        .output()
        .map_err(|e| format!("{python}: {e}"))?;
    if !out.status.success() {
        let said = String::from_utf8_lossy(&out.stderr);
        return Err(said.lines().last().unwrap_or_default().to_owned());
    }
    serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())
}

/// Panics unless trialops' results agree with the reference's to [`TOLERANCE`]; the number of
/// values compared.
fn agree(
    arms: &[String],
    curves: &[Curve],
    test: &LogRank,
    table: &[(String, u64, u64, f64, f64)],
    r: &Value,
) -> usize {
    let close = |what: &str, ours: f64, theirs: &Value| {
        let theirs = theirs.as_f64().unwrap();
        assert!(
            (ours - theirs).abs() <= TOLERANCE,
            "{what}: trialops {ours:e}, reference {theirs:e}"
        );
    };
    let mut compared = 0;
    for (arm, curve) in arms.iter().zip(curves) {
        let steps = r["curves"][arm].as_array().unwrap();
        assert_eq!(steps.len(), curve.steps.len(), "arm {arm}: steps");
        for (step, theirs) in curve.steps.iter().zip(steps) {
            close(&format!("arm {arm} time"), step.time, &theirs[0]);
            close(
                &format!("arm {arm} survival at {}", step.time),
                step.survival,
                &theirs[1],
            );
            close(&format!("arm {arm} lower at {}", step.time), step.lower, &theirs[2]);
            close(&format!("arm {arm} upper at {}", step.time), step.upper, &theirs[3]);
            compared += 4;
        }
    }
    close("log-rank chi-square", test.chi_square, &r["chi_square"]);
    close("log-rank p", test.p_value, &r["p_value"]);
    for (arm, responders, evaluable, lower, upper) in table {
        let theirs = &r["responses"][arm];
        assert_eq!(
            (theirs[0].as_u64(), theirs[1].as_u64()),
            (Some(*responders), Some(*evaluable)),
            "arm {arm}: responders of evaluable"
        );
        close(&format!("arm {arm} lower"), *lower, &theirs[2][0]);
        close(&format!("arm {arm} upper"), *upper, &theirs[2][1]);
    }
    compared + 2 + 4 * table.len()
}

fn main() {
    let largest: usize = std::env::var("TRIALOPS_BENCH_LARGEST")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    println!(
        "{:>9}  {:>12} {:>12} {:>8}  {:>12} {:>12} {:>8}  {:>12}",
        "subjects", "survival ms", "lifelines", "faster", "responses ms", "pandas/scipy", "faster", "agreement"
    );
    let mut first: Option<(usize, Duration, Duration)> = None;
    let mut rows = Vec::new();
    for n in [10_000, 100_000, 1_000_000].into_iter().filter(|n| *n <= largest) {
        let data = trial(n);
        let repeats = if n >= 1_000_000 { 3 } else { 7 };
        let by_arm: Vec<(String, Vec<Observation>)> =
            analysis::observations(&data, Endpoint::EventFree).into_iter().collect();
        let arms: Vec<String> = by_arm.iter().map(|(a, _)| a.clone()).collect();
        let groups: Vec<Vec<Observation>> = by_arm.iter().map(|(_, g)| g.clone()).collect();
        let ours_survival = time(repeats, || {
            std::hint::black_box(survival(&groups));
        });
        let ours_responses = time(repeats, || {
            std::hint::black_box(responses(&data));
        });
        let (curves, test) = survival(&groups);
        let table = responses(&data);
        let dir = tempfile::tempdir().unwrap();
        write_reference_input(dir.path(), &data, &by_arm);
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let (theirs_survival, theirs_responses, agreement) = match reference(dir.path(), repeats) {
            Ok(r) => {
                let compared = agree(&arms, &curves, &test, &table, &r);
                (
                    r["survival_ms"].as_f64(),
                    r["responses_ms"].as_f64(),
                    format!("{compared} values"),
                )
            }
            Err(why) => (None, None, format!("no reference: {why}")),
        };
        let ratio =
            |theirs: Option<f64>, ours: Duration| theirs.map_or("-".to_owned(), |t| format!("{:.1}x", t / ms(ours)));
        let shown = |theirs: Option<f64>| theirs.map_or("-".to_owned(), |t| format!("{t:.2}"));
        println!(
            "{n:>9}  {:>12.3} {:>12} {:>8}  {:>12.3} {:>12} {:>8}  {agreement:>12}",
            ms(ours_survival),
            shown(theirs_survival),
            ratio(theirs_survival, ours_survival),
            ms(ours_responses),
            shown(theirs_responses),
            ratio(theirs_responses, ours_responses),
        );
        let (n0, s0, r0) = *first.get_or_insert((n, ours_survival, ours_responses));
        let n_log_n = |n: usize| n as f64 * (n as f64).ln();
        rows.push(serde_json::json!({
            "subjects": n,
            "survival_ms": ms(ours_survival),
            "lifelines_ms": theirs_survival,
            "responses_ms": ms(ours_responses),
            "pandas_scipy_ms": theirs_responses,
            "survival_growth": ours_survival.as_secs_f64() / s0.as_secs_f64(),
            "responses_growth": ours_responses.as_secs_f64() / r0.as_secs_f64(),
            "n_log_n_growth": n_log_n(n) / n_log_n(n0),
        }));
    }
    for row in &rows[1..] {
        println!(
            "{} subjects: cost x{:.1} (survival), x{:.1} (responses) for n log n x{:.1}",
            row["subjects"],
            row["survival_growth"].as_f64().unwrap_or(0.0),
            row["responses_growth"].as_f64().unwrap_or(0.0),
            row["n_log_n_growth"].as_f64().unwrap_or(0.0)
        );
    }
    println!("{}", serde_json::json!({ "analysis": rows }));
}
