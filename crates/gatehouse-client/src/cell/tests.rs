//! The single-flight rules, on tokio's paused clock: renewals are fake, and
//! count themselves.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_lite::join_all;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::*;
use crate::renewal::Schedule;

const SECOND: Duration = Duration::from_secs(1);

/// A token issued now: fresh for `fresh`, then due until `valid`.
fn token(fresh: Duration, valid: Duration) -> AccessToken {
    let now = Instant::now();
    let schedule = Schedule {
        renew_at: now + fresh,
        expires_at: now + valid,
    };
    AccessToken::new("token", None, schedule).unwrap()
}

/// A fake token endpoint: counts its calls, takes `latency` to answer, and
/// answers with a new token fresh for 10 s and valid for 20 s, or with `fail`.
#[derive(Clone, Default)]
struct Renewals {
    calls: Arc<AtomicUsize>,
    latency: Duration,
    fail: Option<Error>,
    /// When set, each renewal waits for a permit before answering.
    gate: Option<Arc<Notify>>,
}

impl Renewals {
    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn renew(&self) -> impl FnOnce() -> futures_lite::BoxFuture<Outcome> + '_ {
        move || {
            let this = self.clone();
            Box::pin(async move {
                this.calls.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(this.latency).await;
                if let Some(gate) = &this.gate {
                    gate.notified().await;
                }
                match this.fail {
                    Some(error) => Err(error),
                    None => Ok(token(10 * SECOND, 20 * SECOND)),
                }
            })
        }
    }
}

/// A minimal join-all and boxed future, to keep the dev-dependencies short.
mod futures_lite {
    use std::future::Future;
    use std::pin::Pin;

    pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

    pub async fn join_all<T: Send + 'static>(
        futures: Vec<impl Future<Output = T> + Send + 'static>,
    ) -> Vec<T> {
        let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
        let mut outputs = Vec::with_capacity(handles.len());
        for handle in handles {
            outputs.push(handle.await.expect("task"));
        }
        outputs
    }
}

