//! A store in memory, for protocol tests (with the `testing` feature). It keeps facts
//! and runs steps as the SQL stores do, and decides nothing: the same rules in core
//! read what it reports. [`super::conformance`] holds it to the SQL stores' behaviour.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;

use crate::store::{ClientLookup, ClientStore, ReplayStore, RotationDecision, TokenStore, UserStore};
use crate::tokens::{
    HolderState, JwtState, LoginRecord, LoginState, LoginUser, NewFamily, NewOpaqueToken, NewRefreshToken,
    OpaqueView, RefreshState, RefreshView, Rotation, RotationStep, TokenDigest, UserHolder, LOGIN_GRACE_SECS,
};
use crate::user::User;
use crate::{Client, ClientId, PreviousSecret, SecretHash, StoreError, UnixTime};

struct Family {
    row: NewFamily,
    /// The first refresh token's expiry, as the SQL stores keep it.
    expires_at: UnixTime,
    revoked_at: Option<UnixTime>,
}

struct Refresh {
    row: NewRefreshToken,
    used_at: Option<UnixTime>,
}

struct Opaque {
    row: NewOpaqueToken,
    revoked_at: Option<UnixTime>,
}

#[derive(Default)]
struct State {
    clients: BTreeMap<ClientId, Arc<Client>>,
    /// By username.
    users: BTreeMap<String, User>,
    families: HashMap<String, Family>,
    refresh: HashMap<TokenDigest, Refresh>,
    opaque: HashMap<TokenDigest, Opaque>,
    revoked_jtis: HashMap<String, UnixTime>,
    /// Used assertion and proof `jti`s, by digest, with when they may go.
    replays: HashMap<[u8; 32], UnixTime>,
    /// Revocation marks by kind (`client`, `user`) and id.
    marks: HashMap<(&'static str, String), UnixTime>,
}

/// Everything in one mutex: each method is one atomic step, like one transaction.
#[derive(Default)]
pub struct Memory(Mutex<State>);

impl Memory {
    fn state(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding the lock left nothing half done: every
        // method changes the state only after its last check.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a client, outside the change feed the SQL stores also write.
    pub fn add_client(&self, client: Client) {
        self.state().clients.insert(client.id.clone(), Arc::new(client));
    }

    /// Changes the user `username` in place (no revocation mark, unlike
    /// [`UserStore::disable_user`]); `false` if there is none.
    pub fn user_mut(&self, username: &str, change: impl FnOnce(&mut User)) -> bool {
        self.state().users.get_mut(username).map(change).is_some()
    }

    /// How many refresh tokens are stored.
    pub fn refresh_rows(&self) -> usize {
        self.state().refresh.len()
    }

    /// Removes a client and nothing else, as if it went while its tokens were being
    /// read ([`ClientStore::delete_client`] also ends its tokens).
    pub fn forget_client(&self, id: &ClientId) {
        self.state().clients.remove(id);
    }

    /// Records a revocation mark of `kind` (`client` or `user`) for `id`.
    pub fn mark(&self, kind: &'static str, id: &str, at: UnixTime) {
        mark(&mut self.state(), kind, id, at);
    }
}

/// Records a revocation mark; a mark only ever moves forward.
fn mark(state: &mut State, kind: &'static str, id: &str, at: UnixTime) {
    let mark = state.marks.entry((kind, id.to_owned())).or_insert(at);
    *mark = (*mark).max(at);
}

/// The client `client_id` and, for a user's token, the user `user_id`, as they are now.
fn holders(state: &State, client_id: &str, user_id: Option<&str>) -> HolderState {
    let mark_of = |kind: &'static str, id: &str| state.marks.get(&(kind, id.to_owned())).copied();
    HolderState {
        client_exists: ClientId::parse(client_id).is_some_and(|id| state.clients.contains_key(&id)),
        client_revoked_at: mark_of("client", client_id),
        user: user_id.map(|id| UserHolder {
            disabled: state.users.values().find(|u| u.id.0 == id).map(|u| u.disabled),
            revoked_at: mark_of("user", id),
        }),
    }
}

fn login_record(state: &State, family_id: &str) -> LoginRecord {
    match state.families.get(family_id) {
        None => LoginRecord::Missing,
        Some(Family {
            revoked_at: Some(at), ..
        }) => LoginRecord::Revoked(*at),
        Some(_) => LoginRecord::Live,
    }
}

/// A refresh token with its login, as stored; `None` if either is missing (the SQL
/// stores join them).
fn refresh_state(state: &State, digest: &TokenDigest) -> Option<RefreshState> {
    let token = state.refresh.get(digest)?;
    let family = state.families.get(&token.row.family_id)?;
    let user = family
        .row
        .user_id
        .as_ref()
        .and_then(|id| state.users.values().find(|u| &u.id.0 == id))
        .map(|u| LoginUser {
            user_id: u.id.0.clone(),
            username: u.username.clone(),
            scope: u.scope.clone(),
            disabled: u.disabled,
        });
    Some(RefreshState {
        client_id: token.row.client_id.clone(),
        issued_at: token.row.issued_at,
        expires_at: token.row.expires_at,
        used: token.used_at.is_some(),
        login_revoked_at: family.revoked_at,
        login: LoginState {
            family_id: token.row.family_id.clone(),
            scope: family.row.scope.clone(),
            had_user: family.row.user_id.is_some(),
            user,
        },
    })
}

fn revoke_family(state: &mut State, family_id: &str, now: UnixTime) -> bool {
    match state.families.get_mut(family_id) {
        Some(family) if family.revoked_at.is_none() => {
            family.revoked_at = Some(now);
            true
        }
        _ => false,
    }
}

/// Deletes up to `batch` entries of `map` that `expired` says went.
fn purge<K: Clone + Eq + std::hash::Hash, V>(
    map: &mut HashMap<K, V>,
    batch: i64,
    expired: impl Fn(&V) -> bool,
) -> u64 {
    let limit = usize::try_from(batch).unwrap_or(0);
    let gone: Vec<K> = map
        .iter()
        .filter(|(_, v)| expired(v))
        .map(|(k, _)| k.clone())
        .take(limit)
        .collect();
    for key in &gone {
        map.remove(key);
    }
    gone.len() as u64
}

#[async_trait]
impl ClientLookup for Memory {
    async fn find_client(&self, id: &ClientId) -> Result<Option<Arc<Client>>, StoreError> {
        Ok(self.state().clients.get(id).cloned())
    }
}

#[async_trait]
impl ClientStore for Memory {
    async fn insert_client(&self, client: &Client) -> Result<(), StoreError> {
        let mut s = self.state();
        if s.clients.contains_key(&client.id) {
            return Err(StoreError::Conflict(format!("client {} exists", client.id)));
        }
        if let Some(mark) = s.marks.get_mut(&("client", client.id.as_str().to_owned())) {
            *mark = (*mark).max(client.created_at - 1);
        }
        s.clients.insert(client.id.clone(), Arc::new(client.clone()));
        Ok(())
    }

