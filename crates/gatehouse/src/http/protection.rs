//! Abuse protection of the token endpoint: rate limits per client id and per source
//! address, and a brake on password guessing.
//!
//! Password guessing is tracked three ways, in memory (each node on its own):
//! - **one username from one address**: after 3 failures each next attempt must wait
//!   1, 2, 4 … (at most 60) seconds after the last failure, and after
//!   `lockout_threshold` failures the pair is locked for `lockout_duration`;
//! - **one address, any usernames** (credential stuffing): locked for
//!   `lockout_duration` after 5 × `lockout_threshold` failures;
//! - **one username, any addresses** (a distributed attack): after 2 ×
//!   `lockout_threshold` failures, at most one attempt a second. This is a brake,
//!   never a lock, so that nobody can lock a user out from an address the user does
//!   not use.
//!
//! `lockout_threshold = 0` turns all of this off. A success lifts what is known of
//! its username (pair and username counts); time lifts everything: a record is
//! forgotten `lockout_duration` after its last failure. Refusals are 429 with
//! `Retry-After`, decided before the password is checked, so a locked pair learns
//! nothing, not even whether a password was right.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use governor::clock::Clock as _;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tokio::time::Instant;

use crate::config;

/// Longest wait between two attempts of one pair before the lockout.
const MAX_DELAY: Duration = Duration::from_secs(60);
/// Failures of a pair before the delays start.
const FREE_ATTEMPTS: u32 = 3;
/// Records kept per map before old ones are swept out.
const MAX_RECORDS: usize = 100_000;

/// The limits in force.
pub struct Protection {
    per_client: Option<DefaultKeyedRateLimiter<String>>,
    per_address: Option<DefaultKeyedRateLimiter<IpAddr>>,
    logins: LoginGuard,
}

/// The failures of one key.
#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
}

#[derive(Default)]
struct LoginRecords {
    pairs: HashMap<(String, IpAddr), Failures>,
    addresses: HashMap<IpAddr, Failures>,
    usernames: HashMap<String, Failures>,
}

struct LoginGuard {
    /// 0: the guard is off.
    threshold: u32,
    duration: Duration,
    records: Mutex<LoginRecords>,
}

fn keyed_limiter<K: std::hash::Hash + Eq + Clone>(per_second: u32) -> Option<DefaultKeyedRateLimiter<K>> {
    let rate = NonZeroU32::new(per_second)?;
    let burst = NonZeroU32::new(per_second.saturating_mul(2)).unwrap_or(rate);
    Some(RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)))
}

impl Protection {
    /// The protection `settings` ask for.
    pub fn new(settings: &config::Protection) -> Self {
        Self {
            per_client: keyed_limiter(settings.rate_per_client),
            per_address: keyed_limiter(settings.rate_per_address),
            logins: LoginGuard {
                threshold: settings.lockout_threshold,
                duration: settings.lockout_duration,
                records: Mutex::new(LoginRecords::default()),
            },
        }
    }

    /// Counts one token request; `Err` is how long to wait when over a limit.
    pub fn admit(&self, client_id: Option<&str>, address: Option<IpAddr>) -> Result<(), Duration> {
        // The limiter's own clock: building a new quanta clock per call costs a CPUID
        // calibration (it was a tenth of a token request).
        if let (Some(limiter), Some(address)) = (&self.per_address, address) {
            limiter
                .check_key(&address)
                .map_err(|not_until| not_until.wait_time_from(limiter.clock().now()))?;
        }
        if let (Some(limiter), Some(client_id)) = (&self.per_client, client_id) {
            limiter
                .check_key(&client_id.to_owned())
                .map_err(|not_until| not_until.wait_time_from(limiter.clock().now()))?;
        }
        Ok(())
    }

    /// Whether `username` may try a password from `address` now; `Err` is how long
    /// to wait.
    pub fn login_allowed(&self, username: &str, address: Option<IpAddr>) -> Result<(), Duration> {
        self.logins.allowed(username, address, Instant::now())
    }

