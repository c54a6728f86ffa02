//! Clients: create, read, list, change, delete, new secrets, ending their tokens.

use gatehouse_core::secret::MIN_IMPORTED_SECRET_LEN;
use gatehouse_core::store::{ClientLookup as _, ClientStore as _};
use gatehouse_core::{
    Client, ClientId, ClientSecret, GrantType, GrantTypes, Scope, SecretHash, StoreError, TokenFormat,
};
use gatehouse_store::ClientChanges;

use super::client_auth::{auth_change, auth_changes, new_auth, no_secret, JwksDocument};
use super::client_view::{CreatedClient, RotatedSecret};
use super::{audit, check_text, page_limit, Actor, ManageError, Manager, Page};

/// Longest lifetime a client may be given: ten years.
pub const MAX_TTL: i64 = 10 * 365 * 24 * 3600;

/// Longest grace period of a replaced secret: 30 days. A roll-over that takes longer
/// is a second secret in all but name.
pub const MAX_GRACE: i64 = 30 * 24 * 3600;

/// The prefix of every scope that governs gatehouse itself: such a scope is only ever
/// given by an operator, never to a client that registered itself.
pub const RESERVED_SCOPE_PREFIX: &str = "gatehouse:";

/// A client to create. `None` takes the default.
#[derive(Debug, Default)]
pub struct NewClient {
    /// A name for people (required).
    pub name: String,
    /// The id; 128 random bits in hex when `None`.
    pub client_id: Option<String>,
    /// The scopes it may ask for, space-separated; none when `None`.
    pub scope: Option<String>,
    /// Its grants; `client_credentials` when `None`.
    pub grant_types: Option<GrantTypes>,
    /// The `aud` of its tokens; the server's `default_audience` when `None`.
    pub audience: Option<String>,
    /// Access token lifetime, seconds.
    pub token_ttl: Option<i64>,
    /// Refresh token lifetime, seconds.
    pub refresh_token_ttl: Option<i64>,
    /// `jwt` or `opaque`; `jwt` when `None`.
    pub token_format: Option<String>,
    /// Whether it may introspect any token.
    pub can_introspect: bool,
    /// A secret to import (hashed with Argon2id); generated when `None`. Only for
    /// the secret methods: a client of another method has no secret.
    pub client_secret: Option<ClientSecret>,
    /// How it authenticates; `client_secret_basic` when `None`.
    pub auth_method: Option<String>,
    /// Its JWK Set (`private_key_jwt`, `self_signed_tls_client_auth`).
    pub jwks: Option<JwksDocument>,
    /// The URL of its JWK Set, instead of `jwks`.
    pub jwks_uri: Option<String>,
    /// The subject DN of its certificate (`tls_client_auth`).
    pub tls_subject_dn: Option<String>,
    /// Whether its access tokens are bound to its TLS client certificate.
    pub bound_tokens: bool,
}

impl NewClient {
    /// The API names of the members given, for the audit event.
    pub(crate) fn fields(&self) -> Vec<&'static str> {
        [
            ("name", true),
            ("client_id", self.client_id.is_some()),
            ("scope", self.scope.is_some()),
            ("grant_types", self.grant_types.is_some()),
            ("audience", self.audience.is_some()),
            ("token_ttl", self.token_ttl.is_some()),
            ("refresh_token_ttl", self.refresh_token_ttl.is_some()),
            ("token_format", self.token_format.is_some()),
            ("can_introspect", self.can_introspect),
            ("client_secret", self.client_secret.is_some()),
            ("auth_method", self.auth_method.is_some()),
            ("jwks", self.jwks.is_some()),
            ("jwks_uri", self.jwks_uri.is_some()),
            ("tls_subject_dn", self.tls_subject_dn.is_some()),
            ("bound_tokens", self.bound_tokens),
        ]
        .into_iter()
        .filter_map(|(name, given)| given.then_some(name))
        .collect()
    }
}

/// A change to a client: `None` leaves a setting as it is; for the optional settings,
/// `Some(None)` returns it to the server's default.
#[derive(Debug, Default)]
pub struct ClientPatch {
    /// A new name.
    pub name: Option<String>,
    /// New scopes, space-separated.
    pub scope: Option<String>,
    /// New grants.
    pub grant_types: Option<GrantTypes>,
    /// A new `aud`, or the default.
    pub audience: Option<Option<String>>,
    /// A new access token lifetime, or the default.
    pub token_ttl: Option<Option<i64>>,
    /// A new refresh token lifetime, or the default.
    pub refresh_token_ttl: Option<Option<i64>>,
    /// `jwt` or `opaque`.
    pub token_format: Option<String>,
    /// Whether it may introspect any token.
    pub can_introspect: Option<bool>,
    /// A secret that replaces the current one at once.
    pub client_secret: Option<ClientSecret>,
    /// A new method. The method, keys and subject DN the client has after the change
    /// are checked together, as for a new client.
    pub auth_method: Option<String>,
    /// A new JWK Set, or none.
    pub jwks: Option<Option<JwksDocument>>,
    /// A new JWK Set URL, or none.
    pub jwks_uri: Option<Option<String>>,
    /// A new certificate subject DN, or none.
    pub tls_subject_dn: Option<Option<String>>,
    /// Whether its access tokens are bound to its certificate.
    pub bound_tokens: Option<bool>,
}

