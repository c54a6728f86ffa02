//! The issuer's signing keys: fetched through the metadata, kept in memory, fetched
//! again on an unknown `kid` (at most once per refetch interval, shared by everyone
//! waiting) and when older than the maximum age.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};
use serde::Deserialize;
use tokio::time::Instant;

use crate::discovery::Discovery;

/// A public key and the one algorithm it may verify.
pub struct VerifyingKey {
    pub alg: Algorithm,
    pub key: DecodingKey,
}

/// The keys as last fetched.
#[derive(Default)]
struct KeySet {
    keys: HashMap<String, Arc<VerifyingKey>>,
    /// When they were fetched; `None` before the first successful fetch.
    fetched_at: Option<Instant>,
}

/// What a lookup found.
pub enum KeyLookup {
    /// The key.
    Found(Arc<VerifyingKey>),
    /// The issuer does not publish this `kid` (after a fetch, or within the refetch
    /// interval of one).
    Unknown,
    /// No keys could be fetched at all.
    Unavailable,
}

/// Fetch attempts: when the last started, and how many so far.
struct Attempts {
    last: Option<Instant>,
    count: u64,
}

pub struct Jwks {
    discovery: Arc<Discovery>,
    allowed: Vec<Algorithm>,
    refetch_interval: Duration,
    max_age: Duration,
    current: RwLock<Arc<KeySet>>,
    /// Held while fetching: one fetch at a time, the others wait for its result.
    attempts: tokio::sync::Mutex<Attempts>,
    /// `attempts.count`, readable without the lock.
    attempt_count: std::sync::atomic::AtomicU64,
}

#[derive(Deserialize)]
struct JwkSetDoc {
    keys: Vec<serde_json::Value>,
}

impl Jwks {
    pub fn new(
        discovery: Arc<Discovery>,
        allowed: Vec<Algorithm>,
        refetch_interval: Duration,
        max_age: Duration,
    ) -> Self {
        Self {
            discovery,
            allowed,
            refetch_interval,
            max_age,
            current: RwLock::new(Arc::new(KeySet::default())),
            attempts: tokio::sync::Mutex::new(Attempts { last: None, count: 0 }),
            attempt_count: std::sync::atomic::AtomicU64::new(0),
        }
    }

    fn snapshot(&self) -> Arc<KeySet> {
        match self.current.read() {
            Ok(set) => set.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The key `kid`. Returns `(lookup, keys_removed)`: whether a fetch made here
    /// dropped keys that were published before (verified tokens must be forgotten).
    pub async fn key(self: &Arc<Self>, kid: &str) -> (KeyLookup, bool) {
        let set = self.snapshot();
        if let Some(key) = set.keys.get(kid) {
            if set.fetched_at.is_some_and(|at| at.elapsed() >= self.max_age) {
                self.refresh_in_background();
            }
            return (KeyLookup::Found(key.clone()), false);
        }
        let seen = self.attempt_count.load(std::sync::atomic::Ordering::Acquire);
        let mut attempts = self.attempts.lock().await;
        if attempts.count != seen {
            // Someone fetched while we waited: their result is ours.
            return (self.lookup(kid), false);
        }
        if let Some(last) = attempts.last {
            // At most one fetch per interval; wait for the next allowed one.
            tokio::time::sleep_until(last + self.refetch_interval).await;
        }
        let removed = self.fetch(&mut attempts).await;
        (self.lookup(kid), removed)
    }

    fn lookup(&self, kid: &str) -> KeyLookup {
        let set = self.snapshot();
        match set.keys.get(kid) {
            Some(key) => KeyLookup::Found(key.clone()),
            None if set.fetched_at.is_none() => KeyLookup::Unavailable,
            None => KeyLookup::Unknown,
        }
    }

    fn refresh_in_background(self: &Arc<Self>) {
        let jwks = self.clone();
        tokio::spawn(async move {
            let Ok(mut attempts) = jwks.attempts.try_lock() else {
                return; // a fetch is under way
            };
            if attempts
                .last
                .is_some_and(|at| at.elapsed() < jwks.refetch_interval)
            {
                return;
            }
            jwks.fetch(&mut attempts).await;
        });
    }

    /// Fetches the JWKS; returns whether keys published before are gone.
    async fn fetch(&self, attempts: &mut Attempts) -> bool {
        attempts.last = Some(Instant::now());
        attempts.count += 1;
        let fetched = self.fetch_keys().await;
        self.attempt_count
            .store(attempts.count, std::sync::atomic::Ordering::Release);
        let Some(keys) = fetched else { return false };
        let old = self.snapshot();
        let removed = old.keys.keys().any(|kid| !keys.contains_key(kid));
        let set = Arc::new(KeySet {
            keys,
            fetched_at: Some(Instant::now()),
        });
        match self.current.write() {
            Ok(mut current) => *current = set,
            Err(poisoned) => *poisoned.into_inner() = set,
        }
        removed
    }

    async fn fetch_keys(&self) -> Option<HashMap<String, Arc<VerifyingKey>>> {
        let metadata = self.discovery.metadata().await.ok()?;
        let doc: JwkSetDoc = match self.discovery.get_json(&metadata.jwks_uri).await {
            Ok(doc) => doc,
            Err(e) => {
                tracing::warn!(url = %metadata.jwks_uri, error = %e, "cannot fetch the issuer's JWKS");
                return None;
            }
        };
        Some(
            doc.keys
                .iter()
                .filter_map(|value| self.usable_key(value))
                .collect(),
        )
    }

    /// A published key the guard may use: it has a `kid` and an `alg` of the allowed,
    /// asymmetric ones, and a key of the family that `alg` needs. Any other key (an
    /// unknown type, a symmetric `oct` key) is skipped, not an error.
    fn usable_key(&self, value: &serde_json::Value) -> Option<(String, Arc<VerifyingKey>)> {
        let jwk: Jwk = serde_json::from_value(value.clone()).ok()?;
        let kid = jwk.common.key_id.clone()?;
        let alg: Algorithm = value.get("alg")?.as_str()?.parse().ok()?;
        if !self.allowed.contains(&alg) {
            return None;
        }
        let key = DecodingKey::from_jwk(&jwk).ok()?;
        if key.family() != family_of(alg) {
            return None;
        }
        Some((kid, Arc::new(VerifyingKey { alg, key })))
    }
}

/// The key family `alg` needs.
fn family_of(alg: Algorithm) -> AlgorithmFamily {
    match alg {
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => AlgorithmFamily::Hmac,
        Algorithm::ES256 | Algorithm::ES384 => AlgorithmFamily::Ec,
        Algorithm::EdDSA => AlgorithmFamily::Ed,
        _ => AlgorithmFamily::Rsa,
    }
}
