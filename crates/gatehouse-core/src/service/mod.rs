//! The endpoints' logic: token (RFC 6749 §3.2), revocation (RFC 7009) and
//! introspection (RFC 7662). It authenticates clients, checks grants and scopes,
//! mints tokens, and reaches storage only through the traits it is given. For a
//! cached client, a client_credentials JWT touches no disk.

mod authenticate;
mod client_credentials;
mod inspect;
mod password;
mod refresh;

use std::fmt;
use std::sync::Arc;

use serde::Serialize;

pub use self::inspect::{ActiveToken, Introspection};
use crate::authn::InlineKeysOnly;
use crate::jwt::{sign_access_token, AccessTokenClaims, VerifiedTokens};
use crate::request::{IntrospectionRequest, RevocationRequest};
use crate::secret::VerifiedSecrets;
use crate::store::{ClientLookup, ReplayStore, TokenStore, UserStore};
use crate::tokens::{
    MintedToken, NewFamily, NewOpaqueToken, NewRefreshToken, OPAQUE_ACCESS_PREFIX, REFRESH_PREFIX,
};
use crate::{
    AuthContext, Client, ClientKeys, ClientSecret, Clock, Confirmation, GrantRequest, GrantType, KeyRing,
    OAuthError, PresentedCertificate, Random, Scope, SecretHash, SlowHashGate, TokenFormat, TokenRequest,
    UnixTime,
};

/// What the server puts in every token it issues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerConfig {
    /// `iss`.
    pub issuer: String,
    /// `aud` for clients registered without an audience.
    pub default_audience: String,
    /// Access token lifetime, seconds, for clients without their own.
    pub access_token_ttl: i64,
    /// Refresh token lifetime, seconds, for clients without their own.
    pub refresh_token_ttl: i64,
}

/// A successful token response (RFC 6749 §5.1).
#[derive(Clone, Serialize)]
pub struct TokenResponse {
    /// The access token.
    pub access_token: String,
    /// Always `Bearer` (RFC 6750).
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// The granted scope. Left out when empty: RFC 6749 §5.1 makes it optional, and
    /// `"scope": ""` reads to some clients as a malformed answer.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub scope: String,
    /// A refresh token, where one is issued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// The grant that was used; for metrics and audit, not sent.
    #[serde(skip)]
    pub grant_type: GrantType,
}

impl fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenResponse")
            .field("access_token", &"[redacted]")
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .field("grant_type", &self.grant_type)
            .finish_non_exhaustive()
    }
}

/// The stores the service works with.
#[derive(Clone)]
pub struct Stores {
    /// Clients (cached by the server).
    pub clients: Arc<dyn ClientLookup>,
    /// Users.
    pub users: Arc<dyn UserStore>,
    /// Refresh tokens, logins, opaque tokens, revocations.
    pub tokens: Arc<dyn TokenStore>,
    /// Used assertion (and proof) `jti`s.
    pub replays: Arc<dyn ReplayStore>,
}

/// The token, revocation and introspection endpoints.
pub struct TokenService {
    config: IssuerConfig,
    stores: Stores,
    keys: Arc<KeyRing>,
    clock: Arc<dyn Clock>,
    rng: Arc<dyn Random>,
    verified: VerifiedSecrets,
    /// JWTs whose signature was checked, for introspection.
    verified_jwts: VerifiedTokens,
    /// Verified against when a username is unknown, so that an unknown user costs the
    /// same Argon2id time as a wrong password.
    dummy_password_hash: SecretHash,
    /// Checked against when a client id is unknown, so that an unknown client costs
    /// the same work as a wrong generated secret.
    dummy_secret_hash: SecretHash,
    /// The slots for slow (Argon2id) verifications of secrets and passwords.
    slow_hashes: SlowHashGate,
    /// Clients' public keys, for `private_key_jwt` and `self_signed_tls_client_auth`.
    client_keys: Arc<dyn ClientKeys>,
}

/// An access token ready to hand out, and what must be stored for it first.
struct PreparedAccess {
    token: String,
    opaque_row: Option<NewOpaqueToken>,
    expires_in: i64,
}

/// Who an access token is about.
struct Subject<'a> {
    sub: &'a str,
    username: Option<&'a str>,
    sid: Option<&'a str>,
}

impl TokenService {
    /// The endpoints, over `stores`, signing with `keys`.
    pub fn new(
        config: IssuerConfig,
        stores: Stores,
        keys: Arc<KeyRing>,
        clock: Arc<dyn Clock>,
        rng: Arc<dyn Random>,
    ) -> Self {
        let dummy = ClientSecret::new(rng.token(16));
        let dummy_password_hash = SecretHash::argon2id(&dummy, rng.as_ref()).unwrap_or(SecretHash::Argon2id(
            "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG".into(),
        ));
        Self {
            config,
            stores,
            keys,
            clock,
            rng,
            verified: VerifiedSecrets::default(),
            verified_jwts: VerifiedTokens::default(),
            dummy_password_hash,
            dummy_secret_hash: SecretHash::Sha256([0; 32]),
            slow_hashes: SlowHashGate::default(),
            client_keys: Arc::new(InlineKeysOnly),
        }
    }

