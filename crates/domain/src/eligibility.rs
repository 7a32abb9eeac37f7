//! Eligibility: checking a screening's values against the protocol's variables, and evaluating
//! every criterion to met / not met / missing data with the values it compared.
//!
//! Composite rules use three-valued (Kleene) logic: `any_of` is met when any part is met and
//! missing data when none is met but some part lacks data; `all_of` is not met when any part is
//! not met and missing data when none fails but some part lacks data. So an unanswered item can
//! never make a candidate eligible, and never hides that supplying it could.

use std::collections::BTreeMap;

use rust_decimal::Decimal;

use crate::protocol::{Protocol, Rule, VariableKind};

/// A screening value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// An exact decimal in the variable's unit.
    Decimal(Decimal),
    /// Yes or no.
    Boolean(bool),
    /// One of the variable's allowed values.
    Choice(String),
}

/// Checked screening values by variable id.
pub type Values = BTreeMap<String, Value>;

/// Which part of an input entry is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputPart {
    /// The variable id.
    Variable,
    /// The value.
    Value,
}

/// A problem with one input entry (by its position in the request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputProblem {
    /// Position of the entry.
    pub index: usize,
    /// The part that is wrong.
    pub part: InputPart,
    /// What is wrong, naming the allowed values or range.
    pub message: String,
}

/// Checks raw `(variable id, value)` entries against the protocol: known variables, each at most
/// once, of the right kind, allowed choice, within the physical range.
pub fn check_inputs(protocol: &Protocol, entries: &[(String, Value)]) -> Result<Values, Vec<InputProblem>> {
    let mut values = Values::new();
    let mut problems = Vec::new();
    for (index, (id, value)) in entries.iter().enumerate() {
        let mut fail = |part, message: String| problems.push(InputProblem { index, part, message });
        let Some(variable) = protocol.variable(id) else {
            fail(InputPart::Variable, format!("unknown screening variable {id:?}"));
            continue;
        };
        if values.contains_key(id) {
            fail(InputPart::Variable, format!("{id:?} is given more than once"));
            continue;
        }
        match (variable.kind, value) {
            (VariableKind::Decimal, Value::Decimal(d)) => {
                let below = variable.minimum.is_some_and(|min| *d < min);
                let above = variable.maximum.is_some_and(|max| *d > max);
                if below || above {
                    let range = |b: Option<Decimal>| b.map_or_else(|| "-".to_owned(), |d| d.to_string());
                    fail(
                        InputPart::Value,
                        format!(
                            "{d} is outside the plausible range {} to {} {}",
                            range(variable.minimum),
                            range(variable.maximum),
                            variable.unit.as_deref().unwrap_or("")
                        ),
                    );
                    continue;
                }
            }
            (VariableKind::Boolean, Value::Boolean(_)) => {}
            (VariableKind::Choice, Value::Choice(c)) => {
                if !variable.allowed.contains(c) {
                    fail(
                        InputPart::Value,
                        format!("{c:?} is not one of {}", variable.allowed.join(", ")),
                    );
                    continue;
                }
            }
            (kind, _) => {
                fail(InputPart::Value, format!("{id:?} takes a {} value", kind_name(kind)));
                continue;
            }
        }
        values.insert(id.clone(), value.clone());
    }
    if problems.is_empty() { Ok(values) } else { Err(problems) }
}

fn kind_name(kind: VariableKind) -> &'static str {
    match kind {
        VariableKind::Decimal => "decimal",
        VariableKind::Boolean => "boolean",
        VariableKind::Choice => "choice",
    }
}

/// The outcome of one criterion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Met.
    Met,
    /// Not met.
    NotMet,
    /// A needed value was not supplied.
    MissingData,
}

/// One criterion's evaluation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CriterionResult {
    /// The criterion id.
    pub criterion_id: String,
    /// The outcome.
    pub outcome: Outcome,
    /// What was compared, for example "anc_per_ul = 600 /uL; required >= 750 /uL".
    pub detail: String,
}

/// The evaluation of every criterion, in protocol order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    /// One result per criterion.
    pub results: Vec<CriterionResult>,
}

