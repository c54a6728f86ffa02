//! The requests being handled on one connection, so that a connection can be closed
//! for having had none for `idle_timeout` whatever else moves on it.
//!
//! Counting bytes is not enough on HTTP/2: PING frames, SETTINGS and WINDOW_UPDATE
//! are bytes, so a peer that pings every few seconds would keep a connection, and
//! one of `max_connections`, for ever without asking anything. A request counts
//! from the moment its head has arrived until its handler has answered (the body of
//! a request is read by the handler, within `request_timeout`); sending the
//! response is not counted, so a peer cannot keep a connection busy by granting no
//! flow-control window for the answer.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

/// The number of requests in flight on one connection. Clones share the count.
///
/// A request costs two atomic updates and a clock read, and wakes nothing: the
/// connection's watch ([`InFlight::idle_for`]) sleeps until the quiet could be over
/// and looks then, a timer per `idle_timeout` rather than a wake-up (and a timer
/// set anew) per request.
#[derive(Clone)]
pub struct InFlight {
    shared: Arc<Counts>,
}

struct Counts {
    /// Requests in flight now.
    requests: AtomicUsize,
    /// When the latest request ended, in nanoseconds after `epoch` (0: none has).
    last_end: AtomicU64,
    /// When the connection began: the quiet starts there.
    epoch: Instant,
}

/// One request in flight; dropping it (answered, or abandoned by the peer) ends it.
#[must_use = "the request counts as finished when this is dropped"]
pub struct RequestInFlight {
    shared: Arc<Counts>,
}

impl InFlight {
    /// A connection with nothing in flight yet.
    pub fn new() -> Self {
        Self {
            shared: Arc::new(Counts {
                requests: AtomicUsize::new(0),
                last_end: AtomicU64::new(0),
                epoch: Instant::now(),
            }),
        }
    }

    /// Counts one request until the returned value is dropped.
    pub fn start(&self) -> RequestInFlight {
        self.shared.requests.fetch_add(1, Ordering::SeqCst);
        RequestInFlight {
            shared: self.shared.clone(),
        }
    }

    /// Completes once no request has been in flight for `timeout` in a row.
    pub async fn idle_for(&self, timeout: Duration) {
        let counts = &self.shared;
        let mut deadline = counts.epoch + timeout;
        loop {
            tokio::time::sleep_until(deadline).await;
            let now = Instant::now();
            if counts.requests.load(Ordering::SeqCst) > 0 {
                // The quiet starts when this request ends: look again a timeout on.
                deadline = now + timeout;
                continue;
            }
            let quiet_since = counts.epoch + Duration::from_nanos(counts.last_end.load(Ordering::SeqCst));
            deadline = quiet_since + timeout;
            if deadline <= now {
                return;
            }
        }
    }
}

impl Default for InFlight {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for RequestInFlight {
    fn drop(&mut self) {
        let ended = u64::try_from(self.shared.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
        // The latest end wins: requests of one connection may end on different threads.
        self.shared.last_end.fetch_max(ended, Ordering::SeqCst);
        self.shared.requests.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use tokio::time::Instant;

    use super::*;

    const IDLE: Duration = Duration::from_secs(10);

    #[tokio::test(start_paused = true)]
    async fn a_connection_without_requests_is_idle_after_the_timeout() {
        let started = Instant::now();
        InFlight::new().idle_for(IDLE).await;
        assert_eq!(started.elapsed(), IDLE);
    }

    #[tokio::test(start_paused = true)]
    async fn a_long_request_keeps_the_connection_until_it_ends() {
        let in_flight = InFlight::new();
        let request = in_flight.start();
        let started = Instant::now();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(25)).await;
            drop(request);
        });
        in_flight.idle_for(IDLE).await;
        assert_eq!(started.elapsed(), Duration::from_secs(25) + IDLE);
    }

    #[tokio::test(start_paused = true)]
    async fn each_request_restarts_the_quiet() {
        let in_flight = InFlight::new();
        let started = Instant::now();
        let requests = in_flight.clone();
        // Short requests, 6 s apart: never 10 s without one.
        tokio::spawn(async move {
            for _ in 0..5 {
                tokio::time::sleep(Duration::from_secs(6)).await;
                drop(requests.start());
            }
        });
        in_flight.idle_for(IDLE).await;
        assert_eq!(started.elapsed(), Duration::from_secs(30) + IDLE);
    }

    #[tokio::test(start_paused = true)]
    async fn overlapping_requests_count_until_the_last_ends() {
        let in_flight = InFlight::new();
        let first = in_flight.start();
        let second = in_flight.start();
        let started = Instant::now();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(5)).await;
            drop(first);
            tokio::time::sleep(Duration::from_secs(15)).await;
            drop(second);
        });
        in_flight.idle_for(IDLE).await;
        assert_eq!(started.elapsed(), Duration::from_secs(20) + IDLE);
    }
}
