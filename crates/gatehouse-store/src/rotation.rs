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
//! **Group commit.** A durable commit costs an fsync (SQLite with `synchronous = FULL`,
//! PostgreSQL's WAL flush); one per rotation caps a server at a few hundred rotations
//! a second. Rotations therefore go to writer tasks that take everything queued, run
//! them one after another inside one transaction, and commit once: many rotations per
//! fsync, and no answer leaves before its commit. A database error fails the whole
//! batch (nothing is half done: every caller may retry with the token it holds).
//! While a batch commits, the next one queues: batches grow with load by themselves,
//! with no timer.
//!
//! Exactly-once consumption holds within a batch (rotations run one after another on
//! one connection, so a second use of a token sees the first) and across writers and
//! nodes (PostgreSQL's row lock on the consumed token, held to the commit; SQLite has
//! one writer). Batches take those row locks in token order, so writers and nodes do
//! not deadlock each other.

use std::sync::Arc;

use gatehouse_core::store::RotationDecision;
use gatehouse_core::tokens::{Rotation, RotationStep, TokenDigest};
use gatehouse_core::{StoreError, UnixTime};
use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;
use tokio::sync::{mpsc, oneshot, Mutex};

use crate::error::db_error;
use crate::token_rows::{insert_opaque, insert_refresh, select_refresh_state, RefreshStateRow};

/// Most rotations in one transaction.
const MAX_BATCH: usize = 256;
/// How many times a batch runs when PostgreSQL aborts it for contention.
const ATTEMPTS: u32 = 3;
/// Rotations that may wait for a writer before callers wait to enqueue.
const QUEUE_DEPTH: usize = 4096;

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

type Reply = oneshot::Sender<Result<Rotation, StoreError>>;
type Queue = Arc<Mutex<mpsc::Receiver<(RotationJob, Reply)>>>;

/// The queue in front of the writer tasks.
pub(crate) struct RotationWriters {
    queue: mpsc::Sender<(RotationJob, Reply)>,
}

impl RotationWriters {
    /// Starts one writer task on `pool` (needs a Tokio runtime): SQLite has one writer
    /// at a time anyway.
    pub(crate) fn sqlite(pool: &SqlitePool) -> Self {
        Self::start(1, |queue| {
            let pool = pool.clone();
            tokio::spawn(async move {
                while let Some(batch) = next_batch(&queue).await {
                    run_batch!(pool, batch, false);
                }
            });
        })
    }

    /// Starts `writers` writer tasks on `pool` (needs a Tokio runtime), so that
    /// batches overlap with each other's commits.
    pub(crate) fn postgres(pool: &PgPool, writers: usize) -> Self {
        Self::start(writers, |queue| {
            let pool = pool.clone();
            tokio::spawn(async move {
                while let Some(batch) = next_batch(&queue).await {
                    run_batch!(pool, batch, true);
                }
            });
        })
    }

    fn start(writers: usize, spawn: impl Fn(Queue)) -> Self {
        let (queue, receiver) = mpsc::channel(QUEUE_DEPTH);
        let receiver = Arc::new(Mutex::new(receiver));
        for _ in 0..writers.max(1) {
            spawn(receiver.clone());
        }
        Self { queue }
    }

    /// Runs one rotation and waits for its commit.
    pub(crate) async fn submit(&self, job: RotationJob) -> Result<Rotation, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send((job, reply))
            .await
            .map_err(|_| StoreError::Unavailable("the rotation writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Unavailable("the rotation writer dropped a rotation".into()))?
    }
}

/// Waits for one rotation, then takes whatever else is queued, up to [`MAX_BATCH`].
async fn next_batch(receiver: &Queue) -> Option<Vec<(RotationJob, Reply)>> {
    let mut receiver = receiver.lock().await;
    let first = receiver.recv().await?;
    let mut batch = Vec::with_capacity(16);
    batch.push(first);
    while batch.len() < MAX_BATCH {
        match receiver.try_recv() {
            Ok(job) => batch.push(job),
            Err(_) => break,
        }
    }
    Some(batch)
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

/// Runs a batch in one transaction on `$pool` and answers every caller after the
/// commit (or with the commit's error).
///
/// The batch consumes its tokens in digest order, so two batches that share tokens
/// (two writers, or two nodes, each given the same tokens at once) lock them in the
/// same order and cannot wait on each other in a cycle; uses of one token keep their
/// arrival order, as the sort is stable. Should PostgreSQL still abort the batch to
/// break a cycle (through a login's row, say), nothing was written, and the batch
/// runs again, [`ATTEMPTS`] times in all.
macro_rules! run_batch {
    ($pool:expr, $batch:expr, $postgres:expr) => {{
        let mut batch: Vec<(RotationJob, Reply)> = $batch;
        batch.sort_by(|(a, _), (b, _)| a.presented.0.cmp(&b.presented.0));
        let (jobs, replies): (Vec<RotationJob>, Vec<Reply>) = batch.into_iter().unzip();
        let mut attempt = 1;
        let done = loop {
            let done: Result<Vec<Result<Rotation, StoreError>>, StoreError> = async {
                let mut tx = $pool.begin().await.map_err(db_error)?;
                let mut outcomes = Vec::with_capacity(jobs.len());
                for job in &jobs {
                    outcomes.push(rotate_in_tx!(tx, job, $postgres)?);
                }
                tx.commit().await.map_err(db_error)?;
                Ok(outcomes)
            }
            .await;
            match done {
                Err(StoreError::Contention(err)) if attempt < ATTEMPTS => {
                    tracing::info!(error = %err, rotations = jobs.len(), attempt, "a rotation batch lost to contention; running it again");
                    attempt += 1;
                }
                done => break done,
            }
        };
        match done {
            Ok(outcomes) => {
                for (reply, outcome) in replies.into_iter().zip(outcomes) {
                    let _ = reply.send(outcome);
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, rotations = replies.len(), "a rotation batch failed");
                for reply in replies {
                    let _ = reply.send(Err(err.clone()));
                }
            }
        }
    }};
}
use run_batch;
