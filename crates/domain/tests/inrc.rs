//! Revised INRC derivation over tables of cases written from Park et al. (JCO 2017) and
//! TRIAL.md's summary, one row per rule and boundary.

// Test code, helpers included, unwraps: a failure is a test failure with the value shown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use trialops_domain::Decimal;
use trialops_domain::outcomes::inrc::{self, Marrow, Metastases, Primary, Response, Response::*};

fn d(s: &str) -> Decimal {
    s.parse().unwrap_or_else(|_| panic!("{s}"))
}

#[test]
fn primary_tumour() {
    // (now mm, avid, baseline mm, nadir mm, expected)
    let cases = [
        ("8", false, "50", "50", Cr),   // < 10 mm and uptake resolved
        ("8", true, "50", "50", Pr),    // small but still avid: 84% decrease -> PR
        ("35", true, "50", "50", Pr),   // exactly 30% decrease
        ("36", true, "50", "50", Sd),   // 28% decrease
        ("25", true, "50", "20", Pd),   // 25% and 5 mm over the nadir
        ("24.5", true, "26", "20", Sd), // 22.5% over the nadir but only 4.5 mm; 6% under baseline
        ("24.5", true, "50", "20", Pr), // the same growth, still 51% under baseline: PR holds
        ("48", true, "50", "40", Sd),   // exactly 20% over the nadir is not > 20%
        ("9", false, "12", "9", Cr),    // stays resolved
    ];
    for (now, avid, baseline, nadir, expected) in cases {
        let p = Primary {
            longest_mm: d(now),
            avid,
            baseline_mm: d(baseline),
            nadir_mm: d(nadir),
        };
        assert_eq!(inrc::primary(&p), expected, "{p:?}");
    }
}

fn mets(
    sum: &str,
    under_10: bool,
    curie: u32,
    new: bool,
    baseline: &str,
    nadir: &str,
    baseline_curie: u32,
) -> Metastases {
    // These cases have no soft-tissue uptake: the whole Curie score is skeletal.
    Metastases {
        sum_mm: d(sum),
        all_targets_under_10_mm: under_10,
        curie_score: curie,
        skeletal_score: curie,
        new_lesions: new,
        baseline_sum_mm: d(baseline),
        nadir_sum_mm: d(nadir),
        baseline_skeletal_score: baseline_curie,
        fdg_avid_lesions: None,
        baseline_fdg_avid_lesions: None,
        fdg_route: false,
    }
}

