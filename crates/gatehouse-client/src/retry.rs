//! Retrying transient failures of requests to the authorization server.
//!
//! Transient means the request may succeed if sent again unchanged: no HTTP
//! response at all (connection refused or reset, timeout), 408, 429, or a 5xx.
//! Everything else is final: an OAuth error (RFC 6749 §5.2) would only be
//! repeated, and retrying `invalid_client` in a loop looks like an attack.
//!
//! Waits grow exponentially with "equal jitter" (half the step fixed, half
//! random), so that many clients failing together do not come back together.
//! A `Retry-After` (RFC 9110 §10.2.3, in seconds or as an HTTP-date) is
//! honoured: the next attempt is never earlier than it asks. Attempts are
//! bounded, and so is the total time spent waiting: when the next wait would
//! go past it, the last failure is the answer.

use std::time::{Duration, SystemTime};

use http::header::RETRY_AFTER;
use http::{HeaderMap, StatusCode};
use reqwest::{RequestBuilder, Response};
use tokio::time::Instant;

use crate::error::Error;

/// How often and how patiently requests to the authorization server are
/// retried. The default: 4 attempts, waits from 250 ms doubling up to 5 s,
/// never more than 30 s of waiting in all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    max_attempts: u32,
    initial_backoff: Duration,
    max_backoff: Duration,
    max_total_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(5),
            max_total_wait: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// One attempt, no retries.
    pub fn none() -> Self {
        RetryPolicy::default().max_attempts(1)
    }

    /// How many times a request is sent at most, the first included (at least 1).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// The step of the first wait; each later step doubles it.
    pub fn initial_backoff(mut self, backoff: Duration) -> Self {
        self.initial_backoff = backoff;
        self
    }

    /// The largest step of a wait computed by backoff (a `Retry-After` may ask
    /// for more, within [`RetryPolicy::max_total_wait`]).
    pub fn max_backoff(mut self, backoff: Duration) -> Self {
        self.max_backoff = backoff;
        self
    }

    /// The most time spent waiting between attempts, in all.
    pub fn max_total_wait(mut self, wait: Duration) -> Self {
        self.max_total_wait = wait;
        self
    }

    /// The backoff step before retry number `retry` (1 for the first retry):
    /// `initial_backoff * 2^(retry-1)`, capped by `max_backoff`.
    fn backoff_step(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry.saturating_sub(1)).unwrap_or(u32::MAX);
        self.initial_backoff
            .checked_mul(factor)
            .unwrap_or(self.max_backoff)
            .min(self.max_backoff)
    }

    /// The wait before retry number `retry` (1 for the first; equally, the
    /// number of attempts made), having waited `waited` so far and been asked
    /// for `retry_after`; `None` when the policy says stop. `random` is
    /// uniform in `[0, 1)`.
    fn wait_before_retry(
        &self,
        retry: u32,
        waited: Duration,
        retry_after: Option<Duration>,
        random: f64,
    ) -> Option<Duration> {
        if retry >= self.max_attempts {
            return None;
        }
        let step = self.backoff_step(retry);
        // Equal jitter: at least half the step, at most all of it.
        let backoff = step / 2 + (step / 2).mul_f64(random.clamp(0.0, 1.0));
        let wait = match retry_after {
            // Never earlier than asked; a little later, so that the clients
            // told the same instant do not all return at it.
            Some(asked) => {
                asked
                    + self
                        .initial_backoff
                        .min(step)
                        .mul_f64(random.clamp(0.0, 1.0) / 2.0)
            }
            None => backoff,
        };
        (waited + wait <= self.max_total_wait).then_some(wait)
    }
}

/// Whether a response with `status` is worth sending again.
pub(crate) fn is_retryable_status(status: StatusCode) -> bool {
    status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
        || status.is_server_error()
}

