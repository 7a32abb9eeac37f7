//! Identifier rules. Identifiers are study identifiers, never personal data: the formats are
//! narrow so that a name or a free-text record number cannot pass as one by accident.

/// A site code: 2 to 32 characters of A–Z, 0–9 and '-', for example `COG-101`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SiteCode(String);

impl SiteCode {
    /// The format, as an error names it.
    pub const FORMAT: &'static str = "2 to 32 characters of A-Z, 0-9 and '-'";

    /// The code, or the format it does not have.
    pub fn parse(text: &str) -> Result<SiteCode, &'static str> {
        let valid = (2..=32).contains(&text.len())
            && text
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-');
        if valid {
            Ok(SiteCode(text.to_owned()))
        } else {
            Err(Self::FORMAT)
        }
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A site's screening identifier of a candidate: 1 to 64 characters of A–Z, a–z, 0–9, '-' and
/// '_' (narrow, so a name cannot pass as one).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ScreeningId(String);

impl ScreeningId {
    /// The format, as an error names it.
    pub const FORMAT: &'static str =
        "1 to 64 characters of A-Z, a-z, 0-9, '-' and '_' (a screening number, never a name or record number)";

    /// The identifier, or the format it does not have.
    pub fn parse(text: &str) -> Result<ScreeningId, &'static str> {
        let valid =
            (1..=64).contains(&text.len()) && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if valid {
            Ok(ScreeningId(text.to_owned()))
        } else {
            Err(Self::FORMAT)
        }
    }

    /// The identifier as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

macro_rules! display_as_text {
    ($($t:ty),*) => {$(
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    )*};
}

display_as_text!(SiteCode, ScreeningId);

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
        assert_eq!(
            SiteCode::parse("COG-101").map(|c| c.to_string()),
            Ok("COG-101".to_owned())
        );
        assert!(SiteCode::parse("C").is_err());
        assert!(SiteCode::parse("cog-101").is_err());
        assert_eq!(SiteCode::parse("COG 101"), Err(SiteCode::FORMAT));
        assert!(SiteCode::parse(&"A".repeat(32)).is_ok());
        assert!(SiteCode::parse(&"A".repeat(33)).is_err());
    }

    #[test]
    fn screening_ids() {
        assert_eq!(
            ScreeningId::parse("SCR-2026_001").map(|c| c.to_string()),
            Ok("SCR-2026_001".to_owned())
        );
        assert!(ScreeningId::parse("").is_err());
        assert_eq!(ScreeningId::parse("Jane Doe"), Err(ScreeningId::FORMAT));
        assert!(ScreeningId::parse(&"x".repeat(64)).is_ok());
        assert!(ScreeningId::parse(&"x".repeat(65)).is_err());
    }

    #[test]
    fn subject_ids() {
        assert_eq!(subject_id("ANBL1221", 7), "ANBL1221-0007");
        assert_eq!(subject_id("ANBL1221", 12345), "ANBL1221-12345");
    }
}
