//! Group commit: writes that must be durable before their caller hears back, many
//! per transaction. Refresh token rotations ([`crate::rotation`]) and replay records
//! ([`crate::replays`]) go through it.
//!
//! A durable commit costs an fsync (SQLite with `synchronous = FULL`, PostgreSQL's
//! WAL flush); one per request caps a server at a few hundred of them a second.
//! Callers therefore queue their [`Job`] for writer tasks, each of which takes
//! everything queued (up to [`MAX_BATCH`]), runs it one job after another inside one
//! transaction, and commits once: many jobs per fsync, and no answer leaves before
//! its commit. A database error fails the whole batch (nothing is half done: every
//! caller may simply try again). While a batch commits, the next one queues: batches
//! grow with load by themselves, with no timer.
//!
//! A batch runs its jobs in [`Job::lock_order`] (stable: jobs with the same key keep
//! their arrival order), so that two batches that touch the same rows (two writers,
//! or two nodes) lock them in the same order and cannot wait on each other in a
//! cycle. Should PostgreSQL still abort a batch to break one (through some other
//! row), nothing was written, and the batch runs again, [`ATTEMPTS`] times in all.

use std::sync::Arc;

use gatehouse_core::StoreError;
use tokio::sync::{mpsc, oneshot, Mutex};

/// Most jobs in one transaction.
pub(crate) const MAX_BATCH: usize = 256;
/// How many times a batch runs when PostgreSQL aborts it for contention.
pub(crate) const ATTEMPTS: u32 = 3;
/// Jobs that may wait for a writer before callers wait to enqueue.
const QUEUE_DEPTH: usize = 4096;

/// One unit of work for the writers.
pub(crate) trait Job: Send + 'static {
    /// What its caller gets back once the batch has committed.
    type Output: Send + 'static;
    /// What it is, for log lines and errors ("rotation").
    const WHAT: &'static str;
    /// The key of the row it locks first (a digest): a batch runs its jobs in this
    /// order.
    fn lock_order(&self) -> [u8; 32];
}

/// Where a job's answer goes.
pub(crate) type Reply<J> = oneshot::Sender<Result<<J as Job>::Output, StoreError>>;
/// The queue the writer tasks take batches from.
pub(crate) type Queue<J> = Arc<Mutex<mpsc::Receiver<(J, Reply<J>)>>>;

/// The queue in front of the writer tasks of one kind of job.
pub(crate) struct Writers<J: Job> {
    queue: mpsc::Sender<(J, Reply<J>)>,
}

impl<J: Job> Writers<J> {
    /// Makes the queue and has `spawn` start each of `writers` tasks (at least one)
    /// on it.
    pub(crate) fn start(writers: usize, spawn: impl Fn(Queue<J>)) -> Self {
        let (queue, receiver) = mpsc::channel(QUEUE_DEPTH);
        let receiver = Arc::new(Mutex::new(receiver));
        for _ in 0..writers.max(1) {
            spawn(receiver.clone());
        }
        Self { queue }
    }

    /// Runs `job` and waits for its batch's commit.
    pub(crate) async fn submit(&self, job: J) -> Result<J::Output, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send((job, reply))
            .await
            .map_err(|_| StoreError::Unavailable(format!("the {} writer has stopped", J::WHAT)))?;
        answer
            .await
            .map_err(|_| StoreError::Unavailable(format!("the {} writer dropped a {0}", J::WHAT)))?
    }
}

/// Waits for one job, then takes whatever else is queued, up to [`MAX_BATCH`].
pub(crate) async fn next_batch<J: Job>(receiver: &Queue<J>) -> Option<Vec<(J, Reply<J>)>> {
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

/// Runs `$batch` (from [`next_batch`]) in one transaction on `$pool`, each job through
/// `$step!(tx, &job, $postgres)`, and answers every caller after the commit (or with
/// the batch's error). `$step` evaluates to `Result<Result<Output, StoreError>,
/// StoreError>`: the outer error is the database's and fails the batch (the
/// transaction is unusable); the inner one is that job's alone, which wrote nothing.
macro_rules! run_batch {
    ($pool:expr, $batch:expr, $step:ident, $postgres:expr) => {{
        use $crate::group_commit::Job as _;
        let mut batch = $batch;
        batch.sort_by_key(|(job, _)| job.lock_order());
        let (jobs, replies): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
        let what = $crate::group_commit::job_name(&jobs);
        let mut attempt = 1;
        let done = loop {
            let done: Result<Vec<_>, gatehouse_core::StoreError> = async {
                let mut tx = $pool.begin().await.map_err($crate::error::db_error)?;
                let mut outcomes = Vec::with_capacity(jobs.len());
                for job in &jobs {
                    outcomes.push($step!(tx, job, $postgres)?);
                }
                tx.commit().await.map_err($crate::error::db_error)?;
                Ok(outcomes)
            }
            .await;
            match done {
                Err(gatehouse_core::StoreError::Contention(err)) if attempt < $crate::group_commit::ATTEMPTS => {
                    tracing::info!(error = %err, kind = what, jobs = jobs.len(), attempt, "a batch lost to contention; running it again");
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
                tracing::warn!(error = %err, kind = what, jobs = replies.len(), "a batch failed");
                for reply in replies {
                    let _ = reply.send(Err(err.clone()));
                }
            }
        }
    }};
}
pub(crate) use run_batch;

/// [`Job::WHAT`] of the jobs of a batch, for its log lines.
pub(crate) fn job_name<J: Job>(_jobs: &[J]) -> &'static str {
    J::WHAT
}
