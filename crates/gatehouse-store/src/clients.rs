//! [`ClientStore`] on SQL.

use std::sync::Arc;

use async_trait::async_trait;
use gatehouse_core::store::{ChangeKind, ClientLookup, ClientStore};
use gatehouse_core::{
    AuthMethod, AuthSettings, Client, ClientId, GrantTypes, PreviousSecret, Scope, SecretHash, StoreError,
    TokenFormat, UnixTime,
};

use crate::error::{corrupt, db_error};
use crate::feed::record_change;
use crate::tokens::mark_subject_revoked;
use crate::{on_pool, SqlStore};

#[derive(sqlx::FromRow)]
struct ClientRow {
    client_id: String,
    name: String,
    secret_hash: String,
    scope: String,
    grant_types: String,
    audience: Option<String>,
    access_token_ttl: Option<i64>,
    refresh_token_ttl: Option<i64>,
    token_format: String,
    can_introspect: bool,
    auth_method: String,
    jwks: Option<String>,
    jwks_uri: Option<String>,
    tls_subject_dn: Option<String>,
    bound_tokens: bool,
    registered: bool,
    created_at: i64,
    previous_secret_hash: Option<String>,
    previous_secret_expires_at: Option<i64>,
}

impl ClientRow {
    fn into_client(self) -> Result<Client, StoreError> {
        Ok(Client {
            id: ClientId::parse(&self.client_id).ok_or_else(|| corrupt("client_id", &self.client_id))?,
            secret_hash: SecretHash::from_stored(&self.secret_hash).map_err(|e| corrupt("secret_hash", e))?,
            previous_secret: match (&self.previous_secret_hash, self.previous_secret_expires_at) {
                (Some(hash), Some(expires_at)) => Some(PreviousSecret {
                    hash: SecretHash::from_stored(hash).map_err(|e| corrupt("previous_secret_hash", e))?,
                    expires_at,
                }),
                _ => None,
            },
            scope: Scope::parse(&self.scope).map_err(|e| corrupt("scope", e))?,
            grant_types: GrantTypes::parse(&self.grant_types).map_err(|e| corrupt("grant_types", e))?,
            token_format: self
                .token_format
                .parse::<TokenFormat>()
                .map_err(|()| corrupt("token_format", &self.token_format))?,
            name: self.name,
            audience: self.audience,
            access_token_ttl: self.access_token_ttl,
            refresh_token_ttl: self.refresh_token_ttl,
            can_introspect: self.can_introspect,
            auth: AuthSettings {
                method: self
                    .auth_method
                    .parse::<AuthMethod>()
                    .map_err(|()| corrupt("auth_method", &self.auth_method))?,
                jwks: self.jwks,
                jwks_uri: self.jwks_uri,
                tls_subject_dn: self.tls_subject_dn,
                bound_tokens: self.bound_tokens,
            },
            registered: self.registered,
            created_at: self.created_at,
        })
    }
}

const CLIENT_COLUMNS: &str = "client_id, name, secret_hash, scope, grant_types, audience, access_token_ttl, \
     refresh_token_ttl, token_format, can_introspect, auth_method, jwks, jwks_uri, tls_subject_dn, bound_tokens, \
     created_at";

/// What is read: the columns written at creation, whether a registration access token
/// is stored (a client that registered itself), and the previous secret.
const CLIENT_READ_COLUMNS: &str =
    "client_id, name, secret_hash, scope, grant_types, audience, access_token_ttl, \
     refresh_token_ttl, token_format, can_introspect, auth_method, jwks, jwks_uri, tls_subject_dn, bound_tokens, \
     (registration_token_hash IS NOT NULL) AS registered, created_at, previous_secret_hash, \
     previous_secret_expires_at";

#[async_trait]
impl ClientLookup for SqlStore {
    async fn find_client(&self, id: &ClientId) -> Result<Option<Arc<Client>>, StoreError> {
        let sql = format!("SELECT {CLIENT_READ_COLUMNS} FROM clients WHERE client_id = $1");
        let row: Option<ClientRow> = on_pool!(self, pool => sqlx::query_as(&sql)
            .bind(id.as_str())
            .fetch_optional(pool)
            .await)
        .map_err(db_error)?;
        row.map(|r| r.into_client().map(Arc::new)).transpose()
    }
}

