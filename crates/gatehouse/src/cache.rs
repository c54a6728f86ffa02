//! The in-memory client cache in front of the database: a client seen recently costs
//! no query. Bounded (quick_cache, CLOCK-Pro eviction), and kept fresh by the change
//! feed ([`crate::sync`]).
//!
//! Beside it, the set of every registered client id (as keyed 64-bit hashes: 1M
//! clients take ~16 MB), read at start-up and kept by the change feed. An id that is
//! not in it costs no query: without the set, every request with a made-up id went to
//! the database, which let strangers load it and tell unknown ids from known ones by
//! the time of the answer. A client created a moment ago on another node or by the
//! CLI, before the change feed tells this node, is still looked up, within a small
//! global budget ([`UNKNOWN_LOOKUPS_PER_SECOND`]); past it, such an id waits for the
//! change feed (at most a second or two).

use std::collections::HashSet;
use std::hash::{BuildHasher, RandomState};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use async_trait::async_trait;
use gatehouse_core::store::ClientLookup;
use gatehouse_core::{Client, ClientId, StoreError};
use gatehouse_store::SqlStore;
use quick_cache::sync::Cache;

/// How many clients are kept in memory. At a few hundred bytes each this is tens of
/// megabytes, and the busy clients of a million registered ones stay hot.
pub const CLIENT_CACHE_CAPACITY: usize = 100_000;

/// Database lookups per second, for the whole node, of ids not in the known set.
pub const UNKNOWN_LOOKUPS_PER_SECOND: u32 = 50;

/// Clients, cached.
pub struct CachedClients {
    store: Arc<SqlStore>,
    cache: Cache<ClientId, Arc<Client>>,
    /// Bumped by every invalidation; a lookup that raced one does not fill the cache
    /// with what it read before it.
    epoch: AtomicU64,
    /// Keyed hashes of every client id that exists (and of deleted ones until they
    /// are next looked up).
    known: RwLock<HashSet<u64>>,
    /// The key of those hashes, random per process, so nobody can aim at collisions.
    hasher: RandomState,
    /// The budget for looking up ids the set does not hold.
    unknown_lookups: DefaultDirectRateLimiter,
}

impl CachedClients {
    /// A cache of `capacity` clients over `store`.
    pub fn new(store: Arc<SqlStore>, capacity: usize) -> Self {
        Self {
            store,
            cache: Cache::new(capacity),
            epoch: AtomicU64::new(0),
            known: RwLock::new(HashSet::new()),
            hasher: RandomState::new(),
            unknown_lookups: RateLimiter::direct(
                Quota::per_second(NonZeroU32::new(UNKNOWN_LOOKUPS_PER_SECOND).unwrap_or(NonZeroU32::MIN))
                    .allow_burst(NonZeroU32::new(UNKNOWN_LOOKUPS_PER_SECOND * 2).unwrap_or(NonZeroU32::MIN)),
            ),
        }
    }

    /// Reads every registered client id into the known set (at start-up, before
    /// serving); returns how many there are.
    pub async fn load_known_ids(&self) -> Result<u64, StoreError> {
        let mut ids = HashSet::new();
        let count = self
            .store
            .for_each_client_id(|id| {
                ids.insert(self.hasher.hash_one(id));
            })
            .await?;
        self.known_mut().extend(ids);
        Ok(count)
    }

    /// Drops one client; it is known from now on (the change may be its creation).
    pub fn invalidate(&self, id: &ClientId) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.cache.remove(id);
        self.known_mut().insert(self.hasher.hash_one(id.as_str()));
    }

    fn is_known(&self, id: &ClientId) -> bool {
        let hash = self.hasher.hash_one(id.as_str());
        match self.known.read() {
            Ok(known) => known.contains(&hash),
            Err(poisoned) => poisoned.into_inner().contains(&hash),
        }
    }

    fn known_mut(&self) -> std::sync::RwLockWriteGuard<'_, HashSet<u64>> {
        match self.known.write() {
            Ok(known) => known,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Drops every client.
    pub fn clear(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.cache.clear();
    }
}

#[async_trait]
impl ClientLookup for CachedClients {
    async fn find_client(&self, id: &ClientId) -> Result<Option<Arc<Client>>, StoreError> {
        if let Some(client) = self.cache.get(id) {
            return Ok(Some(client));
        }
        let known = self.is_known(id);
        if !known && self.unknown_lookups.check().is_err() {
            metrics::counter!("gatehouse_unknown_client_lookups_skipped_total").increment(1);
            return Ok(None);
        }
        let epoch = self.epoch.load(Ordering::SeqCst);
        let found = self.store.find_client(id).await?;
        let unchanged = self.epoch.load(Ordering::SeqCst) == epoch;
        match &found {
            Some(client) => {
                if unchanged {
                    self.cache.insert(id.clone(), client.clone());
                }
                if !known {
                    self.known_mut().insert(self.hasher.hash_one(id.as_str()));
                }
            }
            // A deleted client's id leaves the set once looked up, unless a change
            // (its re-creation, say) raced the lookup.
            None if known && unchanged => {
                self.known_mut().remove(&self.hasher.hash_one(id.as_str()));
            }
            None => {}
        }
        Ok(found)
    }
}
