//! The in-memory client cache in front of the database: a client seen recently costs
//! no query. Bounded (quick_cache, CLOCK-Pro eviction), and kept fresh by the change
//! feed ([`crate::sync`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use gatehouse_core::store::ClientLookup;
use gatehouse_core::{Client, ClientId, StoreError};
use gatehouse_store::SqlStore;
use quick_cache::sync::Cache;

/// How many clients are kept in memory. At a few hundred bytes each this is tens of
/// megabytes, and the busy clients of a million registered ones stay hot.
pub const CLIENT_CACHE_CAPACITY: usize = 100_000;

/// Clients, cached.
pub struct CachedClients {
    store: Arc<SqlStore>,
    cache: Cache<ClientId, Arc<Client>>,
    /// Bumped by every invalidation; a lookup that raced one does not fill the cache
    /// with what it read before it.
    epoch: AtomicU64,
}

impl CachedClients {
    /// A cache of `capacity` clients over `store`.
    pub fn new(store: Arc<SqlStore>, capacity: usize) -> Self {
        Self {
            store,
            cache: Cache::new(capacity),
            epoch: AtomicU64::new(0),
        }
    }

    /// Drops one client.
    pub fn invalidate(&self, id: &ClientId) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.cache.remove(id);
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
        let epoch = self.epoch.load(Ordering::SeqCst);
        let found = self.store.find_client(id).await?;
        if let Some(client) = &found {
            if self.epoch.load(Ordering::SeqCst) == epoch {
                self.cache.insert(id.clone(), client.clone());
            }
        }
        Ok(found)
    }
}