impl ClientPatch {
    /// Whether it changes how the client authenticates.
    fn touches_auth(&self) -> bool {
        self.auth_method.is_some()
            || self.jwks.is_some()
            || self.jwks_uri.is_some()
            || self.tls_subject_dn.is_some()
            || self.bound_tokens.is_some()
    }

    /// The API names of the members it changes, for the audit event.
    fn fields(&self) -> Vec<&'static str> {
        [
            ("name", self.name.is_some()),
            ("scope", self.scope.is_some()),
            ("grant_types", self.grant_types.is_some()),
            ("audience", self.audience.is_some()),
            ("token_ttl", self.token_ttl.is_some()),
            ("refresh_token_ttl", self.refresh_token_ttl.is_some()),
            ("token_format", self.token_format.is_some()),
            ("can_introspect", self.can_introspect.is_some()),
            ("client_secret", self.client_secret.is_some()),
            ("auth_method", self.auth_method.is_some()),
            ("jwks", self.jwks.is_some()),
            ("jwks_uri", self.jwks_uri.is_some()),
            ("tls_subject_dn", self.tls_subject_dn.is_some()),
            ("bound_tokens", self.bound_tokens.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, given)| given.then_some(name))
        .collect()
    }
}

/// A client id, checked (RFC 6749 appendix A.1).
pub fn parse_client_id(id: &str) -> Result<ClientId, ManageError> {
    ClientId::parse(id).ok_or_else(|| {
        ManageError::invalid(
            "client_id",
            "a client id is 1 to 255 printable ASCII characters (RFC 6749 appendix A.1)",
        )
    })
}

/// Grant type names (as the API and registration take them), checked.
pub fn parse_grant_types(field: &'static str, names: &[String]) -> Result<GrantTypes, ManageError> {
    let mut grants = GrantTypes::default();
    for name in names {
        let grant = name.parse::<GrantType>().map_err(|()| {
            let known: Vec<&str> = GrantType::ALL.iter().map(|g| g.as_str()).collect();
            ManageError::invalid(
                field,
                format!("unknown grant type {name:?}; one of {}", known.join(", ")),
            )
        })?;
        grants.insert(grant);
    }
    Ok(grants)
}

fn parse_scope(text: &str) -> Result<Scope, ManageError> {
    Scope::parse(text).map_err(|e| ManageError::invalid("scope", e.description()))
}

fn parse_token_format(text: &str) -> Result<TokenFormat, ManageError> {
    text.parse()
        .map_err(|()| ManageError::invalid("token_format", "must be jwt or opaque"))
}

fn check_ttl(field: &'static str, value: Option<i64>) -> Result<Option<i64>, ManageError> {
    match value {
        Some(s) if !(1..=MAX_TTL).contains(&s) => Err(ManageError::invalid(
            field,
            format!("must be from 1 to {MAX_TTL} seconds"),
        )),
        other => Ok(other),
    }
}

fn check_audience(audience: Option<&str>) -> Result<(), ManageError> {
    match audience {
        Some("") => Err(ManageError::invalid("audience", "must not be empty")),
        Some(a) if a.chars().any(char::is_control) => Err(ManageError::invalid(
            "audience",
            "must not contain control characters",
        )),
        _ => Ok(()),
    }
}

fn check_grants(grants: GrantTypes) -> Result<GrantTypes, ManageError> {
    if grants.is_empty() {
        return Err(ManageError::invalid(
            "grant_types",
            "name at least one grant type",
        ));
    }
    Ok(grants)
}

/// Refuses a `gatehouse:*` scope for a client that registered itself.
pub(crate) fn check_not_reserved(field: &'static str, scope: &Scope) -> Result<(), ManageError> {
    match scope.iter().find(|s| s.starts_with(RESERVED_SCOPE_PREFIX)) {
        Some(s) => Err(ManageError::invalid(
            field,
            format!("{s:?} is reserved: a registered client cannot have a {RESERVED_SCOPE_PREFIX}* scope"),
        )),
        None => Ok(()),
    }
}

