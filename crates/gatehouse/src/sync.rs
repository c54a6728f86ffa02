//! Following the change feed: admin changes (made by the CLI or another node) reach
//! this server's caches with no restart. On PostgreSQL a `LISTEN` wakes the follower
//! the moment a change commits, and the feed is also read every few seconds, for
//! notifications lost while the listening connection was down; on SQLite (one
//! machine) the feed is read every second.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gatehouse_core::store::{ChangeFeed, ChangeKind, TokenStore};
use gatehouse_core::{ClientId, Clock, StoreError};
use gatehouse_store::{Backend, ChangeListener, SqlStore, Wake};

use crate::cache::CachedClients;
use crate::keyring::Keys;

/// How often the feed is read without notifications (SQLite).
pub const POLL_INTERVAL: Duration = Duration::from_millis(1000);
/// How often the feed is read with notifications (PostgreSQL): the safety net, well
/// inside the 5 seconds within which an admin change must reach every server.
pub const SAFETY_NET_INTERVAL: Duration = Duration::from_millis(2500);
/// How far back each read looks again: a PostgreSQL transaction can commit a change
/// with a lower id after one with a higher id has been seen. Re-applying an
/// invalidation is harmless.
const LOOKBACK: Duration = Duration::from_secs(10);
/// Changes older than this are deleted from the feed.
const FEED_RETENTION_SECS: i64 = 3600;
/// A server that could not read the feed for this long may have missed pruned
/// changes: it drops all its caches instead.
const MAX_BLIND_GAP: Duration = Duration::from_secs(1800);

/// Reads the feed forever (until the task is aborted).
pub async fn follow_changes(
    store: Arc<SqlStore>,
    clients: Arc<CachedClients>,
    keys: Arc<Keys>,
    clock: Arc<dyn Clock>,
) {
    let mut seen = match store.latest_change().await {
        Ok(id) => id,
        Err(err) => {
            tracing::warn!(error = %err, "cannot read the change feed yet");
            0
        }
    };
    let mut history: VecDeque<(Instant, i64)> = VecDeque::new();
    let mut last_success = Instant::now();
    let mut last_prune = Instant::now();
    let mut listener = listen(&store).await;
    let mut interval = tokio::time::interval(if listener.is_some() {
        SAFETY_NET_INTERVAL
    } else {
        POLL_INTERVAL
    });
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {
                if listener.is_none() && store.backend() == Backend::Postgres {
                    // Lost earlier (the database was down): listen again.
                    listener = listen(&store).await;
                }
            }
            wake = next_change(&mut listener) => match wake {
                Ok(Wake::Notified) => metrics::counter!("gatehouse_change_notifications_total").increment(1),
                Ok(Wake::Reconnected) => tracing::info!("change notifications resumed after a reconnect; reading the feed"),
                Err(err) => {
                    tracing::warn!(error = %err, "change notifications lost; the feed is still read every few seconds");
                    listener = None;
                }
            },
        }
        while history.front().is_some_and(|(at, _)| at.elapsed() > LOOKBACK) {
            history.pop_front();
        }
        let from = history.front().map_or(seen, |(_, id)| *id).min(seen);
        let changes = match store.changes_since(from, 10_000).await {
            Ok(changes) => changes,
            Err(err) => {
                tracing::warn!(error = %err, "cannot read the change feed");
                continue;
            }
        };
        if last_success.elapsed() > MAX_BLIND_GAP {
            tracing::warn!("the change feed was unreadable for a long time: dropping all caches");
            clients.clear();
        }
        last_success = Instant::now();
        let mut reload_keys = false;
        for change in &changes {
            match change.kind {
                ChangeKind::Client => {
                    if let Some(id) = ClientId::parse(&change.key) {
                        clients.invalidate(&id);
                    }
                }
                ChangeKind::Keys => reload_keys |= change.id > seen,
            }
        }
        history.push_back((Instant::now(), seen));
        seen = changes.iter().map(|c| c.id).max().unwrap_or(seen).max(seen);
        // Key changes are rare; reading them every minute as well covers a change
        // whose feed entry was committed out of order.
        if last_prune.elapsed() > Duration::from_secs(60) {
            reload_keys = true;
        }
        if reload_keys {
            match keys.reload(clock.now()).await {
                Ok(()) => tracing::debug!("signing keys reloaded"),
                Err(err) => tracing::error!(error = %err, "cannot reload signing keys"),
            }
        }
        if last_prune.elapsed() > Duration::from_secs(60) {
            last_prune = Instant::now();
            if let Err(err) = store.prune_changes(clock.now() - FEED_RETENTION_SECS).await {
                tracing::warn!(error = %err, "cannot prune the change feed");
            }
        }
    }
}

async fn listen(store: &SqlStore) -> Option<ChangeListener> {
    match store.listen_for_changes().await {
        Ok(listener) => listener,
        Err(err) => {
            tracing::warn!(error = %err, "cannot listen for change notifications yet");
            None
        }
    }
}

/// The next wake-up of `listener`; never, without one.
async fn next_change(listener: &mut Option<ChangeListener>) -> Result<Wake, StoreError> {
    match listener {
        Some(listener) => listener.wait().await,
        None => std::future::pending().await,
    }
}

/// Rows deleted per statement by the sweeper: small enough never to hold a lock long.
const PURGE_BATCH: i64 = 1000;
/// Most batches in one sweep, so a huge backlog is worked off over several sweeps.
const PURGE_MAX_BATCHES: usize = 100;

/// Deletes expired refresh tokens, opaque tokens, jti revocations and dead logins,
/// every `interval`, in small batches (tables must not grow without bound under
/// steady traffic).
pub async fn purge_expired_tokens(store: Arc<SqlStore>, clock: Arc<dyn Clock>, interval: Duration) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let mut total = 0;
        for _ in 0..PURGE_MAX_BATCHES {
            match store.purge_expired(clock.now(), PURGE_BATCH).await {
                Ok(0) => break,
                Ok(deleted) => total += deleted,
                Err(err) => {
                    tracing::warn!(error = %err, "cannot delete expired tokens");
                    break;
                }
            }
            tokio::task::yield_now().await;
        }
        if total > 0 {
            tracing::debug!(deleted = total, "deleted expired tokens");
        }
    }
}
