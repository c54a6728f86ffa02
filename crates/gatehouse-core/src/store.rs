//! Storage, as small traits per aggregate. `gatehouse-store` implements them with sqlx
//! for SQLite and PostgreSQL; the server puts a cache in front of [`ClientLookup`].
//!
//! A store keeps facts and runs statements; the protocol's rules about them live in
//! core. A store reports a token as it is stored (used or not, revoked when, expiring
//! when, its client and user as they are now), and core decides what that means: a
//! rotation is decided by [`crate::tokens::RefreshState::verdict`], a token's life by
//! `is_live` and [`crate::tokens::HolderState::allows`]. With the `testing` feature,
//! [`memory`] is a store in memory for protocol tests, and [`conformance`] the one
//! set of tests every store must pass.

#[cfg(any(test, feature = "testing"))]
pub mod conformance;
#[cfg(any(test, feature = "testing"))]
pub mod memory;

use std::sync::Arc;

use async_trait::async_trait;

use crate::tokens::{
    JwtState, NewFamily, NewOpaqueToken, NewRefreshToken, OpaqueView, RefreshState, RefreshView, Rotation,
    RotationStep, TokenDigest,
};
use crate::user::User;
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
    /// Registers a client; [`StoreError::Conflict`] if the id is taken. An id used
    /// before gets none of its predecessor's tokens: if it carries a revocation mark,
    /// the mark is raised to the second before `created_at`, which also ends tokens
    /// that a node issued to the predecessor after its deletion, before it heard of it.
    async fn insert_client(&self, client: &Client) -> Result<(), StoreError>;
    /// Every client, ordered by id.
    async fn list_clients(&self) -> Result<Vec<Client>, StoreError>;
    /// Deletes a client, and with it, in the same transaction, every token it holds:
    /// its logins, refresh tokens and opaque access tokens go, and a revocation mark
    /// ends its JWTs (see [`crate::tokens::HolderState`]). `false` if there was none.
    async fn delete_client(&self, id: &ClientId, now: UnixTime) -> Result<bool, StoreError>;
    /// Replaces a client's secret; `false` if there is no such client. With
    /// `previous_valid_until`, the secret being replaced stays valid until then
    /// (replacing any earlier previous secret); without, it stops working at once.
    async fn replace_secret(
        &self,
        id: &ClientId,
        hash: &SecretHash,
        previous_valid_until: Option<UnixTime>,
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

/// The users of the password grant.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// The user with this username.
    async fn find_user(&self, username: &str) -> Result<Option<User>, StoreError>;
    /// Registers a user; [`StoreError::Conflict`] if the username is taken.
    async fn insert_user(&self, user: &User) -> Result<(), StoreError>;
    /// Every user, by username.
    async fn list_users(&self) -> Result<Vec<User>, StoreError>;
    /// Deletes a user, and records a revocation mark for the user's id in the same
    /// transaction; `false` if there was none.
    async fn delete_user(&self, username: &str, now: UnixTime) -> Result<bool, StoreError>;
    /// Disables a user, and records a revocation mark for the user's id in the same
    /// transaction (so that enabling the user again would not revive old tokens);
    /// `false` if there is none.
    async fn disable_user(&self, username: &str, now: UnixTime) -> Result<bool, StoreError>;
}

/// Decides, inside the rotation's transaction, what a rotation does, from the presented
/// token as it was before the consuming step (`None`: no such token). It may be called
/// again for the same token when the store runs the transaction again (PostgreSQL
/// breaking a lock cycle), so it decides the same way each time.
pub type RotationDecision = Box<dyn Fn(Option<&RefreshState>) -> RotationStep + Send + Sync + 'static>;

/// Refresh tokens, their families, opaque access tokens and revocations.
#[async_trait]
pub trait TokenStore: Send + Sync {
    /// Stores a new login and its first refresh token (and opaque access token), in
    /// one transaction.
    async fn start_login(
        &self,
        family: &NewFamily,
        refresh: &NewRefreshToken,
        opaque: Option<&NewOpaqueToken>,
    ) -> Result<(), StoreError>;
    /// Stores an opaque access token outside any login.
    async fn insert_opaque(&self, token: &NewOpaqueToken) -> Result<(), StoreError>;
    /// Rotates a refresh token, in one transaction. First the consuming step: a
    /// conditional update marks `presented` used if it was not, so that of any number
    /// of concurrent rotations (on any number of nodes) exactly one finds it unused;
    /// it reports the token as it was before ([`RefreshState::used`] tells whether
    /// this step consumed it). Then `decide` says what to do, and the store does that
    /// and commits: [`RotationStep::Rotate`] keeps the consumption and stores the
    /// successor; [`RotationStep::RevokeLogin`] revokes the token's login; and
    /// [`RotationStep::Refuse`] writes nothing. Anything but `Rotate` undoes this
    /// step's consumption, and a `Rotate` of a token this step did not consume is an
    /// error: a token is consumed exactly once.
    async fn rotate_refresh_token(
        &self,
        presented: &TokenDigest,
        now: UnixTime,
        decide: RotationDecision,
    ) -> Result<Rotation, StoreError>;
    /// A refresh token by digest, with its login and holders.
    async fn find_refresh(&self, digest: &TokenDigest) -> Result<Option<RefreshView>, StoreError>;
    /// An opaque access token by digest.
    async fn find_opaque(&self, digest: &TokenDigest) -> Result<Option<OpaqueView>, StoreError>;
    /// What is stored about a JWT access token: whether its `jti` was revoked, its
    /// login `sid`, and its client and user (`user_id`, for a user's token) as they
    /// are now. One round trip.
    async fn jwt_state(
        &self,
        jti: &str,
        sid: Option<&str>,
        client_id: &str,
        user_id: Option<&str>,
    ) -> Result<JwtState, StoreError>;
    /// Revokes a login and everything issued from it; `false` if already revoked or
    /// unknown.
    async fn revoke_family(&self, family_id: &str, now: UnixTime) -> Result<bool, StoreError>;
    /// Revokes one opaque access token.
    async fn revoke_opaque(&self, digest: &TokenDigest, now: UnixTime) -> Result<bool, StoreError>;
    /// Records a revoked JWT `jti` until the token's own expiry.
    async fn revoke_jti(&self, jti: &str, expires_at: UnixTime) -> Result<bool, StoreError>;
    /// Deletes up to `batch` rows of each kind that expired before `now` (logins
    /// [`crate::tokens::LOGIN_GRACE_SECS`] later); returns how many went.
    async fn purge_expired(&self, now: UnixTime, batch: i64) -> Result<u64, StoreError>;
}

/// Single-use values of every node: client assertion `jti`s (RFC 7523 §3, item 7) and,
/// later, DPoP proof `jti`s. A record is kept until the value could no longer be
/// accepted anyway, then [`TokenStore::purge_expired`] deletes it.
#[async_trait]
pub trait ReplayStore: Send + Sync {
    /// Records `digest` (a SHA-256 over the value and what it belongs to) as used until
    /// `expires_at`, durably, before returning. `true` if this was its first use;
    /// `false` if it was recorded before (by any node), however close together the
    /// two uses. Concurrent calls are group-committed: many records per fsync.
    async fn first_use(&self, digest: &[u8; 32], expires_at: UnixTime) -> Result<bool, StoreError>;
}

/// Everything the server and the admin commands need from the database.
#[async_trait]
pub trait Store: ClientStore + KeyStore + ChangeFeed + UserStore + TokenStore + ReplayStore {
    /// Whether the database answers.
    async fn ping(&self) -> Result<(), StoreError>;
}
