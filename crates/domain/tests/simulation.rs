//! The allocation simulation checked against what is known without it: the convergence
//! strategy's guess rate for permuted blocks of fixed size 2 and 4 in closed form (Blackwell and
//! Hodges: a block of 2m is guessed right m + 2^(2m-1)/C(2m,m) - 1/2 times on average, so 3/4
//! of the time for blocks of 2 and 17/24 for blocks of 4), the bounds fixed blocks put on
//! imbalance, and a brute-force simulation written here, separately, for randomly sized blocks.

// Test code, helpers included, unwraps: a failure is a test failure with the value shown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use trialops_domain::protocol::{self, Protocol};
use trialops_domain::simulation::simulate;

/// ANBL1221 with `multipliers` as its block multipliers (1:1, so blocks of 2 × multiplier).
fn with_blocks(multipliers: &str) -> Protocol {
    let text = protocol::ANBL1221_TOML.replace(
        "block_multipliers = [1, 2]",
        &format!("block_multipliers = {multipliers}"),
    );
    protocol::load(&text).unwrap()
}

/// Blackwell–Hodges: the expected share of right guesses in a 1:1 block of 2m.
fn closed_form(m: u32) -> f64 {
    let choose = (1..=m).fold(1.0, |c, i| c * f64::from(m + i) / f64::from(i));
    (f64::from(m) + 2f64.powi(2 * m as i32 - 1) / choose - 0.5) / f64::from(2 * m)
}

#[test]
fn the_closed_form_itself() {
    assert_eq!(closed_form(1), 0.75);
    assert!((closed_form(2) - 17.0 / 24.0).abs() < 1e-12);
}

#[test]
fn fixed_blocks_match_the_closed_form_and_bound_imbalance() {
    // 60 runs × 2000 subjects = 120,000 guesses: a standard error near 0.0013.
    for (multipliers, m) in [("[1]", 1), ("[2]", 2)] {
        let oc = simulate(&with_blocks(multipliers), 2000, 60, 11).unwrap();
        let expected = closed_form(m);
        assert!(
            (oc.correct_guess_rate - expected).abs() < 0.006,
            "blocks of {}: {} against {expected}",
            2 * m,
            oc.correct_guess_rate
        );
        // Within a stratum, a block of 2m is never more than m apart; six strata at most 6m.
        assert!(oc.stratum_running_imbalance.max <= f64::from(m), "{oc:?}");
        assert!(oc.running_imbalance.max <= f64::from(6 * m), "{oc:?}");
        assert_eq!((oc.runs, oc.subjects, oc.strata), (60, 2000, 6));
    }
}

/// The guess rate of randomly sized 1:1 blocks (2 × a multiplier drawn uniformly from
/// `multipliers`), by brute force: its own shuffles, its own strata draws, its own observer.
fn brute_force(multipliers: &[u32], strata: usize, subjects: usize, runs: usize) -> f64 {
    let mut rng = ChaCha8Rng::seed_from_u64(99);
    let (mut right, mut total) = (0.0, 0.0);
    for _ in 0..runs {
        let mut pending: Vec<Vec<u8>> = vec![Vec::new(); strata];
        let mut counts = vec![[0u32; 2]; strata];
        for _ in 0..subjects {
            let s = (rng.next_u32() as usize) % strata;
            if pending[s].is_empty() {
                let m = multipliers[(rng.next_u32() as usize) % multipliers.len()];
                let mut block: Vec<u8> = (0..2 * m).map(|i| (i % 2) as u8).collect();
                for i in (1..block.len()).rev() {
                    block.swap(i, (rng.next_u32() as usize) % (i + 1));
                }
                pending[s] = block;
            }
            let arm = pending[s].pop().unwrap();
            let [a, b] = counts[s];
            right += match a.cmp(&b) {
                std::cmp::Ordering::Equal => 0.5,
                std::cmp::Ordering::Less => f64::from(u8::from(arm == 0)),
                std::cmp::Ordering::Greater => f64::from(u8::from(arm == 1)),
            };
            total += 1.0;
            counts[s][usize::from(arm)] += 1;
        }
    }
    right / total
}

#[test]
fn randomly_sized_blocks_match_a_brute_force_simulation() {
    let brute = brute_force(&[1, 2], 6, 2000, 60);
    // Between the two fixed sizes' rates, as a mixture of them must be.
    assert!(brute > closed_form(2) && brute < closed_form(1), "{brute}");
    let oc = simulate(&protocol::anbl1221().unwrap(), 2000, 60, 5).unwrap();
    assert!(
        (oc.correct_guess_rate - brute).abs() < 0.008,
        "simulated {} against brute force {brute}",
        oc.correct_guess_rate
    );
}

#[test]
fn the_same_seed_gives_the_same_figures() {
    let p = protocol::anbl1221().unwrap();
    assert_eq!(simulate(&p, 200, 5, 1).unwrap(), simulate(&p, 200, 5, 1).unwrap());
    assert_ne!(simulate(&p, 200, 5, 1).unwrap(), simulate(&p, 200, 5, 2).unwrap());
}

/// ANBL1221 allocated by minimization: range, `weights` as its TOML line, preferred arm with `p`.
fn with_minimization(p: &str, weights: &str) -> Protocol {
    let text = protocol::ANBL1221_TOML.replace(
        "block_multipliers = [1, 2]",
        &format!(
            "method = \"minimization\"\n\n[randomization.minimization]\nimbalance = \"range\"\n\
             preferred_arm_probability = \"{p}\"\n{weights}"
        ),
    );
    protocol::load(&text).unwrap()
}

