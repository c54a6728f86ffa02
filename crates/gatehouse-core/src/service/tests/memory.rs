//! In-memory stores with the same semantics as the SQL ones, for protocol tests.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use crate::store::{ClientLookup, RotationDecision, TokenStore, UserStore};
use crate::tokens::{
    HolderState, JwtState, LoginState, LoginUser, NewFamily, NewOpaqueToken, NewRefreshToken, OpaqueView,
    RefreshView, RotationOutcome, RotationWrites, TokenDigest, UserHolder,
};
use crate::user::User;
use crate::{Client, ClientId, StoreError, UnixTime};

#[derive(Default)]
struct Family {
    row: Option<NewFamily>,
    revoked: bool,
}

struct Refresh {
    row: NewRefreshToken,
    used: bool,
}

#[derive(Default)]
struct State {
    clients: HashMap<ClientId, Arc<Client>>,
    users: HashMap<String, User>,
    families: HashMap<String, Family>,
    refresh: HashMap<TokenDigest, Refresh>,
    opaque: HashMap<TokenDigest, (NewOpaqueToken, bool)>,
    revoked_jtis: HashMap<String, UnixTime>,
    /// Revocation marks by kind (`client`, `user`) and id.
    marks: HashMap<(&'static str, String), UnixTime>,
}

/// Everything in one mutex: each method is one atomic step, like one transaction.
#[derive(Default)]
pub struct Memory(Mutex<State>);

impl Memory {
    pub fn add_client(&self, client: Client) {
        self.0
            .lock()
            .unwrap()
            .clients
            .insert(client.id.clone(), Arc::new(client));
    }

    pub fn user_mut(&self, username: &str, change: impl FnOnce(&mut User)) {
        change(self.0.lock().unwrap().users.get_mut(username).unwrap());
    }

    pub fn refresh_rows(&self) -> usize {
        self.0.lock().unwrap().refresh.len()
    }

    /// Removes a client and nothing else (the SQL store also drops its tokens).
    pub fn remove_client(&self, id: &str) {
        self.0
            .lock()
            .unwrap()
            .clients
            .remove(&ClientId::parse(id).unwrap());
    }

