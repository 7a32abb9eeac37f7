//! Accrual: whether one more enrollment is allowed, by the holds an administrator placed on the
//! trial or a site and by the protocol's maxima for the trial, the site and the stratum.

use crate::protocol::AccrualRules;

/// What a hold or a limit applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The whole trial.
    Trial,
    /// The enrolling site.
    Site,
    /// The candidate's stratum.
    Stratum,
}

impl Scope {
    /// The name errors and summaries use: "trial", "site" or "stratum".
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Trial => "trial",
            Scope::Site => "site",
            Scope::Stratum => "stratum",
        }
    }
}

/// Enrollments already made, before the one being decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Enrolled {
    /// In the trial.
    pub trial: u64,
    /// At the enrolling site.
    pub site: u64,
    /// In the candidate's stratum.
    pub stratum: u64,
}

/// Why the enrollment is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccrualRefusal {
    /// Accrual is closed (held) for the trial or the site, with the administrator's reason.
    Closed {
        /// Trial or site.
        scope: Scope,
        /// Why it was closed.
        reason: String,
    },
    /// The protocol's maximum for the trial, the site or the stratum is reached.
    LimitReached {
        /// Trial, site or stratum.
        scope: Scope,
        /// The maximum [configurable].
        maximum: u32,
    },
}

/// Admits one more enrollment unless the trial or the site is closed (`trial_hold`,
/// `site_hold`: the reasons of the holds in force) or `enrolled` has reached a maximum of
/// `rules`. A closure is reported before a limit, the trial before the site before the stratum.
pub fn check_accrual(
    rules: &AccrualRules,
    enrolled: Enrolled,
    trial_hold: Option<&str>,
    site_hold: Option<&str>,
) -> Result<(), AccrualRefusal> {
    for (scope, hold) in [(Scope::Trial, trial_hold), (Scope::Site, site_hold)] {
        if let Some(reason) = hold {
            return Err(AccrualRefusal::Closed {
                scope,
                reason: reason.to_owned(),
            });
        }
    }
    for (scope, maximum, count) in [
        (Scope::Trial, rules.maximum, enrolled.trial),
        (Scope::Site, rules.site_maximum, enrolled.site),
        (Scope::Stratum, rules.stratum_maximum, enrolled.stratum),
    ] {
        if let Some(maximum) = maximum
            && count >= u64::from(maximum)
        {
            return Err(AccrualRefusal::LimitReached { scope, maximum });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> AccrualRules {
        AccrualRules {
            target: Some(30),
            maximum: Some(36),
            site_target: None,
            site_maximum: Some(8),
            stratum_target: None,
            stratum_maximum: Some(12),
        }
    }

    fn enrolled(trial: u64, site: u64, stratum: u64) -> Enrolled {
        Enrolled { trial, site, stratum }
    }

    #[test]
    fn the_last_place_under_each_maximum_is_admitted_and_the_next_refused() {
        // 35 enrolled: the 36th is the last the maximum of 36 admits.
        assert_eq!(check_accrual(&rules(), enrolled(35, 7, 11), None, None), Ok(()));
        let limit = |scope, maximum| Err(AccrualRefusal::LimitReached { scope, maximum });
        assert_eq!(
            check_accrual(&rules(), enrolled(36, 0, 0), None, None),
            limit(Scope::Trial, 36)
        );
        assert_eq!(
            check_accrual(&rules(), enrolled(10, 8, 0), None, None),
            limit(Scope::Site, 8)
        );
        assert_eq!(
            check_accrual(&rules(), enrolled(10, 1, 12), None, None),
            limit(Scope::Stratum, 12)
        );
        // The trial is named first when several maxima are reached.
        assert_eq!(
            check_accrual(&rules(), enrolled(36, 8, 12), None, None),
            limit(Scope::Trial, 36)
        );
    }

    #[test]
    fn without_maxima_nothing_is_refused_but_a_hold() {
        let none = AccrualRules::default();
        assert_eq!(check_accrual(&none, enrolled(10_000, 5_000, 5_000), None, None), Ok(()));
        assert_eq!(
            check_accrual(&none, enrolled(0, 0, 0), None, Some("site audit")),
            Err(AccrualRefusal::Closed {
                scope: Scope::Site,
                reason: "site audit".into()
            })
        );
    }

    #[test]
    fn a_closure_is_reported_before_a_limit_and_the_trial_before_the_site() {
        let refused = check_accrual(&rules(), enrolled(36, 8, 12), Some("Simon stage 1 complete"), Some("x"));
        assert_eq!(
            refused,
            Err(AccrualRefusal::Closed {
                scope: Scope::Trial,
                reason: "Simon stage 1 complete".into()
            })
        );
    }
}
