//! Semantic checks of a parsed protocol definition: every reference resolves, every identifier
//! is unique and well-formed, every number is in a sensible range. Each problem names its field.

use std::collections::HashSet;

use rust_decimal::Decimal;

use super::ProtocolProblem;
use super::model::*;

struct Checker {
    problems: Vec<ProtocolProblem>,
}

impl Checker {
    fn fail(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.problems.push(ProtocolProblem {
            field: field.into(),
            message: message.into(),
        });
    }

    fn require(&mut self, ok: bool, field: impl Into<String>, message: impl Into<String>) {
        if !ok {
            self.fail(field, message);
        }
    }

    fn identifier(&mut self, value: &str, field: String, charset: fn(char) -> bool, max: usize) {
        if value.is_empty() || value.len() > max || !value.chars().all(charset) {
            self.fail(
                field,
                format!("{value:?} must be 1 to {max} characters of the allowed set"),
            );
        }
    }

    fn unique<'a>(&mut self, items: impl Iterator<Item = &'a str>, field: &str) {
        let mut seen = HashSet::new();
        for (i, item) in items.enumerate() {
            if !seen.insert(item) {
                self.fail(format!("{field}[{i}]"), format!("{item:?} appears more than once"));
            }
        }
    }

    fn positive(&mut self, value: Decimal, field: &str) {
        self.require(value > Decimal::ZERO, field, "must be greater than 0");
    }
}

fn upper_code(c: char) -> bool {
    c.is_ascii_uppercase() || c.is_ascii_digit()
}

fn snake_id(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'
}

fn check_accrual(c: &mut Checker, a: &super::model::AccrualRules) {
    for (scope, target, maximum) in [
        ("", a.target, a.maximum),
        ("site_", a.site_target, a.site_maximum),
        ("stratum_", a.stratum_target, a.stratum_maximum),
    ] {
        for (name, value) in [("target", target), ("maximum", maximum)] {
            c.require(
                value != Some(0),
                format!("accrual.{scope}{name}"),
                "must be at least 1 (leave it out for none)",
            );
        }
        if let (Some(target), Some(maximum)) = (target, maximum) {
            c.require(
                target <= maximum,
                format!("accrual.{scope}target"),
                format!("must not exceed accrual.{scope}maximum ({maximum})"),
            );
        }
    }
}

/// What a training trial's id contains, and a production trial's never does.
pub const TRAINING_MARK: &str = "TRAINING";

/// Every problem of the definition; empty when it is usable.
pub(super) fn check(p: &Protocol) -> Vec<ProtocolProblem> {
    let mut c = Checker { problems: Vec::new() };
    c.identifier(&p.trial.id, "trial.id".into(), upper_code, 20);
    c.require(
        p.trial.training == p.trial.id.contains(TRAINING_MARK),
        "trial.id",
        if p.trial.training {
            "a training trial's id contains TRAINING (for example ANBL1221TRAINING), \
             so every identifier naming it says so"
        } else {
            "only a training trial (trial.training = true) has TRAINING in its id"
        },
    );
    c.require(
        !p.trial.protocol_version.is_empty(),
        "trial.protocol_version",
        "must not be empty",
    );
    c.require(
        !p.consent.accepted_form_versions.is_empty(),
        "consent.accepted_form_versions",
        "must list at least one version",
    );
    for (i, v) in p.consent.accepted_form_versions.iter().enumerate() {
        c.require(
            !v.trim().is_empty(),
            format!("consent.accepted_form_versions[{i}]"),
            "must not be empty",
        );
    }
    c.require(
        p.screening.validity_days >= 1,
        "screening.validity_days",
        "must be at least 1",
    );
    check_randomization(&mut c, p);
    check_accrual(&mut c, &p.accrual);
    check_variables(&mut c, p);
    c.unique(p.eligibility.iter().map(|e| e.id.as_str()), "eligibility");
    for (i, criterion) in p.eligibility.iter().enumerate() {
        c.identifier(&criterion.id, format!("eligibility[{i}].id"), snake_id, 64);
        check_rule(&mut c, p, &criterion.rule, format!("eligibility[{i}].rule"));
    }
    check_treatment(&mut c, p);
    check_regimens(&mut c, p);
    check_outcomes(&mut c, p);
    c.problems
}

