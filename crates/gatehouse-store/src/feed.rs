//! [`ChangeFeed`] on SQL: the `changes` table.

use async_trait::async_trait;
use gatehouse_core::store::{Change, ChangeFeed, ChangeKind};
use gatehouse_core::{StoreError, UnixTime};

use crate::error::db_error;
use crate::{on_pool, SqlStore};

/// Records a change inside the transaction `$tx` that makes it, so the feed and the
/// data cannot disagree.
macro_rules! record_change {
    ($tx:expr, $kind:expr, $key:expr, $at:expr) => {
        sqlx::query("INSERT INTO changes (kind, key, at) VALUES ($1, $2, $3)")
            .bind($kind.as_str())
            .bind($key)
            .bind($at)
            .execute(&mut *$tx)
            .await
    };
}
pub(crate) use record_change;

#[async_trait]
impl ChangeFeed for SqlStore {
    async fn latest_change(&self) -> Result<i64, StoreError> {
        let latest: Option<i64> = on_pool!(self, pool => sqlx::query_scalar("SELECT MAX(id) FROM changes")
            .fetch_one(pool)
            .await)
        .map_err(db_error)?;
        Ok(latest.unwrap_or(0))
    }

    async fn changes_since(&self, after: i64, limit: i64) -> Result<Vec<Change>, StoreError> {
        let rows: Vec<(i64, String, String)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT id, kind, key FROM changes WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(pool)
        .await)
        .map_err(db_error)?;
        // A kind this version does not know (written by a newer one) is skipped.
        Ok(rows
            .into_iter()
            .filter_map(|(id, kind, key)| ChangeKind::parse(&kind).map(|kind| Change { id, kind, key }))
            .collect())
    }

    async fn prune_changes(&self, before: UnixTime) -> Result<u64, StoreError> {
        on_pool!(self, pool => sqlx::query("DELETE FROM changes WHERE at < $1").bind(before).execute(pool).await.map(|r| r.rows_affected()))
            .map_err(db_error)
    }
}

/// The channel that every committed change is announced on (PostgreSQL `NOTIFY`, from
/// a trigger on `changes`: see migration 0005).
const CHANGES_CHANNEL: &str = "gatehouse_changes";

/// A PostgreSQL `LISTEN` on the change feed: wakes a follower as soon as a change
/// commits, instead of at its next poll.
pub struct ChangeListener(sqlx::postgres::PgListener);

/// Why a [`ChangeListener`] woke up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// A change was committed.
    Notified,
    /// The connection was lost and made again: notifications sent meanwhile are lost,
    /// so the feed must be read.
    Reconnected,
}

impl ChangeListener {
    /// Waits for the next change (or reconnection).
    pub async fn wait(&mut self) -> Result<Wake, StoreError> {
        match self.0.try_recv().await {
            Ok(Some(_)) => Ok(Wake::Notified),
            Ok(None) => Ok(Wake::Reconnected),
            Err(e) => Err(db_error(e)),
        }
    }
}

impl SqlStore {
    /// A listener on the change feed, for PostgreSQL; `None` for SQLite, whose
    /// followers are in one process or poll.
    pub async fn listen_for_changes(&self) -> Result<Option<ChangeListener>, StoreError> {
        match &self.pool {
            crate::connect::Pool::Sqlite(_) => Ok(None),
            crate::connect::Pool::Postgres(pool) => {
                let mut listener = sqlx::postgres::PgListener::connect_with(pool)
                    .await
                    .map_err(db_error)?;
                listener.listen(CHANGES_CHANNEL).await.map_err(db_error)?;
                Ok(Some(ChangeListener(listener)))
            }
        }
    }
}