    async fn list_clients(&self) -> Result<Vec<Client>, StoreError> {
        Ok(self.state().clients.values().map(|c| Client::clone(c)).collect())
    }

    async fn delete_client(&self, id: &ClientId, now: UnixTime) -> Result<bool, StoreError> {
        let mut s = self.state();
        if s.clients.remove(id).is_none() {
            return Ok(false);
        }
        s.refresh.retain(|_, t| &t.row.client_id != id);
        s.opaque.retain(|_, t| &t.row.client_id != id);
        s.families.retain(|_, f| &f.row.client_id != id);
        mark(&mut s, "client", id.as_str(), now);
        Ok(true)
    }

    async fn replace_secret(
        &self,
        id: &ClientId,
        hash: &SecretHash,
        previous_valid_until: Option<UnixTime>,
        _now: UnixTime,
    ) -> Result<bool, StoreError> {
        let mut s = self.state();
        let Some(client) = s.clients.get_mut(id) else {
            return Ok(false);
        };
        let client = Arc::make_mut(client);
        client.previous_secret = previous_valid_until.map(|expires_at| PreviousSecret {
            hash: client.secret_hash.clone(),
            expires_at,
        });
        client.secret_hash = hash.clone();
        Ok(true)
    }

    async fn max_access_token_ttl(&self) -> Result<Option<i64>, StoreError> {
        Ok(self
            .state()
            .clients
            .values()
            .filter_map(|c| c.access_token_ttl)
            .max())
    }
}

#[async_trait]
impl UserStore for Memory {
    async fn find_user(&self, username: &str) -> Result<Option<User>, StoreError> {
        Ok(self.state().users.get(username).cloned())
    }