    /// Records a revocation mark of `kind` (`client` or `user`) for `id`.
    pub fn mark(&self, kind: &'static str, id: &str, at: UnixTime) {
        mark(&mut self.0.lock().unwrap(), kind, id, at);
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

fn login_of(state: &State, family_id: &str) -> Option<LoginState> {
    let family = state.families.get(family_id)?.row.as_ref()?;
    let user = family
        .user_id
        .as_ref()
        .and_then(|id| state.users.values().find(|u| &u.id.0 == id))
        .map(|u| LoginUser {
            user_id: u.id.0.clone(),
            username: u.username.clone(),
            scope: u.scope.clone(),
            disabled: u.disabled,
        });
    Some(LoginState {
        family_id: family_id.to_owned(),
        scope: family.scope.clone(),
        had_user: family.user_id.is_some(),
        user,
    })
}

#[async_trait]
impl ClientLookup for Memory {
    async fn find_client(&self, id: &ClientId) -> Result<Option<Arc<Client>>, StoreError> {
        Ok(self.0.lock().unwrap().clients.get(id).cloned())
    }
}

#[async_trait]
impl UserStore for Memory {
    async fn find_user(&self, username: &str) -> Result<Option<User>, StoreError> {
        Ok(self.0.lock().unwrap().users.get(username).cloned())
    }
    async fn insert_user(&self, user: &User) -> Result<(), StoreError> {
        self.0
            .lock()
            .unwrap()
            .users
            .insert(user.username.clone(), user.clone());
        Ok(())
    }
    async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        Ok(self.0.lock().unwrap().users.values().cloned().collect())
    }
    async fn delete_user(&self, username: &str, now: UnixTime) -> Result<bool, StoreError> {
        let mut s = self.0.lock().unwrap();
        let Some(user) = s.users.remove(username) else {
            return Ok(false);
        };
        mark(&mut s, "user", &user.id.0, now);
        Ok(true)
    }
    async fn disable_user(&self, username: &str, now: UnixTime) -> Result<bool, StoreError> {
        let mut s = self.0.lock().unwrap();
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
        let mut s = self.0.lock().unwrap();
        s.families.insert(
            family.family_id.clone(),
            Family {
                row: Some(family.clone()),
                revoked: false,
            },
        );
        s.refresh.insert(
            refresh.digest,
            Refresh {
                row: refresh.clone(),
                used: false,
            },
        );
        if let Some(o) = opaque {
            s.opaque.insert(o.digest, (o.clone(), false));
        }
        Ok(())
    }

    async fn insert_opaque(&self, token: &NewOpaqueToken) -> Result<(), StoreError> {
        self.0
            .lock()
            .unwrap()
            .opaque
            .insert(token.digest, (token.clone(), false));
        Ok(())
    }

    async fn rotate_refresh_token(
        &self,
        presented: &TokenDigest,
        client: &ClientId,
        now: UnixTime,
        decide: RotationDecision,
    ) -> Result<RotationOutcome<(LoginState, RotationWrites)>, StoreError> {
        let mut s = self.0.lock().unwrap();
        let Some(token) = s.refresh.get(presented).filter(|t| &t.row.client_id == client) else {
            return Ok(RotationOutcome::Invalid);
        };
        let family_id = token.row.family_id.clone();
        if token.used {
            if let Some(f) = s.families.get_mut(&family_id) {
                f.revoked = true;
            }
            return Ok(RotationOutcome::Reused);
        }
        let family_live = s.families.get(&family_id).is_some_and(|f| !f.revoked);
        if token.row.expires_at <= now || !family_live {
            return Ok(RotationOutcome::Invalid);
        }
        let Some(login) = login_of(&s, &family_id) else {
            return Ok(RotationOutcome::Invalid);
        };
        let writes = match decide(&login) {
            Ok(w) => w,
            Err(e) => return Ok(RotationOutcome::Refused(e)),
        };
        if let Some(t) = s.refresh.get_mut(presented) {
            t.used = true;
        }
        s.refresh.insert(
            writes.refresh.digest,
            Refresh {
                row: writes.refresh.clone(),
                used: false,
            },
        );
        if let Some(o) = &writes.opaque {
            s.opaque.insert(o.digest, (o.clone(), false));
        }
        Ok(RotationOutcome::Rotated((login, writes)))
    }

    async fn find_refresh(&self, digest: &TokenDigest) -> Result<Option<RefreshView>, StoreError> {
        let s = self.0.lock().unwrap();
        let Some(t) = s.refresh.get(digest) else {
            return Ok(None);
        };
        let Some(login) = login_of(&s, &t.row.family_id) else {
            return Ok(None);
        };
        let revoked = s.families.get(&t.row.family_id).is_none_or(|f| f.revoked);
        let family_user = s.families[&t.row.family_id]
            .row
            .as_ref()
            .and_then(|f| f.user_id.as_deref());
        let holders = holders(&s, t.row.client_id.as_str(), family_user);
        Ok(Some(RefreshView {
            family_id: login.family_id.clone(),
            client_id: t.row.client_id.clone(),
            scope: login.scope.clone(),
            issued_at: t.row.issued_at,
            expires_at: t.row.expires_at,
            usable: !t.used && !revoked,
            user: login.user,
            holders,
        }))
    }

    async fn find_opaque(&self, digest: &TokenDigest) -> Result<Option<OpaqueView>, StoreError> {
        let s = self.0.lock().unwrap();
        Ok(s.opaque.get(digest).map(|(row, revoked)| {
            let family_revoked = row
                .family_id
                .as_ref()
                .is_some_and(|f| s.families.get(f).is_none_or(|f| f.revoked));
            let user_id = row.username.is_some().then_some(row.subject.as_str());
            OpaqueView {
                token: row.clone(),
                revoked: *revoked || family_revoked,
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
        let s = self.0.lock().unwrap();
        Ok(JwtState {
            jti_revoked: s.revoked_jtis.contains_key(jti),
            login_live: sid.is_some_and(|sid| s.families.get(sid).is_some_and(|f| !f.revoked)),
            holders: holders(&s, client_id, user_id),
        })
    }

    async fn revoke_family(&self, family_id: &str, _now: UnixTime) -> Result<bool, StoreError> {
        let mut s = self.0.lock().unwrap();
        Ok(s.families
            .get_mut(family_id)
            .is_some_and(|f| !std::mem::replace(&mut f.revoked, true)))
    }

    async fn revoke_opaque(&self, digest: &TokenDigest, _now: UnixTime) -> Result<bool, StoreError> {
        let mut s = self.0.lock().unwrap();
        Ok(s.opaque
            .get_mut(digest)
            .is_some_and(|(_, r)| !std::mem::replace(r, true)))
    }

    async fn revoke_jti(&self, jti: &str, expires_at: UnixTime) -> Result<bool, StoreError> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .revoked_jtis
            .insert(jti.to_owned(), expires_at)
            .is_none())
    }

    async fn purge_expired(&self, now: UnixTime, _batch: i64) -> Result<u64, StoreError> {
        let mut s = self.0.lock().unwrap();
        let before = s.refresh.len();
        s.refresh.retain(|_, t| t.row.expires_at >= now);
        Ok((before - s.refresh.len()) as u64)
    }
}
