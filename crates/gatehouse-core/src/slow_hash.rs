//! A fixed number of slow (Argon2id) hash verifications and hashings at a time.
//!
//! Each verification costs ~20 ms of CPU and 19 MiB of memory, and a stranger can ask
//! for one with any wrong secret of a client whose secret was imported, or any
//! password. Run on tokio's blocking pool without a bound, 200 such requests at once
//! took a server from 18 MB to 7.7 GB and 365 threads. The gate holds them to a
//! fixed number of slots; a request that cannot get one within `max_wait` is refused
//! at once (`503 temporarily_unavailable` with `Retry-After`), so memory, threads and
//! CPU stay bounded whatever arrives, and work that needs no slow hash (clients with
//! generated secrets, every token after the first of an imported secret) never waits.
//! The hashes run on one dedicated thread per slot. New hashes (an imported secret
//! or a password set through the admin API) take the same slots: they cost the same,
//! and a flood of them must not get past the bound either.

use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

use crate::{ClientSecret, OAuthError, Random, SecretHash};

/// How long a verification waits for a slot by default before it is refused.
pub const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(5);

/// The slots for slow hash verifications.
#[derive(Clone)]
pub struct SlowHashGate {
    slots: Arc<Semaphore>,
    concurrency: usize,
    max_wait: Duration,
    workers: Arc<OnceLock<Workers>>,
}

impl std::fmt::Debug for SlowHashGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlowHashGate")
            .field("concurrency", &self.concurrency)
            .field("max_wait", &self.max_wait)
            .finish_non_exhaustive()
    }
}

/// One hash for a worker thread: the permit travels with it, so a slot is free
/// again only when the hash is done, even if its request was dropped.
struct Job {
    work: Work,
    _slot: OwnedSemaphorePermit,
}

/// What a worker computes.
enum Work {
    /// Checks `secret` against `hash`.
    Verify {
        hash: SecretHash,
        secret: ClientSecret,
        answer: oneshot::Sender<bool>,
    },
    /// Hashes `secret` with Argon2id and a fresh salt from `rng`.
    Hash {
        secret: ClientSecret,
        rng: Arc<dyn Random>,
        answer: oneshot::Sender<Result<SecretHash, String>>,
    },
}

/// The threads that run the hashes: as many as there are slots, started on first
/// use and kept. Dedicated threads, not tokio's blocking pool, each with its own
/// Argon2 memory allocated once: the memory for hashing is the number of slots
/// times 19 MiB, whatever arrives and for as long as the process lives.
struct Workers {
    jobs: mpsc::Sender<Job>,
}

impl Workers {
    fn start(count: usize) -> Self {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for n in 0..count {
            let queue = queue.clone();
            let started = std::thread::Builder::new()
                .name(format!("slow-hash-{n}"))
                .spawn(move || {
                    // This thread's Argon2 memory, allocated by its first hash and
                    // reused by every later one.
                    let mut memory = Vec::new();
                    loop {
                        let job = match queue.lock() {
                            Ok(queue) => queue.recv(),
                            Err(poisoned) => poisoned.into_inner().recv(),
                        };
                        let Ok(job) = job else { return };
                        // A dropped receiver (its request gave up) needs no answer.
                        match job.work {
                            Work::Verify { hash, secret, answer } => {
                                let _ = answer.send(hash.verify_with_memory(&secret, &mut memory));
                            }
                            // New hashes are rare (admin changes), so they allocate
                            // their own memory rather than share this thread's.
                            Work::Hash { secret, rng, answer } => {
                                let _ = answer.send(SecretHash::argon2id(&secret, rng.as_ref()));
                            }
                        }
                    }
                });
            // A thread that cannot start leaves fewer workers; the jobs still run.
            drop(started);
        }
        Self { jobs }
    }
}

impl SlowHashGate {
    /// At most `concurrency` verifications at once (at least one); a verification
    /// waits at most `max_wait` for a slot.
    pub fn new(concurrency: usize, max_wait: Duration) -> Self {
        let concurrency = concurrency.max(1);
        Self {
            slots: Arc::new(Semaphore::new(concurrency)),
            concurrency,
            max_wait,
            workers: Arc::new(OnceLock::new()),
        }
    }

    /// Half the cores, at least one: the other half keeps serving requests that need
    /// no slow hash while the gate is full.
    pub fn default_concurrency() -> usize {
        std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
    }

    /// The number of slots.
    pub fn concurrency(&self) -> usize {
        self.concurrency
    }

