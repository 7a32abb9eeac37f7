//! Strata: a subject's values for the protocol's stratification factors, checked, and the
//! canonical stratum key that names the randomization sequence they belong to.

use std::collections::BTreeMap;

use crate::protocol::Protocol;

/// A problem with one stratum entry (by its position in the request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StratumProblem {
    /// Position of the entry, or `None` for a factor missing from the request.
    pub index: Option<usize>,
    /// True when the factor id is wrong, false when the value is.
    pub on_factor: bool,
    /// What is wrong.
    pub message: String,
}

/// Checked strata: one value per factor, by factor id.
pub type Strata = BTreeMap<String, String>;

/// Checks `(factor, value)` entries; with `complete`, every factor must be present.
pub fn check(protocol: &Protocol, entries: &[(String, String)], complete: bool) -> Result<Strata, Vec<StratumProblem>> {
    let mut strata = Strata::new();
    let mut problems = Vec::new();
    for (i, (factor_id, value)) in entries.iter().enumerate() {
        let Some(factor) = protocol.factor(factor_id) else {
            problems.push(StratumProblem {
                index: Some(i),
                on_factor: true,
                message: format!("unknown stratification factor {factor_id:?}"),
            });
            continue;
        };
        if strata.contains_key(factor_id) {
            problems.push(StratumProblem {
                index: Some(i),
                on_factor: true,
                message: format!("{factor_id:?} is given more than once"),
            });
        } else if !factor.values.contains(value) {
            problems.push(StratumProblem {
                index: Some(i),
                on_factor: false,
                message: format!("{value:?} is not one of {}", factor.values.join(", ")),
            });
        } else {
            strata.insert(factor_id.clone(), value.clone());
        }
    }
    if complete {
        for factor in &protocol.strata {
            if !strata.contains_key(&factor.id) && !entries.iter().any(|(f, _)| f == &factor.id) {
                problems.push(StratumProblem {
                    index: None,
                    on_factor: true,
                    message: format!("a value for {:?} is required", factor.id),
                });
            }
        }
    }
    if problems.is_empty() { Ok(strata) } else { Err(problems) }
}

/// The canonical key of a complete set of strata: `factor=value` in protocol order, joined by
/// `|`, for example `prior_therapy=no_prior_irinotecan_temozolomide|mycn_status=amplified`.
pub fn stratum_key(protocol: &Protocol, strata: &Strata) -> String {
    protocol
        .strata
        .iter()
        .map(|f| format!("{}={}", f.id, strata.get(&f.id).map_or("", String::as_str)))
        .collect::<Vec<_>>()
        .join("|")
}

/// The `(factor, value)` pairs of a stratum key, in protocol order.
pub fn parse_stratum_key(key: &str) -> Vec<(String, String)> {
    key.split('|')
        .filter(|part| !part.is_empty())
        .filter_map(|part| part.split_once('=').map(|(f, v)| (f.to_owned(), v.to_owned())))
        .collect()
}