impl SqlStore {
    /// Inserts `client`, with the hash of its registration access token if it was
    /// registered over RFC 7591, and records the change, in one transaction.
    async fn insert_client_row(
        &self,
        client: &Client,
        registration_token: Option<&SecretHash>,
    ) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO clients ({CLIENT_COLUMNS}, updated_at, registration_token_hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $16, $17)"
        );
        on_pool!(self, pool => async {
            let mut tx = pool.begin().await?;
            sqlx::query(&sql)
                .bind(client.id.as_str())
                .bind(&client.name)
                .bind(client.secret_hash.to_stored())
                .bind(client.scope.to_string())
                .bind(client.grant_types.to_string())
                .bind(client.audience.as_deref())
                .bind(client.access_token_ttl)
                .bind(client.refresh_token_ttl)
                .bind(client.token_format.as_str())
                .bind(client.can_introspect)
                .bind(client.auth.method.as_str())
                .bind(client.auth.jwks.as_deref())
                .bind(client.auth.jwks_uri.as_deref())
                .bind(client.auth.tls_subject_dn.as_deref())
                .bind(client.auth.bound_tokens)
                .bind(client.created_at)
                .bind(registration_token.map(SecretHash::to_stored))
                .execute(&mut *tx)
                .await?;
            // An id deleted before: the tokens of its predecessor stay dead, even those
            // a node issued after the deletion, before it heard of it.
            sqlx::query(
                "UPDATE revoked_subjects SET revoked_at = $1 \
                 WHERE kind = 'client' AND id = $2 AND revoked_at < $1",
            )
            .bind(client.created_at - 1)
            .bind(client.id.as_str())
            .execute(&mut *tx)
            .await?;
            record_change!(tx, ChangeKind::Client, client.id.as_str(), client.created_at)?;
            tx.commit().await
        }
        .await)
        .map_err(db_error)
    }
}

#[async_trait]
impl ClientStore for SqlStore {
    async fn insert_client(&self, client: &Client) -> Result<(), StoreError> {
        self.insert_client_row(client, None).await
    }

    async fn list_clients(&self) -> Result<Vec<Client>, StoreError> {
        let sql = format!("SELECT {CLIENT_READ_COLUMNS} FROM clients ORDER BY client_id");
        let rows: Vec<ClientRow> =
            on_pool!(self, pool => sqlx::query_as(&sql).fetch_all(pool).await).map_err(db_error)?;
        rows.into_iter().map(ClientRow::into_client).collect()
    }

    async fn delete_client(&self, id: &ClientId, now: UnixTime) -> Result<bool, StoreError> {
        on_pool!(self, pool => async {
            let mut tx = pool.begin().await?;
            let deleted = sqlx::query("DELETE FROM clients WHERE client_id = $1")
                .bind(id.as_str())
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if deleted == 1 {
                // Its stored tokens go (rotation reads no revocation mark, so a client
                // re-created with this id could otherwise refresh them), and the mark
                // ends its JWTs, which are not stored. Refresh tokens go by their
                // logins (both indexed); one whose login is gone is dead already, as
                // rotation needs the login, and goes when it expires.
                for sql in [
                    "DELETE FROM refresh_tokens WHERE family_id IN \
                     (SELECT family_id FROM token_families WHERE client_id = $1)",
                    "DELETE FROM opaque_access_tokens WHERE client_id = $1",
                    "DELETE FROM token_families WHERE client_id = $1",
                ] {
                    sqlx::query(sql).bind(id.as_str()).execute(&mut *tx).await?;
                }
                mark_subject_revoked!(tx, "client", id.as_str(), now)?;
            }
            record_change!(tx, ChangeKind::Client, id.as_str(), now)?;
            tx.commit().await.map(|()| deleted == 1)
        }
        .await)
        .map_err(db_error)
    }

    async fn replace_secret(
        &self,
        id: &ClientId,
        hash: &SecretHash,
        previous_valid_until: Option<UnixTime>,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        // One statement: the old hash moves to previous_secret_hash as the new one
        // takes its place (SET expressions read the row as it was).
        let sql = "UPDATE clients SET \
                previous_secret_hash = CASE WHEN $1 IS NULL THEN NULL ELSE secret_hash END, \
                previous_secret_expires_at = $1, secret_hash = $2, updated_at = $3 \
             WHERE client_id = $4";
        on_pool!(self, pool => async {
            let mut tx = pool.begin().await?;
            let updated = sqlx::query(sql)
                .bind(previous_valid_until)
                .bind(hash.to_stored())
                .bind(now)
                .bind(id.as_str())
                .execute(&mut *tx)
                .await?
                .rows_affected();
            record_change!(tx, ChangeKind::Client, id.as_str(), now)?;
            tx.commit().await.map(|()| updated == 1)
        }
        .await)
        .map_err(db_error)
    }

