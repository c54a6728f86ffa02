//! Storage, as small traits per aggregate. `gatehouse-store` implements them with sqlx
//! for SQLite and PostgreSQL; the server puts a cache in front of [`ClientLookup`].

use std::sync::Arc;

use async_trait::async_trait;

use crate::{Client, ClientId, SecretHash, SigningAlg, StoreError, UnixTime};

/// Finding a client by id: all the token endpoint needs.
#[async_trait]
pub trait ClientLookup: Send + Sync {
    /// The client with this id, if there is one.
    async fn find_client(&self, id: &ClientId) -> Result<Option<Arc<Client>>, StoreError>;
}

/// The registered clients. Every change is recorded in the change feed in the same
/// transaction, so running servers drop their cached copy.
#[async_trait]
pub trait ClientStore: ClientLookup {
    /// Registers a client; [`StoreError::Conflict`] if the id is taken.
    async fn insert_client(&self, client: &Client) -> Result<(), StoreError>;
    /// Every client, ordered by id.
    async fn list_clients(&self) -> Result<Vec<Client>, StoreError>;
    /// Deletes a client; `false` if there was none.
    async fn delete_client(&self, id: &ClientId, now: UnixTime) -> Result<bool, StoreError>;
    /// Replaces a client's secret; `false` if there is no such client.
    async fn replace_secret(
        &self,
        id: &ClientId,
        hash: &SecretHash,
        now: UnixTime,
    ) -> Result<bool, StoreError>;
    /// The longest per-client access token lifetime, if any client has one.
    async fn max_access_token_ttl(&self) -> Result<Option<i64>, StoreError>;
}

/// A signing key as stored: the private key sealed under the master key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    /// RFC 7638 thumbprint.
    pub kid: String,
    /// Its algorithm.
    pub alg: SigningAlg,
    /// PKCS#8, sealed with [`crate::sealing::MasterKey`] under the kid.
    pub sealed_private_key: Vec<u8>,
    /// Whether it signs new tokens (at most one key does).
    pub is_current: bool,
    /// When it was made.
    pub created_at: UnixTime,
    /// When it stops being published; `None` while current.
    pub publish_until: Option<UnixTime>,
}

/// The signing keys.
#[async_trait]
pub trait KeyStore: Send + Sync {
    /// The current key and every key still published at `now`.
    async fn live_keys(&self, now: UnixTime) -> Result<Vec<StoredKey>, StoreError>;
    /// Stores `key` as the current key unless one exists already (another process may
    /// have won the race); returns whether it was stored.
    async fn insert_first_key(&self, key: &StoredKey) -> Result<bool, StoreError>;
    /// Makes `key` current; the old current key stays published until
    /// `retired_publish_until`.
    async fn rotate_key(&self, key: &StoredKey, retired_publish_until: UnixTime) -> Result<(), StoreError>;
}

/// What a change is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// A client (the key is its id).
    Client,
    /// The signing keys.
    Keys,
}

impl ChangeKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Client => "client",
            Self::Keys => "keys",
        }
    }

    /// Reads the stored name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "client" => Some(Self::Client),
            "keys" => Some(Self::Keys),
            _ => None,
        }
    }
}

/// One recorded change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Increasing position in the feed.
    pub id: i64,
    /// What changed.
    pub kind: ChangeKind,
    /// Which one (a client id), or empty.
    pub key: String,
}

/// The feed of admin changes that running servers follow to keep caches fresh.
#[async_trait]
pub trait ChangeFeed: Send + Sync {
    /// The position of the newest change (0 when there is none).
    async fn latest_change(&self) -> Result<i64, StoreError>;
    /// Changes after `after`, oldest first, at most `limit`.
    async fn changes_since(&self, after: i64, limit: i64) -> Result<Vec<Change>, StoreError>;
    /// Deletes changes recorded before `before`.
    async fn prune_changes(&self, before: UnixTime) -> Result<u64, StoreError>;
}

/// Everything the server and the admin commands need from the database.
#[async_trait]
pub trait Store: ClientStore + KeyStore + ChangeFeed {
    /// Whether the database answers.
    async fn ping(&self) -> Result<(), StoreError>;
}
