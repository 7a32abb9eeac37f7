//! The protocol's rounding of a calculated dose: to decimals, to a step, or to the nearest total
//! that capsule or vial sizes can make up. Every rule rounds half up (a calculated dose exactly
//! between two candidates takes the larger), the usual convention for protocol dose tables.

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};

use crate::protocol::Rounding;

/// A rounded dose and, for unit sizes, the units that make it up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rounded {
    /// The dose to prepare.
    pub dose: Decimal,
    /// For capsule or vial rounding: `(size, count)` with the fewest units, largest sizes first.
    pub units: Vec<(Decimal, u32)>,
    /// The rule, in words, for the record, for example "nearest 5 mg unit total".
    pub rule: String,
}

/// Rounds `calculated` by `rule`; `None` if the rule cannot be applied (no positive unit size,
/// or a total beyond what unit combinations are searched for: 100,000 smallest increments).
pub fn round(calculated: Decimal, rule: &Rounding, unit: &str) -> Option<Rounded> {
    match rule {
        Rounding::Decimals(places) => Some(Rounded {
            dose: calculated.round_dp_with_strategy(*places, RoundingStrategy::MidpointAwayFromZero),
            units: Vec::new(),
            rule: format!("{places} decimal(s), half up"),
        }),
        Rounding::Step(step) if *step > Decimal::ZERO => {
            let multiples = (calculated / step).round_dp_with_strategy(0, RoundingStrategy::MidpointAwayFromZero);
            Some(Rounded {
                dose: multiples * step,
                units: Vec::new(),
                rule: format!("nearest {step} {unit}, half up"),
            })
        }
        Rounding::Step(_) => None,
        Rounding::Units(sizes) => units(calculated, sizes, unit),
    }
}

