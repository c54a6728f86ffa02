//! [`ReplayStore`] on SQL: single-use values (assertion and proof `jti`s), each
//! recorded once in `used_jtis`, through the group commit of [`crate::group_commit`].
//!
//! A record is one `INSERT … ON CONFLICT (digest) DO NOTHING`: the row inserted means
//! this was the value's first use; nothing inserted means it was recorded before. No
//! read comes first, so no two callers can both find the value unused:
//!
//! - within a batch, records run one after another on one connection, so a second
//!   use of a value sees the first (sorted by digest, the first to arrive first);
//! - across writers and nodes, PostgreSQL makes a second insert of a key wait for the
//!   transaction holding the first, and then do nothing if it committed; SQLite has
//!   one writer.
//!
//! Every answer leaves after its batch's commit: a value reported unused is durably
//! used before its caller acts on it.

use async_trait::async_trait;
use gatehouse_core::store::ReplayStore;
use gatehouse_core::{StoreError, UnixTime};
use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;

use crate::error::db_error;
use crate::group_commit::{next_batch, run_batch, Job, Queue, Writers};
use crate::SqlStore;

/// Records a value (`$1`, its digest) as used until `$2`, unless it was before.
const RECORD: &str =
    "INSERT INTO used_jtis (digest, expires_at) VALUES ($1, $2) ON CONFLICT (digest) DO NOTHING";

/// One value to record.
pub(crate) struct ReplayJob {
    digest: [u8; 32],
    expires_at: UnixTime,
}

impl Job for ReplayJob {
    /// Whether this was the value's first use.
    type Output = bool;
    const WHAT: &'static str = "replay record";

    /// A record locks the key it inserts.
    fn lock_order(&self) -> [u8; 32] {
        self.digest
    }
}

/// The queue in front of the replay writer tasks.
pub(crate) type ReplayWriters = Writers<ReplayJob>;

/// Starts one replay writer task on `pool` (needs a Tokio runtime): SQLite has one
/// writer at a time anyway.
pub(crate) fn sqlite_writers(pool: &SqlitePool) -> ReplayWriters {
    Writers::start(1, |queue: Queue<ReplayJob>| {
        let pool = pool.clone();
        tokio::spawn(async move {
            while let Some(batch) = next_batch(&queue).await {
                run_batch!(pool, batch, record_in_tx, false);
            }
        });
    })
}

/// Starts `writers` replay writer tasks on `pool` (needs a Tokio runtime), so that
/// batches overlap with each other's commits.
pub(crate) fn postgres_writers(pool: &PgPool, writers: usize) -> ReplayWriters {
    Writers::start(writers, |queue: Queue<ReplayJob>| {
        let pool = pool.clone();
        tokio::spawn(async move {
            while let Some(batch) = next_batch(&queue).await {
                run_batch!(pool, batch, record_in_tx, true);
            }
        });
    })
}

/// One record inside the open transaction `$tx` (the `$step` of [`run_batch!`]): the
/// same statement on both backends.
macro_rules! record_in_tx {
    ($tx:ident, $job:expr, $postgres:expr) => {
        async {
            let job: &ReplayJob = $job;
            let inserted = sqlx::query(RECORD)
                .bind(&job.digest[..])
                .bind(job.expires_at)
                .execute(&mut *$tx)
                .await
                .map_err(db_error)?
                .rows_affected();
            Ok::<_, StoreError>(Ok(inserted == 1))
        }
        .await
    };
}
use record_in_tx;

#[async_trait]
impl ReplayStore for SqlStore {
    async fn first_use(&self, digest: &[u8; 32], expires_at: UnixTime) -> Result<bool, StoreError> {
        self.replays
            .submit(ReplayJob {
                digest: *digest,
                expires_at,
            })
            .await
    }
}
