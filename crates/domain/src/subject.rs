//! A subject's lifecycle in a trial and the transitions the protocol allows.

/// Where a subject is in the trial.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SubjectStatus {
    /// Enrolled and receiving protocol therapy.
    OnProtocolTherapy,
    /// Protocol therapy ended; still followed.
    OffProtocolTherapy,
    /// Follow-up ended.
    OffStudy,
    /// Consent withdrawn.
    Withdrawn,
}

impl SubjectStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [SubjectStatus; 4] = [
        SubjectStatus::OnProtocolTherapy,
        SubjectStatus::OffProtocolTherapy,
        SubjectStatus::OffStudy,
        SubjectStatus::Withdrawn,
    ];

    /// The stored name, for example "on_protocol_therapy".
    pub fn as_str(self) -> &'static str {
        match self {
            SubjectStatus::OnProtocolTherapy => "on_protocol_therapy",
            SubjectStatus::OffProtocolTherapy => "off_protocol_therapy",
            SubjectStatus::OffStudy => "off_study",
            SubjectStatus::Withdrawn => "withdrawn",
        }
    }

    /// The status with this stored name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// Whether the protocol allows moving from `self` to `to`: on therapy → off therapy → off
    /// study, and withdrawal from either of the first two. Off study and withdrawn are final.
    pub fn can_become(self, to: SubjectStatus) -> bool {
        use SubjectStatus::*;
        matches!(
            (self, to),
            (OnProtocolTherapy, OffProtocolTherapy)
                | (OffProtocolTherapy, OffStudy)
                | (OnProtocolTherapy | OffProtocolTherapy, Withdrawn)
        )
    }
}

/// Why a status change is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusChangeRefusal {
    /// The lifecycle does not allow `from` → `to`.
    NotAllowed {
        /// The current status.
        from: SubjectStatus,
        /// The status asked for.
        to: SubjectStatus,
    },
    /// The change would take effect before the subject was enrolled.
    BeforeEnrollment,
}

/// Whether a subject `from` may become `to` with effect on `effective_on`, having been enrolled
/// on `enrolled_on`: the lifecycle must allow it, and it cannot take effect before enrollment
/// (the day of enrollment itself is allowed).
pub fn check_status_change(
    from: SubjectStatus,
    to: SubjectStatus,
    effective_on: chrono::NaiveDate,
    enrolled_on: chrono::NaiveDate,
) -> Result<(), StatusChangeRefusal> {
    if !from.can_become(to) {
        return Err(StatusChangeRefusal::NotAllowed { from, to });
    }
    if effective_on < enrolled_on {
        return Err(StatusChangeRefusal::BeforeEnrollment);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::SubjectStatus::{self, *};
    use super::{StatusChangeRefusal, check_status_change};

    #[test]
    fn a_change_takes_effect_on_or_after_enrollment_and_follows_the_lifecycle() {
        let day = |d| chrono::NaiveDate::from_ymd_opt(2026, 3, d).unwrap_or_default();
        assert_eq!(
            check_status_change(OnProtocolTherapy, OffProtocolTherapy, day(10), day(10)),
            Ok(())
        );
        assert_eq!(
            check_status_change(OnProtocolTherapy, OffProtocolTherapy, day(9), day(10)),
            Err(StatusChangeRefusal::BeforeEnrollment)
        );
        // The lifecycle is judged first: a forbidden change is named as such whatever its date.
        assert_eq!(
            check_status_change(OffStudy, OnProtocolTherapy, day(9), day(10)),
            Err(StatusChangeRefusal::NotAllowed {
                from: OffStudy,
                to: OnProtocolTherapy
            })
        );
    }

    #[test]
    fn only_the_protocol_lifecycle_is_allowed() {
        // The full 4 x 4 table, written out from the lifecycle rather than from the code.
        let allowed = [
            (OnProtocolTherapy, OffProtocolTherapy),
            (OffProtocolTherapy, OffStudy),
            (OnProtocolTherapy, Withdrawn),
            (OffProtocolTherapy, Withdrawn),
        ];
        for from in SubjectStatus::ALL {
            for to in SubjectStatus::ALL {
                assert_eq!(from.can_become(to), allowed.contains(&(from, to)), "{from:?} -> {to:?}");
            }
        }
    }

    #[test]
    fn stored_names_round_trip() {
        for s in SubjectStatus::ALL {
            assert_eq!(SubjectStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(SubjectStatus::parse("enrolled"), None);
    }
}
