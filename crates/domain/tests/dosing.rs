//! Doses for three children against hand calculations (written beside each number), every
//! agent of both ANBL1221 arms, a reduced level, each rounding rule; and properties.

// Test code, helpers included, unwraps: a failure is a test failure with the value shown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use trialops_domain::Decimal;
use trialops_domain::dosing::bsa::mosteller;
use trialops_domain::dosing::dose::{AppliedBasis, Body, DoseError, ModificationError, check_modification, daily_dose};
use trialops_domain::protocol::{self, Agent, DoseBasis, DoseLevel, Protocol, Rounding};

fn d(s: &str) -> Decimal {
    s.parse().unwrap_or_else(|_| panic!("{s}"))
}

fn anbl() -> Protocol {
    protocol::anbl1221().unwrap()
}

fn agent<'a>(p: &'a Protocol, arm: &str, id: &str) -> &'a Agent {
    p.regimens
        .iter()
        .find(|r| r.arm == arm)
        .and_then(|r| r.agents.iter().find(|a| a.id == id))
        .unwrap_or_else(|| panic!("{arm}/{id}"))
}

/// (arm, agent, level, expected calculated, expected rounded)
fn check(p: &Protocol, bsa: Decimal, weight: Decimal, cases: &[(&str, &str, i32, &str, &str)]) {
    for (arm, id, level, calculated, rounded) in cases {
        let dose = daily_dose(
            &p.treatment,
            agent(p, arm, id),
            *level,
            &Body::from_rounded(bsa, weight),
        )
        .unwrap_or_else(|e| panic!("{arm}/{id}: {e}"));
        assert_eq!(
            dose.calculated,
            d(calculated),
            "{arm}/{id} calculated ({})",
            dose.formula
        );
        assert_eq!(
            dose.rounded.dose.normalize(),
            d(rounded).normalize(),
            "{arm}/{id} rounded ({})",
            dose.formula
        );
    }
}

#[test]
fn four_year_old_16_kg_102_cm() {
    let p = anbl();
    // BSA = sqrt(102 x 16 / 3600) = sqrt(0.45333) = 0.6733 -> 0.67 m2.
    // Not a small child: 0.67 >= 0.6 m2 and 16 >= 12 kg, so doses are per m2.
    let bsa = mosteller(d("102"), d("16"), 2).expect("no BSA");
    assert_eq!(bsa, d("0.67"));
    check(
        &p,
        bsa,
        d("16"),
        &[
            // temozolomide 100 x 0.67 = 67 mg; capsules of 5/20/100/140/180/250: 65 is 2 away, 70 is 3 -> 65
            ("A", "temozolomide", 0, "67", "65"),
            ("B", "temozolomide", 0, "67", "65"),
            // irinotecan 50 x 0.67 = 33.5 mg -> 1 decimal: 33.5
            ("A", "irinotecan", 0, "33.5", "33.5"),
            ("B", "irinotecan", 0, "33.5", "33.5"),
            // temsirolimus 35 x 0.67 = 23.45 mg -> 1 decimal, half up: 23.5
            ("A", "temsirolimus", 0, "23.45", "23.5"),
            // dinutuximab 17.5 x 0.67 = 11.725 mg -> 11.7
            ("B", "dinutuximab", 0, "11.725", "11.7"),
            // GM-CSF 250 x 0.67 = 167.5 ug -> nearest 10: 170 (2.5 away; 160 is 7.5 away)
            ("B", "sargramostim", 0, "167.5", "170"),
            // Reduced levels: temozolomide 75 x 0.67 = 50.25 -> 50; irinotecan 40 x 0.67 = 26.8
            ("A", "temozolomide", -1, "50.25", "50"),
            ("B", "irinotecan", -1, "26.8", "26.8"),
        ],
    );
    let tmz = daily_dose(
        &p.treatment,
        agent(&p, "A", "temozolomide"),
        0,
        &Body::from_rounded(bsa, d("16")),
    )
    .unwrap();
    assert_eq!(tmz.basis, AppliedBasis::PerM2);
    assert_eq!(
        tmz.rounded.units,
        [(d("20"), 3), (d("5"), 1)],
        "65 mg = 3 x 20 mg + 1 x 5 mg"
    );
    assert!(
        tmz.formula.starts_with("100 mg/m2 x 0.67 m2 = 67 mg"),
        "{}",
        tmz.formula
    );
}