    /// Records a wrong password (or unknown or disabled user).
    pub fn login_failed(&self, username: &str, address: Option<IpAddr>) {
        self.logins.failed(username, address, Instant::now());
    }

    /// Records a successful login: what was held against the username is lifted.
    pub fn login_succeeded(&self, username: &str, address: Option<IpAddr>) {
        self.logins.succeeded(username, address);
    }

    /// Forgets rate-limit state that no longer matters (call now and then).
    pub fn sweep(&self) {
        for limiter in self.per_client.iter() {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        for limiter in self.per_address.iter() {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        self.logins.sweep(Instant::now());
    }
}

/// The unspecified address stands in for a request without a known peer (never the
/// case when served by [`crate::net::Listener`]).
fn address_or_unspecified(address: Option<IpAddr>) -> IpAddr {
    address.unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
}

impl LoginGuard {
    fn lock(&self) -> std::sync::MutexGuard<'_, LoginRecords> {
        match self.records.lock() {
            Ok(records) => records,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Failures still remembered at `now`.
    fn live(&self, failures: Option<&Failures>, now: Instant) -> Option<Failures> {
        failures.copied().filter(|f| now < f.last + self.duration)
    }

    fn allowed(&self, username: &str, address: Option<IpAddr>, now: Instant) -> Result<(), Duration> {
        if self.threshold == 0 {
            return Ok(());
        }
        let address = address_or_unspecified(address);
        let records = self.lock();
        let wait_until = |until: Instant| if now < until { Err(until - now) } else { Ok(()) };
        if let Some(pair) = self.live(records.pairs.get(&(username.to_owned(), address)), now) {
            if pair.count >= self.threshold {
                wait_until(pair.last + self.duration)?;
            } else if pair.count >= FREE_ATTEMPTS {
                let exponent = (pair.count - FREE_ATTEMPTS).min(6);
                wait_until(pair.last + Duration::from_secs(1 << exponent).min(MAX_DELAY))?;
            }
        }
        if let Some(from_address) = self.live(records.addresses.get(&address), now) {
            if from_address.count >= self.threshold.saturating_mul(5) {
                wait_until(from_address.last + self.duration)?;
            }
        }
        if let Some(user) = self.live(records.usernames.get(username), now) {
            if user.count >= self.threshold.saturating_mul(2) {
                wait_until(user.last + Duration::from_secs(1))?;
            }
        }
        Ok(())
    }

    fn failed(&self, username: &str, address: Option<IpAddr>, now: Instant) {
        if self.threshold == 0 {
            return;
        }
        let address = address_or_unspecified(address);
        let mut records = self.lock();
        if records.pairs.len() >= MAX_RECORDS {
            self.sweep_locked(&mut records, now);
        }
        let duration = self.duration;
        let bump = |entry: &mut Failures| {
            entry.count = if now < entry.last + duration {
                entry.count.saturating_add(1)
            } else {
                1
            };
            entry.last = now;
        };
        let fresh = Failures { count: 0, last: now };
        bump(
            records
                .pairs
                .entry((username.to_owned(), address))
                .or_insert(fresh),
        );
        bump(records.addresses.entry(address).or_insert(fresh));
        bump(records.usernames.entry(username.to_owned()).or_insert(fresh));
    }

    fn succeeded(&self, username: &str, address: Option<IpAddr>) {
        let address = address_or_unspecified(address);
        let mut records = self.lock();
        records.pairs.remove(&(username.to_owned(), address));
        records.usernames.remove(username);
    }

    fn sweep(&self, now: Instant) {
        let mut records = self.lock();
        self.sweep_locked(&mut records, now);
    }

    fn sweep_locked(&self, records: &mut LoginRecords, now: Instant) {
        let duration = self.duration;
        records.pairs.retain(|_, f| now < f.last + duration);
        records.addresses.retain(|_, f| now < f.last + duration);
        records.usernames.retain(|_, f| now < f.last + duration);
        // Still full of live records (a large attack): forget the oldest half rather
        // than grow without bound.
        if records.pairs.len() >= MAX_RECORDS {
            let mut ages: Vec<Instant> = records.pairs.values().map(|f| f.last).collect();
            ages.sort_unstable();
            let cutoff = ages[ages.len() / 2];
            records.pairs.retain(|_, f| f.last > cutoff);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(threshold: u32) -> LoginGuard {
        LoginGuard {
            threshold,
            duration: Duration::from_secs(900),
            records: Mutex::new(LoginRecords::default()),
        }
    }

    const A: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1)));
    const B: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::new(198, 51, 100, 7)));

