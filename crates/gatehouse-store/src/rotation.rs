//! Refresh token rotation, and its group commit.
//!
//! One rotation is three steps inside a transaction (see
//! [`gatehouse_core::store::TokenStore::rotate_refresh_token`]):
//!
//! 1. **Consume.** A conditional `UPDATE … SET used_at = now WHERE … used_at IS NULL`
//!    marks the token used if it was not, and reports the token as it was before,
//!    with its login and user. On PostgreSQL that is one statement, the update in a
//!    CTE and the read in the main query, whose snapshot predates the update; the
//!    update's own result says whether this step took the token (a concurrent writer
//!    may have taken it since the snapshot: then it counts as used). SQLite, which has
//!    no updates in CTEs, runs the update and then the read, in-process.
//! 2. **Decide.** Core's decision reads that state: rotate, revoke the login, refuse.
//! 3. **Write** what it said: the successor (and an opaque access token); or the
//!    login's revocation; or nothing. Anything but a rotation puts back `used_at` that
//!    step 1 set, inside the same transaction, so no one ever sees it.
//!
//! On PostgreSQL a rotation costs two round trips (three for an opaque client), and a
//! refusal one more.
//!
//! **Group commit** ([`crate::group_commit`]): rotations go to writer tasks that run
//! everything queued inside one transaction and commit once, many rotations per
//! fsync; no answer leaves before its commit. A database error fails the whole batch
//! (nothing is half done: every caller may retry with the token it holds).
//!
//! Exactly-once consumption holds within a batch (rotations run one after another on
//! one connection, so a second use of a token sees the first) and across writers and
//! nodes (PostgreSQL's row lock on the consumed token, held to the commit; SQLite has
//! one writer). Batches take those row locks in token order, so writers and nodes do
//! not deadlock each other.

use gatehouse_core::store::RotationDecision;
use gatehouse_core::tokens::{Rotation, RotationStep, TokenDigest};
use gatehouse_core::{StoreError, UnixTime};
use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;

use crate::error::db_error;
use crate::group_commit::{next_batch, run_batch, Job, Queue, Writers};
use crate::token_rows::{insert_opaque, insert_refresh, select_refresh_state, RefreshStateRow};

/// Step 1 on SQLite: marks the token (`$1`) used at `$2`, if it was not and its login
/// is stored (a token whose login is gone is no token).
const CONSUME: &str = "UPDATE refresh_tokens SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL \
     AND EXISTS (SELECT 1 FROM token_families f WHERE f.family_id = refresh_tokens.family_id)";

/// Step 1 on PostgreSQL: [`CONSUME`] and the token as it was, in one statement.
const CONSUME_AND_READ: &str = concat!(
    "WITH consumed AS (UPDATE refresh_tokens SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL \
     AND EXISTS (SELECT 1 FROM token_families f WHERE f.family_id = refresh_tokens.family_id) \
     RETURNING 1) ",
    select_refresh_state!("EXISTS (SELECT 1 FROM consumed) AS consumed")
);

/// Undoes step 1 for a rotation that did not go ahead.
const RELEASE: &str = "UPDATE refresh_tokens SET used_at = NULL WHERE token_hash = $1";

/// RFC 9700 §4.14.2: ends a login whose token came back after its rotation.
const REVOKE_LOGIN: &str =
    "UPDATE token_families SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL";

/// A row of [`CONSUME_AND_READ`].
#[derive(sqlx::FromRow)]
struct ConsumedRow {
    consumed: bool,
    #[sqlx(flatten)]
    state: RefreshStateRow,
}

/// One rotation to run.
pub(crate) struct RotationJob {
    pub(crate) presented: TokenDigest,
    pub(crate) now: UnixTime,
    pub(crate) decide: RotationDecision,
}

impl Job for RotationJob {
    type Output = Rotation;
    const WHAT: &'static str = "rotation";

    /// The presented token's row is the one a rotation locks (its consuming step).
    fn lock_order(&self) -> [u8; 32] {
        self.presented.0
    }
}

/// The queue in front of the rotation writer tasks.
pub(crate) type RotationWriters = Writers<RotationJob>;