impl Manager {
    /// Checks a new client and builds it, with its secret and hash; writes nothing.
    /// Registration (RFC 7591) shares this with [`Manager::create_client`].
    pub(crate) async fn build_client(&self, new: NewClient) -> Result<CreatedClient, ManageError> {
        check_text("name", &new.name)?;
        let id = match &new.client_id {
            Some(id) => parse_client_id(id)?,
            None => parse_client_id(&crate::admin::random_hex(self.rng().as_ref(), 16))?,
        };
        let scope = parse_scope(new.scope.as_deref().unwrap_or(""))?;
        let grant_types = check_grants(
            new.grant_types
                .unwrap_or_else(|| [GrantType::ClientCredentials].into_iter().collect()),
        )?;
        check_audience(new.audience.as_deref())?;
        let token_format = new
            .token_format
            .as_deref()
            .map(parse_token_format)
            .transpose()?
            .unwrap_or_default();
        let access_token_ttl = check_ttl("token_ttl", new.token_ttl)?;
        let refresh_token_ttl = check_ttl("refresh_token_ttl", new.refresh_token_ttl)?;
        let auth = new_auth(
            self.allow_insecure_jwks_uri(),
            new.auth_method.as_deref(),
            new.jwks,
            new.jwks_uri.as_deref(),
            new.tls_subject_dn.as_deref(),
            new.bound_tokens,
        )?;
        let (secret, secret_hash) = self.new_secret(auth.method, new.client_secret).await?;
        let client = Client {
            id,
            name: new.name,
            secret_hash,
            previous_secret: None,
            scope,
            grant_types,
            audience: new.audience,
            access_token_ttl,
            refresh_token_ttl,
            token_format,
            can_introspect: new.can_introspect,
            auth,
            registered: false,
            created_at: self.clock().now(),
        };
        Ok(CreatedClient { client, secret })
    }

    /// Registers a client; its secret is in the answer, this once.
    pub async fn create_client(&self, actor: &Actor, new: NewClient) -> Result<CreatedClient, ManageError> {
        let fields = new.fields();
        let created = self.build_client(new).await?;
        self.store()
            .insert_client(&created.client)
            .await
            .map_err(|e| conflict_on_id(e, &created.client.id))?;
        audit(actor, "client.create", created.client.id.as_str(), &fields);
        Ok(created)
    }

    /// One client.
    pub async fn client(&self, id: &str) -> Result<Client, ManageError> {
        let client_id = parse_client_id(id)?;
        self.store()
            .find_client(&client_id)
            .await?
            .map(|client| Client::clone(&client))
            .ok_or_else(|| client_not_found(id))
    }

    /// A page of clients, by id, after `after`.
    pub async fn list_clients(
        &self,
        after: Option<&str>,
        limit: Option<i64>,
    ) -> Result<Page<Client>, ManageError> {
        let limit = page_limit(limit)?;
        let after = after
            .map(|id| parse_client_id(id).map_err(|_| after_invalid()))
            .transpose()?;
        let fetched = self.store().list_clients_page(after.as_ref(), limit + 1).await?;
        Ok(Page::from_fetched(fetched, limit, |c: &Client| {
            c.id.as_str().to_owned()
        }))
    }

    /// Every client, by id (the CLI's `client list`).
    pub async fn all_clients(&self) -> Result<Vec<Client>, ManageError> {
        Ok(self.store().list_clients().await?)
    }

    /// Changes a client in one statement and returns it as it is now.
    pub async fn update_client(
        &self,
        actor: &Actor,
        id: &str,
        patch: ClientPatch,
    ) -> Result<Client, ManageError> {
        let fields = patch.fields();
        if fields.is_empty() {
            return Err(ManageError::invalid("", "nothing to change"));
        }
        let client_id = parse_client_id(id)?;
        if let Some(name) = &patch.name {
            check_text("name", name)?;
        }
        let scope = patch.scope.as_deref().map(parse_scope).transpose()?;
        if let Some(audience) = &patch.audience {
            check_audience(audience.as_deref())?;
        }
        let grant_types = patch.grant_types.map(check_grants).transpose()?;
        let token_format = patch
            .token_format
            .as_deref()
            .map(parse_token_format)
            .transpose()?;
        let access_token_ttl = patch.token_ttl.map(|t| check_ttl("token_ttl", t)).transpose()?;
        let refresh_token_ttl = patch
            .refresh_token_ttl
            .map(|t| check_ttl("refresh_token_ttl", t))
            .transpose()?;
        let touches_auth = patch.touches_auth();
        let change = auth_change(
            self.allow_insecure_jwks_uri(),
            patch.auth_method.as_deref(),
            patch.jwks,
            patch.jwks_uri.as_ref().map(Option::as_deref),
            patch.tls_subject_dn.as_ref().map(Option::as_deref),
            patch.bound_tokens,
        )?;
        if let Some(secret) = &patch.client_secret {
            check_imported_secret(secret)?;
        }
        // What the change is checked against: whether the client registered itself
        // (its scopes), and how it authenticates now (its method, keys and secret).
        let current = if scope.is_some() || touches_auth || patch.client_secret.is_some() {
            let current = self.store().find_client(&client_id).await?;
            Some(current.ok_or_else(|| client_not_found(id))?)
        } else {
            None
        };
        if let (Some(scope), Some(current)) = (&scope, &current) {
            if current.registered {
                check_not_reserved("scope", scope)?;
            }
        }
        let auth = match (&current, touches_auth) {
            (Some(current), true) => Some(change.applied_to(&current.auth)?),
            _ => None,
        };
        let methods = current.as_ref().map(|c| {
            let after = auth.as_ref().map_or(c.auth.method, |a| a.method);
            (c.auth.method, after)
        });
        let secret_hash = self.changed_secret(methods, patch.client_secret.as_ref()).await?;
        let changes = ClientChanges {
            name: patch.name,
            scope,
            grant_types,
            audience: patch.audience,
            access_token_ttl,
            refresh_token_ttl,
            can_introspect: patch.can_introspect,
            token_format,
            secret_hash,
            registration_token_hash: None,
            if_registration_token: None,
            ..auth.map(auth_changes).unwrap_or_default()
        };
        let client = self
            .store()
            .update_client(&client_id, &changes, self.clock().now())
            .await?
            .ok_or_else(|| client_not_found(id))?;
        audit(actor, "client.update", id, &fields);
        Ok(client)
    }

