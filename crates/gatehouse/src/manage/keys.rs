//! Signing keys: the list (never private material) and rotation.

use gatehouse_core::store::{KeyStore as _, StoredKey};
use gatehouse_core::{SigningAlg, UnixTime};
use serde::Serialize;

use super::{audit, Actor, ManageError, Manager};
use crate::keyring;

/// A signing key as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct KeyView {
    /// Its id (RFC 7638 thumbprint), the `kid` of the tokens it signs.
    pub kid: String,
    /// Its algorithm.
    pub alg: String,
    /// When it was made, seconds since the epoch.
    pub created_at: UnixTime,
    /// Whether it signs new tokens.
    pub current: bool,
    /// When it stops being published; `null` for the current key.
    pub retires_at: Option<UnixTime>,
}

impl From<&StoredKey> for KeyView {
    fn from(key: &StoredKey) -> Self {
        Self {
            kid: key.kid.clone(),
            alg: key.alg.as_str().to_owned(),
            created_at: key.created_at,
            current: key.is_current,
            retires_at: key.publish_until,
        }
    }
}

/// What a key rotation needs besides the database: the server's settings.
#[derive(Clone)]
pub struct KeyRotation {
    /// Seals the new private key.
    pub master: gatehouse_core::sealing::MasterKey,
    /// The algorithm of the new key (`signing_alg`).
    pub alg: SigningAlg,
    /// The server's `access_token_ttl`: the old key is published at least this long.
    pub default_access_token_ttl: i64,
}

impl Manager {
    /// The current key and every key still published, current first, then newest first.
    pub async fn keys(&self) -> Result<Vec<KeyView>, ManageError> {
        let mut keys = self.store().live_keys(self.clock().now()).await?;
        keys.sort_by(|a, b| {
            b.is_current
                .cmp(&a.is_current)
                .then(b.created_at.cmp(&a.created_at))
        });
        Ok(keys.iter().map(KeyView::from).collect())
    }

    /// Makes a new current key; the old one stays published until every
    /// token it may have signed has expired. Running servers follow within the
    /// change feed's window.
    pub async fn rotate_key(&self, actor: &Actor, rotation: &KeyRotation) -> Result<KeyView, ManageError> {
        let now = self.clock().now();
        let key = keyring::rotate(
            self.store(),
            &rotation.master,
            rotation.alg,
            rotation.default_access_token_ttl,
            self.rng().as_ref(),
            now,
        )
        .await
        .map_err(|e| match e {
            keyring::KeyringError::Store(e) => ManageError::Store(e),
            other => ManageError::Failed(other.to_string()),
        })?;
        audit(actor, "keys.rotate", key.kid(), &["kid"]);
        Ok(KeyView {
            kid: key.kid().to_owned(),
            alg: key.alg().as_str().to_owned(),
            created_at: now,
            current: true,
            retires_at: None,
        })
    }
}
