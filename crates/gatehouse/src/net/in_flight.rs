//! The requests being handled on one connection, so that a connection can be closed
//! for having had none for `idle_timeout` whatever else moves on it (issue 12).
//!
//! Counting bytes is not enough on HTTP/2: PING frames, SETTINGS and WINDOW_UPDATE
//! are bytes, so a peer that pings every few seconds would keep a connection, and
//! one of `max_connections`, for ever without asking anything. A request counts
//! from the moment its head has arrived until its handler has answered (the body of
//! a request is read by the handler, within `request_timeout`); sending the
//! response is not counted, so a peer cannot keep a connection busy by granting no
//! flow-control window for the answer.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

/// The number of requests in flight on one connection. Clones share the count.
#[derive(Clone)]
pub struct InFlight {
    count: Arc<watch::Sender<usize>>,
}

/// One request in flight; dropping it (answered, or abandoned by the peer) ends it.
#[must_use = "the request counts as finished when this is dropped"]
pub struct RequestInFlight {
    count: Arc<watch::Sender<usize>>,
}

impl InFlight {
    /// A connection with nothing in flight yet.
    pub fn new() -> Self {
        Self {
            count: Arc::new(watch::Sender::new(0)),
        }
    }

    /// Counts one request until the returned value is dropped.
    pub fn start(&self) -> RequestInFlight {
        self.count.send_modify(|n| *n += 1);
        RequestInFlight {
            count: self.count.clone(),
        }
    }

    /// Completes once no request has been in flight for `timeout` in a row.
    pub async fn idle_for(&self, timeout: Duration) {
        let mut count = self.count.subscribe();
        loop {
            // The sender lives in `self`: neither wait can see it closed.
            let _ = count.wait_for(|n| *n == 0).await;
            tokio::select! {
                () = tokio::time::sleep(timeout) => return,
                // A request started (or started and ended): the quiet starts again.
                _ = count.changed() => {}
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
        self.count.send_modify(|n| *n -= 1);
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