    /// Finds clients' keys with `keys` (default: [`InlineKeysOnly`]).
    pub fn with_client_keys(mut self, keys: Arc<dyn ClientKeys>) -> Self {
        self.client_keys = keys;
        self
    }

    /// Verifies slow hashes in `gate`'s slots (default: [`SlowHashGate::default`]).
    pub fn with_slow_hash_gate(mut self, gate: SlowHashGate) -> Self {
        self.slow_hashes = gate;
        self
    }

    /// The slots slow (Argon2id) hashes run in: for hashing a new secret or password
    /// under the same bound as verifications ([`SlowHashGate::hash`]).
    pub fn slow_hash_gate(&self) -> &SlowHashGate {
        &self.slow_hashes
    }

    /// The settings tokens are issued with.
    pub fn config(&self) -> &IssuerConfig {
        &self.config
    }

    /// Serves a token request. An assertion must name the issuer as its audience
    /// here; a server that knows the endpoint's URL authenticates with
    /// [`TokenService::authenticate`] and calls [`TokenService::exchange_as`].
    pub async fn exchange(&self, request: TokenRequest) -> Result<TokenResponse, OAuthError> {
        let context = AuthContext {
            certificate: request.certificate.clone(),
            ..self.issuer_context()
        };
        let client = self.authenticate(&request.client_auth, &context).await?;
        self.exchange_as(&client, request).await
    }

    /// What authentication knows of a request that reached no particular URL:
    /// the issuer is the audience (RFC 7523 §3, item 3), and there is no certificate.
    fn issuer_context(&self) -> AuthContext {
        AuthContext {
            audiences: vec![self.config.issuer.clone()],
            certificate: None,
        }
    }

    /// Serves a token request for `client`, which the caller has authenticated with
    /// [`TokenService::authenticate`] from the request's own credentials (so that it
    /// can count the request against the client's quota in between).
    pub async fn exchange_as(
        &self,
        client: &Client,
        request: TokenRequest,
    ) -> Result<TokenResponse, OAuthError> {
        let grant = request.grant?;
        if !client.grant_types.contains(grant.grant_type()) {
            return Err(OAuthError::UnauthorizedClient(
                "This client may not use this grant type.".into(),
            ));
        }
        let cnf = confirmation(client, request.certificate.as_deref())?;
        let cnf = cnf.as_ref();
        match grant {
            GrantRequest::ClientCredentials { scope } => {
                self.client_credentials(client, scope.as_ref(), request.refresh_on_client_credentials, cnf)
                    .await
            }
            GrantRequest::Password {
                username,
                password,
                scope,
            } => {
                self.password(client, &username, &password, scope.as_ref(), cnf)
                    .await
            }
            GrantRequest::RefreshToken { refresh_token, scope } => {
                self.refresh(client, &refresh_token, scope.as_ref(), cnf).await
            }
        }
    }

    /// Serves a revocation request (RFC 7009 §2.1): authenticates the client, if it
    /// presented credentials, then revokes. Returns whether anything was revoked.
    pub async fn revoke(&self, request: RevocationRequest) -> Result<bool, OAuthError> {
        let client = match &request.client_auth {
            Some(auth) => Some(self.authenticate(auth, &self.issuer_context()).await?),
            None => None,
        };
        self.revoke_as(client.as_deref(), request).await
    }

    /// Serves a revocation request for `client`, which the caller has authenticated
    /// with [`TokenService::authenticate`] from the request's own credentials, or for
    /// the holder of the token when the request presented none (`None`).
    pub async fn revoke_as(
        &self,
        client: Option<&Client>,
        request: RevocationRequest,
    ) -> Result<bool, OAuthError> {
        self.revoke_token(client, request.token.expose()).await
    }

    /// Serves an introspection request (RFC 7662 §2.1): authenticates the client,
    /// then describes the token as that client may see it.
    pub async fn introspect(&self, request: IntrospectionRequest) -> Result<Introspection, OAuthError> {
        let client = self
            .authenticate(&request.client_auth, &self.issuer_context())
            .await?;
        self.introspect_as(&client, request).await
    }

    /// Serves an introspection request for `client`, which the caller has
    /// authenticated with [`TokenService::authenticate`] from the request's own
    /// credentials.
    pub async fn introspect_as(
        &self,
        client: &Client,
        request: IntrospectionRequest,
    ) -> Result<Introspection, OAuthError> {
        self.introspect_token(client, request.token.expose()).await
    }

