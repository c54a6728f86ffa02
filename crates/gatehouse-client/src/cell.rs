//! One cached token and its single-flight renewal.
//!
//! However many callers ask at once, at most one renewal per cell is in
//! flight, and its result (token or error) is every waiting caller's answer.
//! The renewal runs as a task of its own, so a caller that gives up (its
//! future dropped by a timeout) does not take the renewal down with it: the
//! others still get their answer, and the token is still cached.
//!
//! A rejected token (a 401 from the API) is replaced only if it is still the
//! cached one: fifty requests that failed with the same token cause one
//! renewal, and a request that failed with a token already replaced gets the
//! replacement without any.

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::error::Error;
use crate::renewal::Age;
use crate::token::AccessToken;

/// What a renewal ends with.
pub(crate) type Outcome = Result<AccessToken, Error>;

/// After a background renewal of a still-valid token failed, how long the
/// cell keeps quiet before trying again, so that a busy caller does not turn a
/// refusing server into a stream of requests.
const QUIET_AFTER_FAILED_EARLY_RENEWAL: Duration = Duration::from_secs(1);

/// A cached token and the renewal in flight, if any.
pub(crate) struct TokenCell {
    state: Mutex<CellState>,
}

#[derive(Default)]
struct CellState {
    current: Option<AccessToken>,
    in_flight: Option<Flight>,
    /// Numbers the flights, so that a flight only ever clears itself.
    flights_started: u64,
    /// Bumped by [`TokenCell::reset`]: a renewal started before must not
    /// store its token over what the reset put there.
    epoch: u64,
    /// No background renewal before this instant (after one failed).
    quiet_until: Option<Instant>,
}

/// A renewal in flight, as its waiters see it.
#[derive(Clone)]
struct Flight {
    number: u64,
    outcome: watch::Receiver<Option<Outcome>>,
}

impl Flight {
    async fn outcome(mut self) -> Outcome {
        match self.outcome.wait_for(Option::is_some).await {
            Ok(outcome) => outcome.clone().unwrap_or(Err(Error::Interrupted)),
            // The renewal task ended without an outcome: it panicked, or the
            // runtime is shutting down.
            Err(_) => Err(Error::Interrupted),
        }
    }
}

impl TokenCell {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(TokenCell {
            state: Mutex::new(CellState::default()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, CellState> {
        // Nothing panics while holding the lock; if something ever did, the
        // state is still consistent (every change is one assignment).
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A token to use: the cached one while it is fresh; the cached one while
    /// it is due, starting one renewal in the background; otherwise the
    /// outcome of the renewal in flight, or of a new one made by `renew`.
    pub(crate) async fn get<Fut>(self: &Arc<Self>, renew: impl FnOnce() -> Fut) -> Outcome
    where
        Fut: Future<Output = Outcome> + Send + 'static,
    {
        let flight = {
            let mut state = self.lock();
            let now = Instant::now();
            if let Some(token) = state.current.clone() {
                match token.age(now) {
                    Age::Fresh => return Ok(token),
                    Age::Due => {
                        let quiet = state.quiet_until.is_some_and(|until| now < until);
                        if state.in_flight.is_none() && !quiet {
                            self.start(&mut state, renew());
                        }
                        return Ok(token);
                    }
                    Age::Expired => state.current = None,
                }
            }
            self.join_or_start(&mut state, renew)
        };
        flight.outcome().await
    }

    /// A replacement for `rejected`, which the API refused: if it is still the
    /// cached token, it is dropped and renewed (one renewal however many
    /// callers report it); if it was replaced already, the replacement.
    pub(crate) async fn replace_rejected<Fut>(
        self: &Arc<Self>,
        rejected: &AccessToken,
        renew: impl FnOnce() -> Fut,
    ) -> Outcome
    where
        Fut: Future<Output = Outcome> + Send + 'static,
    {
        let flight = {
            let mut state = self.lock();
            if let Some(current) = state.current.clone() {
                if &current != rejected && current.age(Instant::now()) != Age::Expired {
                    return Ok(current);
                }
                state.current = None;
            }
            self.join_or_start(&mut state, renew)
        };
        flight.outcome().await
    }

    /// Replaces the cached token (a login, a logout), abandoning the renewal
    /// in flight: its waiters still get its outcome, the cell does not.
    pub(crate) fn reset(&self, token: Option<AccessToken>) {
        let mut state = self.lock();
        state.epoch += 1;
        state.current = token;
        state.in_flight = None;
        state.quiet_until = None;
    }

    fn join_or_start<Fut>(self: &Arc<Self>, state: &mut CellState, renew: impl FnOnce() -> Fut) -> Flight
    where
        Fut: Future<Output = Outcome> + Send + 'static,
    {
        match &state.in_flight {
            Some(flight) => flight.clone(),
            None => self.start(state, renew()),
        }
    }

    fn start<Fut>(self: &Arc<Self>, state: &mut CellState, renewal: Fut) -> Flight
    where
        Fut: Future<Output = Outcome> + Send + 'static,
    {
        let (sender, receiver) = watch::channel(None);
        state.flights_started += 1;
        let flight = Flight {
            number: state.flights_started,
            outcome: receiver,
        };
        state.in_flight = Some(flight.clone());
        let landing = Landing {
            cell: Arc::clone(self),
            epoch: state.epoch,
            flight: flight.number,
            sender: Some(sender),
        };
        tokio::spawn(async move { landing.land(renewal.await) });
        flight
    }
}

/// Where a renewal task puts its outcome. Dropped without landing (the task
/// panicked or was cancelled), it still clears the flight, so that the next
/// caller starts a new one instead of waiting forever.
struct Landing {
    cell: Arc<TokenCell>,
    epoch: u64,
    flight: u64,
    sender: Option<watch::Sender<Option<Outcome>>>,
}

impl Landing {
    fn land(mut self, outcome: Outcome) {
        {
            let mut state = self.cell.lock();
            let ours = state.epoch == self.epoch
                && state
                    .in_flight
                    .as_ref()
                    .is_some_and(|flight| flight.number == self.flight);
            if ours {
                state.in_flight = None;
                match &outcome {
                    Ok(token) => {
                        state.current = Some(token.clone());
                        state.quiet_until = None;
                    }
                    Err(error) => {
                        if error.ends_session() {
                            state.current = None;
                        }
                        state.quiet_until = Some(Instant::now() + QUIET_AFTER_FAILED_EARLY_RENEWAL);
                        // The request itself logged the failure as a warning.
                        tracing::debug!(%error, "token renewal failed");
                    }
                }
            }
        }
        if let Some(sender) = self.sender.take() {
            // Store first, then answer: a caller arriving in between finds
            // the new token cached. No receiver left is fine.
            let _ = sender.send(Some(outcome));
        }
    }
}

impl Drop for Landing {
    fn drop(&mut self) {
        if self.sender.is_some() {
            let mut state = self.cell.lock();
            if state
                .in_flight
                .as_ref()
                .is_some_and(|flight| flight.number == self.flight)
            {
                state.in_flight = None;
            }
        }
    }
}

#[cfg(test)]
mod tests;