    /// Checks `secret` against the slow `hash` in a slot, off the async workers.
    /// `Err(OAuthError::Overloaded)` when no slot frees within the wait.
    pub async fn verify(&self, hash: &SecretHash, secret: &ClientSecret) -> Result<bool, OAuthError> {
        let (answer, verified) = oneshot::channel();
        self.run(Work::Verify {
            hash: hash.clone(),
            secret: secret.clone(),
            answer,
        })
        .await?;
        verified
            .await
            .map_err(|_| OAuthError::server_error("a password hash thread dropped its job"))
    }

    /// The Argon2id hash of `secret` ([`SecretHash::argon2id`]), computed in a slot
    /// off the async workers. `Err(OAuthError::Overloaded)` when no slot frees within
    /// the wait.
    pub async fn hash(&self, secret: &ClientSecret, rng: Arc<dyn Random>) -> Result<SecretHash, OAuthError> {
        let (answer, hashed) = oneshot::channel();
        self.run(Work::Hash {
            secret: secret.clone(),
            rng,
            answer,
        })
        .await?;
        hashed
            .await
            .map_err(|_| OAuthError::server_error("a password hash thread dropped its job"))?
            .map_err(|err| OAuthError::server_error(format!("cannot hash a secret: {err}")))
    }

    /// Waits up to `max_wait` for a slot, then hands `work` with it to the threads.
    async fn run(&self, work: Work) -> Result<(), OAuthError> {
        let slot = match tokio::time::timeout(self.max_wait, self.slots.clone().acquire_owned()).await {
            Ok(Ok(slot)) => slot,
            // Timed out, or the semaphore was closed (never done).
            _ => return Err(OAuthError::Overloaded),
        };
        let workers = self.workers.get_or_init(|| Workers::start(self.concurrency));
        workers
            .jobs
            .send(Job { work, _slot: slot })
            .map_err(|_| OAuthError::server_error("the password hash threads have stopped"))
    }
}

impl Default for SlowHashGate {
    fn default() -> Self {
        Self::new(Self::default_concurrency(), DEFAULT_MAX_WAIT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SystemRandom;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn at_most_the_slots_run_and_the_rest_are_refused_fast() {
        let secret = ClientSecret::new("an imported secret!");
        let hash = SecretHash::argon2id(&secret, &SystemRandom).unwrap();
        let gate = SlowHashGate::new(1, Duration::from_millis(1));
        let wrong = ClientSecret::new("a wrong secret....");
        let attempts = (0..8).map(|_| {
            let (gate, hash, wrong) = (gate.clone(), hash.clone(), wrong.clone());
            tokio::spawn(async move { gate.verify(&hash, &wrong).await })
        });
        let results: Vec<_> = futures_join(attempts).await;
        let refused = results
            .iter()
            .filter(|r| **r == Err(OAuthError::Overloaded))
            .count();
        let checked = results.iter().filter(|r| **r == Ok(false)).count();
        assert_eq!(refused + checked, 8);
        assert!(
            checked >= 1 && refused >= 1,
            "checked {checked}, refused {refused}"
        );
        // With a slot free again, the right secret verifies.
        let gate = SlowHashGate::new(1, Duration::from_secs(5));
        assert_eq!(gate.verify(&hash, &secret).await, Ok(true));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hashes_in_a_slot_and_the_hash_verifies() {
        let gate = SlowHashGate::new(1, Duration::from_secs(5));
        let secret = ClientSecret::new("an imported secret!");
        let hash = gate.hash(&secret, Arc::new(SystemRandom)).await.unwrap();
        assert!(hash.is_slow());
        assert_eq!(gate.verify(&hash, &secret).await, Ok(true));
        let wrong = ClientSecret::new("an imported secret?");
        assert_eq!(gate.verify(&hash, &wrong).await, Ok(false));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_hash_is_refused_while_the_only_slot_is_taken() {
        let gate = SlowHashGate::new(1, Duration::ZERO);
        // Hold the one slot, as a running hash does.
        let held = gate.slots.clone().acquire_owned().await.unwrap();
        let secret = ClientSecret::new("an imported secret!");
        assert_eq!(
            gate.hash(&secret, Arc::new(SystemRandom)).await,
            Err(OAuthError::Overloaded)
        );
        drop(held);
        assert!(gate.hash(&secret, Arc::new(SystemRandom)).await.is_ok());
    }

    async fn futures_join<T: Send + 'static>(
        handles: impl Iterator<Item = tokio::task::JoinHandle<T>>,
    ) -> Vec<T> {
        let handles: Vec<_> = handles.collect();
        let mut out = Vec::with_capacity(handles.len());
        for handle in handles {
            out.push(handle.await.unwrap());
        }
        out
    }
}