/// The relative MIBG score counts only the 9 skeletal segments (revised INRC, Park 2017). Hand
/// calculations beside each case.
#[test]
fn the_relative_mibg_score_is_the_bone_score() {
    let with = |sum: &str, now: [u32; 10], baseline: [u32; 10], baseline_sum: &str| Metastases {
        sum_mm: d(sum),
        all_targets_under_10_mm: false,
        curie_score: now.iter().sum(),
        skeletal_score: now[..9].iter().sum(),
        new_lesions: false,
        baseline_sum_mm: d(baseline_sum),
        nadir_sum_mm: d(baseline_sum),
        baseline_skeletal_score: baseline[..9].iter().sum(),
        fdg_avid_lesions: None,
        baseline_fdg_avid_lesions: None,
        fdg_route: false,
    };
    // Baseline [2,2,2,2,2,0,0,0,0,3] -> [2,2,0,0,0,0,0,0,0,3], sum 40 -> 20 mm: bone 10 -> 4,
    // relative 0.4 <= 0.5 and -50% in the sum: PR. (All ten segments, 13 -> 7 = 0.54, said SD.)
    let shrinking = with(
        "20",
        [2, 2, 0, 0, 0, 0, 0, 0, 0, 3],
        [2, 2, 2, 2, 2, 0, 0, 0, 0, 3],
        "40",
    );
    assert_eq!(shrinking.relative_mibg(), Some(d("0.4")));
    assert_eq!(inrc::metastases(&shrinking), Pr);
    // The soft-tissue segment 0 -> 3, the skeleton unchanged (9 -> 9, relative 1.0) and the sum
    // unchanged: SD. (All ten segments, 9 -> 12 = 1.33 >= 1.2, said PD.)
    let soft_tissue = with(
        "40",
        [1, 1, 1, 1, 1, 1, 1, 1, 1, 3],
        [1, 1, 1, 1, 1, 1, 1, 1, 1, 0],
        "40",
    );
    assert_eq!(soft_tissue.relative_mibg(), Some(d("1")));
    assert_eq!(inrc::metastases(&soft_tissue), Sd);
    // Bone uptake rising to 11 of 9 (relative 1.22 >= 1.2): PD whatever the soft tissue does.
    let bone = with(
        "40",
        [2, 2, 1, 1, 1, 1, 1, 1, 1, 0],
        [1, 1, 1, 1, 1, 1, 1, 1, 1, 3],
        "40",
    );
    assert_eq!(inrc::metastases(&bone), Pd);
    // Soft-tissue uptake alone at baseline: no bone score to compare; the sum decides (-50%: PR),
    // and remaining soft-tissue uptake keeps it from CR.
    let soft_only = with(
        "5",
        [0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
        "10",
    );
    assert_eq!(soft_only.relative_mibg(), None);
    assert_eq!(inrc::metastases(&soft_only), Pr);
}

#[test]
fn metastases() {
    let cases = [
        (mets("60", false, 5, true, "100", "60", 10), Pd, "a new avid lesion"),
        (
            mets("90", false, 12, false, "100", "90", 10),
            Pd,
            "relative MIBG 12/10 = 1.2",
        ),
        (
            mets("37", false, 4, false, "100", "30", 10),
            Pd,
            "sum 30 -> 37: 23% and 7 mm",
        ),
        (
            mets("0", true, 0, false, "100", "0", 10),
            Cr,
            "all < 10 mm, MIBG resolved",
        ),
        (
            mets("60", false, 5, false, "100", "60", 10),
            Pr,
            "40% decrease, relative 0.5",
        ),
        (
            mets("60", false, 6, false, "100", "60", 10),
            Sd,
            "relative 0.6 is above the PR band",
        ),
        (mets("75", false, 3, false, "100", "75", 10), Sd, "25% decrease only"),
        (
            mets("0", false, 3, false, "0", "0", 12),
            Pr,
            "MIBG-only disease: relative 0.25",
        ),
        (
            mets("0", false, 8, false, "0", "0", 12),
            Sd,
            "MIBG-only disease: relative 0.67",
        ),
        (
            mets("0", true, 0, false, "0", "0", 12),
            Cr,
            "MIBG-only disease resolved",
        ),
        (
            mets("50", false, 1, false, "100", "50", 20),
            Pr,
            "relative 0.05: improved beyond the PR band",
        ),
    ];
    for (m, expected, why) in cases {
        assert_eq!(inrc::metastases(&m), expected, "{why}");
    }
}

#[test]
fn bone_marrow() {
    // (now %, baseline %, nadir %, expected)
    let cases = [
        ("0", "40", "40", Cr),
        ("0", "0", "0", NotInvolved),
        ("4", "40", "40", Md),  // > 20% -> <= 5%
        ("3", "0", "0", Md),    // 0 -> <= 5%
        ("6", "0", "0", Pd),    // 0 -> > 5%
        ("25", "30", "10", Pd), // > 2-fold over the nadir and > 20%
        ("19", "30", "8", Sd),  // > 2-fold but not > 20%
        ("12", "30", "12", Sd), // remains > 5%
        ("5", "30", "5", Md),   // exactly 5% is minimal disease
    ];
    for (now, baseline, nadir, expected) in cases {
        let m = Marrow {
            percent: d(now),
            baseline_percent: d(baseline),
            nadir_percent: d(nadir),
        };
        assert_eq!(inrc::marrow(&m), expected, "{m:?}");
    }
}

#[test]
fn overall_response() {
    let cases: [([Response; 3], Response); 14] = [
        ([Cr, Cr, Cr], Cr),
        ([Cr, NotInvolved, Cr], Cr),
        ([NotInvolved, Cr, NotInvolved], Cr),
        ([Pr, Cr, NotInvolved], Pr),
        ([Cr, Cr, Md], Pr), // Park 2017: CR elsewhere with marrow MD is PR
        ([Pr, Pr, Md], Pr),
        ([Pr, Sd, Cr], Mr),
        ([Cr, Sd, NotInvolved], Mr),
        ([Sd, Sd, Md], Mr),
        ([Sd, Sd, NotInvolved], Sd),
        ([Sd, NotInvolved, NotInvolved], Sd),
        ([Cr, Cr, Pd], Pd),
        ([Pd, Pr, Cr], Pd),
        ([Sd, Pd, NotInvolved], Pd),
    ];
    for (components, expected) in cases {
        assert_eq!(inrc::overall(&components), expected, "{components:?}");
    }
}

#[test]
fn best_response_orders_cr_first() {
    assert_eq!(inrc::best([Sd, Pr, Pd, Mr]), Some(Pr));
    assert_eq!(inrc::best([Pd, Sd]), Some(Sd));
    assert_eq!(inrc::best([]), None);
    assert!(Cr.is_objective() && Pr.is_objective() && !Mr.is_objective());
}

/// The FDG-PET route to metastatic PR (>= 50% fewer FDG-avid lesions), on and off by protocol.
#[test]
fn fewer_fdg_avid_lesions_show_pr_where_the_protocol_allows() {
    let base = |route: bool, relative_bone: (u32, u32), fdg: (u32, u32)| Metastases {
        sum_mm: d("60"),
        all_targets_under_10_mm: false,
        curie_score: relative_bone.0,
        skeletal_score: relative_bone.0,
        new_lesions: false,
        baseline_sum_mm: d("100"),
        nadir_sum_mm: d("100"),
        baseline_skeletal_score: relative_bone.1,
        fdg_avid_lesions: Some(fdg.0),
        baseline_fdg_avid_lesions: Some(fdg.1),
        fdg_route: route,
    };
    // Sum 100 -> 60 (-40%); bone 10 -> 6 (0.6 > 0.5); FDG-avid lesions 4 -> 2 (half): PR only
    // where the protocol takes the FDG route, SD otherwise.
    assert_eq!(inrc::metastases(&base(true, (6, 10), (2, 4))), Pr);
    assert_eq!(inrc::metastases(&base(false, (6, 10), (2, 4))), Sd);
    // 4 -> 3 lesions is not half: SD either way.
    assert_eq!(inrc::metastases(&base(true, (6, 10), (3, 4))), Sd);
    // Disease not MIBG-avid in bone: the FDG lesions decide beside the sum (4 -> 1: PR; 4 -> 3: SD).
    assert_eq!(inrc::metastases(&base(true, (0, 0), (1, 4))), Pr);
    assert_eq!(inrc::metastases(&base(true, (0, 0), (3, 4))), Sd);
    // Without the route, such disease is judged by the sum alone (-40%: PR).
    assert_eq!(inrc::metastases(&base(false, (0, 0), (3, 4))), Pr);
}

/// A relative MIBG bone score above 0 but below the published table's 0.1: PR, not CR (uptake
/// persists) and not SD (a deeper fall than PR's upper bound cannot count for less).
#[test]
fn interpretation_relative_mibg_below_0_1_is_pr() {
    // Bone 20 -> 1 (relative 0.05), sum 50 -> 30 mm (-40%).
    let m = mets("30", false, 1, false, "50", "50", 20);
    assert_eq!(m.relative_mibg(), Some(d("0.05")));
    assert_eq!(inrc::metastases(&m), Pr);
}

/// MIBG disease in bone only (no soft-tissue target, baseline sum 0): the sum criterion does not
/// apply and the bone score decides: <= 0.5 PR, above SD, >= 1.2 PD, 0 (all resolved) CR.
#[test]
fn interpretation_bone_only_mibg_disease() {
    assert_eq!(inrc::metastases(&mets("0", true, 4, false, "0", "0", 10)), Pr);
    assert_eq!(inrc::metastases(&mets("0", true, 6, false, "0", "0", 10)), Sd);
    assert_eq!(inrc::metastases(&mets("0", true, 12, false, "0", "0", 10)), Pd);
    assert_eq!(inrc::metastases(&mets("0", true, 0, false, "0", "0", 10)), Cr);
}