#[test]
fn infant_10_kg_75_cm_is_dosed_per_kg() {
    let p = anbl();
    // BSA = sqrt(75 x 10 / 3600) = sqrt(0.20833) = 0.4564 -> 0.46 m2 < 0.6: small-child rule,
    // dose/kg = dose per m2 / 30, times 10 kg.
    let bsa = mosteller(d("75"), d("10"), 2).expect("no BSA");
    assert_eq!(bsa, d("0.46"));
    check(
        &p,
        bsa,
        d("10"),
        &[
            // temozolomide 100 / 30 x 10 = 33.3333 mg -> 35 (1.67 away; 30 is 3.33 away); deviation 5%
            ("A", "temozolomide", 0, "33.3333", "35"),
            // irinotecan 50 / 30 x 10 = 16.6667 -> 16.7
            ("B", "irinotecan", 0, "16.6667", "16.7"),
            // temsirolimus 35 / 30 x 10 = 11.6667 -> 11.7
            ("A", "temsirolimus", 0, "11.6667", "11.7"),
            // dinutuximab 17.5 / 30 x 10 = 5.8333 -> 5.8
            ("B", "dinutuximab", 0, "5.8333", "5.8"),
            // GM-CSF 250 / 30 x 10 = 83.3333 ug -> nearest 10: 80
            ("B", "sargramostim", 0, "83.3333", "80"),
        ],
    );
    let dose = daily_dose(
        &p.treatment,
        agent(&p, "B", "dinutuximab"),
        0,
        &Body::from_rounded(bsa, d("10")),
    )
    .unwrap();
    assert_eq!(dose.basis, AppliedBasis::SmallChildPerKg);
    // 13 kg but BSA 0.59 (e.g. 96 cm: sqrt(96 x 13 / 3600) = 0.5888 -> 0.59): the BSA threshold alone applies the rule.
    let bsa = mosteller(d("96"), d("13"), 2).expect("no BSA");
    assert_eq!(bsa, d("0.59"));
    let dose = daily_dose(
        &p.treatment,
        agent(&p, "A", "irinotecan"),
        0,
        &Body::from_rounded(bsa, d("13")),
    )
    .unwrap();
    // 50 / 30 x 13 = 21.6667 -> 21.7
    assert_eq!(
        (dose.basis, dose.rounded.dose),
        (AppliedBasis::SmallChildPerKg, d("21.7"))
    );
}

#[test]
fn adolescent_60_kg_165_cm() {
    let p = anbl();
    // BSA = sqrt(165 x 60 / 3600) = sqrt(2.75) = 1.6583 -> 1.66 m2.
    let bsa = mosteller(d("165"), d("60"), 2).expect("no BSA");
    assert_eq!(bsa, d("1.66"));
    check(
        &p,
        bsa,
        d("60"),
        &[
            // temozolomide 100 x 1.66 = 166 -> 165 (140 + 20 + 5)
            ("B", "temozolomide", 0, "166", "165"),
            // irinotecan 50 x 1.66 = 83 -> 83.0
            ("A", "irinotecan", 0, "83", "83"),
            // temsirolimus 35 x 1.66 = 58.1
            ("A", "temsirolimus", 0, "58.1", "58.1"),
            // dinutuximab 17.5 x 1.66 = 29.05 -> half up: 29.1
            ("B", "dinutuximab", 0, "29.05", "29.1"),
            // GM-CSF 250 x 1.66 = 415 ug -> exactly between 410 and 420, half up: 420
            ("B", "sargramostim", 0, "415", "420"),
        ],
    );
}

#[test]
fn a_dose_the_capsules_cannot_approach_is_refused() {
    let p = anbl();
    // 3.6 kg newborn: temozolomide 100 / 30 x 3.6 = 12 mg; nearest 5 mg total is 10 mg,
    // 16.7% below the calculated dose, beyond the protocol's 10%.
    let bsa = mosteller(d("52"), d("3.6"), 2).expect("no BSA");
    let err = daily_dose(
        &p.treatment,
        agent(&p, "A", "temozolomide"),
        0,
        &Body::from_rounded(bsa, d("3.6")),
    )
    .err();
    assert!(
        matches!(err, Some(DoseError::RoundingDeviation { ref percent, .. }) if *percent == d("16.67")),
        "{err:?}"
    );
    let err = daily_dose(
        &p.treatment,
        agent(&p, "A", "temozolomide"),
        -2,
        &Body::from_rounded(bsa, d("3.6")),
    )
    .err();
    assert!(
        matches!(err, Some(DoseError::UnknownLevel { level: -2, .. })),
        "{err:?}"
    );
}

