//! Abuse protection of the token, revocation and introspection endpoints: rate limits
//! per source address and per client, and a brake on password guessing.
//!
//! Every request counts against its source address first. Only a request whose
//! client authenticated counts against that client's quota: a stranger who claims
//! a client id with a wrong secret spends the stranger's own address's budget, never
//! the client's.
//!
//! Password guessing is tracked three ways, in memory (each node on its own):
//! - **one username from one address**: after 3 failures each next attempt must wait
//!   1, 2, 4 … (at most 60) seconds after the last failure, and after
//!   `lockout_threshold` failures the pair is locked for `lockout_duration`;
//! - **one address, any usernames** (credential stuffing): locked for
//!   `lockout_duration` after 5 × `lockout_threshold` failures;
//! - **one username, any addresses** (a distributed attack): after 2 ×
//!   `lockout_threshold` failures, at most one attempt a second.
//!
//! An address a user has signed in from before (the last [`KNOWN_ADDRESSES_PER_USER`]
//! of each user, for [`KNOWN_ADDRESS_TTL`]) is exempt from the username-wide brake
//! and from the address lock, and its pair is only ever delayed (at most 60 s), never
//! locked: failures from elsewhere, or from strangers behind the same NAT, cannot
//! keep a user out of an address the user has used.
//!
//! An attempt takes its place before its password is checked: it is counted as a
//! failure from the moment it is admitted, and a success or an attempt whose password
//! was never checked gives the place back. An attempt that would be refused only
//! because of attempts still being checked waits (at most [`SETTLE_WAIT`]) for them
//! to settle, then is decided on their outcome. So N concurrent attempts get exactly
//! the checks N sequential ones would: concurrent guesses no more, and concurrent
//! right passwords (a service opening many sessions at once) all of them. `lockout_threshold = 0` turns all of this off. Time lifts
//! everything: a record is forgotten `lockout_duration` after its last failure.
//! Refusals are 429 with `Retry-After`, decided before the password is checked, so a
//! locked pair learns nothing, not even whether a password was right.
//!
//! Time: the brake's delays, lockouts and remembered addresses are read from the
//! server's [`Clock`], so a test moves through a lockout without waiting it out; the
//! wait for attempts to settle is on tokio's monotonic clock (a timeout, not a
//! policy); the rate limits keep governor's own monotonic clock (a token bucket that
//! refills in fractions of a second must not jump with the wall clock).

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gatehouse_core::Clock;
use governor::clock::Clock as _;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tokio::sync::Notify;

/// A moment on the server's clock: the time since the Unix epoch.
type Moment = Duration;

use crate::config;

/// Longest wait between two attempts of one pair before the lockout.
const MAX_DELAY: Duration = Duration::from_secs(60);
/// Failures of a pair before the delays start.
const FREE_ATTEMPTS: u32 = 3;
/// Records kept per map before old ones are swept out.
const MAX_RECORDS: usize = 100_000;
/// Addresses remembered per user after a successful login.
pub const KNOWN_ADDRESSES_PER_USER: usize = 8;
/// How long a successful login's address is remembered.
pub const KNOWN_ADDRESS_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
/// Longest wait of an attempt for the attempts ahead of it to settle.
pub const SETTLE_WAIT: Duration = Duration::from_secs(10);

/// The limits in force.
pub struct Protection {
    per_client: Option<DefaultKeyedRateLimiter<String>>,
    per_address: Option<DefaultKeyedRateLimiter<IpAddr>>,
    logins: LoginGuard,
}

/// The failures of one key.
#[derive(Debug, Clone, Copy)]
struct Failures {
    /// Failures, counting the attempts still being checked.
    count: u32,
    /// Attempts still being checked.
    pending: u32,
    last: Moment,
}

#[derive(Default)]
struct LoginRecords {
    pairs: HashMap<(String, IpAddr), Failures>,
    addresses: HashMap<IpAddr, Failures>,
    usernames: HashMap<String, Failures>,
    /// Addresses each username signed in from, most recent last.
    known: HashMap<String, Vec<(IpAddr, Moment)>>,
}