/// The delay a `Retry-After` header asks for (RFC 9110 §10.2.3): a number of
/// seconds, or an HTTP-date (a date in the past means now).
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // More digits than a u64 holds is "a very long time".
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    // Retry-After dates are wall-clock time, so this one reading of the system
    // clock is the right one; expiry uses tokio's monotonic clock throughout.
    #[allow(clippy::disallowed_methods)]
    let now = SystemTime::now();
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Sends the request `build` makes, again while the failure is transient and
/// `policy` allows. The answer is the first response that is not transient,
/// or the last one when the policy says stop, with the instant its request
/// was sent; an error when the last attempt got no response, or when `build`
/// fails. Each attempt is built anew: an assertion in it is never sent twice.
pub(crate) async fn send_with_retries(
    policy: &RetryPolicy,
    what: &'static str,
    build: impl Fn() -> Result<RequestBuilder, Error>,
) -> Result<(Response, Instant), Error> {
    let mut waited = Duration::ZERO;
    let mut attempts = 0;
    loop {
        let request = build()?;
        let sent_at = Instant::now();
        let attempt = request.send().await;
        attempts += 1;
        let transient = match &attempt {
            Ok(response) => is_retryable_status(response.status()),
            // A request that cannot be built now will not be built next time.
            Err(error) => !error.is_builder(),
        };
        let asked = attempt
            .as_ref()
            .ok()
            .and_then(|response| retry_after(response.headers()));
        let wait = if transient {
            policy.wait_before_retry(attempts, waited, asked, fastrand::f64())
        } else {
            None
        };
        let Some(wait) = wait else {
            return attempt
                .map(|response| (response, sent_at))
                .map_err(Error::transport);
        };
        let failure = match &attempt {
            Ok(response) => format!("HTTP {}", response.status()),
            Err(error) => error.to_string(),
        };
        tracing::warn!(what, %failure, attempts, ?wait, "transient failure; retrying");
        tokio::time::sleep(wait).await;
        waited += wait;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let policy = RetryPolicy::default()
            .max_attempts(10)
            .initial_backoff(Duration::from_millis(100))
            .max_backoff(Duration::from_millis(700));
        let steps: Vec<u128> = (1..=6).map(|r| policy.backoff_step(r).as_millis()).collect();
        assert_eq!(steps, [100, 200, 400, 700, 700, 700]);
        // Far beyond any real attempt count, still no overflow.
        assert_eq!(policy.backoff_step(200), Duration::from_millis(700));
    }

    #[test]
    fn waits_are_jittered_between_half_and_the_whole_step() {
        let policy = RetryPolicy::default().initial_backoff(Duration::from_millis(400));
        let wait = |random| policy.wait_before_retry(1, Duration::ZERO, None, random);
        assert_eq!(wait(0.0), Some(Duration::from_millis(200)));
        assert_eq!(wait(0.5), Some(Duration::from_millis(300)));
        assert_eq!(wait(0.99), Some(Duration::from_millis(398)));
    }

    #[test]
    fn retry_after_is_a_floor() {
        let policy = RetryPolicy::default();
        for random in [0.0, 0.3, 0.99] {
            let wait = policy
                .wait_before_retry(1, Duration::ZERO, Some(SECOND), random)
                .expect("within the budget");
            assert!(
                wait >= SECOND && wait < SECOND + policy.initial_backoff,
                "{wait:?}"
            );
        }
    }

    #[test]
    fn attempts_and_total_wait_are_bounded() {
        let policy = RetryPolicy::default().max_attempts(3).max_total_wait(10 * SECOND);
        assert!(policy.wait_before_retry(2, Duration::ZERO, None, 0.5).is_some());
        assert_eq!(
            policy.wait_before_retry(3, Duration::ZERO, None, 0.5),
            None,
            "3 attempts made"
        );
        // A Retry-After past the budget: give up now rather than wait past it.
        assert_eq!(
            policy.wait_before_retry(1, Duration::ZERO, Some(11 * SECOND), 0.0),
            None
        );
        assert_eq!(
            policy.wait_before_retry(1, 9 * SECOND, Some(2 * SECOND), 0.0),
            None
        );
        assert!(RetryPolicy::none()
            .wait_before_retry(1, Duration::ZERO, None, 0.0)
            .is_none());
        assert_eq!(RetryPolicy::default().max_attempts(0), RetryPolicy::none());
    }

    fn headers(retry_after: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_str(retry_after).unwrap());
        headers
    }

    #[test]
    #[allow(clippy::disallowed_methods)] // HTTP-dates are wall-clock time.
    fn retry_after_in_seconds_or_as_a_date() {
        assert_eq!(retry_after(&headers("1")), Some(SECOND));
        assert_eq!(retry_after(&headers(" 120 ")), Some(120 * SECOND));
        assert_eq!(
            retry_after(&headers("99999999999999999999999")),
            Some(Duration::from_secs(u64::MAX))
        );
        let in_a_minute = httpdate::fmt_http_date(SystemTime::now() + 60 * SECOND);
        let wait = retry_after(&headers(&in_a_minute)).expect("an HTTP-date");
        assert!(wait > 58 * SECOND && wait <= 60 * SECOND, "{wait:?}");
        assert_eq!(
            retry_after(&headers("Wed, 21 Oct 2015 07:28:00 GMT")),
            Some(Duration::ZERO),
            "a date in the past means now"
        );
        for garbage in ["-1", "1.5", "soon", ""] {
            assert_eq!(retry_after(&headers(garbage)), None, "{garbage:?}");
        }
        assert_eq!(retry_after(&HeaderMap::new()), None);
    }

    #[test]
    fn transient_statuses() {
        for status in [408, 429, 500, 502, 503, 504] {
            assert!(
                is_retryable_status(StatusCode::from_u16(status).unwrap()),
                "{status}"
            );
        }
        for status in [200, 301, 400, 401, 403, 404] {
            assert!(
                !is_retryable_status(StatusCode::from_u16(status).unwrap()),
                "{status}"
            );
        }
    }
}