fn check_minimization(c: &mut Checker, p: &Protocol, rules: &MinimizationRules) {
    let probability = rules.preferred_arm_probability;
    let arms = Decimal::from(p.arms.len().max(1) as u64);
    c.require(
        probability * arms > Decimal::ONE && probability < Decimal::ONE && probability.normalize().scale() <= 4,
        "randomization.minimization.preferred_arm_probability",
        format!(
            "must be above 1/{} (the chance of any arm) and below 1 (a random element), with at most 4 decimal places",
            p.arms.len()
        ),
    );
    for (factor, weight) in &rules.weights {
        let field = format!("randomization.minimization.weights.{factor}");
        c.require(
            p.strata.iter().any(|f| &f.id == factor),
            field.clone(),
            "is not a stratification factor",
        );
        c.require(
            *weight > Decimal::ZERO && *weight <= Decimal::from(1000) && weight.normalize().scale() <= 4,
            field,
            "must be above 0 and at most 1000, with at most 4 decimal places",
        );
    }
    c.require(
        !p.strata.is_empty(),
        "strata",
        "minimization balances the stratification factors: list at least one",
    );
}

fn check_randomization(c: &mut Checker, p: &Protocol) {
    c.require(p.arms.len() >= 2, "arms", "a randomized trial needs at least two arms");
    c.unique(p.arms.iter().map(|a| a.code.as_str()), "arms");
    for (i, arm) in p.arms.iter().enumerate() {
        c.identifier(&arm.code, format!("arms[{i}].code"), upper_code, 8);
        c.require(
            (1..=10).contains(&arm.allocation_ratio),
            format!("arms[{i}].allocation_ratio"),
            "must be from 1 to 10",
        );
    }
    let m = &p.randomization.block_multipliers;
    match p.randomization.method {
        AllocationMethodKind::PermutedBlocks => {
            c.require(
                !m.is_empty(),
                "randomization.block_multipliers",
                "must list at least one multiplier",
            );
            c.require(
                p.randomization.minimization.is_none(),
                "randomization.minimization",
                "is for method = \"minimization\"; permuted blocks take block_multipliers",
            );
        }
        AllocationMethodKind::Minimization => {
            c.require(
                m.is_empty(),
                "randomization.block_multipliers",
                "is for permuted blocks; minimization takes [randomization.minimization]",
            );
            match &p.randomization.minimization {
                Some(rules) => check_minimization(c, p, rules),
                None => c.require(
                    false,
                    "randomization.minimization",
                    "is required when method = \"minimization\"",
                ),
            }
        }
    }
    for (i, v) in m.iter().enumerate() {
        c.require(
            (1..=10).contains(v),
            format!("randomization.block_multipliers[{i}]"),
            "must be from 1 to 10",
        );
    }
    c.unique(p.strata.iter().map(|s| s.id.as_str()), "strata");
    for (i, factor) in p.strata.iter().enumerate() {
        c.identifier(&factor.id, format!("strata[{i}].id"), snake_id, 64);
        c.require(
            !factor.values.is_empty(),
            format!("strata[{i}].values"),
            "must list at least one value",
        );
        c.unique(factor.values.iter().map(String::as_str), &format!("strata[{i}].values"));
        for (j, v) in factor.values.iter().enumerate() {
            c.identifier(v, format!("strata[{i}].values[{j}]"), snake_id, 64);
        }
    }
}

fn check_variables(c: &mut Checker, p: &Protocol) {
    c.unique(p.variables.iter().map(|v| v.id.as_str()), "variables");
    for (i, v) in p.variables.iter().enumerate() {
        let at = |f: &str| format!("variables[{i}].{f}");
        c.identifier(&v.id, at("id"), snake_id, 64);
        match v.kind {
            VariableKind::Decimal => {
                if let (Some(min), Some(max)) = (v.minimum, v.maximum) {
                    c.require(min <= max, at("maximum"), "must not be below minimum");
                }
                c.require(
                    v.allowed.is_empty(),
                    at("allowed"),
                    "only choice variables have allowed values",
                );
            }
            VariableKind::Choice => {
                c.require(
                    !v.allowed.is_empty(),
                    at("allowed"),
                    "a choice variable needs allowed values",
                );
                c.unique(v.allowed.iter().map(String::as_str), &at("allowed"));
            }
            VariableKind::Boolean => {
                c.require(
                    v.allowed.is_empty(),
                    at("allowed"),
                    "only choice variables have allowed values",
                );
            }
        }
        if v.kind != VariableKind::Decimal {
            c.require(
                v.unit.is_none() && v.minimum.is_none() && v.maximum.is_none(),
                at("kind"),
                "unit, minimum and maximum apply to decimal variables only",
            );
        }
    }
}

fn variable_of_kind(c: &mut Checker, p: &Protocol, id: &str, kind: VariableKind, field: String) {
    match p.variable(id) {
        None => c.fail(field, format!("unknown variable {id:?}")),
        Some(v) if v.kind != kind => c.fail(
            field,
            format!("variable {id:?} is {:?}, the rule needs {kind:?}", v.kind),
        ),
        Some(_) => {}
    }
}

