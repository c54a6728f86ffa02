//! When a cached token is renewed, and until when it may still be used.
//!
//! A token has three ages. *Fresh*: handed out as it is. *Due*: still valid,
//! still handed out, but the first caller to see it so starts one renewal in
//! the background. *Expired*: never handed out; callers wait for the renewal.
//!
//! The default renewal point is 80 % of the lifetime or 30 s before expiry,
//! whichever comes first, but never before half the lifetime: for a 1-hour
//! token that is at 48 minutes, for a 2-minute token at 90 s, and for a 20 s
//! token at 10 s (30 s before its expiry would be before it was issued, and it
//! would be renewed on every call).
//!
//! Lifetimes count from the moment the request was *sent*, not answered, so
//! that network time is on the safe side. And `expires_in` is whole seconds
//! (RFC 6749 §5.1) while servers record expiry as whole seconds too, so the
//! token may end up to a second before "sent + expires_in": the last second
//! of the announced lifetime is never used.

use std::time::Duration;

use tokio::time::Instant;

/// The part of the announced lifetime never used (see the module docs).
const EXPIRES_IN_GRANULARITY: Duration = Duration::from_secs(1);

/// Lifetimes are capped here, so that instants never overflow.
const MAX_LIFETIME: Duration = Duration::from_secs(366 * 24 * 60 * 60);

/// A renewal never starts before this fraction of the lifetime has passed.
const EARLIEST_FRACTION: f64 = 0.5;

/// When to renew a cached token.
///
/// By default at 80 % of its lifetime or 30 s before it ends, whichever is
/// earlier, but never before half of it has passed: a 1-hour token at 48
/// minutes, a 2-minute token at 90 s, a 20 s token at 10 s. Until the renewal
/// lands, the token in hand is still used; a caller only waits when there
/// is no valid token.
///
/// Lifetimes count from when the request was sent, and the last second of
/// `expires_in` is never used: servers round expiry to whole seconds, so the
/// token may end up to a second before "sent + expires_in".
#[derive(Clone, Debug, PartialEq)]
pub struct RenewalPolicy {
    at_fraction: f64,
    before_expiry: Duration,
    lifetime_if_unknown: Duration,
}

impl Default for RenewalPolicy {
    fn default() -> Self {
        RenewalPolicy {
            at_fraction: 0.8,
            before_expiry: Duration::from_secs(30),
            lifetime_if_unknown: Duration::from_secs(300),
        }
    }
}

impl RenewalPolicy {
    /// Renew once this fraction of the lifetime has passed (or earlier, by
    /// [`RenewalPolicy::before_expiry`]). Kept within `[0.5, 1]`: never before
    /// half the lifetime.
    pub fn at_fraction(mut self, fraction: f64) -> Self {
        if fraction.is_finite() {
            self.at_fraction = fraction.clamp(EARLIEST_FRACTION, 1.0);
        }
        self
    }

    /// Renew this long before expiry (or earlier, by
    /// [`RenewalPolicy::at_fraction`]); never before half the lifetime.
    pub fn before_expiry(mut self, margin: Duration) -> Self {
        self.before_expiry = margin;
        self
    }

    /// The lifetime assumed for a token response without `expires_in` (RFC
    /// 6749 §5.1 only recommends it). Default 5 minutes.
    pub fn lifetime_if_unknown(mut self, lifetime: Duration) -> Self {
        self.lifetime_if_unknown = lifetime.min(MAX_LIFETIME);
        self
    }

    /// How long after its issue a token with usable `lifetime` is renewed.
    pub fn renew_after(&self, lifetime: Duration) -> Duration {
        let lifetime = lifetime.min(MAX_LIFETIME);
        let by_fraction = lifetime.mul_f64(self.at_fraction);
        let by_margin = lifetime.saturating_sub(self.before_expiry);
        let earliest = lifetime.mul_f64(EARLIEST_FRACTION);
        by_fraction.min(by_margin).max(earliest)
    }

