//! The signing keys of a running server or admin command: the master key that seals
//! them, the first key made on first start, rotation, and loading the live keys into
//! the in-memory [`KeyRing`] that signs tokens without touching the disk.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use gatehouse_core::keys::{KeySet, PublishedKey};
use gatehouse_core::sealing::MasterKey;
use gatehouse_core::store::{ClientStore, KeyStore, StoredKey};
use gatehouse_core::{KeyRing, Random, SigningAlg, SigningKey, StoreError, UnixTime};
use gatehouse_store::SqlStore;

use crate::config::ConfigError;

/// How long a retired key stays published beyond the longest token lifetime: covers
/// servers that keep signing with it until they notice the rotation (≤ 5 s) and
/// modest clock skew between issuer and resource servers.
const RETIRED_KEY_SLACK: i64 = 300;

/// Key handling failed.
#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    /// A setting is wrong (the master key does not open the stored keys, say).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A key could not be made or read.
    #[error("{0}")]
    Key(String),
}

pub use crate::master_key::load_master_key;

/// A new key of `alg`, sealed for storage.
fn new_stored_key(
    alg: SigningAlg,
    master: &MasterKey,
    rng: &dyn Random,
    now: UnixTime,
) -> Result<(SigningKey, StoredKey), KeyringError> {
    let (key, pkcs8) = SigningKey::generate(alg).map_err(|e| KeyringError::Key(e.to_string()))?;
    let sealed = master
        .seal(rng, key.kid(), &pkcs8)
        .map_err(|e| KeyringError::Key(e.to_string()))?;
    let stored = StoredKey {
        kid: key.kid().to_owned(),
        alg,
        sealed_private_key: sealed,
        is_current: true,
        created_at: now,
        publish_until: None,
    };
    Ok((key, stored))
}

/// Makes a new current key; the old one stays published until every token it may
/// have signed has expired.
pub async fn rotate(
    store: &SqlStore,
    master: &MasterKey,
    alg: SigningAlg,
    default_access_token_ttl: i64,
    rng: &dyn Random,
    now: UnixTime,
) -> Result<SigningKey, KeyringError> {
    let longest_ttl = store
        .max_access_token_ttl()
        .await?
        .unwrap_or(0)
        .max(default_access_token_ttl);
    let (key, stored) = new_stored_key(alg, master, rng, now)?;
    store
        .rotate_key(&stored, now + longest_ttl + RETIRED_KEY_SLACK)
        .await?;
    Ok(key)
}

/// The keys a server signs and publishes with, loaded from the database.
pub struct Keys {
    store: Arc<SqlStore>,
    master: MasterKey,
    ring: Arc<KeyRing>,
    /// Keys already opened, by kid: opening an RSA key costs milliseconds.
    opened: Mutex<HashMap<String, Arc<SigningKey>>>,
}

impl Keys {
    /// Keys from `store`, opened with `master`.
    pub fn new(store: Arc<SqlStore>, master: MasterKey) -> Self {
        Self {
            store,
            master,
            ring: Arc::new(KeyRing::default()),
            opened: Mutex::new(HashMap::new()),
        }
    }

    /// The ring the token service signs with.
    pub fn ring(&self) -> Arc<KeyRing> {
        self.ring.clone()
    }

    /// On start: makes the first key if there is none (another node may win that race,
    /// and then its key is used), and rotates to `alg` if the current key has another.
    pub async fn ensure_current(
        &self,
        alg: SigningAlg,
        default_access_token_ttl: i64,
        rng: &dyn Random,
        now: UnixTime,
    ) -> Result<(), KeyringError> {
        let live = self.store.live_keys(now).await?;
        match live.iter().find(|k| k.is_current) {
            None => {
                let (_, stored) = new_stored_key(alg, &self.master, rng, now)?;
                if self.store.insert_first_key(&stored).await? {
                    tracing::info!(kid = %stored.kid, alg = %alg, "created the first signing key");
                }
            }
            Some(current) if current.alg != alg => {
                let key = rotate(&self.store, &self.master, alg, default_access_token_ttl, rng, now).await?;
                tracing::info!(kid = key.kid(), alg = %alg, "signing_alg changed: rotated to a new key");
            }
            Some(_) => {}
        }
        self.reload(now).await
    }

    /// Loads the live keys into the ring.
    pub async fn reload(&self, now: UnixTime) -> Result<(), KeyringError> {
        let live = self.store.live_keys(now).await?;
        let mut current = None;
        let mut published = Vec::with_capacity(live.len());
        let mut opened = HashMap::with_capacity(live.len());
        for stored in live {
            let key = self.open(&stored)?;
            if stored.is_current {
                current = Some(key.clone());
            }
            published.push(PublishedKey {
                key: key.clone(),
                publish_until: stored.publish_until,
            });
            opened.insert(stored.kid, key);
        }
        let current = current.ok_or_else(|| KeyringError::Key("there is no current signing key".into()))?;
        self.ring.replace(KeySet { current, published });
        if let Ok(mut cache) = self.opened.lock() {
            *cache = opened;
        }
        Ok(())
    }

    fn open(&self, stored: &StoredKey) -> Result<Arc<SigningKey>, KeyringError> {
        if let Some(key) = self.opened.lock().ok().and_then(|c| c.get(&stored.kid).cloned()) {
            return Ok(key);
        }
        let pkcs8 = self
            .master
            .open(&stored.kid, &stored.sealed_private_key)
            .map_err(|e| {
                ConfigError::new(
                    "master_key",
                    format!("does not open signing key {}: {e}", stored.kid),
                )
            })?;
        let key = SigningKey::from_pkcs8(stored.alg, &pkcs8).map_err(|e| KeyringError::Key(e.to_string()))?;
        Ok(Arc::new(key))
    }
}
