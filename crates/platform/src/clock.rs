//! The services' clock, injected rather than process-global. Each service is built with a
//! [`Clock`] (the system clock unless its owner says otherwise); its RPC layer runs every call,
//! and its background writer every write, inside [`scope`] with that clock, so [`now`] in a
//! handler, the audit trail or the idempotency records reads the clock of the service doing
//! the work. Two services in one process can run on different clocks.
//!
//! A replay of a trial (the `trialops demo`, on its own throw-away databases) builds its
//! services with a simulated clock and moves it forward as the replayed calendar advances.
//! There is no setting, environment variable or RPC that makes a clock simulated: only code that
//! builds the services can, and the service binaries never do. Token expiry is still checked
//! against the system clock.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, NaiveDate, Utc};

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

/// Where a service reads the time: the system clock (the default), or a simulated one.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    simulated: Option<Arc<SimulatedClock>>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Clock {
        Clock::default()
    }

    /// A simulated clock starting at `start`; [`Clock::simulation`] moves it.
    pub fn simulated(start: DateTime<Utc>) -> Clock {
        Clock {
            simulated: Some(Arc::new(SimulatedClock { now: Mutex::new(start) })),
        }
    }

    /// The simulated clock behind this one, if it is simulated.
    pub fn simulation(&self) -> Option<&SimulatedClock> {
        self.simulated.as_deref()
    }

    /// The current instant.
    pub fn now(&self) -> DateTime<Utc> {
        self.simulated.as_deref().map_or_else(Utc::now, SimulatedClock::now)
    }

    /// Today's date, UTC.
    pub fn today(&self) -> NaiveDate {
        self.now().date_naive()
    }
}

tokio::task_local! {
    static CURRENT: Clock;
}

/// Runs `work` with `clock` as the clock [`now`] reads.
pub async fn scope<F: Future>(clock: Clock, work: F) -> F::Output {
    CURRENT.scope(clock, work).await
}

/// The clock of the service doing this work (the system clock outside any service's
/// [`scope`]), to carry into a task that works for it.
pub fn current() -> Clock {
    CURRENT.try_with(Clock::clone).unwrap_or_else(|_| Clock::system())
}

/// The current instant on the clock of the service doing this work; the system clock outside
/// any service's [`scope`].
pub fn now() -> DateTime<Utc> {
    CURRENT.try_with(Clock::now).unwrap_or_else(|_| Utc::now())
}

/// [`now`] at the precision the databases keep (microseconds): what a record stores as its
/// time, so the response that returns it and every later read agree.
pub fn now_stored() -> DateTime<Utc> {
    use chrono::SubsecRound;
    now().trunc_subsecs(6)
}

/// Today's date, UTC, on the same clock as [`now`].
pub fn today() -> NaiveDate {
    now().date_naive()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn each_scope_reads_its_own_clock_and_outside_reads_the_system() {
        let start = DateTime::parse_from_rfc3339("2013-06-03T08:00:00Z")
            .unwrap_or_else(|e| panic!("{e}"))
            .with_timezone(&Utc);
        let replay = Clock::simulated(start);
        assert_eq!(scope(replay.clone(), async { now() }).await, start);
        let later = start + chrono::Duration::days(21);
        replay
            .simulation()
            .unwrap_or_else(|| panic!("simulated"))
            .advance_to(later);
        // Never back: an earlier instant is ignored.
        replay
            .simulation()
            .unwrap_or_else(|| panic!("simulated"))
            .advance_to(start);
        assert_eq!(scope(replay.clone(), async { today() }).await, later.date_naive());
        // Another service in the same process, on the system clock, and code outside any scope.
        let system = scope(Clock::system(), async { now() }).await;
        assert!(system.date_naive() > later.date_naive(), "{system}");
        assert!(now() > later);
    }
}