fn units(calculated: Decimal, sizes: &[Decimal], unit: &str) -> Option<Rounded> {
    if sizes.is_empty() || sizes.iter().any(|s| *s <= Decimal::ZERO) {
        return None;
    }
    // Work in integer multiples of the finest decimal place among the sizes.
    let scale = sizes.iter().map(|s| s.normalize().scale()).max().unwrap_or(0);
    let factor = Decimal::from(10u64.checked_pow(scale)?);
    let ints: Vec<usize> = sizes.iter().map(|s| (*s * factor).to_usize()).collect::<Option<_>>()?;
    let largest = *ints.iter().max()?;
    let target = calculated * factor;
    let limit = target.ceil().to_usize()?.checked_add(largest)?;
    if limit > 100_000 {
        return None;
    }
    // fewest[t] = fewest units summing to t (None = not reachable).
    let mut fewest: Vec<Option<u32>> = vec![None; limit + 1];
    let mut last: Vec<usize> = vec![0; limit + 1];
    fewest[0] = Some(0);
    for t in 1..=limit {
        for &s in &ints {
            if s <= t
                && let Some(n) = fewest[t - s]
                && fewest[t].is_none_or(|best| n + 1 < best)
            {
                fewest[t] = Some(n + 1);
                last[t] = s;
            }
        }
    }
    // Nearest reachable total; on a tie the larger (half up). Zero is never a dose.
    let best = (1..=limit).filter(|t| fewest[*t].is_some()).min_by(|a, b| {
        let da = (Decimal::from(*a as u64) - target).abs();
        let db = (Decimal::from(*b as u64) - target).abs();
        da.cmp(&db).then(b.cmp(a))
    })?;
    let mut counts: Vec<(usize, u32)> = Vec::new();
    let mut t = best;
    while t > 0 {
        let s = last[t];
        match counts.iter_mut().find(|(size, _)| *size == s) {
            Some((_, n)) => *n += 1,
            None => counts.push((s, 1)),
        }
        t -= s;
    }
    counts.sort_by_key(|c| std::cmp::Reverse(c.0));
    let as_decimal = |n: usize| Decimal::from(n as u64) / factor;
    let sizes_text = sizes
        .iter()
        .map(|s| s.normalize().to_string())
        .collect::<Vec<_>>()
        .join("/");
    Some(Rounded {
        dose: as_decimal(best),
        units: counts.into_iter().map(|(s, n)| (as_decimal(s), n)).collect(),
        rule: format!("nearest total of {sizes_text} {unit} units, half up"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap_or_else(|_| panic!("{s}"))
    }

    fn caps(sizes: &[&str]) -> Rounding {
        Rounding::Units(sizes.iter().map(|s| d(s)).collect())
    }

    #[test]
    fn decimals_round_half_up() {
        assert_eq!(
            round(d("23.45"), &Rounding::Decimals(1), "mg").map(|r| r.dose),
            Some(d("23.5"))
        );
        assert_eq!(
            round(d("23.449"), &Rounding::Decimals(1), "mg").map(|r| r.dose),
            Some(d("23.4"))
        );
        assert_eq!(
            round(d("16.6666"), &Rounding::Decimals(1), "mg").map(|r| r.dose),
            Some(d("16.7"))
        );
    }

    #[test]
    fn steps_round_to_the_nearest_multiple() {
        // 167.5 ug: 2.5 from 170, 7.5 from 160 -> 170; 415 is a midpoint -> 420; 83.33 -> 80.
        assert_eq!(
            round(d("167.5"), &Rounding::Step(d("10")), "ug").map(|r| r.dose),
            Some(d("170"))
        );
        assert_eq!(
            round(d("415"), &Rounding::Step(d("10")), "ug").map(|r| r.dose),
            Some(d("420"))
        );
        assert_eq!(
            round(d("83.333"), &Rounding::Step(d("10")), "ug").map(|r| r.dose),
            Some(d("80"))
        );
        assert_eq!(
            round(d("1.26"), &Rounding::Step(d("0.25")), "mg").map(|r| r.dose),
            Some(d("1.25"))
        );
    }

    #[test]
    fn capsules_give_the_nearest_total_with_the_fewest_capsules() {
        let tmz = caps(&["5", "20", "100", "140", "180", "250"]);
        // 67 mg: 65 (20+20+20+5) is 2 away, 70 is 3 away.
        let r = round(d("67"), &tmz, "mg").unwrap_or_else(|| panic!("no rounding"));
        assert_eq!(r.dose, d("65"));
        assert_eq!(r.units, [(d("20"), 3), (d("5"), 1)]);
        // 166 mg -> 165 = 140 + 20 + 5 (3 capsules rather than 100 + 20 + 20 + 20 + 5).
        let r = round(d("166"), &tmz, "mg").unwrap_or_else(|| panic!("no rounding"));
        assert_eq!(
            (r.dose, r.units),
            (d("165"), vec![(d("140"), 1), (d("20"), 1), (d("5"), 1)])
        );
        // 67.5 is a midpoint between 65 and 70 -> 70.
        assert_eq!(round(d("67.5"), &tmz, "mg").map(|r| r.dose), Some(d("70")));
        // With only large capsules, 130 mg: 140 is 10 away, 100 is 30 away.
        assert_eq!(
            round(d("130"), &caps(&["100", "140", "180", "250"]), "mg").map(|r| r.dose),
            Some(d("140"))
        );
        // Fractional vial sizes: 2.5 mg units, 6.1 mg -> 5 (1.1 away) vs 7.5 (1.4 away).
        assert_eq!(round(d("6.1"), &caps(&["2.5"]), "mg").map(|r| r.dose), Some(d("5")));
        // Rounding alone never gives zero: 1 mg becomes one 5 mg capsule. The dose calculation
        // refuses such a deviation (max_rounding_deviation_percent), so it reaches a pharmacist.
        assert_eq!(round(d("1"), &caps(&["5"]), "mg").map(|r| r.dose), Some(d("5")));
    }
}
