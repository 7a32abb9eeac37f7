//! Properties of the permuted-block randomization (issue requirements) and its stability.

// Test code, helpers included, unwraps: a failure is a test failure with the value shown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use trialops_domain::protocol;
use trialops_domain::randomization::{
    BlockCursor, BlockScheme, Method, NotProven, RecordedAllocation, Sequence, TrialKey, commitment, verify,
};

fn scheme_strategy() -> impl Strategy<Value = BlockScheme> {
    (
        prop::collection::vec(1u32..=3, 2..=3),
        prop::collection::btree_set(1u32..=4, 1..=3),
    )
        .prop_map(|(ratios, mults)| {
            let arms = ratios
                .into_iter()
                .enumerate()
                .map(|(i, r)| (format!("ARM{i}"), r))
                .collect();
            BlockScheme::new(arms, mults.into_iter().collect()).unwrap()
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Within every stratum, at every point of the sequence, each arm's count differs from its
    /// expected share (n x ratio / ratio sum) by at most half the largest block.
    #[test]
    fn imbalance_never_exceeds_half_the_largest_block(
        scheme in scheme_strategy(),
        secret in prop::collection::vec(any::<u8>(), 16..64),
        n in 1u64..300,
    ) {
        let key = TrialKey::derive(&secret, "T1");
        let seq = Sequence::new(&key, &scheme, "mycn_status=amplified").take(n);
        let total: u32 = scheme.ratio_sum();
        let bound = f64::from(scheme.largest_block()) / 2.0;
        let mut counts = vec![0u64; scheme.arms().len()];
        for (i, a) in seq.iter().enumerate() {
            let arm = scheme.arms().iter().position(|(c, _)| *c == a.arm_code).unwrap_or(usize::MAX);
            counts[arm] += 1;
            let allocated = (i + 1) as f64;
            for (k, (_, ratio)) in scheme.arms().iter().enumerate() {
                let expected = allocated * f64::from(*ratio) / f64::from(total);
                prop_assert!((counts[k] as f64 - expected).abs() <= bound,
                    "arm {k} count {} expected {expected} after {allocated}", counts[k]);
            }
        }
    }

    /// At every block boundary the allocation ratio holds exactly.
    #[test]
    fn ratio_holds_exactly_at_block_boundaries(
        scheme in scheme_strategy(),
        secret in prop::collection::vec(any::<u8>(), 16..64),
    ) {
        let key = TrialKey::derive(&secret, "T1");
        let seq = Sequence::new(&key, &scheme, "s=1").take(200);
        let total = u64::from(scheme.ratio_sum());
        let mut counts = vec![0u64; scheme.arms().len()];
        for (i, a) in seq.iter().enumerate() {
            let arm = scheme.arms().iter().position(|(c, _)| *c == a.arm_code).unwrap_or(usize::MAX);
            counts[arm] += 1;
            let last_of_block = seq.get(i + 1).is_none_or(|next| next.block_index != a.block_index);
            if last_of_block && i + 1 < seq.len() {
                let n = (i + 1) as u64;
                prop_assert_eq!(n % total, 0);
                for (k, (_, ratio)) in scheme.arms().iter().enumerate() {
                    prop_assert_eq!(counts[k], n / total * u64::from(*ratio));
                }
            }
        }
    }

    /// A single position is the same assignment as in the whole sequence (the server computes
    /// one position; an auditor reproduces the list).
    #[test]
    fn single_positions_agree_with_the_full_sequence(
        scheme in scheme_strategy(),
        secret in prop::collection::vec(any::<u8>(), 16..32),
        position in 0u64..100,
    ) {
        let key = TrialKey::derive(&secret, "T1");
        let seq = Sequence::new(&key, &scheme, "s=2");
        prop_assert_eq!(seq.assignment(position), seq.take(position + 1).pop().unwrap_or_else(|| unreachable!()));
    }

    /// A cursor carried from one assignment to the next, forwards, backwards or in place, gives
    /// the assignments of the full sequence.
    #[test]
    fn assignments_from_a_carried_cursor_agree_with_the_full_sequence(
        scheme in scheme_strategy(),
        secret in prop::collection::vec(any::<u8>(), 16..32),
        positions in prop::collection::vec(0u64..300, 1..40),
    ) {
        let key = TrialKey::derive(&secret, "T1");
        let seq = Sequence::new(&key, &scheme, "s=2");
        let full = seq.take(300);
        let mut cursor = BlockCursor::default();
        for position in positions {
            prop_assert_eq!(&seq.assignment_from(position, &mut cursor), &full[position as usize]);
        }
    }
}

fn anbl_scheme() -> BlockScheme {
    let p = protocol::anbl1221().unwrap();
    BlockScheme::from_protocol(&p).unwrap()
}

#[test]
fn the_sequence_depends_on_the_secret_the_trial_and_the_stratum_only() {
    let scheme = anbl_scheme();
    let arms = |secret: &[u8], trial: &str, stratum: &str| -> String {
        let key = TrialKey::derive(secret, trial);
        Sequence::new(&key, &scheme, stratum)
            .take(64)
            .iter()
            .map(|a| a.arm_code.as_str())
            .collect()
    };
    let base = arms(b"secret-one", "ANBL1221", "mycn_status=amplified");
    assert_eq!(
        base,
        arms(b"secret-one", "ANBL1221", "mycn_status=amplified"),
        "reproducible"
    );
    assert_ne!(base, arms(b"secret-two", "ANBL1221", "mycn_status=amplified"));
    assert_ne!(base, arms(b"secret-one", "OTHER", "mycn_status=amplified"));
    assert_ne!(base, arms(b"secret-one", "ANBL1221", "mycn_status=not_amplified"));
}

#[test]
fn block_sizes_vary_between_the_configured_sizes() {
    // ANBL1221: 1:1 with multipliers 1 and 2, so blocks of 2 and 4; over 200 subjects both occur.
    let scheme = anbl_scheme();
    let key = TrialKey::derive(b"any secret", "ANBL1221");
    let sizes: std::collections::BTreeSet<u32> = Sequence::new(&key, &scheme, "x=y")
        .take(200)
        .iter()
        .map(|a| a.block_size)
        .collect();
    assert_eq!(sizes.into_iter().collect::<Vec<_>>(), [2, 4]);
}

#[test]
fn the_key_never_prints_and_its_fingerprint_tracks_the_secret() {
    let key = TrialKey::derive(b"top secret", "ANBL1221");
    assert_eq!(format!("{key:?}"), "TrialKey(<secret>)");
    assert_eq!(key.fingerprint().len(), 16);
    assert_eq!(
        key.fingerprint(),
        TrialKey::derive(b"top secret", "ANBL1221").fingerprint()
    );
    assert_ne!(
        key.fingerprint(),
        TrialKey::derive(b"other secret", "ANBL1221").fingerprint()
    );
}

/// The sequence against fixed vectors computed by an independent implementation of the
/// documented algorithm (tools/reference/randomization_v1.py: HMAC-SHA256 from Python's
/// standard library, ChaCha20 written from RFC 8439). A change to the key derivation, the
/// generator, the rejection sampling, the block composition or the shuffle changes the arms.
#[test]
fn sequences_match_the_independent_reference_vectors() {
    let fixture: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/randomization_v1.json")).expect("fixture");
    let vectors = fixture["vectors"].as_array().cloned().unwrap_or_default();
    assert_eq!(vectors.len(), 4, "the fixture holds four vectors");
    for v in &vectors {
        let text = |key: &str| v[key].as_str().unwrap_or_else(|| panic!("{key}")).to_owned();
        let secret: Vec<u8> = (0..text("secret_hex").len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text("secret_hex")[i..i + 2], 16).unwrap())
            .collect();
        let arms = v["arms"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|a| {
                (
                    a["code"].as_str().unwrap_or("?").to_owned(),
                    a["ratio"].as_u64().unwrap_or(0) as u32,
                )
            })
            .collect();
        let multipliers = v["multipliers"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|m| m.as_u64().unwrap_or(0) as u32)
            .collect();
        let scheme = BlockScheme::new(arms, multipliers).unwrap();
        let key = TrialKey::derive(&secret, &text("trial_id"));
        assert_eq!(key.fingerprint(), text("fingerprint"));
        let stratum = text("stratum");
        let expected = v["allocations"].as_array().cloned().unwrap_or_default();
        assert_eq!(expected.len(), 64, "{stratum}: 64 allocations");
        let sequence = Sequence::new(&key, &scheme, &stratum);
        let got = sequence.take(64);
        for (position, (mine, theirs)) in got.iter().zip(&expected).enumerate() {
            let what = format!("{stratum} position {position}");
            assert_eq!(mine.arm_code, theirs["arm"].as_str().unwrap_or("?"), "{what}");
            assert_eq!(Some(mine.block_index), theirs["block_index"].as_u64(), "{what}");
            assert_eq!(
                Some(u64::from(mine.block_size)),
                theirs["block_size"].as_u64(),
                "{what}"
            );
            assert_eq!(&sequence.assignment(position as u64), mine, "{what}: by position");
        }
    }
}

/// The commitment and the revealed key of ANBL1221 under the master secret 00 01 … 1f, computed
/// with Python's hmac and hashlib from the formulas in the module documentation:
/// key = HMAC-SHA256(secret, "trialops/randomization/v1/ANBL1221"), commitment =
/// SHA-256("trialops/allocation-commitment/v1" 0x00 "ANBL1221" 0x00
/// "permuted-blocks/v1;arms=A:1,B:1;multipliers=1,2" 0x00 key).
const REFERENCE_KEY: &str = "5d50e05b284039f58a60d08a59fd907f5ac33bb77ddd4d6978474982716254dc";
const REFERENCE_COMMITMENT: &str = "57cfd9d762c6ce019fe075000dd56b421974b05cfa50c62d2a316d1dea2d1db6";

#[test]
fn the_commitment_and_the_revealed_key_match_an_independent_computation() {
    let master: Vec<u8> = (0u8..32).collect();
    let key = TrialKey::derive(&master, "ANBL1221");
    assert_eq!(key.reveal(), REFERENCE_KEY);
    assert_eq!(
        anbl_scheme().parameters(),
        "permuted-blocks/v1;arms=A:1,B:1;multipliers=1,2"
    );
    assert_eq!(
        commitment("ANBL1221", &Method::PermutedBlocks(anbl_scheme()), &key),
        REFERENCE_COMMITMENT
    );
    let back = TrialKey::from_revealed(REFERENCE_KEY).map(|k| k.reveal());
    assert_eq!(back.as_deref(), Some(REFERENCE_KEY));
    assert!(TrialKey::from_revealed("5d50").is_none());
    assert!(TrialKey::from_revealed(&"zz".repeat(32)).is_none());
}

/// The allocations an honest trial records: the sequence of each stratum from position 0.
fn honest(key: &TrialKey, counts: &[(&str, u64)]) -> Vec<RecordedAllocation> {
    let scheme = anbl_scheme();
    let mut out = Vec::new();
    for (stratum, count) in counts {
        for a in Sequence::new(key, &scheme, stratum).take(*count) {
            out.push(RecordedAllocation {
                subject_id: format!("{stratum}-{}", a.position),
                stratum: (*stratum).to_owned(),
                position: a.position,
                arm_code: a.arm_code,
            });
        }
    }
    out
}

#[test]
fn verification_proves_an_honest_record_and_names_the_first_steered_or_hidden_allocation() {
    let master: Vec<u8> = (0u8..32).collect();
    let key = TrialKey::derive(&master, "ANBL1221");
    let scheme = Method::PermutedBlocks(anbl_scheme());
    let record = honest(&key, &[("s1", 9), ("s2", 4)]);
    assert_eq!(verify("ANBL1221", &scheme, &key, REFERENCE_COMMITMENT, &record), Ok(2));

    // A child steered to the other arm.
    let mut steered = record.clone();
    let flipped = if steered[5].arm_code == "A" { "B" } else { "A" };
    steered[5].arm_code = flipped.to_owned();
    match verify("ANBL1221", &scheme, &key, REFERENCE_COMMITMENT, &steered) {
        Err(NotProven::Arm {
            subject_id, position, ..
        }) => assert_eq!((subject_id.as_str(), position), ("s1-5", 5)),
        other => panic!("{other:?}"),
    }
    // An allocation withheld from the record (position 3 of s2 skipped), and one used twice.
    let hidden: Vec<_> = record
        .iter()
        .filter(|a| !(a.stratum == "s2" && a.position == 3))
        .cloned()
        .collect();
    let mut shifted = hidden.clone();
    if let Some(last) = shifted.iter_mut().find(|a| a.stratum == "s2" && a.position == 2) {
        last.position = 4;
    }
    assert!(matches!(
        verify("ANBL1221", &scheme, &key, REFERENCE_COMMITMENT, &shifted),
        Err(NotProven::Positions {
            position: 2,
            problem: "is missing",
            ..
        })
    ));
    let mut twice = record.clone();
    twice[1].position = 0;
    assert!(matches!(
        verify("ANBL1221", &scheme, &key, REFERENCE_COMMITMENT, &twice),
        Err(NotProven::Positions {
            position: 0,
            problem: "is used twice",
            ..
        })
    ));
    // Another key cannot pass for the committed one.
    let other = TrialKey::derive(b"another master secret of 32 bytes!", "ANBL1221");
    assert!(matches!(
        verify("ANBL1221", &scheme, &other, REFERENCE_COMMITMENT, &record),
        Err(NotProven::Commitment { .. })
    ));
}

/// Minimization against allocations computed by an independent implementation of the documented
/// algorithm (tools/reference/randomization_v1.py: exact fractions and the textbook variance
/// where the Rust code scales to integers; the same draws). Each vector is a stream of subjects
/// allocated in turn: a change to the scores, the tie rule, the draws or the weights changes an arm.
#[test]
fn minimization_matches_the_independent_reference_vectors() {
    use trialops_domain::Decimal;
    use trialops_domain::minimization::{FactorCounts, Minimization};
    use trialops_domain::protocol::ImbalanceMeasure;

    let fixture: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/randomization_v1.json")).expect("fixture");
    let vectors = fixture["minimization_vectors"].as_array().cloned().unwrap_or_default();
    let anbl = Minimization::new(
        vec![("A".into(), 1), ("B".into(), 1)],
        vec![
            ("prior_therapy".into(), Decimal::ONE),
            ("mycn_status".into(), Decimal::from(2)),
        ],
        ImbalanceMeasure::Range,
        Decimal::new(8, 1),
    )
    .unwrap();
    let three_arms = Minimization::new(
        vec![("X".into(), 2), ("Y".into(), 1), ("Z".into(), 1)],
        vec![
            ("site".into(), Decimal::new(15, 1)),
            ("sex".into(), Decimal::ONE),
            ("age".into(), Decimal::new(25, 2)),
        ],
        ImbalanceMeasure::Variance,
        Decimal::new(7, 1),
    )
    .unwrap();
    assert_eq!(vectors.len(), 2, "the fixture holds two minimization vectors");
    for (v, scheme) in vectors.iter().zip([anbl, three_arms]) {
        assert_eq!(Some(scheme.parameters().as_str()), v["parameters"].as_str());
        let secret: Vec<u8> = v["secret_hex"]
            .as_str()
            .unwrap()
            .as_bytes()
            .chunks(2)
            .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
            .collect();
        let key = TrialKey::derive(&secret, v["trial_id"].as_str().unwrap());
        let expected = v["allocations"].as_array().cloned().unwrap_or_default();
        assert_eq!(expected.len(), 120);
        let mut counts = FactorCounts::default();
        let arms = scheme.arms().len();
        for (position, theirs) in expected.iter().enumerate() {
            let stratum = theirs["stratum"].as_str().unwrap();
            let arm = scheme.allocate(&key, position as u64, &counts, stratum);
            assert_eq!(
                Some(scheme.arms()[arm].0.as_str()),
                theirs["arm"].as_str(),
                "{} position {position}",
                scheme.parameters()
            );
            counts.add(stratum, arm, arms, 1);
        }
    }
}

/// Minimization's record is checked as one sequence over the trial: each arm given every earlier
/// one. The first reference vector's stream, recorded honestly, is proven; a steered child, a
/// withheld allocation and a changed weight are each found.
#[test]
fn verification_of_minimization_replays_the_whole_trial() {
    use trialops_domain::protocol::Protocol;
    let text = protocol::ANBL1221_TOML.replace(
        "block_multipliers = [1, 2]",
        "method = \"minimization\"\n\n[randomization.minimization]\nimbalance = \"range\"\n\
         preferred_arm_probability = \"0.8\"\nweights = { mycn_status = \"2\" }",
    );
    let p: Protocol = protocol::load(&text).unwrap();
    let method = Method::from_protocol(&p).unwrap();
    let fixture: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/randomization_v1.json")).expect("fixture");
    let vector = &fixture["minimization_vectors"][0];
    assert_eq!(Some(method.parameters().as_str()), vector["parameters"].as_str());
    let key = TrialKey::derive(&(0u8..32).collect::<Vec<_>>(), "ANBL1221");
    let record: Vec<RecordedAllocation> = vector["allocations"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, a)| RecordedAllocation {
            subject_id: format!("ANBL1221-{:04}", i + 1),
            stratum: a["stratum"].as_str().unwrap().to_owned(),
            position: i as u64,
            arm_code: a["arm"].as_str().unwrap().to_owned(),
        })
        .collect();
    let published = commitment("ANBL1221", &method, &key);
    assert_eq!(verify("ANBL1221", &method, &key, &published, &record), Ok(6));

    let mut steered = record.clone();
    steered[40].arm_code = if steered[40].arm_code == "A" { "B" } else { "A" }.to_owned();
    match verify("ANBL1221", &method, &key, &published, &steered) {
        Err(NotProven::Arm { position, .. }) => assert_eq!(position, 40),
        other => panic!("{other:?}"),
    }
    let hidden: Vec<_> = record.iter().filter(|a| a.position != 17).cloned().collect();
    assert!(matches!(
        verify("ANBL1221", &method, &key, &published, &hidden),
        Err(NotProven::Positions {
            position: 17,
            problem: "is missing",
            ..
        })
    ));
    // The same key under equal weights is another commitment.
    let equal = Method::from_protocol(&protocol::load(&text.replace("weights = { mycn_status = \"2\" }", "")).unwrap())
        .unwrap();
    assert!(matches!(
        verify("ANBL1221", &equal, &key, &published, &record),
        Err(NotProven::Commitment { .. })
    ));
}