impl Evaluation {
    /// Eligible when every criterion is met.
    pub fn eligible(&self) -> bool {
        self.results.iter().all(|r| r.outcome == Outcome::Met)
    }

    /// The ids of criteria not met or missing data.
    pub fn failed(&self) -> Vec<&str> {
        self.results
            .iter()
            .filter(|r| r.outcome != Outcome::Met)
            .map(|r| r.criterion_id.as_str())
            .collect()
    }
}

/// Evaluates every criterion of the protocol against checked values.
pub fn evaluate(protocol: &Protocol, values: &Values) -> Evaluation {
    let results = protocol
        .eligibility
        .iter()
        .map(|c| {
            let (outcome, detail) = rule(protocol, &c.rule, values);
            CriterionResult {
                criterion_id: c.id.clone(),
                outcome,
                detail,
            }
        })
        .collect();
    Evaluation { results }
}

fn unit_of(protocol: &Protocol, id: &str) -> String {
    protocol
        .variable(id)
        .and_then(|v| v.unit.clone())
        .map_or_else(String::new, |u| format!(" {u}"))
}

fn decimal(values: &Values, id: &str) -> Option<Decimal> {
    match values.get(id) {
        Some(Value::Decimal(d)) => Some(*d),
        _ => None,
    }
}

fn missing(id: &str) -> (Outcome, String) {
    (Outcome::MissingData, format!("{id} not supplied"))
}

fn verdict(ok: bool) -> Outcome {
    if ok { Outcome::Met } else { Outcome::NotMet }
}

fn rule(protocol: &Protocol, rule: &Rule, values: &Values) -> (Outcome, String) {
    match rule {
        Rule::Compare(r) => {
            let Some(v) = decimal(values, &r.variable) else {
                return missing(&r.variable);
            };
            let unit = unit_of(protocol, &r.variable);
            let detail = format!(
                "{} = {v}{unit}; required {} {}{unit}",
                r.variable,
                r.op.symbol(),
                r.value
            );
            (verdict(r.op.holds(v, r.value)), detail)
        }
        Rule::CompareToReference(r) => {
            let Some(v) = decimal(values, &r.variable) else {
                return missing(&r.variable);
            };
            let Some(reference) = decimal(values, &r.reference) else {
                return missing(&r.reference);
            };
            let limit = r.multiple * reference;
            let unit = unit_of(protocol, &r.variable);
            let detail = format!(
                "{} = {v}{unit}; required {} {} x {} ({} x {reference} = {limit}{unit})",
                r.variable,
                r.op.symbol(),
                r.multiple,
                r.reference,
                r.multiple
            );
            (verdict(r.op.holds(v, limit)), detail)
        }
        Rule::IsTrue(id) => match values.get(id) {
            Some(Value::Boolean(b)) => (
                verdict(*b),
                format!("{id} = {}; required yes", if *b { "yes" } else { "no" }),
            ),
            _ => missing(id),
        },
        Rule::OneOf(r) => match values.get(&r.variable) {
            Some(Value::Choice(c)) => (
                verdict(r.values.contains(c)),
                format!("{} = {c}; required one of {}", r.variable, r.values.join(", ")),
            ),
            _ => missing(&r.variable),
        },
        Rule::AnyOf(rules) | Rule::AllOf(rules) => {
            let any = matches!(rule, Rule::AnyOf(_));
            let parts: Vec<_> = rules.iter().map(|r| self::rule(protocol, r, values)).collect();
            let has = |o| parts.iter().any(|(p, _)| *p == o);
            let outcome = match (any, has(Outcome::Met), has(Outcome::NotMet), has(Outcome::MissingData)) {
                (true, true, _, _) => Outcome::Met,
                (true, false, _, true) => Outcome::MissingData,
                (true, false, _, false) => Outcome::NotMet,
                (false, _, true, _) => Outcome::NotMet,
                (false, _, false, true) => Outcome::MissingData,
                (false, _, false, false) => Outcome::Met,
            };
            let joiner = if any { " or " } else { " and " };
            let detail = parts
                .iter()
                .map(|(_, d)| format!("({d})"))
                .collect::<Vec<_>>()
                .join(joiner);
            (outcome, detail)
        }
    }
}
