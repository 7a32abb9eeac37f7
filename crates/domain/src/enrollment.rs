//! The decision EnrollSubject makes about a candidate's latest screening before it takes a
//! subject number: it must exist, come from the enrolling site, meet every criterion and still
//! be within the protocol's validity window.

use chrono::NaiveDate;

/// What enrollment needs of the candidate's latest screening.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LatestScreening<'a> {
    /// The site that recorded it.
    pub site_code: &'a str,
    /// Whether every criterion was met.
    pub eligible: bool,
    /// The date the site assessed the candidate.
    pub assessed_on: NaiveDate,
}

/// Why the screening does not admit enrollment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScreeningRefusal {
    /// No screening is recorded.
    NotScreened,
    /// The screening was recorded by another site.
    AtAnotherSite {
        /// The site that recorded it.
        site_code: String,
    },
    /// A criterion was not met.
    Ineligible,
    /// The screening is older than the validity window.
    Expired {
        /// Days from the assessment to `today`.
        age_days: i64,
        /// The protocol's window [configurable].
        validity_days: u32,
    },
}

/// Admits enrollment at `enrolling_site` on `today` when the latest screening exists, is from
/// that site, is eligible and was assessed at most `validity_days` days before `today` (the
/// last day of the window still admits).
pub fn check_screening(
    latest: Option<LatestScreening<'_>>,
    enrolling_site: &str,
    today: NaiveDate,
    validity_days: u32,
) -> Result<(), ScreeningRefusal> {
    let Some(screening) = latest else {
        return Err(ScreeningRefusal::NotScreened);
    };
    if screening.site_code != enrolling_site {
        return Err(ScreeningRefusal::AtAnotherSite {
            site_code: screening.site_code.to_owned(),
        });
    }
    if !screening.eligible {
        return Err(ScreeningRefusal::Ineligible);
    }
    let age_days = (today - screening.assessed_on).num_days();
    if age_days > i64::from(validity_days) {
        return Err(ScreeningRefusal::Expired {
            age_days,
            validity_days,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap_or_else(|| panic!("{y}-{m}-{d}"))
    }

    fn screened(site_code: &str, eligible: bool, assessed_on: NaiveDate) -> Option<LatestScreening<'_>> {
        Some(LatestScreening {
            site_code,
            eligible,
            assessed_on,
        })
    }

    #[test]
    fn refusals_in_the_order_a_coordinator_fixes_them() {
        let today = date(2026, 3, 22);
        assert_eq!(
            check_screening(None, "COG-101", today, 21),
            Err(ScreeningRefusal::NotScreened)
        );
        // Another site's ineligible screening: the site is named first.
        assert_eq!(
            check_screening(screened("COG-202", false, today), "COG-101", today, 21),
            Err(ScreeningRefusal::AtAnotherSite {
                site_code: "COG-202".into()
            })
        );
        assert_eq!(
            check_screening(screened("COG-101", false, today), "COG-101", today, 21),
            Err(ScreeningRefusal::Ineligible)
        );
    }

    #[test]
    fn the_validity_window_includes_its_last_day() {
        // Assessed on 1 March: 21 days later is 22 March (still admitted), 23 March is day 22.
        let assessed = date(2026, 3, 1);
        let on = |today| check_screening(screened("COG-101", true, assessed), "COG-101", today, 21);
        assert_eq!(on(date(2026, 3, 1)), Ok(()));
        assert_eq!(on(date(2026, 3, 22)), Ok(()));
        assert_eq!(
            on(date(2026, 3, 23)),
            Err(ScreeningRefusal::Expired {
                age_days: 22,
                validity_days: 21
            })
        );
        // Across a month end: 20 February + 21 days = 13 March (2026 is not a leap year).
        let february = screened("COG-101", true, date(2026, 2, 20));
        assert_eq!(check_screening(february, "COG-101", date(2026, 3, 13), 21), Ok(()));
        assert!(check_screening(february, "COG-101", date(2026, 3, 14), 21).is_err());
    }
}
