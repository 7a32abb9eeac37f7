//! The bundled ANBL1221 definition loads with the values TRIAL.md gives, and a broken
//! definition is refused with the offending field named.

// Test code, helpers included, unwraps: a failure is a test failure with the value shown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use trialops_domain::Decimal;
use trialops_domain::protocol::{self, DoseBasis, Rounding};

fn dec(s: &str) -> Decimal {
    s.parse().unwrap_or_else(|_| panic!("bad decimal {s}"))
}

#[test]
fn bundled_anbl1221_matches_the_published_design() {
    let p = protocol::anbl1221().unwrap();
    assert_eq!(p.trial.id, "ANBL1221");
    assert_eq!(p.trial.registry_id, "NCT01767194");
    // 1:1 randomization, stratified by prior therapy and MYCN status (TRIAL.md, Design).
    assert_eq!(
        p.arms
            .iter()
            .map(|a| (a.code.as_str(), a.allocation_ratio))
            .collect::<Vec<_>>(),
        [("A", 1), ("B", 1)]
    );
    assert_eq!(
        p.strata.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
        ["prior_therapy", "mycn_status"]
    );
    // 21-day cycles, at most 17; response after cycles 2, 4, 6 then every 4; primary after 6.
    assert_eq!((p.treatment.cycle_length_days, p.treatment.maximum_cycles), (21, 17));
    assert_eq!(p.assessments.after_cycles, [2, 4, 6]);
    assert_eq!(p.assessments.then_every_cycles, 4);
    assert_eq!(p.assessments.primary_evaluation_after_cycle, 6);
    // Small-child rule: BSA < 0.6 m2 or weight < 12 kg, dose/kg = dose per m2 / 30.
    let rule = &p.treatment.small_child_rule;
    assert_eq!(
        (rule.bsa_below_m2, rule.weight_below_kg, rule.per_kg_divisor),
        (dec("0.6"), dec("12"), dec("30"))
    );
    // Cycle start: ANC >= 750, platelets >= 75,000, 1-week delays, 4 weeks at most.
    let start = &p.treatment.cycle_start;
    assert_eq!(
        (start.min_anc_per_ul, start.min_platelets_per_ul),
        (dec("750"), dec("75000"))
    );
    assert_eq!((start.delay_step_days, start.max_delay_days), (7, 28));
}

#[test]
fn bundled_regimens_match_the_trial_table() {
    let p = protocol::anbl1221().unwrap();
    // (arm, agent, starting dose per m2, unit, route, days) from TRIAL.md's regimen table.
    let expected = [
        ("A", "temozolomide", "100", "mg", "PO", vec![1, 2, 3, 4, 5]),
        ("A", "irinotecan", "50", "mg", "IV", vec![1, 2, 3, 4, 5]),
        ("A", "temsirolimus", "35", "mg", "IV", vec![1, 8]),
        ("B", "temozolomide", "100", "mg", "PO", vec![1, 2, 3, 4, 5]),
        ("B", "irinotecan", "50", "mg", "IV", vec![1, 2, 3, 4, 5]),
        ("B", "dinutuximab", "17.5", "mg", "IV", vec![2, 3, 4, 5]),
        ("B", "sargramostim", "250", "ug", "SC", vec![6, 7, 8, 9, 10, 11, 12]),
    ];
    let mut seen = 0;
    for regimen in &p.regimens {
        for agent in &regimen.agents {
            let (_, _, dose, unit, route, days) = expected
                .iter()
                .find(|(arm, id, ..)| *arm == regimen.arm && *id == agent.id)
                .unwrap_or_else(|| panic!("unexpected agent {} on arm {}", agent.id, regimen.arm));
            let level0 = agent.dose_levels.iter().find(|l| l.level == 0).map(|l| l.dose);
            assert_eq!(level0, Some(dec(dose)), "{}", agent.id);
            assert_eq!(
                (agent.unit.as_str(), agent.route.as_str()),
                (*unit, *route),
                "{}",
                agent.id
            );
            assert_eq!(&agent.days, days, "{}", agent.id);
            assert_eq!(agent.basis, DoseBasis::PerM2);
            seen += 1;
        }
    }
    assert_eq!(seen, expected.len());
    // Reduced levels: temozolomide 100 -> 75, irinotecan 50 -> 40 mg/m2.
    let arm_a = &p.regimens[0];
    let level = |id: &str, l: i32| {
        arm_a
            .agents
            .iter()
            .find(|a| a.id == id)
            .and_then(|a| a.dose_levels.iter().find(|d| d.level == l))
            .map(|d| d.dose)
    };
    assert_eq!(level("temozolomide", -1), Some(dec("75")));
    assert_eq!(level("irinotecan", -1), Some(dec("40")));
    // Temozolomide capsules: 5, 20, 100, 140, 180, 250 mg.
    let tmz = arm_a
        .agents
        .iter()
        .find(|a| a.id == "temozolomide")
        .map(|a| a.rounding.clone());
    assert_eq!(
        tmz,
        Some(Rounding::Units(
            ["5", "20", "100", "140", "180", "250"].map(dec).to_vec()
        ))
    );
}