impl LoginRecords {
    /// Applies `change` to the three records an attempt of `username` from
    /// `address` counts in (pair, address, username); a record for which it returns
    /// `false` is forgotten.
    fn update(&mut self, username: &str, address: IpAddr, change: impl Fn(&mut Failures) -> bool) {
        fn one<K: std::hash::Hash + Eq>(
            map: &mut HashMap<K, Failures>,
            key: &K,
            change: &impl Fn(&mut Failures) -> bool,
        ) {
            if map.get_mut(key).is_some_and(|entry| !change(entry)) {
                map.remove(key);
            }
        }
        one(&mut self.pairs, &(username.to_owned(), address), &change);
        one(&mut self.addresses, &address, &change);
        one(&mut self.usernames, &username.to_owned(), &change);
    }
}

struct LoginGuard {
    /// 0: the guard is off.
    threshold: u32,
    duration: Duration,
    records: Mutex<LoginRecords>,
    /// Woken whenever an attempt settles.
    settled: Notify,
    clock: Arc<dyn Clock>,
}

/// Why an attempt may not go ahead now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Blocked {
    /// How long to wait.
    wait: Duration,
    /// Whether attempts still being checked are what blocks it: their outcome may
    /// lift the block.
    by_pending: bool,
}

/// A password attempt that holds its place in the brake. It counts as a failure
/// unless [`LoginAttempt::succeeded`] or [`LoginAttempt::not_checked`] says otherwise,
/// so an attempt whose client hangs up mid-check still counts. However it ends, it
/// settles when dropped, waking the attempts waiting behind it.
#[must_use = "an attempt counts as a failure unless settled"]
pub struct LoginAttempt<'a> {
    guard: &'a LoginGuard,
    username: String,
    address: IpAddr,
}

impl LoginAttempt<'_> {
    /// The password was right: what was held against the username is lifted, and the
    /// address is remembered for the user.
    pub fn succeeded(self) {
        self.guard
            .succeeded(&self.username, self.address, self.guard.clock.since_epoch());
    }

    /// The password was wrong (or the user unknown or disabled): the place taken
    /// stays a failure.
    pub fn failed(self) {}

    /// The password was never checked (the client failed to authenticate, the
    /// server was busy): the place is given back.
    pub fn not_checked(self) {
        self.guard.give_back(&self.username, self.address);
    }
}

impl Drop for LoginAttempt<'_> {
    fn drop(&mut self) {
        self.guard.settle(&self.username, self.address);
    }
}

fn keyed_limiter<K: std::hash::Hash + Eq + Clone>(per_second: u32) -> Option<DefaultKeyedRateLimiter<K>> {
    let rate = NonZeroU32::new(per_second)?;
    let burst = NonZeroU32::new(per_second.saturating_mul(2)).unwrap_or(rate);
    Some(RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)))
}

impl Protection {
    /// The protection `settings` ask for, its brake on `clock`.
    pub fn new(settings: &config::Protection, clock: Arc<dyn Clock>) -> Self {
        Self {
            per_client: keyed_limiter(settings.rate_per_client),
            per_address: keyed_limiter(settings.rate_per_address),
            logins: LoginGuard {
                threshold: settings.lockout_threshold,
                duration: settings.lockout_duration,
                records: Mutex::new(LoginRecords::default()),
                settled: Notify::new(),
                clock,
            },
        }
    }

    /// Counts one request against its source address, before anything else is done
    /// for it; `Err` is how long to wait when over the limit.
    pub fn admit_address(&self, address: Option<IpAddr>) -> Result<(), Duration> {
        // The limiter's own clock: building a new quanta clock per call costs a CPUID
        // calibration (it was a tenth of a token request).
        if let (Some(limiter), Some(address)) = (&self.per_address, address) {
            limiter
                .check_key(&address)
                .map_err(|not_until| not_until.wait_time_from(limiter.clock().now()))?;
        }
        Ok(())
    }

