//! The status of one planned administration, from the calendar to what the ward recorded.

/// Where an administration stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AdministrationStatus {
    /// On the calendar, not recorded yet.
    Planned,
    /// Given in full.
    Given,
    /// Given in part.
    PartiallyGiven,
    /// Held for now; may still be given.
    Held,
    /// Not given (recorded, or closed when the agent was discontinued).
    NotGiven,
}

impl AdministrationStatus {
    /// Every status.
    pub const ALL: [AdministrationStatus; 5] = [
        AdministrationStatus::Planned,
        AdministrationStatus::Given,
        AdministrationStatus::PartiallyGiven,
        AdministrationStatus::Held,
        AdministrationStatus::NotGiven,
    ];

    /// The stored name, for example "not_given".
    pub fn as_str(self) -> &'static str {
        match self {
            AdministrationStatus::Planned => "planned",
            AdministrationStatus::Given => "given",
            AdministrationStatus::PartiallyGiven => "partially_given",
            AdministrationStatus::Held => "held",
            AdministrationStatus::NotGiven => "not_given",
        }
    }

    /// The status with this stored name.
    pub fn parse(name: &str) -> Option<AdministrationStatus> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// Whether it still waits to be given: planned or held. Only these may be recorded, and a
    /// discontinued agent's are closed as not given.
    pub fn is_open(self) -> bool {
        matches!(self, AdministrationStatus::Planned | AdministrationStatus::Held)
    }

    /// Whether a dose went in (in full or in part).
    pub fn was_given(self) -> bool {
        matches!(self, AdministrationStatus::Given | AdministrationStatus::PartiallyGiven)
    }
}

/// What a recording of an administration is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recording {
    /// The first record of a planned or held administration.
    First,
    /// A correction of what was recorded.
    Correction,
}

/// Why a recording is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordingRefusal {
    /// Already recorded, and no correction was asked for.
    AlreadyRecorded,
    /// A correction of an administration nothing was recorded for yet.
    NothingToCorrect,
    /// A correction against another version than the stored one.
    StaleEtag {
        /// The stored version.
        current: i32,
    },
}

/// Whether an administration at `status` and `version` may be recorded: a first record while it
/// is open (planned or held), and a correction (with the version the caller read) once
/// something is recorded, a hold included.
pub fn check_recording(
    status: AdministrationStatus,
    version: i32,
    correction_of: Option<i32>,
) -> Result<Recording, RecordingRefusal> {
    match (correction_of, status.is_open()) {
        (None, true) => Ok(Recording::First),
        (None, false) => Err(RecordingRefusal::AlreadyRecorded),
        (Some(_), true) if status == AdministrationStatus::Planned => Err(RecordingRefusal::NothingToCorrect),
        (Some(read), _) if read != version => Err(RecordingRefusal::StaleEtag { current: version }),
        (Some(_), _) => Ok(Recording::Correction),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_records_while_open_corrections_once_recorded() {
        use AdministrationStatus::*;
        assert_eq!(check_recording(Planned, 1, None), Ok(Recording::First));
        assert_eq!(check_recording(Held, 2, None), Ok(Recording::First));
        assert_eq!(check_recording(Given, 2, None), Err(RecordingRefusal::AlreadyRecorded));
        assert_eq!(
            check_recording(NotGiven, 2, None),
            Err(RecordingRefusal::AlreadyRecorded)
        );
        assert_eq!(
            check_recording(Planned, 1, Some(1)),
            Err(RecordingRefusal::NothingToCorrect)
        );
        assert_eq!(check_recording(Held, 2, Some(2)), Ok(Recording::Correction));
        assert_eq!(check_recording(Given, 2, Some(2)), Ok(Recording::Correction));
        assert_eq!(
            check_recording(Given, 3, Some(2)),
            Err(RecordingRefusal::StaleEtag { current: 3 })
        );
    }

    #[test]
    fn stored_names_round_trip_and_open_ones_are_planned_or_held() {
        for s in AdministrationStatus::ALL {
            assert_eq!(AdministrationStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(AdministrationStatus::parse("PLANNED"), None);
        let open: Vec<_> = AdministrationStatus::ALL.into_iter().filter(|s| s.is_open()).collect();
        assert_eq!(open, [AdministrationStatus::Planned, AdministrationStatus::Held]);
        let given: Vec<_> = AdministrationStatus::ALL
            .into_iter()
            .filter(|s| s.was_given())
            .collect();
        assert_eq!(
            given,
            [AdministrationStatus::Given, AdministrationStatus::PartiallyGiven]
        );
    }
}