#[test]
fn modifications_lower_doses_and_raise_them_only_when_allowed() {
    let p = anbl();
    let tmz = agent(&p, "A", "temozolomide");
    assert_eq!(check_modification(tmz, 0, -1), Ok(()));
    assert!(matches!(
        check_modification(tmz, -1, 0),
        Err(ModificationError::ReEscalationNotAllowed { .. })
    ));
    assert!(matches!(
        check_modification(tmz, 0, 0),
        Err(ModificationError::NoChange { .. })
    ));
    assert!(matches!(
        check_modification(tmz, 0, -3),
        Err(ModificationError::UnknownLevel { level: -3, .. })
    ));
    let mut escalating = tmz.clone();
    escalating.allow_re_escalation = true;
    assert_eq!(check_modification(&escalating, -1, 0), Ok(()));
}

fn synthetic_agent(levels: Vec<(i32, u32)>, allow: bool) -> Agent {
    Agent {
        id: "x".into(),
        name: "X".into(),
        basis: DoseBasis::PerM2,
        unit: "mg".into(),
        route: "IV".into(),
        days: vec![1],
        infusion_minutes: None,
        dose_levels: levels
            .into_iter()
            .map(|(level, dose)| DoseLevel {
                level,
                dose: Decimal::from(dose),
            })
            .collect(),
        rounding: Rounding::Decimals(1),
        allow_re_escalation: allow,
    }
}

proptest! {
    /// Per-m2 doses never decrease as BSA grows, for every agent of both arms.
    #[test]
    fn doses_scale_monotonically_with_bsa(a in 60u32..260, b in 60u32..260, weight in 12u32..90) {
        let p = anbl();
        let (low, high) = (Decimal::new(i64::from(a.min(b)), 2), Decimal::new(i64::from(a.max(b)), 2));
        for regimen in &p.regimens {
            for agent in &regimen.agents {
                let w = Decimal::from(weight);
                let dose = |bsa| daily_dose(&p.treatment, agent, 0, &Body::from_rounded(bsa, w));
                let (Ok(x), Ok(y)) = (dose(low), dose(high)) else {
                    continue;
                };
                prop_assert!(
                    x.rounded.dose <= y.rounded.dose,
                    "{}: {} m2 -> {}, {} m2 -> {}",
                    agent.id, low, x.rounded.dose, high, y.rounded.dose
                );
                prop_assert!(x.calculated <= y.calculated);
            }
        }
    }

    /// Any accepted modification lowers the dose unless the protocol allows re-escalation.
    #[test]
    fn a_modification_never_raises_a_dose_unless_allowed(
        doses in prop::collection::vec(1u32..500, 1..5),
        from in 0usize..5,
        to in 0usize..5,
        allow in any::<bool>(),
    ) {
        let levels: Vec<(i32, u32)> = doses.iter().enumerate().map(|(i, dose)| (-(i as i32), *dose)).collect();
        let agent = synthetic_agent(levels.clone(), allow);
        let from_level = -((from % levels.len()) as i32);
        let to_level = -((to % levels.len()) as i32);
        let dose_of = |l: i32| levels.iter().find(|(level, _)| *level == l).map(|(_, d)| *d).unwrap_or(0);
        if check_modification(&agent, from_level, to_level).is_ok() && !allow {
            prop_assert!(dose_of(to_level) <= dose_of(from_level));
        }
    }

    /// The rounded Mosteller BSA is within half a unit of the last place of the true root,
    /// checked against an independent floating-point computation.
    #[test]
    fn bsa_matches_an_independent_square_root(height in 4500u32..20000, weight in 200u32..15000) {
        let (h, w) = (Decimal::new(i64::from(height), 2), Decimal::new(i64::from(weight), 2));
        let bsa = mosteller(h, w, 2).unwrap_or_default();
        let reference = (f64::from(height) / 100.0 * f64::from(weight) / 100.0 / 3600.0).sqrt();
        let value: f64 = bsa.to_string().parse().unwrap_or(f64::NAN);
        prop_assert!((value - reference).abs() <= 0.005 + 1e-12, "{h} cm {w} kg: {bsa} vs {reference}");
    }
}