    async fn max_access_token_ttl(&self) -> Result<Option<i64>, StoreError> {
        on_pool!(self, pool => sqlx::query_scalar("SELECT MAX(access_token_ttl) FROM clients")
            .fetch_one(pool)
            .await)
        .map_err(db_error)
    }
}

/// A change to a client's settings, as `gatehouse client update` makes it. `None`
/// leaves a setting as it is; for the optional settings, `Some(None)` returns it to
/// the server's default (`default_audience`, `access_token_ttl`, `refresh_token_ttl`)
/// or, for `jwks`, `jwks_uri` and `tls_subject_dn`, clears it. The store writes what
/// it is given: whether the result is a usable combination (a method with the keys
/// or subject it needs) is for the caller to check first.
#[derive(Debug, Clone, Default)]
pub struct ClientChanges {
    /// A new name for people.
    pub name: Option<String>,
    /// The scopes the client may ask for.
    pub scope: Option<Scope>,
    /// The grants the client may use.
    pub grant_types: Option<GrantTypes>,
    /// `aud` of its access tokens.
    pub audience: Option<Option<String>>,
    /// Access token lifetime, seconds.
    pub access_token_ttl: Option<Option<i64>>,
    /// Refresh token lifetime, seconds.
    pub refresh_token_ttl: Option<Option<i64>>,
    /// Whether it may introspect any token.
    pub can_introspect: Option<bool>,
    /// JWT or opaque access tokens, for tokens issued from now on.
    pub token_format: Option<TokenFormat>,
    /// A new secret, which replaces the current one at once: no grace period, and a
    /// previous secret still inside one stops working too.
    pub secret_hash: Option<SecretHash>,
    /// The hash of a new registration access token (RFC 7592 §2.2: an update may
    /// issue one, and the one before stops working).
    pub registration_token_hash: Option<SecretHash>,
    /// Change the client only if its registration access token is still this one:
    /// of concurrent RFC 7592 updates made with one token, on any number of nodes,
    /// exactly one finds it and the rest change nothing (`None` from
    /// [`SqlStore::update_client`]).
    pub if_registration_token: Option<SecretHash>,
    /// How it authenticates.
    pub auth_method: Option<AuthMethod>,
    /// Its JWK Set (JSON text); `Some(None)` removes it.
    pub jwks: Option<Option<String>>,
    /// Where its JWK Set is fetched from; `Some(None)` removes it.
    pub jwks_uri: Option<Option<String>>,
    /// The subject DN its certificate must carry (canonical form); `Some(None)`
    /// removes it.
    pub tls_subject_dn: Option<Option<String>>,
    /// Whether its access tokens are bound to its TLS client certificate.
    pub bound_tokens: Option<bool>,
}

