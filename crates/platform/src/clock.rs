//! The services' clock. Production reads the system clock. A process that replays a trial (the
//! `trialops demo`, on its own throw-away databases) installs a simulated clock once, before it
//! builds any service, and moves it forward as the replayed trial's calendar advances.
//!
//! There is deliberately no setting, environment variable or RPC that installs it: only code
//! linked into the process can, and the service binaries never do. Token expiry is still checked
//! against the system clock.

use std::sync::{Mutex, OnceLock, PoisonError};

use chrono::{DateTime, NaiveDate, Utc};

static SIMULATED: OnceLock<SimulatedClock> = OnceLock::new();

/// A clock that shows what its owner sets.
#[derive(Debug)]
pub struct SimulatedClock {
    now: Mutex<DateTime<Utc>>,
}

impl SimulatedClock {
    /// Moves the clock to `instant`; the clock never goes back (an earlier instant is ignored).
    pub fn advance_to(&self, instant: DateTime<Utc>) {
        let mut now = self.now.lock().unwrap_or_else(PoisonError::into_inner);
        if instant > *now {
            *now = instant;
        }
    }

    /// The simulated instant.
    pub fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Installs the process's simulated clock at `start`; an error if one is installed already.
pub fn simulate(start: DateTime<Utc>) -> anyhow::Result<&'static SimulatedClock> {
    SIMULATED
        .set(SimulatedClock { now: Mutex::new(start) })
        .map_err(|_| anyhow::anyhow!("a simulated clock is installed already"))?;
    SIMULATED
        .get()
        .ok_or_else(|| anyhow::anyhow!("the simulated clock was not installed"))
}

/// Whether this process runs on a simulated clock.
pub fn is_simulated() -> bool {
    SIMULATED.get().is_some()
}

/// The current instant: the system clock, or the simulated one in a replay.
pub fn now() -> DateTime<Utc> {
    SIMULATED.get().map_or_else(Utc::now, SimulatedClock::now)
}

/// Today's date, UTC.
pub fn today() -> NaiveDate {
    now().date_naive()
}