    #[test]
    fn delays_grow_then_the_pair_is_locked_and_time_lifts_it() {
        let g = guard(10);
        let t0 = Instant::now();
        for i in 0..3 {
            assert_eq!(g.allowed("bob", A, t0), Ok(()), "attempt {i} is free");
            g.failed("bob", A, t0);
        }
        assert_eq!(g.allowed("bob", A, t0), Err(Duration::from_secs(1)));
        assert_eq!(g.allowed("bob", A, t0 + Duration::from_secs(1)), Ok(()));
        g.failed("bob", A, t0 + Duration::from_secs(1));
        assert_eq!(
            g.allowed("bob", A, t0 + Duration::from_secs(2)),
            Err(Duration::from_secs(1))
        );
        let mut now = t0 + Duration::from_secs(1);
        for _ in 4..10 {
            now += Duration::from_secs(60);
            assert_eq!(g.allowed("bob", A, now), Ok(()));
            g.failed("bob", A, now);
        }
        // Ten failures: locked for the lockout duration, whatever the delay.
        assert_eq!(
            g.allowed("bob", A, now + Duration::from_secs(120)),
            Err(Duration::from_secs(780))
        );
        assert_eq!(g.allowed("bob", A, now + Duration::from_secs(900)), Ok(()));
    }

    #[test]
    fn another_address_is_never_locked_out() {
        let g = guard(10);
        let mut now = Instant::now();
        for _ in 0..100 {
            g.failed("bob", A, now);
            now += Duration::from_secs(1);
        }
        assert!(g.allowed("bob", A, now).is_err());
        // From elsewhere: at most a one-second brake, never a lock.
        let wait = g.allowed("bob", B, now).err().unwrap_or_default();
        assert!(wait <= Duration::from_secs(1), "{wait:?}");
        assert_eq!(g.allowed("bob", B, now + Duration::from_secs(1)), Ok(()));
    }

    #[test]
    fn a_success_lifts_the_username_and_an_address_is_locked_for_stuffing() {
        let g = guard(10);
        let now = Instant::now();
        for i in 0..50 {
            g.failed(&format!("user{i}"), A, now);
        }
        assert!(
            g.allowed("someone-else", A, now).is_err(),
            "50 usernames from one address"
        );
        assert_eq!(g.allowed("someone-else", B, now), Ok(()));
        for _ in 0..5 {
            g.failed("carol", B, now);
        }
        assert!(g.allowed("carol", B, now).is_err());
        g.succeeded("carol", B);
        assert_eq!(g.allowed("carol", B, now), Ok(()));
    }

    #[test]
    fn rate_limits_per_client_and_address() {
        let p = Protection::new(&config::Protection {
            rate_per_client: 5,
            rate_per_address: 0,
            lockout_threshold: 10,
            lockout_duration: Duration::from_secs(900),
        });
        let admitted = (0..20).filter(|_| p.admit(Some("svc"), A).is_ok()).count();
        assert_eq!(admitted, 10, "a burst of twice the rate");
        assert!(p.admit(Some("other"), A).is_ok(), "per client");
        let wait = p.admit(Some("svc"), A).unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_millis(200),
            "{wait:?}"
        );
    }
}
