//! Identifier rules. Identifiers are study identifiers, never personal data: the formats are
//! narrow so that a name or a free-text record number cannot pass as one by accident.

/// Site codes: 2 to 32 characters of A–Z, 0–9 and '-'.
pub fn is_site_code(code: &str) -> bool {
    (2..=32).contains(&code.len())
        && code
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-')
}

/// Screening identifiers: 1 to 64 characters of A–Z, a–z, 0–9, '-' and '_'.
pub fn is_screening_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// The study subject identifier of the `number`-th subject (1-based) of a trial, for example
/// `ANBL1221-0007`. At least four digits, more when the trial grows past 9999.
pub fn subject_id(trial_id: &str, number: u64) -> String {
    format!("{trial_id}-{number:04}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn site_codes() {
        assert!(is_site_code("COG-101"));
        assert!(!is_site_code("C"));
        assert!(!is_site_code("cog-101"));
        assert!(!is_site_code("COG 101"));
    }

    #[test]
    fn screening_ids() {
        assert!(is_screening_id("SCR-2026_001"));
        assert!(!is_screening_id(""));
        assert!(!is_screening_id("Jane Doe"));
        assert!(!is_screening_id(&"x".repeat(65)));
    }

    #[test]
    fn subject_ids() {
        assert_eq!(subject_id("ANBL1221", 7), "ANBL1221-0007");
        assert_eq!(subject_id("ANBL1221", 12345), "ANBL1221-12345");
    }
}
