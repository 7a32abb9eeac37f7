//! Body surface area by Mosteller: BSA (m²) = √(height cm × weight kg / 3600), rounded half up
//! to the protocol's number of decimals.
//!
//! The square root is irrational in general, so the rounded result is checked exactly: r is the
//! answer when (r − ½·10⁻ᵈ)² ≤ h·w/3600 < (r + ½·10⁻ᵈ)², compared in exact decimals. A value
//! that sits exactly on a rounding boundary therefore rounds up, as "half up" says, whatever
//! the last digit of a computed square root would have been.

use rust_decimal::{Decimal, MathematicalOps, RoundingStrategy};

/// The formula as recorded with every dose.
pub const MOSTELLER: &str = "BSA = sqrt(height_cm x weight_kg / 3600)";

/// Unrounded square of the BSA: height × weight / 3600, exact.
pub fn bsa_squared(height_cm: Decimal, weight_kg: Decimal) -> Option<Decimal> {
    height_cm.checked_mul(weight_kg)?.checked_div(Decimal::from(3600))
}

/// Mosteller BSA rounded half up to `decimals` places; `None` for non-positive inputs.
pub fn mosteller(height_cm: Decimal, weight_kg: Decimal, decimals: u32) -> Option<Decimal> {
    if height_cm <= Decimal::ZERO || weight_kg <= Decimal::ZERO {
        return None;
    }
    // h·w/3600 can be a non-terminating decimal (it is a ratio); compare squares as
    // 3600·(r ± half)² against h·w, which are both exact.
    let product = height_cm.checked_mul(weight_kg)?;
    let approx = bsa_squared(height_cm, weight_kg)?.sqrt()?;
    let mut r = approx.round_dp_with_strategy(decimals, RoundingStrategy::MidpointAwayFromZero);
    let half = Decimal::new(5, decimals + 1);
    let step = Decimal::new(1, decimals);
    let scaled = |x: Decimal| x.checked_mul(x).and_then(|sq| sq.checked_mul(Decimal::from(3600)));
    for _ in 0..4 {
        let low = scaled(r - half)?;
        let high = scaled(r + half)?;
        if product < low {
            r -= step;
        } else if product >= high {
            r += step;
        } else {
            return Some(r);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap_or_else(|_| panic!("{s}"))
    }

    #[test]
    fn published_style_examples() {
        // 102 cm, 16 kg: 1632/3600 = 0.45333…, sqrt = 0.67330… -> 0.67
        assert_eq!(mosteller(d("102"), d("16"), 2), Some(d("0.67")));
        // 165 cm, 60 kg: 9900/3600 = 2.75, sqrt = 1.65831… -> 1.66
        assert_eq!(mosteller(d("165"), d("60"), 2), Some(d("1.66")));
        // 180 cm, 80 kg: 14400/3600 = 4, sqrt = 2 exactly
        assert_eq!(mosteller(d("180"), d("80"), 2), Some(d("2.00")));
    }

    #[test]
    fn exact_midpoints_round_up() {
        // BSA exactly 1.005: h·w = 3600 × 1.010025 = 3636.09, e.g. 363.609 cm × 10 kg.
        assert_eq!(mosteller(d("363.609"), d("10"), 2), Some(d("1.01")));
        // Just below the midpoint rounds down.
        assert_eq!(mosteller(d("363.608"), d("10"), 2), Some(d("1.00")));
    }

    #[test]
    fn non_positive_inputs_have_no_bsa() {
        assert_eq!(mosteller(d("0"), d("10"), 2), None);
        assert_eq!(mosteller(d("100"), d("-1"), 2), None);
    }
}
