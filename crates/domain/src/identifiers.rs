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

/// A country as its ISO 3166-1 alpha-3 code, for example "USA" (SDTM DM.COUNTRY), checked
/// against the standard's list.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Country(String);

impl Country {
    /// The format, as an error names it.
    pub const FORMAT: &'static str = "an ISO 3166-1 alpha-3 country code in capitals, for example USA or CAN";

    /// The country, or the format it does not have.
    pub fn parse(text: &str) -> Result<Country, &'static str> {
        let capitals = text.len() == 3 && text.chars().all(|c| c.is_ascii_uppercase());
        if capitals && celes::Country::from_alpha3(text).is_ok() {
            Ok(Country(text.to_owned()))
        } else {
            Err(Self::FORMAT)
        }
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

/// A study subject identifier: a trial id (1 to 20 characters of A–Z and 0–9), '-' and the
/// subject's number in at least four digits, for example `ANBL1221-0007` (see [`subject_id`]).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SubjectId(String);

impl SubjectId {
    /// The format, as an error names it.
    pub const FORMAT: &'static str = "a study subject identifier such as ANBL1221-0007 (trial id, '-', 4 to 20 digits)";

    /// The identifier, or the format it does not have.
    pub fn parse(text: &str) -> Result<SubjectId, &'static str> {
        let valid = text.rsplit_once('-').is_some_and(|(trial, number)| {
            (1..=20).contains(&trial.len())
                && trial.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
                && (4..=20).contains(&number.len())
                && number.chars().all(|c| c.is_ascii_digit())
        });
        if valid {
            Ok(SubjectId(text.to_owned()))
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

        /// A checked identifier reads as the text it is.
        impl std::ops::Deref for $t {
            type Target = str;

            fn deref(&self) -> &str {
                &self.0
            }
        }
    )*};
}

display_as_text!(SiteCode, ScreeningId, SubjectId, Country);

/// The study subject identifier of the `number`-th subject (1-based) of a trial, for example
/// `ANBL1221-0007`. At least four digits, more when the trial grows past 9999.
pub fn subject_id(trial_id: &str, number: u64) -> String {
    format!("{trial_id}-{number:04}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn countries_are_iso_3166_alpha_3_codes() {
        for code in ["USA", "CAN", "AUS", "NZL", "CHE"] {
            assert_eq!(Country::parse(code).map(|c| c.to_string()), Ok(code.to_owned()));
        }
        // Alpha-2, lower case, unassigned and the old "UK" are refused.
        for code in ["US", "usa", "XYZ", "UK", "", "GBRX"] {
            assert_eq!(Country::parse(code), Err(Country::FORMAT), "{code}");
        }
    }

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
    fn parsed_subject_ids() {
        assert_eq!(
            SubjectId::parse("ANBL1221-0007").map(|s| s.to_string()),
            Ok("ANBL1221-0007".to_owned())
        );
        assert!(SubjectId::parse("ANBL1221-12345").is_ok());
        assert!(SubjectId::parse(&subject_id("ANBL1221", u64::MAX)).is_ok());
        for bad in [
            "",
            "ANBL1221",
            "ANBL1221-007",
            "anbl1221-0007",
            "-0007",
            "ANBL1221-00x7",
            "Jane Doe-1234",
        ] {
            assert_eq!(SubjectId::parse(bad), Err(SubjectId::FORMAT), "{bad}");
        }
        assert!(SubjectId::parse(&format!("{}-0001", "A".repeat(21))).is_err());
    }

    #[test]
    fn subject_ids() {
        assert_eq!(subject_id("ANBL1221", 7), "ANBL1221-0007");
        assert_eq!(subject_id("ANBL1221", 12345), "ANBL1221-12345");
    }
}