fn broken(from: &str, to: &str) -> Vec<String> {
    assert!(
        protocol::ANBL1221_TOML.contains(from),
        "fixture text {from:?} not in the definition"
    );
    let text = protocol::ANBL1221_TOML.replacen(from, to, 1);
    match protocol::load(&text) {
        Ok(_) => panic!("accepted a broken definition ({from:?} -> {to:?})"),
        Err(e) => e.problems.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn problems_name_the_field() {
    let p = broken(r#"variable = "anc_per_ul""#, r#"variable = "anc""#);
    assert_eq!(p, [r#"eligibility[3].rule.compare.variable: unknown variable "anc""#]);

    let p = broken(
        r#"{ is_true = "histology_confirmed" }"#,
        r#"{ is_true = "anc_per_ul" }"#,
    );
    assert!(
        p[0].starts_with("eligibility[0].rule.any_of[0].is_true: variable \"anc_per_ul\" is Decimal"),
        "{p:?}"
    );

    let p = broken("allocation_ratio = 1\n", "allocation_ratio = 0\n");
    assert_eq!(p, ["arms[0].allocation_ratio: must be from 1 to 10"]);

    let p = broken("maximum_cycles = 17", "maximum_cycles = 4");
    assert!(
        p.contains(&"assessments.after_cycles[2]: must be a cycle from 1 to maximum_cycles".to_owned()),
        "{p:?}"
    );
    assert!(
        p.contains(&"assessments.primary_evaluation_after_cycle: must be a cycle from 1 to maximum_cycles".to_owned())
    );

    let p = broken("days = [1, 8]", "days = [1, 22]");
    assert_eq!(
        p,
        ["regimens[0].agents[2].days[1]: must be a day from 1 to cycle_length_days"]
    );

    let p = broken(r#"arm = "B""#, r#"arm = "C""#);
    assert!(p.contains(&r#"regimens[1].arm: unknown arm "C""#.to_owned()), "{p:?}");
    assert!(p.contains(&r#"regimens: arm "B" has no regimen"#.to_owned()), "{p:?}");
}

#[test]
fn syntax_and_type_errors_point_at_the_line() {
    // A float where an exact decimal string is required: refused, never rounded through f64.
    let p = broken(r#"max_bsa_change_percent = "10""#, "max_bsa_change_percent = 10.5");
    assert_eq!(p.len(), 1);
    assert!(p[0].starts_with("line "), "{p:?}");
    let p = broken("[trial]", "[trial]\ncolour = \"blue\"");
    assert!(p[0].contains("unknown field"), "{p:?}");
}

/// The definition with `section` appended as its `[accrual]` section.
fn with_accrual(section: &str) -> Result<protocol::Protocol, Vec<String>> {
    let text = format!("{}\n[accrual]\n{section}\n", protocol::ANBL1221_TOML);
    protocol::load(&text).map_err(|e| e.problems.iter().map(ToString::to_string).collect())
}

#[test]
fn accrual_targets_and_limits() {
    // None by default: the bundled definition sets no accrual limit.
    assert_eq!(protocol::anbl1221().unwrap().accrual, protocol::AccrualRules::default());
    let rules = with_accrual("target = 36\nmaximum = 40\nsite_maximum = 8\nstratum_target = 9")
        .unwrap()
        .accrual;
    assert_eq!(
        (rules.target, rules.maximum, rules.site_target, rules.site_maximum),
        (Some(36), Some(40), None, Some(8))
    );
    assert_eq!((rules.stratum_target, rules.stratum_maximum), (Some(9), None));
    assert_eq!(
        with_accrual("target = 41\nmaximum = 40").unwrap_err(),
        ["accrual.target: must not exceed accrual.maximum (40)"]
    );
    assert_eq!(
        with_accrual("stratum_maximum = 0").unwrap_err(),
        ["accrual.stratum_maximum: must be at least 1 (leave it out for none)"]
    );
    let unknown = with_accrual("maximun = 40").unwrap_err();
    assert!(unknown[0].contains("maximun"), "{unknown:?}");
}

#[test]
fn minimization_settings_are_checked() {
    let minimization = |settings: &str| {
        broken(
            "block_multipliers = [1, 2]",
            &format!("method = \"minimization\"\n\n[randomization.minimization]\n{settings}"),
        )
    };
    assert_eq!(
        minimization("imbalance = \"range\"\npreferred_arm_probability = \"0.5\""),
        [
            "randomization.minimization.preferred_arm_probability: must be above 1/2 (the chance of any arm) \
          and below 1 (a random element), with at most 4 decimal places"
        ]
    );
    assert_eq!(
        minimization("imbalance = \"range\"\npreferred_arm_probability = \"0.8\"\nweights = { mycn = \"2\" }"),
        ["randomization.minimization.weights.mycn: is not a stratification factor"]
    );
    assert_eq!(
        minimization(
            "imbalance = \"variance\"\npreferred_arm_probability = \"0.8\"\nweights = { mycn_status = \"0\" }"
        ),
        [
            "randomization.minimization.weights.mycn_status: must be above 0 and at most 1000, \
          with at most 4 decimal places"
        ]
    );
    let unknown_measure = minimization("imbalance = \"sd\"\npreferred_arm_probability = \"0.8\"");
    assert!(
        unknown_measure[0].contains("range") && unknown_measure[0].contains("variance"),
        "{unknown_measure:?}"
    );
    // The method needs its section; the section needs its method; blocks need no minimization.
    assert_eq!(
        broken("block_multipliers = [1, 2]", "method = \"minimization\""),
        ["randomization.minimization: is required when method = \"minimization\""]
    );
    assert_eq!(
        broken(
            "block_multipliers = [1, 2]",
            "method = \"minimization\"\nblock_multipliers = [1]\n[randomization.minimization]\n\
             imbalance = \"range\"\npreferred_arm_probability = \"0.8\""
        ),
        ["randomization.block_multipliers: is for permuted blocks; minimization takes [randomization.minimization]"]
    );
}

#[test]
fn a_training_trial_says_so_in_its_id_and_only_it_does() {
    let training = |id: &str, flag: bool| {
        let text = protocol::ANBL1221_TOML.replacen("id = \"ANBL1221\"", &format!("id = \"{id}\""), 1);
        let text = if flag {
            text.replacen(
                "protocol_version = \"2.0\"",
                "protocol_version = \"2.0\"\ntraining = true",
                1,
            )
        } else {
            text
        };
        protocol::load(&text).map(|p| p.trial.training).map_err(|e| {
            e.problems
                .iter()
                .map(|p| format!("{}: {}", p.field, p.message))
                .collect::<Vec<_>>()
        })
    };
    assert_eq!(training("ANBL1221TRAINING", true), Ok(true));
    assert_eq!(training("ANBL1221", false), Ok(false));
    let unmarked = training("ANBL1221", true).unwrap_err();
    assert!(
        unmarked[0].starts_with("trial.id: a training trial's id contains TRAINING"),
        "{unmarked:?}"
    );
    let posing = training("ANBL1221TRAINING", false).unwrap_err();
    assert!(posing[0].starts_with("trial.id: only a training trial"), "{posing:?}");
}