    /// Counts one request of a client that has authenticated against the client's
    /// quota; `Err` is how long to wait when over it.
    pub fn admit_client(&self, client_id: &str) -> Result<(), Duration> {
        if let Some(limiter) = &self.per_client {
            limiter
                .check_key(&client_id.to_owned())
                .map_err(|not_until| not_until.wait_time_from(limiter.clock().now()))?;
        }
        Ok(())
    }

    /// Takes a place in the brake for a password attempt of `username` from
    /// `address`, before the password is checked; `Err` is how long to wait. Blocked
    /// only by attempts still being checked, it waits for them to settle first.
    pub async fn begin_login(
        &self,
        username: &str,
        address: Option<IpAddr>,
    ) -> Result<LoginAttempt<'_>, Duration> {
        let address = address_or_unspecified(address);
        let deadline = tokio::time::Instant::now() + SETTLE_WAIT;
        loop {
            // Registered before the decision, so a settling in between is not missed.
            let settled = self.logins.settled.notified();
            tokio::pin!(settled);
            settled.as_mut().enable();
            match self
                .logins
                .begin(username, address, self.logins.clock.since_epoch())
            {
                Ok(()) => {
                    return Ok(LoginAttempt {
                        guard: &self.logins,
                        username: username.to_owned(),
                        address,
                    })
                }
                Err(Blocked {
                    by_pending: true,
                    wait,
                }) => {
                    if tokio::time::timeout_at(deadline, settled).await.is_err() {
                        return Err(wait);
                    }
                }
                Err(Blocked { wait, .. }) => return Err(wait),
            }
        }
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
        self.logins.sweep(self.logins.clock.since_epoch());
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
    fn live(&self, failures: Option<&Failures>, now: Moment) -> Option<Failures> {
        failures.copied().filter(|f| now < f.last + self.duration)
    }

    /// Decides an attempt and, when it may go ahead, counts it as a failure at once
    /// (under the same lock, so concurrent attempts see each other).
    fn begin(&self, username: &str, address: IpAddr, now: Moment) -> Result<(), Blocked> {
        if self.threshold == 0 {
            return Ok(());
        }
        let mut records = self.lock();
        let known = records.known.get(username).is_some_and(|seen| {
            seen.iter()
                .any(|(a, at)| *a == address && now < *at + KNOWN_ADDRESS_TTL)
        });
        let wait_until = |until: Moment, failures: &Failures| {
            if now < until {
                Err(Blocked {
                    wait: until - now,
                    by_pending: failures.pending > 0,
                })
            } else {
                Ok(())
            }
        };
        if let Some(pair) = self.live(records.pairs.get(&(username.to_owned(), address)), now) {
            if pair.count >= self.threshold && !known {
                wait_until(pair.last + self.duration, &pair)?;
            } else if pair.count >= FREE_ATTEMPTS {
                let exponent = (pair.count - FREE_ATTEMPTS).min(6);
                wait_until(
                    pair.last + Duration::from_secs(1 << exponent).min(MAX_DELAY),
                    &pair,
                )?;
            }
        }
        if !known {
            if let Some(from_address) = self.live(records.addresses.get(&address), now) {
                if from_address.count >= self.threshold.saturating_mul(5) {
                    wait_until(from_address.last + self.duration, &from_address)?;
                }
            }
            if let Some(user) = self.live(records.usernames.get(username), now) {
                if user.count >= self.threshold.saturating_mul(2) {
                    wait_until(user.last + Duration::from_secs(1), &user)?;
                }
            }
        }
        self.count_failure(&mut records, username, address, now);
        Ok(())
    }

    fn count_failure(&self, records: &mut LoginRecords, username: &str, address: IpAddr, now: Moment) {
        if records.pairs.len() >= MAX_RECORDS
            || records.usernames.len() >= MAX_RECORDS
            || records.addresses.len() >= MAX_RECORDS
        {
            self.sweep_locked(records, now);
        }
        let duration = self.duration;
        let bump = |entry: &mut Failures| {
            entry.count = if now < entry.last + duration {
                entry.count.saturating_add(1)
            } else {
                1
            };
            entry.last = now;
            entry.pending = entry.pending.saturating_add(1);
        };
        let fresh = Failures {
            count: 0,
            pending: 0,
            last: now,
        };
        bump(
            records
                .pairs
                .entry((username.to_owned(), address))
                .or_insert(fresh),
        );
        bump(records.addresses.entry(address).or_insert(fresh));
        bump(records.usernames.entry(username.to_owned()).or_insert(fresh));
    }