fn check_rule(c: &mut Checker, p: &Protocol, rule: &Rule, field: String) {
    match rule {
        Rule::Compare(r) => variable_of_kind(
            c,
            p,
            &r.variable,
            VariableKind::Decimal,
            format!("{field}.compare.variable"),
        ),
        Rule::CompareToReference(r) => {
            variable_of_kind(
                c,
                p,
                &r.variable,
                VariableKind::Decimal,
                format!("{field}.compare_to_reference.variable"),
            );
            variable_of_kind(
                c,
                p,
                &r.reference,
                VariableKind::Decimal,
                format!("{field}.compare_to_reference.reference"),
            );
            c.positive(r.multiple, &format!("{field}.compare_to_reference.multiple"));
        }
        Rule::IsTrue(id) => variable_of_kind(c, p, id, VariableKind::Boolean, format!("{field}.is_true")),
        Rule::OneOf(r) => {
            let at = format!("{field}.one_of.variable");
            variable_of_kind(c, p, &r.variable, VariableKind::Choice, at);
            c.require(
                !r.values.is_empty(),
                format!("{field}.one_of.values"),
                "must list at least one value",
            );
            if let Some(v) = p.variable(&r.variable) {
                for (i, value) in r.values.iter().enumerate() {
                    c.require(
                        v.allowed.contains(value),
                        format!("{field}.one_of.values[{i}]"),
                        format!("{value:?} is not an allowed value of {:?}", r.variable),
                    );
                }
            }
        }
        Rule::AnyOf(rules) | Rule::AllOf(rules) => {
            let name = if matches!(rule, Rule::AnyOf(_)) {
                "any_of"
            } else {
                "all_of"
            };
            c.require(
                !rules.is_empty(),
                format!("{field}.{name}"),
                "must hold at least one rule",
            );
            for (i, sub) in rules.iter().enumerate() {
                check_rule(c, p, sub, format!("{field}.{name}[{i}]"));
            }
        }
    }
}

fn check_treatment(c: &mut Checker, p: &Protocol) {
    let t = &p.treatment;
    c.require(
        t.cycle_length_days >= 1,
        "treatment.cycle_length_days",
        "must be at least 1",
    );
    c.require(t.maximum_cycles >= 1, "treatment.maximum_cycles", "must be at least 1");
    c.require(
        t.bsa_formula == "mosteller",
        "treatment.bsa_formula",
        "only \"mosteller\" is supported",
    );
    c.require(t.bsa_decimals <= 4, "treatment.bsa_decimals", "must be from 0 to 4");
    c.positive(t.max_bsa_change_percent, "treatment.max_bsa_change_percent");
    c.positive(
        t.administration_tolerance_percent,
        "treatment.administration_tolerance_percent",
    );
    c.require(
        t.earliest_administration_days_before_planned < t.cycle_length_days,
        "treatment.earliest_administration_days_before_planned",
        "must be less than cycle_length_days",
    );
    c.positive(
        t.small_child_rule.bsa_below_m2,
        "treatment.small_child_rule.bsa_below_m2",
    );
    c.positive(
        t.small_child_rule.weight_below_kg,
        "treatment.small_child_rule.weight_below_kg",
    );
    c.positive(
        t.small_child_rule.per_kg_divisor,
        "treatment.small_child_rule.per_kg_divisor",
    );
    c.positive(t.cycle_start.min_anc_per_ul, "treatment.cycle_start.min_anc_per_ul");
    c.positive(
        t.cycle_start.min_platelets_per_ul,
        "treatment.cycle_start.min_platelets_per_ul",
    );
    c.require(
        t.cycle_start.delay_step_days >= 1,
        "treatment.cycle_start.delay_step_days",
        "must be at least 1",
    );
    c.require(
        t.cycle_start.max_delay_days >= t.cycle_start.delay_step_days,
        "treatment.cycle_start.max_delay_days",
        "must be at least delay_step_days",
    );
    let a = &p.assessments;
    let in_range = |n: &u32| (1..=t.maximum_cycles).contains(n);
    for (i, n) in a.after_cycles.iter().enumerate() {
        c.require(
            in_range(n),
            format!("assessments.after_cycles[{i}]"),
            "must be a cycle from 1 to maximum_cycles",
        );
    }
    c.require(
        a.after_cycles.windows(2).all(|w| w[0] < w[1]),
        "assessments.after_cycles",
        "must be ascending",
    );
    c.require(
        in_range(&a.primary_evaluation_after_cycle),
        "assessments.primary_evaluation_after_cycle",
        "must be a cycle from 1 to maximum_cycles",
    );
    c.require(
        a.then_every_cycles >= 1,
        "assessments.then_every_cycles",
        "must be at least 1",
    );
}