    /// The schedule of a token requested at `sent_at` whose response said
    /// `expires_in` seconds (`None` when it said nothing usable).
    pub(crate) fn schedule(&self, sent_at: Instant, expires_in: Option<u64>) -> Schedule {
        let lifetime = match expires_in {
            Some(seconds) => Duration::from_secs(seconds).saturating_sub(EXPIRES_IN_GRANULARITY),
            None => self.lifetime_if_unknown,
        }
        .min(MAX_LIFETIME);
        let at = |offset| sent_at.checked_add(offset).unwrap_or(sent_at);
        Schedule {
            renew_at: at(self.renew_after(lifetime)),
            expires_at: at(lifetime),
        }
    }
}

/// The two instants that matter about a cached token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Schedule {
    pub renew_at: Instant,
    pub expires_at: Instant,
}

/// Where a token stands at some instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Age {
    Fresh,
    Due,
    Expired,
}

impl Schedule {
    pub(crate) fn age(&self, now: Instant) -> Age {
        if now >= self.expires_at {
            Age::Expired
        } else if now >= self.renew_at {
            Age::Due
        } else {
            Age::Fresh
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn long_tokens_renew_at_80_percent() {
        let policy = RenewalPolicy::default();
        assert_eq!(policy.renew_after(secs(3600)), secs(2880));
        assert_eq!(policy.renew_after(secs(86_400)), secs(69_120));
    }

    #[test]
    fn medium_tokens_renew_30_seconds_before_expiry() {
        let policy = RenewalPolicy::default();
        // 80 % of 120 s is 96 s; 30 s before expiry (90 s) is earlier.
        assert_eq!(policy.renew_after(secs(120)), secs(90));
        // The two rules meet at 150 s.
        assert_eq!(policy.renew_after(secs(150)), secs(120));
        assert_eq!(policy.renew_after(secs(100)), secs(70));
    }

    #[test]
    fn short_tokens_never_renew_before_half_their_lifetime() {
        let policy = RenewalPolicy::default();
        assert_eq!(policy.renew_after(secs(20)), secs(10));
        assert_eq!(policy.renew_after(secs(60)), secs(30));
        assert_eq!(policy.renew_after(secs(2)), secs(1));
        assert_eq!(policy.renew_after(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn the_policy_is_configurable_within_bounds() {
        let policy = RenewalPolicy::default().at_fraction(0.9).before_expiry(secs(5));
        assert_eq!(policy.renew_after(secs(100)), secs(90));
        assert_eq!(policy.renew_after(secs(20)), secs(15));
        // A fraction below one half is raised to it; nonsense is ignored.
        let eager = RenewalPolicy::default()
            .at_fraction(0.1)
            .before_expiry(Duration::ZERO);
        assert_eq!(eager.renew_after(secs(100)), secs(50));
        assert_eq!(
            RenewalPolicy::default().at_fraction(f64::NAN),
            RenewalPolicy::default()
        );
        let late = RenewalPolicy::default()
            .at_fraction(7.0)
            .before_expiry(Duration::ZERO);
        assert_eq!(late.renew_after(secs(100)), secs(100));
    }

    #[test]
    fn schedules_count_from_the_request_and_drop_the_last_second() {
        let policy = RenewalPolicy::default();
        let sent = Instant::now();
        let schedule = policy.schedule(sent, Some(3600));
        assert_eq!(schedule.expires_at, sent + secs(3599));
        assert_eq!(schedule.renew_at, sent + policy.renew_after(secs(3599)));
        assert_eq!(schedule.age(sent), Age::Fresh);
        assert_eq!(schedule.age(schedule.renew_at), Age::Due);
        assert_eq!(schedule.age(schedule.expires_at), Age::Expired);

        let two = policy.schedule(sent, Some(2));
        assert_eq!(
            (two.renew_at, two.expires_at),
            (sent + Duration::from_millis(500), sent + secs(1))
        );
        // Zero and one second are expired as they arrive (the caller that
        // asked gets them all the same).
        for expires_in in [0, 1] {
            assert_eq!(policy.schedule(sent, Some(expires_in)).age(sent), Age::Expired);
        }
    }

    #[test]
    fn unknown_and_absurd_lifetimes() {
        let policy = RenewalPolicy::default().lifetime_if_unknown(secs(60));
        let sent = Instant::now();
        assert_eq!(policy.schedule(sent, None).expires_at, sent + secs(60));
        let forever = policy.schedule(sent, Some(u64::MAX));
        assert_eq!(forever.expires_at, sent + MAX_LIFETIME);
    }
}
