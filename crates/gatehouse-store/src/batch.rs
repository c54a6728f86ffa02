//! Group commit for refresh token rotations.
//!
//! A durable commit costs an fsync (SQLite with `synchronous = FULL`, PostgreSQL's
//! WAL flush); one per rotation caps a server at a few hundred rotations a second.
//! Rotations therefore go to writer tasks that take everything queued, run them one
//! after another inside one transaction, and commit once: many rotations per fsync,
//! and no answer leaves before its commit. A rotation writes nothing until it is
//! decided, so a refusal needs no rollback; a database error fails the whole batch.
//! While a batch commits, the next one queues: batches grow with load by themselves,
//! with no timer.
//!
//! Exactly-once consumption holds within a batch (rotations run one after another on
//! one connection, so a second use of a token sees the first) and across writers
//! (PostgreSQL's row lock on the consumed token; SQLite has one writer). Batches take
//! those row locks in token order, so writers and nodes do not deadlock each other.

use std::sync::Arc;

use gatehouse_core::store::RotationDecision;
use gatehouse_core::tokens::TokenDigest;
use gatehouse_core::{ClientId, StoreError, UnixTime};
use tokio::sync::{mpsc, oneshot, Mutex};

use crate::connect::Pool;
use crate::error::db_error;
use crate::tokens::{rotate_in_tx, Rotation};

/// Most rotations in one transaction.
const MAX_BATCH: usize = 256;
/// How many times a batch runs when PostgreSQL aborts it for contention.
const ATTEMPTS: u32 = 3;
/// Rotations that may wait for a writer before callers wait to enqueue.
const QUEUE_DEPTH: usize = 4096;

/// One rotation to run.
pub(crate) struct RotationJob {
    pub(crate) presented: TokenDigest,
    pub(crate) client: ClientId,
    pub(crate) now: UnixTime,
    pub(crate) decide: RotationDecision,
}

type Reply = oneshot::Sender<Result<Rotation, StoreError>>;

/// The queue in front of the writer tasks.
pub(crate) struct RotationWriters {
    queue: mpsc::Sender<(RotationJob, Reply)>,
}

impl RotationWriters {
    /// Starts `writers` writer tasks on `pool` (needs a Tokio runtime).
    pub(crate) fn start(pool: &Pool, writers: usize) -> Self {
        let (queue, receiver) = mpsc::channel(QUEUE_DEPTH);
        let receiver = Arc::new(Mutex::new(receiver));
        for _ in 0..writers.max(1) {
            let receiver = receiver.clone();
            match pool {
                Pool::Sqlite(pool) => {
                    let pool = pool.clone();
                    tokio::spawn(async move {
                        while let Some(batch) = next_batch(&receiver).await {
                            run_batch!(pool, batch, false);
                        }
                    });
                }
                Pool::Postgres(pool) => {
                    let pool = pool.clone();
                    tokio::spawn(async move {
                        while let Some(batch) = next_batch(&receiver).await {
                            run_batch!(pool, batch, true);
                        }
                    });
                }
            }
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
async fn next_batch(
    receiver: &Mutex<mpsc::Receiver<(RotationJob, Reply)>>,
) -> Option<Vec<(RotationJob, Reply)>> {
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

/// Runs a batch in one transaction on `$pool` and answers every caller after the
/// commit (or with the commit's error).
///
/// The batch consumes its tokens in digest order, so two batches that share tokens
/// (two writers, or two nodes, each given the same tokens at once) lock them in the
/// same order and cannot wait on each other in a cycle; uses of one token keep their
/// arrival order, as the sort is stable. Should PostgreSQL still abort the batch to
/// break a cycle (through a family's row, say), nothing was written, and the batch
/// runs again, [`ATTEMPTS`] times in all.
macro_rules! run_batch {
    ($pool:expr, $batch:expr, $postgres:expr) => {{
        let mut batch: Vec<(RotationJob, Reply)> = $batch;
        batch.sort_by(|(a, _), (b, _)| a.presented.0.cmp(&b.presented.0));
        let (jobs, replies): (Vec<RotationJob>, Vec<Reply>) = batch.into_iter().unzip();
        let mut attempt = 1;
        let done = loop {
            let done: Result<Vec<Rotation>, StoreError> = async {
                let mut tx = $pool.begin().await.map_err(db_error)?;
                let mut outcomes = Vec::with_capacity(jobs.len());
                for job in &jobs {
                    // A database error mid-batch fails the whole batch: nothing is half
                    // done, and every caller may retry with the token it holds.
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
                    let _ = reply.send(Ok(outcome));
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