#[test]
fn a_dose_is_not_recorded_as_given_before_its_day() {
    use trialops_domain::dosing::cycle::{GivenTooEarly, check_given_on};
    let mut rules = anbl().treatment;
    let day = |d: u32| chrono::NaiveDate::from_ymd_opt(2026, 1, d).unwrap_or_default();
    // ANBL1221's definition: never before the planned day; on it or later (a delay) is fine.
    assert_eq!(rules.earliest_administration_days_before_planned, 0);
    assert_eq!(
        check_given_on(day(6), day(5), &rules),
        Err(GivenTooEarly {
            planned_on: day(6),
            earliest: day(6)
        })
    );
    assert_eq!(check_given_on(day(6), day(6), &rules), Ok(()));
    assert_eq!(check_given_on(day(6), day(9), &rules), Ok(()));
    // A protocol allowing one day early: the day before passes, two days before does not.
    rules.earliest_administration_days_before_planned = 1;
    assert_eq!(check_given_on(day(6), day(5), &rules), Ok(()));
    assert_eq!(
        check_given_on(day(6), day(4), &rules).map_err(|e| e.earliest),
        Err(day(5))
    );
}

#[test]
fn what_the_pharmacist_reads_agrees_with_itself() {
    let p = anbl();
    // Temsirolimus at 9.3857 kg (small child): 35 / 30 x 9.3857 = 328.4995 / 30 = 10.949983... mg,
    // which rounds (1 decimal, half up) to 10.9 mg. Shown to 4 places it would read 10.95, which
    // that rule takes to 11.0: so it is shown to 5, 10.94998 (by hand).
    let dose = daily_dose(
        &p.treatment,
        agent(&p, "A", "temsirolimus"),
        0,
        &Body::from_rounded(d("0.46"), d("9.3857")),
    )
    .unwrap();
    assert_eq!(dose.rounded.dose.normalize(), d("10.9"));
    assert_eq!(dose.calculated, d("10.94998"));
    assert!(
        dose.formula
            .contains("= 10.94998 mg; rounded (1 decimal(s), half up) to 10.9 mg"),
        "{}",
        dose.formula
    );
    // Where 4 places already agree, 4 places it stays: 100 x 0.67 = 67 mg.
    let plain = daily_dose(
        &p.treatment,
        agent(&p, "A", "temozolomide"),
        0,
        &Body::from_rounded(d("0.67"), d("16")),
    )
    .unwrap();
    assert_eq!(plain.calculated, d("67"));

    // The small-child rule names only the threshold the child is below.
    // 90 cm, 14 kg: BSA sqrt(90 x 14 / 3600) = 0.5916 -> 0.59 < 0.6; 14 kg is not < 12.
    let by_bsa = daily_dose(
        &p.treatment,
        agent(&p, "A", "irinotecan"),
        0,
        &Body::from_rounded(d("0.59"), d("14")),
    )
    .unwrap();
    assert!(
        by_bsa.formula.contains("(small-child rule: BSA 0.59 m2 < 0.6)"),
        "{}",
        by_bsa.formula
    );
    assert!(!by_bsa.formula.contains("kg < 12"), "{}", by_bsa.formula);
    // 130 cm, 11 kg: BSA sqrt(130 x 11 / 3600) = 0.6303 -> 0.63, not < 0.6; 11 kg < 12.
    let by_weight = daily_dose(
        &p.treatment,
        agent(&p, "A", "irinotecan"),
        0,
        &Body::from_rounded(d("0.63"), d("11")),
    )
    .unwrap();
    assert!(
        by_weight.formula.contains("(small-child rule: weight 11 kg < 12)"),
        "{}",
        by_weight.formula
    );
}