    /// Deletes a client and every token it holds.
    pub async fn delete_client(&self, actor: &Actor, id: &str) -> Result<(), ManageError> {
        let client_id = parse_client_id(id)?;
        if !self.store().delete_client(&client_id, self.clock().now()).await? {
            return Err(client_not_found(id));
        }
        audit(actor, "client.delete", id, &[]);
        Ok(())
    }

    /// Gives a client a new secret; the old one works `grace_seconds` more (none: it
    /// stops at once).
    pub async fn rotate_secret(
        &self,
        actor: &Actor,
        id: &str,
        grace_seconds: Option<i64>,
    ) -> Result<RotatedSecret, ManageError> {
        let client_id = parse_client_id(id)?;
        let now = self.clock().now();
        let previous_valid_until = match grace_seconds {
            None | Some(0) => None,
            Some(seconds) if (1..=MAX_GRACE).contains(&seconds) => Some(now + seconds),
            Some(_) => {
                return Err(ManageError::invalid(
                    "grace_seconds",
                    format!("must be from 0 to {MAX_GRACE} seconds"),
                ))
            }
        };
        // A client of a key or certificate method has no secret to replace: giving
        // it one would add a second way in that its method does not allow.
        let method = self
            .store()
            .find_client(&client_id)
            .await?
            .ok_or_else(|| client_not_found(id))?
            .auth
            .method;
        if !method.uses_secret() {
            return Err(ManageError::Inapplicable(no_secret(method)));
        }
        let secret = ClientSecret::generate(self.rng().as_ref());
        if !self
            .store()
            .replace_secret(
                &client_id,
                &SecretHash::sha256(&secret),
                previous_valid_until,
                now,
            )
            .await?
        {
            return Err(client_not_found(id));
        }
        audit(actor, "client.rotate_secret", id, &["client_secret"]);
        Ok(RotatedSecret {
            client_id: id.to_owned(),
            client_secret: secret,
            previous_secret_expires_at: previous_valid_until,
        })
    }

    /// Ends every token the client holds, JWTs included; returns once a token issued
    /// after the call lives ([`Manager::wait_out_second`]).
    pub async fn revoke_client_tokens(&self, actor: &Actor, id: &str) -> Result<(), ManageError> {
        let client_id = parse_client_id(id)?;
        if !self
            .store()
            .revoke_client_tokens(&client_id, self.clock().now())
            .await?
        {
            return Err(client_not_found(id));
        }
        audit(actor, "client.revoke_tokens", id, &[]);
        self.wait_out_second().await;
        Ok(())
    }
}

pub(super) fn check_imported_secret(secret: &ClientSecret) -> Result<(), ManageError> {
    if secret.expose().chars().count() < MIN_IMPORTED_SECRET_LEN {
        return Err(ManageError::invalid(
            "client_secret",
            format!("must be at least {MIN_IMPORTED_SECRET_LEN} characters"),
        ));
    }
    Ok(())
}

fn after_invalid() -> ManageError {
    ManageError::invalid("after", "not a client id")
}

pub(crate) fn client_not_found(id: &str) -> ManageError {
    ManageError::NotFound {
        kind: "client",
        id: id.to_owned(),
    }
}

/// A store conflict on insert: the id is taken.
pub(crate) fn conflict_on_id(err: StoreError, id: &ClientId) -> ManageError {
    match err {
        StoreError::Conflict(_) => ManageError::Conflict {
            field: "client_id",
            id: id.as_str().to_owned(),
        },
        other => other.into(),
    }
}