    /// An attempt is no longer being checked: wakes those waiting behind it.
    fn settle(&self, username: &str, address: IpAddr) {
        if self.threshold == 0 {
            return;
        }
        self.lock().update(username, address, |entry| {
            entry.pending = entry.pending.saturating_sub(1);
            true
        });
        self.settled.notify_waiters();
    }

    /// Undoes the failure counted by [`LoginGuard::begin`].
    fn give_back(&self, username: &str, address: IpAddr) {
        if self.threshold == 0 {
            return;
        }
        self.lock().update(username, address, |entry| {
            entry.count = entry.count.saturating_sub(1);
            // Kept while another attempt than this one is still being checked.
            entry.count > 0 || entry.pending > 1
        });
    }

    fn succeeded(&self, username: &str, address: IpAddr, now: Moment) {
        if self.threshold == 0 {
            return;
        }
        self.give_back(username, address);
        let mut records = self.lock();
        records.pairs.remove(&(username.to_owned(), address));
        records.usernames.remove(username);
        if records.known.len() >= MAX_RECORDS && !records.known.contains_key(username) {
            self.sweep_locked(&mut records, now);
        }
        let seen = records.known.entry(username.to_owned()).or_default();
        seen.retain(|(a, _)| *a != address);
        if seen.len() >= KNOWN_ADDRESSES_PER_USER {
            seen.remove(0);
        }
        seen.push((address, now));
    }

    fn sweep(&self, now: Moment) {
        let mut records = self.lock();
        self.sweep_locked(&mut records, now);
    }

    fn sweep_locked(&self, records: &mut LoginRecords, now: Moment) {
        let duration = self.duration;
        records.pairs.retain(|_, f| now < f.last + duration);
        records.addresses.retain(|_, f| now < f.last + duration);
        records.usernames.retain(|_, f| now < f.last + duration);
        records.known.retain(|_, seen| {
            seen.retain(|(_, at)| now < *at + KNOWN_ADDRESS_TTL);
            !seen.is_empty()
        });
        // Still full of live records (a large attack): forget the oldest half rather
        // than grow without bound.
        fn halve<K: std::hash::Hash + Eq, V>(map: &mut HashMap<K, V>, last: impl Fn(&V) -> Moment) {
            if map.len() >= MAX_RECORDS {
                let mut ages: Vec<Moment> = map.values().map(&last).collect();
                ages.sort_unstable();
                let cutoff = ages[ages.len() / 2];
                map.retain(|_, v| last(v) > cutoff);
            }
        }
        halve(&mut records.pairs, |f| f.last);
        halve(&mut records.addresses, |f| f.last);
        halve(&mut records.usernames, |f| f.last);
        halve(&mut records.known, |seen| seen.last().map_or(now, |(_, at)| *at));
    }
}

#[cfg(test)]
mod tests {
    use gatehouse_core::{FixedClock, SystemClock};

    use super::*;

    /// A moment on the brake's clock (a test passes its own moments).
    const T0: Moment = Duration::from_secs(1_800_000_000);