#[test]
fn the_small_child_threshold_compares_the_bsa_the_protocol_names() {
    use trialops_domain::protocol::BsaCompared;
    let mut p = anbl();
    // 86.7 cm, 14.7 kg: 86.7 x 14.7 / 3600 = 0.354025 = 0.595^2, so the measured BSA is exactly
    // 0.595 m2, which rounds (half up, 2 places) to 0.60 m2 (by hand).
    let body = Body::measured(d("86.7"), d("14.7"), 2).expect("no BSA");
    assert_eq!(body.bsa_m2, d("0.60"));
    let temozolomide = |p: &Protocol| daily_dose(&p.treatment, agent(p, "A", "temozolomide"), 0, &body).unwrap();
    // ANBL1221's definition compares the rounded BSA: 0.60 is not below 0.6, so per m2:
    // 100 x 0.60 = 60 mg = 3 x 20 mg.
    assert_eq!(p.treatment.small_child_rule.bsa_compared, BsaCompared::Rounded);
    let rounded = temozolomide(&p);
    assert_eq!(
        (rounded.basis, rounded.rounded.dose.normalize()),
        (AppliedBasis::PerM2, d("60"))
    );
    // Comparing the measured BSA: 0.595 < 0.6, so per kg: 100 / 30 x 14.7 = 49 mg -> 50 mg
    // (2 x 20 + 2 x 5), 17% less than per m2.
    p.treatment.small_child_rule.bsa_compared = BsaCompared::Measured;
    let measured = temozolomide(&p);
    assert_eq!(
        (measured.basis, measured.calculated, measured.rounded.dose.normalize()),
        (AppliedBasis::SmallChildPerKg, d("49"), d("50"))
    );
    assert!(
        measured.formula.contains("measured BSA 0.595 m2 < 0.6"),
        "{}",
        measured.formula
    );
    // Without a height the measured BSA is unknown: refused, never guessed from the rounded one.
    let err = daily_dose(
        &p.treatment,
        agent(&p, "A", "temozolomide"),
        0,
        &Body::from_rounded(d("0.60"), d("14.7")),
    )
    .err();
    assert_eq!(err, Some(DoseError::MeasuredBsaUnknown));
}

mod cycle_start {
    use chrono::NaiveDate;
    use trialops_domain::dosing::cycle::{PreviousCycle, Start, StartRefusal, check_start};

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    /// ANBL1221's schedule (21-day cycles, at most 17, at most 28 days of delay), worked by hand
    /// from a cycle 3 that began on Monday 5 January 2026: cycle 4 is due on 26 January.
    #[test]
    fn anbl1221_schedule_by_hand() {
        let rules = super::anbl().treatment;
        let third = Some(PreviousCycle {
            number: 3,
            start_date: date(2026, 1, 5),
        });
        let fourth = |on| check_start(&rules, 3, third, 4, on);
        assert_eq!(
            fourth(date(2026, 1, 25)),
            Err(StartRefusal::TooEarly {
                due: date(2026, 1, 26),
                previous: 3
            })
        );
        assert_eq!(fourth(date(2026, 1, 26)), Ok(Start { delay_days: 0 }));
        assert_eq!(fourth(date(2026, 2, 2)), Ok(Start { delay_days: 7 }));
        // 26 January + 28 days = 23 February: the last day allowed; 24 February is 29 days late.
        assert_eq!(fourth(date(2026, 2, 23)), Ok(Start { delay_days: 28 }));
        assert_eq!(
            fourth(date(2026, 2, 24)),
            Err(StartRefusal::DelayExceeded {
                delay_days: 29,
                maximum: 28
            })
        );
        assert_eq!(
            check_start(&rules, 3, third, 5, date(2026, 1, 26)),
            Err(StartRefusal::OutOfSequence { expected: 4 })
        );
        assert_eq!(
            check_start(&rules, 3, third, 3, date(2026, 1, 26)),
            Err(StartRefusal::OutOfSequence { expected: 4 })
        );
        // Cycle 1 has no due date and no delay, whatever its date.
        assert_eq!(
            check_start(&rules, 0, None, 1, date(2026, 1, 5)),
            Ok(Start { delay_days: 0 })
        );
        let seventeenth = Some(PreviousCycle {
            number: 17,
            start_date: date(2026, 12, 1),
        });
        assert_eq!(
            check_start(&rules, 17, seventeenth, 18, date(2026, 12, 22)),
            Err(StartRefusal::MaximumReached { maximum: 17 })
        );
        let sixteenth = Some(PreviousCycle {
            number: 16,
            start_date: date(2026, 12, 1),
        });
        assert_eq!(
            check_start(&rules, 16, sixteenth, 17, date(2026, 12, 22)),
            Ok(Start { delay_days: 0 })
        );
        let last_day = Some(PreviousCycle {
            number: 1,
            start_date: NaiveDate::MAX,
        });
        assert_eq!(
            check_start(&rules, 1, last_day, 2, NaiveDate::MAX),
            Err(StartRefusal::DateOutOfRange)
        );
    }
}