    async fn insert_user(&self, user: &User) -> Result<(), StoreError> {
        let mut s = self.state();
        if s.users.contains_key(&user.username) || s.users.values().any(|u| u.id == user.id) {
            return Err(StoreError::Conflict(format!("user {} exists", user.username)));
        }
        // As the SQL stores keep it: an empty set of scopes is no restriction.
        let mut user = user.clone();
        user.scope = user.scope.filter(|scope| !scope.is_empty());
        s.users.insert(user.username.clone(), user);
        Ok(())
    }

    async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        Ok(self.state().users.values().cloned().collect())
    }

    async fn delete_user(&self, username: &str, now: UnixTime) -> Result<bool, StoreError> {
        let mut s = self.state();
        let Some(user) = s.users.remove(username) else {
            return Ok(false);
        };
        mark(&mut s, "user", &user.id.0, now);
        Ok(true)
    }

    async fn disable_user(&self, username: &str, now: UnixTime) -> Result<bool, StoreError> {
        let mut s = self.state();
        let Some(user) = s.users.get_mut(username) else {
            return Ok(false);
        };
        user.disabled = true;
        let id = user.id.0.clone();
        mark(&mut s, "user", &id, now);
        Ok(true)
    }
}

#[async_trait]
impl TokenStore for Memory {
    async fn start_login(
        &self,
        family: &NewFamily,
        refresh: &NewRefreshToken,
        opaque: Option<&NewOpaqueToken>,
    ) -> Result<(), StoreError> {
        let mut s = self.state();
        let taken = s.families.contains_key(&family.family_id)
            || s.refresh.contains_key(&refresh.digest)
            || opaque.is_some_and(|o| s.opaque.contains_key(&o.digest));
        if taken {
            return Err(StoreError::Conflict("token exists".into()));
        }
        s.families.insert(
            family.family_id.clone(),
            Family {
                row: family.clone(),
                expires_at: refresh.expires_at,
                revoked_at: None,
            },
        );
        s.refresh.insert(
            refresh.digest,
            Refresh {
                row: refresh.clone(),
                used_at: None,
            },
        );
        if let Some(row) = opaque {
            s.opaque.insert(
                row.digest,
                Opaque {
                    row: row.clone(),
                    revoked_at: None,
                },
            );
        }
        Ok(())
    }

    async fn insert_opaque(&self, token: &NewOpaqueToken) -> Result<(), StoreError> {
        let mut s = self.state();
        if s.opaque.contains_key(&token.digest) {
            return Err(StoreError::Conflict("token exists".into()));
        }
        s.opaque.insert(
            token.digest,
            Opaque {
                row: token.clone(),
                revoked_at: None,
            },
        );
        Ok(())
    }

    async fn rotate_refresh_token(
        &self,
        presented: &TokenDigest,
        now: UnixTime,
        decide: RotationDecision,
    ) -> Result<Rotation, StoreError> {
        let mut s = self.state();
        // The consuming step: the state as it was, and whether this step took it.
        let found = refresh_state(&s, presented);
        let consumed = found.as_ref().is_some_and(|token| !token.used);
        let step = decide(found.as_ref());
        match (&step, &found) {
            (RotationStep::Rotate(writes), Some(_)) if consumed => {
                let taken = s.refresh.contains_key(&writes.refresh.digest)
                    || writes
                        .opaque
                        .as_ref()
                        .is_some_and(|o| s.opaque.contains_key(&o.digest));
                if taken {
                    return Err(StoreError::Conflict("token exists".into()));
                }
                if let Some(token) = s.refresh.get_mut(presented) {
                    token.used_at = Some(now);
                }
                s.refresh.insert(
                    writes.refresh.digest,
                    Refresh {
                        row: writes.refresh.clone(),
                        used_at: None,
                    },
                );
                if let Some(row) = &writes.opaque {
                    s.opaque.insert(
                        row.digest,
                        Opaque {
                            row: row.clone(),
                            revoked_at: None,
                        },
                    );
                }
            }
            (RotationStep::Rotate(_), _) => {
                return Err(StoreError::Other(
                    "a rotation was decided for a refresh token this step did not consume".into(),
                ))
            }
            (RotationStep::RevokeLogin, Some(token)) => {
                revoke_family(&mut s, &token.login.family_id, now);
            }
            (RotationStep::RevokeLogin, None) | (RotationStep::Refuse(_), _) => {}
        }
        Ok(Rotation {
            presented: found,
            step,
        })
    }