    fn guard(threshold: u32) -> LoginGuard {
        LoginGuard {
            threshold,
            duration: Duration::from_secs(900),
            records: Mutex::new(LoginRecords::default()),
            settled: Notify::new(),
            clock: Arc::new(FixedClock::new(0)),
        }
    }

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(198, 51, 100, 7));

    fn try_begin(g: &LoginGuard, username: &str, address: IpAddr, now: Moment) -> Result<(), Duration> {
        g.begin(username, address, now).map_err(|blocked| blocked.wait)
    }

    /// A failure recorded without asking (as from a check already admitted).
    fn fail(g: &LoginGuard, username: &str, address: IpAddr, now: Moment) {
        let mut records = g.lock();
        g.count_failure(&mut records, username, address, now);
    }

    #[test]
    fn delays_grow_then_the_pair_is_locked_and_time_lifts_it() {
        let g = guard(10);
        let t0 = T0;
        for i in 0..3 {
            assert_eq!(try_begin(&g, "bob", A, t0), Ok(()), "attempt {i} is free");
        }
        assert_eq!(try_begin(&g, "bob", A, t0), Err(Duration::from_secs(1)));
        assert_eq!(try_begin(&g, "bob", A, t0 + Duration::from_secs(1)), Ok(()));
        assert_eq!(
            try_begin(&g, "bob", A, t0 + Duration::from_secs(2)),
            Err(Duration::from_secs(1))
        );
        let mut now = t0 + Duration::from_secs(1);
        for _ in 4..10 {
            now += Duration::from_secs(60);
            assert_eq!(try_begin(&g, "bob", A, now), Ok(()));
        }
        // Ten failures: locked for the lockout duration, whatever the delay.
        assert_eq!(
            try_begin(&g, "bob", A, now + Duration::from_secs(120)),
            Err(Duration::from_secs(780))
        );
        assert_eq!(try_begin(&g, "bob", A, now + Duration::from_secs(900)), Ok(()));
    }

    #[test]
    fn concurrent_attempts_take_their_places_before_any_is_checked() {
        // 100 attempts at the same instant, none settled yet (all still being
        // checked): no more go ahead than would one after another.
        let g = guard(10);
        let now = T0;
        let admitted = (0..100).filter(|_| try_begin(&g, "bob", A, now).is_ok()).count();
        assert_eq!(admitted, FREE_ATTEMPTS as usize);
        // The same for one username from many addresses: the username-wide brake
        // admits one a second once it is on.
        let g = guard(10);
        for i in 0..20u8 {
            fail(&g, "carol", IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, i)), now);
        }
        let admitted = (0..100u8)
            .filter(|i| {
                try_begin(
                    &g,
                    "carol",
                    IpAddr::V4(std::net::Ipv4Addr::new(10, 1, 0, *i)),
                    now + Duration::from_secs(1),
                )
                .is_ok()
            })
            .count();
        assert_eq!(admitted, 1);
    }

    #[tokio::test]
    async fn concurrent_right_passwords_wait_for_the_ones_ahead_instead_of_being_refused() {
        let p = Protection::new(
            &config::Protection {
                rate_per_client: 0,
                rate_per_address: 0,
                lockout_threshold: 10,
                lockout_duration: Duration::from_secs(900),
                password_hash_concurrency: 1,
            },
            Arc::new(SystemClock),
        );
        let p = &p;
        // Ten logins at once: three go ahead, the rest wait for them and go ahead
        // as they succeed.
        let logins = (0..10).map(|_| async move {
            let attempt = p.begin_login("erin", Some(A)).await?;
            tokio::task::yield_now().await;
            attempt.succeeded();
            Ok::<(), Duration>(())
        });
        let outcomes = futures::future::join_all(logins).await;
        assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
        // Ten wrong ones at once: three are checked, the rest are refused once
        // those three have failed.
        let guesses = (0..10).map(|_| async move {
            let attempt = p.begin_login("frank", Some(A)).await?;
            tokio::task::yield_now().await;
            attempt.failed();
            Ok::<(), Duration>(())
        });
        let outcomes = futures::future::join_all(guesses).await;
        assert_eq!(outcomes.iter().filter(|o| o.is_ok()).count(), 3, "{outcomes:?}");
    }

    #[test]
    fn an_unchecked_attempt_gives_its_place_back() {
        let g = guard(10);
        let now = T0;
        for _ in 0..10 {
            assert_eq!(try_begin(&g, "bob", A, now), Ok(()));
            g.give_back("bob", A);
        }
        let records = g.lock();
        assert!(records.pairs.is_empty() && records.usernames.is_empty() && records.addresses.is_empty());
    }

    #[test]
    fn another_address_is_never_locked_out() {
        let g = guard(10);
        let mut now = T0;
        for _ in 0..100 {
            fail(&g, "bob", A, now);
            now += Duration::from_secs(1);
        }
        assert!(try_begin(&g, "bob", A, now).is_err());
        // From elsewhere: at most a one-second brake, never a lock.
        let wait = try_begin(&g, "bob", B, now).err().unwrap_or_default();
        assert!(wait <= Duration::from_secs(1), "{wait:?}");
        assert_eq!(try_begin(&g, "bob", B, now + Duration::from_secs(1)), Ok(()));
    }

    #[test]
    fn a_known_address_is_not_held_by_failures_from_elsewhere_nor_locked() {
        let g = guard(10);
        let now = T0;
        try_begin(&g, "dave", A, now).unwrap();
        g.succeeded("dave", A, now);
        // A distributed attack on the username: everywhere else is braked…
        for i in 0..=255u8 {
            fail(&g, "dave", IpAddr::V4(std::net::Ipv4Addr::new(10, 2, 0, i)), now);
        }
        assert!(try_begin(&g, "dave", B, now).is_err());
        // …but every attempt from the address dave used goes through.
        for _ in 0..3 {
            assert_eq!(try_begin(&g, "dave", A, now), Ok(()));
            g.succeeded("dave", A, now);
        }
        // Strangers behind the same address (a NAT) guessing dave's password: the
        // pair is delayed, never locked, and the address is not locked for dave.
        let mut now = now;
        for _ in 0..60 {
            fail(&g, "dave", A, now);
            for i in 0..5 {
                fail(&g, &format!("other{i}"), A, now);
            }
        }
        assert!(
            try_begin(&g, "someone-else", A, now).is_err(),
            "stuffing locks the address"
        );
        now += MAX_DELAY;
        assert_eq!(
            try_begin(&g, "dave", A, now),
            Ok(()),
            "dave waits at most {MAX_DELAY:?}"
        );
    }

    #[test]
    fn a_success_lifts_the_username_and_an_address_is_locked_for_stuffing() {
        let g = guard(10);
        let now = T0;
        for i in 0..50 {
            fail(&g, &format!("user{i}"), A, now);
        }
        assert!(
            try_begin(&g, "someone-else", A, now).is_err(),
            "50 usernames from one address"
        );
        assert_eq!(try_begin(&g, "someone-else", B, now), Ok(()));
        for _ in 0..5 {
            fail(&g, "carol", B, now);
        }
        assert!(try_begin(&g, "carol", B, now).is_err());
        g.succeeded("carol", B, now);
        assert_eq!(try_begin(&g, "carol", B, now), Ok(()));
    }

    #[test]
    fn records_stay_bounded_under_a_flood() {
        let g = guard(10);
        let now = T0;
        for i in 0..(MAX_RECORDS as u32 + 10) {
            let address = IpAddr::V4(std::net::Ipv4Addr::from(i));
            fail(
                &g,
                &format!("u{i}"),
                address,
                now + Duration::from_millis(u64::from(i)),
            );
        }
        let records = g.lock();
        assert!(records.pairs.len() <= MAX_RECORDS);
        assert!(records.usernames.len() <= MAX_RECORDS);
        assert!(records.addresses.len() <= MAX_RECORDS);
    }

    #[test]
    fn rate_limits_per_client_and_address() {
        let p = Protection::new(
            &config::Protection {
                rate_per_client: 5,
                rate_per_address: 0,
                lockout_threshold: 10,
                lockout_duration: Duration::from_secs(900),
                password_hash_concurrency: 1,
            },
            Arc::new(SystemClock),
        );
        let admitted = (0..20).filter(|_| p.admit_client("svc").is_ok()).count();
        assert_eq!(admitted, 10, "a burst of twice the rate");
        assert!(p.admit_client("other").is_ok(), "per client");
        assert!(p.admit_address(Some(A)).is_ok(), "no address limit");
        let wait = p.admit_client("svc").unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_millis(200),
            "{wait:?}"
        );
    }
}