impl SqlStore {
    /// Applies `changes` to the client `id` in one statement (two admins changing
    /// different settings at once both keep theirs), records the change for the
    /// running servers' caches, and returns the client as it is now; `None` when there
    /// is no such client. Tokens already issued keep what they were issued with.
    pub async fn update_client(
        &self,
        id: &ClientId,
        changes: &ClientChanges,
        now: UnixTime,
    ) -> Result<Option<Client>, StoreError> {
        // A new secret clears the previous one: SET expressions read the row as it
        // was, so each CASE sees whether $14 replaces the secret.
        let sql = format!(
            "UPDATE clients SET name = COALESCE($1, name), scope = COALESCE($2, scope), \
                 grant_types = COALESCE($3, grant_types), \
                 audience = CASE WHEN $4 THEN $5 ELSE audience END, \
                 access_token_ttl = CASE WHEN $6 THEN $7 ELSE access_token_ttl END, \
                 refresh_token_ttl = CASE WHEN $8 THEN $9 ELSE refresh_token_ttl END, \
                 can_introspect = COALESCE($10, can_introspect), updated_at = $11, \
                 token_format = COALESCE($13, token_format), secret_hash = COALESCE($14, secret_hash), \
                 previous_secret_hash = CASE WHEN $14 IS NULL THEN previous_secret_hash END, \
                 previous_secret_expires_at = CASE WHEN $14 IS NULL THEN previous_secret_expires_at END, \
                 registration_token_hash = COALESCE($15, registration_token_hash), \
                 auth_method = COALESCE($17, auth_method), \
                 jwks = CASE WHEN $18 THEN $19 ELSE jwks END, \
                 jwks_uri = CASE WHEN $20 THEN $21 ELSE jwks_uri END, \
                 tls_subject_dn = CASE WHEN $22 THEN $23 ELSE tls_subject_dn END, \
                 bound_tokens = COALESCE($24, bound_tokens) \
             WHERE client_id = $12 AND ($16 IS NULL OR registration_token_hash = $16) \
             RETURNING {CLIENT_READ_COLUMNS}"
        );
        let row: Option<ClientRow> = on_pool!(self, pool => async {
            let mut tx = pool.begin().await?;
            let row: Option<ClientRow> = sqlx::query_as(&sql)
                .bind(changes.name.as_deref())
                .bind(changes.scope.as_ref().map(Scope::to_string))
                .bind(changes.grant_types.map(|g| g.to_string()))
                .bind(changes.audience.is_some())
                .bind(changes.audience.clone().flatten())
                .bind(changes.access_token_ttl.is_some())
                .bind(changes.access_token_ttl.flatten())
                .bind(changes.refresh_token_ttl.is_some())
                .bind(changes.refresh_token_ttl.flatten())
                .bind(changes.can_introspect)
                .bind(now)
                .bind(id.as_str())
                .bind(changes.token_format.map(TokenFormat::as_str))
                .bind(changes.secret_hash.as_ref().map(SecretHash::to_stored))
                .bind(changes.registration_token_hash.as_ref().map(SecretHash::to_stored))
                .bind(changes.if_registration_token.as_ref().map(SecretHash::to_stored))
                .bind(changes.auth_method.map(AuthMethod::as_str))
                .bind(changes.jwks.is_some())
                .bind(changes.jwks.as_ref().and_then(Option::as_deref))
                .bind(changes.jwks_uri.is_some())
                .bind(changes.jwks_uri.as_ref().and_then(Option::as_deref))
                .bind(changes.tls_subject_dn.is_some())
                .bind(changes.tls_subject_dn.as_ref().and_then(Option::as_deref))
                .bind(changes.bound_tokens)
                .fetch_optional(&mut *tx)
                .await?;
            if row.is_some() {
                record_change!(tx, ChangeKind::Client, id.as_str(), now)?;
            }
            tx.commit().await.map(|()| row)
        }
        .await)
        .map_err(db_error)?;
        row.map(ClientRow::into_client).transpose()
    }

    /// One page of clients in the order of their ids: at most `limit`, each id after
    /// `after` (exclusive; `None` starts at the first). Ids compare as the primary key's
    /// index orders them, so a page is a range scan of that index: byte order on SQLite
    /// (`BINARY`) and on PostgreSQL databases with the `C` collation (`C.UTF-8`
    /// included); the database's collation on others, the same for every page.
    pub async fn list_clients_page(
        &self,
        after: Option<&ClientId>,
        limit: i64,
    ) -> Result<Vec<Client>, StoreError> {
        // Two statements rather than `$1 IS NULL OR client_id > $1`, which a generic
        // PostgreSQL plan cannot turn into an index range.
        let rows: Vec<ClientRow> = match after {
            Some(after) => {
                let sql = format!(
                    "SELECT {CLIENT_READ_COLUMNS} FROM clients WHERE client_id > $1 ORDER BY client_id LIMIT $2"
                );
                on_pool!(self, pool => sqlx::query_as(&sql).bind(after.as_str()).bind(limit).fetch_all(pool).await)
            }
            None => {
                let sql = format!("SELECT {CLIENT_READ_COLUMNS} FROM clients ORDER BY client_id LIMIT $1");
                on_pool!(self, pool => sqlx::query_as(&sql).bind(limit).fetch_all(pool).await)
            }
        }
        .map_err(db_error)?;
        rows.into_iter().map(ClientRow::into_client).collect()
    }

    /// Inserts a client registered over RFC 7591 (§3.2.1), with the hash of its
    /// registration access token, exactly as [`ClientStore::insert_client`] inserts
    /// any other: [`StoreError::Conflict`] if the id is taken.
    pub async fn register_client(
        &self,
        client: &Client,
        registration_token: &SecretHash,
    ) -> Result<(), StoreError> {
        self.insert_client_row(client, Some(registration_token)).await
    }

    /// The hash of the registration access token of the client `id` (RFC 7592 §2);
    /// `None` when there is no such client or it was not registered over RFC 7591.
    pub async fn registration_token(&self, id: &ClientId) -> Result<Option<SecretHash>, StoreError> {
        let stored: Option<Option<String>> = on_pool!(self, pool => sqlx::query_scalar(
            "SELECT registration_token_hash FROM clients WHERE client_id = $1",
        )
        .bind(id.as_str())
        .fetch_optional(pool)
        .await)
        .map_err(db_error)?;
        stored
            .flatten()
            .map(|hash| SecretHash::from_stored(&hash).map_err(|e| corrupt("registration_token_hash", e)))
            .transpose()
    }
}