    async fn find_refresh(&self, digest: &TokenDigest) -> Result<Option<RefreshView>, StoreError> {
        let s = self.state();
        Ok(refresh_state(&s, digest).map(|token| {
            let family_user = s
                .families
                .get(&token.login.family_id)
                .and_then(|f| f.row.user_id.as_deref());
            let holders = holders(&s, token.client_id.as_str(), family_user);
            RefreshView { token, holders }
        }))
    }

    async fn find_opaque(&self, digest: &TokenDigest) -> Result<Option<OpaqueView>, StoreError> {
        let s = self.state();
        Ok(s.opaque.get(digest).map(|token| {
            let row = &token.row;
            let user_id = row.username.is_some().then_some(row.subject.as_str());
            OpaqueView {
                token: row.clone(),
                revoked_at: token.revoked_at,
                login: row.family_id.as_deref().map(|id| login_record(&s, id)),
                holders: holders(&s, row.client_id.as_str(), user_id),
            }
        }))
    }

    async fn jwt_state(
        &self,
        jti: &str,
        sid: Option<&str>,
        client_id: &str,
        user_id: Option<&str>,
    ) -> Result<JwtState, StoreError> {
        let s = self.state();
        Ok(JwtState {
            jti_revoked: s.revoked_jtis.contains_key(jti),
            login: sid.map_or(LoginRecord::Missing, |sid| login_record(&s, sid)),
            holders: holders(&s, client_id, user_id),
        })
    }

    async fn revoke_family(&self, family_id: &str, now: UnixTime) -> Result<bool, StoreError> {
        Ok(revoke_family(&mut self.state(), family_id, now))
    }

    async fn revoke_opaque(&self, digest: &TokenDigest, now: UnixTime) -> Result<bool, StoreError> {
        let mut s = self.state();
        Ok(match s.opaque.get_mut(digest) {
            Some(token) if token.revoked_at.is_none() => {
                token.revoked_at = Some(now);
                true
            }
            _ => false,
        })
    }

    async fn revoke_jti(&self, jti: &str, expires_at: UnixTime) -> Result<bool, StoreError> {
        let mut s = self.state();
        if s.revoked_jtis.contains_key(jti) {
            return Ok(false);
        }
        s.revoked_jtis.insert(jti.to_owned(), expires_at);
        Ok(true)
    }

    async fn purge_expired(&self, now: UnixTime, batch: i64) -> Result<u64, StoreError> {
        let mut s = self.state();
        Ok(purge(&mut s.refresh, batch, |t| t.row.expires_at < now)
            + purge(&mut s.opaque, batch, |t| t.row.expires_at < now)
            + purge(&mut s.revoked_jtis, batch, |expires_at| *expires_at < now)
            + purge(&mut s.replays, batch, |expires_at| *expires_at < now)
            + purge(&mut s.families, batch, |f| f.expires_at < now - LOGIN_GRACE_SECS))
    }
}

#[async_trait]
impl ReplayStore for Memory {
    async fn first_use(&self, digest: &[u8; 32], expires_at: UnixTime) -> Result<bool, StoreError> {
        let mut s = self.state();
        if s.replays.contains_key(digest) {
            return Ok(false);
        }
        s.replays.insert(*digest, expires_at);
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    async fn open() -> Option<Box<super::Memory>> {
        Some(Box::default())
    }

    crate::store_conformance_tests!(open);
}
