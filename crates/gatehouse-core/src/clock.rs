//! Time, as the protocol sees it: whole seconds since the Unix epoch, from a [`Clock`].
//!
//! The server reads one clock, given by whoever builds it: the binary gives
//! [`SystemClock`], tests may give a [`FixedClock`] they move by hand, so expiry,
//! grace periods and lockouts are tested without waiting for them.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// Seconds since the Unix epoch.
pub type UnixTime = i64;

/// Where the protocol reads the time. The server uses [`SystemClock`]; tests use
/// [`FixedClock`].
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> UnixTime;

    /// The current time since the Unix epoch, as precise as the clock is (whole
    /// seconds unless a clock knows better), for durations shorter than the
    /// protocol's seconds: the login brake's delays.
    fn since_epoch(&self) -> Duration {
        Duration::from_secs(u64::try_from(self.now()).unwrap_or(0))
    }
}

/// The system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> UnixTime {
        i64::try_from(self.since_epoch().as_secs()).unwrap_or(i64::MAX)
    }

    #[allow(clippy::disallowed_methods)] // the one place that reads the real clock
    fn since_epoch(&self) -> Duration {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
    }
}

/// A clock that stands still until told to move; for tests.
#[derive(Debug, Default)]
pub struct FixedClock(AtomicI64);

impl FixedClock {
    /// A clock stopped at `now`.
    pub fn new(now: UnixTime) -> Self {
        Self(AtomicI64::new(now))
    }

    /// Moves the clock forward by `seconds`.
    pub fn advance(&self, seconds: i64) {
        self.0.fetch_add(seconds, Ordering::SeqCst);
    }

    /// Moves the clock to `now`.
    pub fn set(&self, now: UnixTime) {
        self.0.store(now, Ordering::SeqCst);
    }
}

impl Clock for FixedClock {
    fn now(&self) -> UnixTime {
        self.0.load(Ordering::SeqCst)
    }
}