    /// A login (token family) for `client`, if it has the `refresh_token` grant: a
    /// login exists to be refreshed.
    fn new_family(
        &self,
        client: &Client,
        user_id: Option<&str>,
        scope: &Scope,
        now: UnixTime,
    ) -> Option<NewFamily> {
        client
            .grant_types
            .contains(GrantType::RefreshToken)
            .then(|| NewFamily {
                family_id: self.rng.token(16),
                client_id: client.id.clone(),
                user_id: user_id.map(str::to_owned),
                scope: scope.clone(),
                created_at: now,
            })
    }

    /// Stores what must exist before `access` is handed out: the login and its first
    /// refresh token (returned), and the row of an opaque access token.
    async fn store_login(
        &self,
        client: &Client,
        family: Option<&NewFamily>,
        access: &PreparedAccess,
        now: UnixTime,
    ) -> Result<Option<String>, OAuthError> {
        let Some(family) = family else {
            if let Some(row) = &access.opaque_row {
                self.stores.tokens.insert_opaque(row).await?;
            }
            return Ok(None);
        };
        let minted = MintedToken::generate(REFRESH_PREFIX, self.rng.as_ref());
        let row = NewRefreshToken {
            digest: minted.digest,
            family_id: family.family_id.clone(),
            client_id: client.id.clone(),
            issued_at: now,
            expires_at: now + self.refresh_ttl(client),
        };
        self.stores
            .tokens
            .start_login(family, &row, access.opaque_row.as_ref())
            .await?;
        Ok(Some(minted.value))
    }

    /// An access token for `client` about `subject`, bound to `cnf` if given: a
    /// signed JWT, or for opaque clients a random token whose row the caller stores
    /// before answering.
    fn prepare_access(
        &self,
        client: &Client,
        subject: &Subject<'_>,
        scope: &Scope,
        now: UnixTime,
        cnf: Option<&Confirmation>,
    ) -> Result<PreparedAccess, OAuthError> {
        let ttl = client.access_token_ttl.unwrap_or(self.config.access_token_ttl);
        let audience = client
            .audience
            .clone()
            .unwrap_or_else(|| self.config.default_audience.clone());
        let jti = self.rng.token(16);
        if client.token_format == TokenFormat::Opaque {
            let minted = MintedToken::generate(OPAQUE_ACCESS_PREFIX, self.rng.as_ref());
            return Ok(PreparedAccess {
                token: minted.value,
                opaque_row: Some(NewOpaqueToken {
                    digest: minted.digest,
                    jti,
                    family_id: subject.sid.map(str::to_owned),
                    client_id: client.id.clone(),
                    subject: subject.sub.to_owned(),
                    username: subject.username.map(str::to_owned),
                    scope: scope.clone(),
                    audience,
                    issued_at: now,
                    expires_at: now + ttl,
                    cnf: cnf.cloned(),
                }),
                expires_in: ttl,
            });
        }
        let keys = self
            .keys
            .get()
            .ok_or(OAuthError::server_error("no signing key is loaded"))?;
        let claims = AccessTokenClaims {
            iss: self.config.issuer.clone(),
            sub: subject.sub.to_owned(),
            aud: audience,
            exp: now + ttl,
            iat: now,
            jti,
            client_id: client.id.as_str().to_owned(),
            scope: scope.to_string(),
            sid: subject.sid.map(str::to_owned),
            username: subject.username.map(str::to_owned),
            cnf: cnf.cloned(),
        };
        let token = sign_access_token(&keys.current, &claims)
            .map_err(|err| OAuthError::server_error(format!("cannot sign an access token: {err}")))?;
        Ok(PreparedAccess {
            token,
            opaque_row: None,
            expires_in: ttl,
        })
    }

    fn response(
        &self,
        access: PreparedAccess,
        scope: &Scope,
        refresh_token: Option<String>,
        grant_type: GrantType,
    ) -> TokenResponse {
        TokenResponse {
            access_token: access.token,
            token_type: "Bearer",
            expires_in: access.expires_in,
            scope: scope.to_string(),
            refresh_token,
            grant_type,
        }
    }

    /// The refresh token lifetime for `client`.
    fn refresh_ttl(&self, client: &Client) -> i64 {
        client.refresh_token_ttl.unwrap_or(self.config.refresh_token_ttl)
    }
}

/// What the access tokens of a token request are bound to: for a client with bound
/// tokens, the certificate the request came with (`cnf.x5t#S256`, RFC 8705 §3);
/// without one the request is refused, rather than answered with a token its client
/// expects to be bound and is not.
fn confirmation(
    client: &Client,
    certificate: Option<&PresentedCertificate>,
) -> Result<Option<Confirmation>, OAuthError> {
    if !client.auth.bound_tokens {
        return Ok(None);
    }
    match certificate {
        Some(certificate) => Ok(Some(Confirmation {
            x5t_s256: Some(certificate.thumbprint.clone()),
            jkt: None,
        })),
        None => Err(OAuthError::invalid_request(
            "This client's access tokens are bound to its TLS client certificate: connect with one.",
        )),
    }
}

#[cfg(test)]
mod tests;