fn check_regimens(c: &mut Checker, p: &Protocol) {
    c.unique(p.regimens.iter().map(|r| r.arm.as_str()), "regimens");
    for arm in &p.arms {
        c.require(
            p.regimens.iter().any(|r| r.arm == arm.code),
            "regimens",
            format!("arm {:?} has no regimen", arm.code),
        );
    }
    for (i, regimen) in p.regimens.iter().enumerate() {
        c.require(
            p.arm(&regimen.arm).is_some(),
            format!("regimens[{i}].arm"),
            format!("unknown arm {:?}", regimen.arm),
        );
        c.require(
            !regimen.agents.is_empty(),
            format!("regimens[{i}].agents"),
            "must hold at least one agent",
        );
        c.unique(
            regimen.agents.iter().map(|a| a.id.as_str()),
            &format!("regimens[{i}].agents"),
        );
        for (j, agent) in regimen.agents.iter().enumerate() {
            check_agent(c, p, agent, &format!("regimens[{i}].agents[{j}]"));
        }
    }
}

fn check_agent(c: &mut Checker, p: &Protocol, agent: &Agent, at: &str) {
    c.identifier(&agent.id, format!("{at}.id"), snake_id, 64);
    c.require(!agent.unit.is_empty(), format!("{at}.unit"), "must not be empty");
    c.require(
        !agent.days.is_empty(),
        format!("{at}.days"),
        "must list at least one day",
    );
    for (k, day) in agent.days.iter().enumerate() {
        c.require(
            (1..=p.treatment.cycle_length_days).contains(day),
            format!("{at}.days[{k}]"),
            "must be a day from 1 to cycle_length_days",
        );
    }
    c.require(
        agent.days.windows(2).all(|w| w[0] < w[1]),
        format!("{at}.days"),
        "must be ascending",
    );
    c.require(
        agent.dose_levels.iter().any(|l| l.level == 0),
        format!("{at}.dose_levels"),
        "must define level 0 (the starting dose)",
    );
    let mut levels = HashSet::new();
    for (k, level) in agent.dose_levels.iter().enumerate() {
        c.require(
            levels.insert(level.level),
            format!("{at}.dose_levels[{k}].level"),
            "appears more than once",
        );
        c.positive(level.dose, &format!("{at}.dose_levels[{k}].dose"));
    }
    match &agent.rounding {
        Rounding::Decimals(d) => c.require(*d <= 4, format!("{at}.rounding.decimals"), "must be from 0 to 4"),
        Rounding::Step(step) => c.positive(*step, &format!("{at}.rounding.step")),
        Rounding::Units(units) => {
            c.require(
                !units.is_empty(),
                format!("{at}.rounding.units"),
                "must list at least one size",
            );
            for (k, u) in units.iter().enumerate() {
                c.positive(*u, &format!("{at}.rounding.units[{k}]"));
            }
        }
    }
}

fn check_outcomes(c: &mut Checker, p: &Protocol) {
    c.require(
        p.outcomes.response_criteria == "inrc_2017",
        "outcomes.response_criteria",
        "only \"inrc_2017\" is supported",
    );
    if let Some(s) = &p.outcomes.simon {
        let unit = |x: Decimal| x > Decimal::ZERO && x < Decimal::ONE;
        c.require(
            unit(s.p0) && unit(s.p1) && s.p0 < s.p1,
            "outcomes.simon.p1",
            "need 0 < p0 < p1 < 1",
        );
        c.require(
            unit(s.alpha) && unit(s.beta),
            "outcomes.simon.alpha",
            "alpha and beta must be between 0 and 1",
        );
        c.require(
            s.n1 >= 1 && s.n1 < s.n && s.r1 < s.n1 && s.r1 <= s.r && s.r < s.n,
            "outcomes.simon.n",
            "need r1 < n1 < n and r1 <= r < n",
        );
    }
    for (i, rule) in p.reporting.iter().enumerate() {
        let at = |f: &str| format!("reporting[{i}].{f}");
        c.require(
            !rule.obligations.is_empty(),
            at("obligations"),
            "must list at least one obligation",
        );
        for g in [rule.min_grade, rule.max_grade].into_iter().flatten() {
            c.require((1..=5).contains(&g), at("min_grade"), "grades are 1 to 5");
        }
        for (j, o) in rule.obligations.iter().enumerate() {
            c.identifier(&o.kind, format!("reporting[{i}].obligations[{j}].kind"), snake_id, 64);
            c.require(
                o.hours >= 1,
                format!("reporting[{i}].obligations[{j}].hours"),
                "must be at least 1",
            );
        }
    }
}