/// Starts one rotation writer task on `pool` (needs a Tokio runtime): SQLite has one
/// writer at a time anyway.
pub(crate) fn sqlite_writers(pool: &SqlitePool) -> RotationWriters {
    Writers::start(1, |queue: Queue<RotationJob>| {
        let pool = pool.clone();
        tokio::spawn(async move {
            while let Some(batch) = next_batch(&queue).await {
                run_batch!(pool, batch, rotate_in_tx, false);
            }
        });
    })
}

/// Starts `writers` rotation writer tasks on `pool` (needs a Tokio runtime), so that
/// batches overlap with each other's commits.
pub(crate) fn postgres_writers(pool: &PgPool, writers: usize) -> RotationWriters {
    Writers::start(writers, |queue: Queue<RotationJob>| {
        let pool = pool.clone();
        tokio::spawn(async move {
            while let Some(batch) = next_batch(&queue).await {
                run_batch!(pool, batch, rotate_in_tx, true);
            }
        });
    })
}

/// One rotation inside the open transaction `$tx`: consume, decide, write (see the
/// module docs). Evaluates to `Result<Result<Rotation, StoreError>, StoreError>`: the
/// outer error is the database's, and fails the batch (the transaction is unusable);
/// the inner one is this rotation's alone, which wrote nothing.
macro_rules! rotate_in_tx {
    ($tx:ident, $job:expr, $postgres:expr) => {
        async {
            let job: &RotationJob = $job;
            let digest = &job.presented.0[..];
            let found: Option<(RefreshStateRow, bool)> = if $postgres {
                let row: Option<ConsumedRow> = sqlx::query_as(CONSUME_AND_READ)
                    .bind(digest)
                    .bind(job.now)
                    .fetch_optional(&mut *$tx)
                    .await
                    .map_err(db_error)?;
                row.map(|row| (row.state, row.consumed))
            } else {
                let consumed = sqlx::query(CONSUME)
                    .bind(digest)
                    .bind(job.now)
                    .execute(&mut *$tx)
                    .await
                    .map_err(db_error)?
                    .rows_affected()
                    == 1;
                let row: Option<RefreshStateRow> = sqlx::query_as(select_refresh_state!())
                    .bind(digest)
                    .fetch_optional(&mut *$tx)
                    .await
                    .map_err(db_error)?;
                row.map(|row| (row, consumed))
            };
            let consumed = found.as_ref().is_some_and(|(_, consumed)| *consumed);
            let presented = found.map(|(row, consumed)| row.into_state(!consumed)).transpose();
            let (presented, step) = match presented {
                Ok(presented) => {
                    let step = (job.decide)(presented.as_ref());
                    (presented, Ok(step))
                }
                Err(corrupt) => (None, Err(corrupt)),
            };
            let rotates = matches!(step, Ok(RotationStep::Rotate(_)));
            if consumed && !rotates {
                sqlx::query(RELEASE)
                    .bind(digest)
                    .execute(&mut *$tx)
                    .await
                    .map_err(db_error)?;
            }
            let step = match step {
                Ok(step) => step,
                Err(corrupt) => return Ok(Err(corrupt)),
            };
            match (&step, &presented) {
                (RotationStep::Rotate(writes), _) if consumed => {
                    insert_refresh!($tx, writes.refresh).map_err(db_error)?;
                    if let Some(opaque) = &writes.opaque {
                        insert_opaque!($tx, opaque).map_err(db_error)?;
                    }
                }
                (RotationStep::Rotate(_), _) => {
                    return Ok(Err(StoreError::Other(
                        "a rotation was decided for a refresh token this step did not consume".into(),
                    )))
                }
                (RotationStep::RevokeLogin, Some(token)) => {
                    sqlx::query(REVOKE_LOGIN)
                        .bind(job.now)
                        .bind(&token.login.family_id)
                        .execute(&mut *$tx)
                        .await
                        .map_err(db_error)?;
                }
                (RotationStep::RevokeLogin, None) | (RotationStep::Refuse(_), _) => {}
            }
            Ok(Ok(Rotation { presented, step }))
        }
        .await
    };
}
use rotate_in_tx;
