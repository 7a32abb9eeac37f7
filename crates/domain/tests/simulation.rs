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
