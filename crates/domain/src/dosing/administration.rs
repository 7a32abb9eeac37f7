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

#[cfg(test)]
mod tests {
    use super::*;

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