#[tokio::test(start_paused = true)]
async fn concurrent_callers_with_an_empty_cell_share_one_renewal() {
    let cell = TokenCell::new();
    let renewals = Renewals {
        latency: Duration::from_millis(100),
        ..Default::default()
    };
    let callers = (0..100).map(|_| {
        let (cell, renewals) = (cell.clone(), renewals.clone());
        async move { cell.get(renewals.renew()).await }
    });
    let tokens: Vec<AccessToken> = join_all(callers.collect())
        .await
        .into_iter()
        .map(|outcome| outcome.expect("a token"))
        .collect();
    assert_eq!(renewals.calls(), 1, "one request for 100 callers");
    assert!(
        tokens.iter().all(|t| t == &tokens[0]),
        "every caller got the same token"
    );

    // Cached from now on.
    assert_eq!(cell.get(renewals.renew()).await.unwrap(), tokens[0]);
    assert_eq!(renewals.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_due_token_is_still_served_while_one_caller_renews() {
    let cell = TokenCell::new();
    let old = token(SECOND, 10 * SECOND);
    cell.reset(Some(old.clone()));
    let gate = Arc::new(Notify::new());
    let renewals = Renewals {
        gate: Some(gate.clone()),
        ..Default::default()
    };

    tokio::time::advance(2 * SECOND).await;
    for _ in 0..20 {
        assert_eq!(
            cell.get(renewals.renew()).await.unwrap(),
            old,
            "no waiting while valid"
        );
    }
    tokio::task::yield_now().await;
    assert_eq!(
        renewals.calls(),
        1,
        "the first caller to see it due started one renewal"
    );

    gate.notify_one();
    let new = loop {
        let token = cell.get(renewals.renew()).await.unwrap();
        if token != old {
            break token;
        }
        tokio::task::yield_now().await;
    };
    assert_eq!(renewals.calls(), 1);
    assert_eq!(cell.get(renewals.renew()).await.unwrap(), new);
}

#[tokio::test(start_paused = true)]
async fn an_expired_token_is_never_served() {
    let cell = TokenCell::new();
    let old = token(SECOND, 2 * SECOND);
    cell.reset(Some(old.clone()));
    let renewals = Renewals {
        latency: Duration::from_millis(300),
        ..Default::default()
    };
    tokio::time::advance(2 * SECOND).await;
    let callers = (0..10).map(|_| {
        let (cell, renewals) = (cell.clone(), renewals.clone());
        async move { cell.get(renewals.renew()).await }
    });
    let started = Instant::now();
    for outcome in join_all(callers.collect()).await {
        assert_ne!(outcome.unwrap(), old);
    }
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "everyone waited for the renewal"
    );
    assert_eq!(renewals.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn fifty_rejections_of_one_token_cause_one_renewal() {
    let cell = TokenCell::new();
    let rejected = token(10 * SECOND, 20 * SECOND);
    cell.reset(Some(rejected.clone()));
    let renewals = Renewals {
        latency: Duration::from_millis(50),
        ..Default::default()
    };
    let callers = (0..50).map(|_| {
        let (cell, renewals, rejected) = (cell.clone(), renewals.clone(), rejected.clone());
        async move { cell.replace_rejected(&rejected, renewals.renew()).await }
    });
    let replacements: Vec<AccessToken> = join_all(callers.collect())
        .await
        .into_iter()
        .map(|outcome| outcome.unwrap())
        .collect();
    assert_eq!(renewals.calls(), 1);
    assert!(replacements
        .iter()
        .all(|t| t != &rejected && t == &replacements[0]));

    // A late report of the same rejected token gets the replacement, no renewal.
    let late = cell.replace_rejected(&rejected, renewals.renew()).await.unwrap();
    assert_eq!(late, replacements[0]);
    assert_eq!(renewals.calls(), 1);
    // A rejection of the replacement renews again.
    let again = cell.replace_rejected(&late, renewals.renew()).await.unwrap();
    assert_ne!(again, late);
    assert_eq!(renewals.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_failure_is_every_waiters_answer_and_not_cached() {
    let cell = TokenCell::new();
    let failing = Renewals {
        latency: Duration::from_millis(100),
        fail: Some(Error::Config("refused".into())),
        ..Default::default()
    };
    let callers = (0..10).map(|_| {
        let (cell, renewals) = (cell.clone(), failing.clone());
        async move { cell.get(renewals.renew()).await }
    });
    for outcome in join_all(callers.collect()).await {
        assert!(matches!(outcome, Err(Error::Config(_))), "{outcome:?}");
    }
    assert_eq!(failing.calls(), 1);

    let working = Renewals::default();
    cell.get(working.renew())
        .await
        .expect("the next caller tries again");
    assert_eq!(working.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_failed_background_renewal_keeps_the_valid_token_and_quiet() {
    let cell = TokenCell::new();
    let old = token(SECOND, 10 * SECOND);
    cell.reset(Some(old.clone()));
    let failing = Renewals {
        fail: Some(Error::Config("refused".into())),
        ..Default::default()
    };
    tokio::time::advance(2 * SECOND).await;
    assert_eq!(cell.get(failing.renew()).await.unwrap(), old);
    tokio::task::yield_now().await;
    assert_eq!(failing.calls(), 1);
    for _ in 0..100 {
        assert_eq!(cell.get(failing.renew()).await.unwrap(), old);
    }
    assert_eq!(failing.calls(), 1, "quiet after a failure");
    tokio::time::advance(QUIET_AFTER_FAILED_EARLY_RENEWAL).await;
    assert_eq!(cell.get(failing.renew()).await.unwrap(), old);
    tokio::task::yield_now().await;
    assert_eq!(failing.calls(), 2, "then tries again");
}

#[tokio::test(start_paused = true)]
async fn a_caller_that_gives_up_does_not_cancel_the_renewal() {
    let cell = TokenCell::new();
    let renewals = Renewals {
        latency: SECOND,
        ..Default::default()
    };
    let gave_up = tokio::time::timeout(Duration::from_millis(10), cell.get(renewals.renew())).await;
    assert!(gave_up.is_err());
    tokio::time::sleep(2 * SECOND).await;
    let token = cell.get(renewals.renew()).await.unwrap();
    assert_eq!(
        renewals.calls(),
        1,
        "the renewal finished and was cached: {token:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_panicking_renewal_is_reported_and_does_not_wedge_the_cell() {
    let cell = TokenCell::new();
    let outcome = cell
        .get(|| async {
            panic!("renewal bug");
            #[allow(unreachable_code)]
            Err(Error::Interrupted)
        })
        .await;
    assert!(matches!(outcome, Err(Error::Interrupted)), "{outcome:?}");
    let renewals = Renewals::default();
    cell.get(renewals.renew()).await.expect("a new flight");
}

#[tokio::test(start_paused = true)]
async fn a_reset_wins_over_the_renewal_in_flight() {
    let cell = TokenCell::new();
    let gate = Arc::new(Notify::new());
    let renewals = Renewals {
        gate: Some(gate.clone()),
        ..Default::default()
    };
    let waiter = {
        let (cell, renewals) = (cell.clone(), renewals.clone());
        tokio::spawn(async move { cell.get(renewals.renew()).await })
    };
    tokio::task::yield_now().await;
    let login = token(10 * SECOND, 20 * SECOND);
    cell.reset(Some(login.clone()));
    gate.notify_one();
    let stale = waiter.await.unwrap().unwrap();
    assert_ne!(stale, login, "the waiter gets the outcome it waited for");
    assert_eq!(
        cell.get(renewals.renew()).await.unwrap(),
        login,
        "the cell keeps the reset"
    );
}

#[tokio::test(start_paused = true)]
async fn a_session_end_drops_the_cached_token() {
    let cell = TokenCell::new();
    let old = token(SECOND, 10 * SECOND);
    cell.reset(Some(old.clone()));
    tokio::time::advance(2 * SECOND).await;
    let ended = Renewals {
        fail: Some(Error::SessionEnded(crate::SessionEnd::NoRefreshToken)),
        ..Default::default()
    };
    assert_eq!(cell.get(ended.renew()).await.unwrap(), old);
    tokio::task::yield_now().await;
    let outcome = cell.get(ended.renew()).await;
    assert!(matches!(outcome, Err(Error::SessionEnded(_))), "{outcome:?}");
}