/// Efron's biased coin (1971): with one factor of one value, two arms at 1:1 and the range,
/// minimization gives the lagging arm with probability p and tosses a fair coin when balanced.
/// The imbalance |D| is then a Markov chain whose stationary chance of balance is
/// (2p − 1) / (2p), so an observer guessing the lagging arm (a coin when balanced) is right
/// (2p − 1)/(4p) + (1 − (2p − 1)/(2p))·p = 1/2 + (2p − 1)/(4p) of the time: 2/3 for p = 0.75,
/// 0.6875 for p = 0.8.
fn efron_guess_rate(p: f64) -> f64 {
    let balanced = (2.0 * p - 1.0) / (2.0 * p);
    balanced * 0.5 + (1.0 - balanced) * p
}

#[test]
fn minimization_on_one_stratum_is_efrons_biased_coin() {
    assert!((efron_guess_rate(0.75) - 2.0 / 3.0).abs() < 1e-12);
    assert!((efron_guess_rate(0.8) - 0.6875).abs() < 1e-12);
    for (p, text) in [(0.75, "0.75"), (0.8, "0.8")] {
        let mut protocol = with_minimization(text, "");
        protocol.strata.truncate(1);
        protocol.strata[0].values.truncate(1);
        let oc = simulate(&protocol, 2000, 60, 3).unwrap();
        assert_eq!(oc.strata, 1);
        assert!(
            (oc.correct_guess_rate - efron_guess_rate(p)).abs() < 0.006,
            "p = {p}: {} against {}",
            oc.correct_guess_rate,
            efron_guess_rate(p)
        );
        // Efron's coin keeps the trial near balance: |D| at an even count is even, and the
        // chain's chance of |D| ≥ 2k falls as ((1 − p)/p)^(2k−1) — 60 runs rarely pass 8.
        assert!(oc.final_imbalance.median <= 2.0, "{oc:?}");
        assert!(oc.running_imbalance.max <= 12.0, "{oc:?}");
    }
}

/// Pocock–Simon minimization of two arms at 1:1 over ANBL1221's two factors (2 and 3 values,
/// equally weighted, range, preferred arm with probability `p`), by brute force with its own
/// draws: the share of allocations an observer guessing the preferred arm gets right, and the
/// largest final imbalance within a stratum.
fn brute_force_minimization(p: f64, subjects: usize, runs: usize) -> (f64, u32) {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let (mut right, mut total, mut worst) = (0.0, 0.0, 0u32);
    for _ in 0..runs {
        // counts[factor][value][arm]
        let mut prior = [[0i64; 2]; 2];
        let mut mycn = [[0i64; 2]; 3];
        let mut cells = [[0u32; 2]; 6];
        for _ in 0..subjects {
            let cell = (rng.next_u32() as usize) % 6;
            let (pv, mv) = (cell / 3, cell % 3);
            // Imbalance each arm would leave: |(a + [k = A]) − (b + [k = B])| per factor.
            let score = |k: usize| -> i64 {
                let shift = |c: [i64; 2]| if k == 0 { c[0] + 1 - c[1] } else { c[0] - c[1] - 1 };
                shift(prior[pv]).abs() + shift(mycn[mv]).abs()
            };
            let (sa, sb) = (score(0), score(1));
            let draw = f64::from(rng.next_u32()) / 4_294_967_296.0;
            let arm = if sa == sb {
                usize::from(draw >= 0.5)
            } else {
                let preferred = if sa < sb { 0 } else { 1 };
                if draw < p { preferred } else { 1 - preferred }
            };
            right += if sa == sb {
                0.5
            } else if (sa < sb) == (arm == 0) {
                1.0
            } else {
                0.0
            };
            total += 1.0;
            prior[pv][arm] += 1;
            mycn[mv][arm] += 1;
            cells[cell][arm] += 1;
        }
        worst = worst.max(cells.iter().map(|[a, b]| a.abs_diff(*b)).max().unwrap_or(0));
    }
    (right / total, worst)
}

#[test]
fn minimization_matches_a_brute_force_simulation() {
    let (brute, brute_worst) = brute_force_minimization(0.8, 2000, 60);
    let oc = simulate(&with_minimization("0.8", ""), 2000, 60, 5).unwrap();
    assert!(
        (oc.correct_guess_rate - brute).abs() < 0.008,
        "simulated {} against brute force {brute}",
        oc.correct_guess_rate
    );
    // Minimization balances the margins, not the cells: a stratum may drift more than under
    // blocks, but both simulations see the same order of drift.
    assert!(
        oc.stratum_final_imbalance.max <= f64::from(brute_worst) * 2.0 + 4.0,
        "{oc:?} against brute force's worst {brute_worst}"
    );
    // The margins stay close: the whole trial is never far from balance.
    assert!(oc.running_imbalance.max <= 12.0, "{oc:?}");
    // Heavier weight on MYCN status changes the method, so the figures.
    let weighted = simulate(
        &with_minimization("0.8", "weights = { mycn_status = \"2\" }"),
        2000,
        60,
        5,
    )
    .unwrap();
    assert_ne!(weighted, oc);
}
