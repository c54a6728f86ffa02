//! The token endpoint's logic (RFC 6749 §3.2, §4.4): authenticate the client, check
//! the grant and the scope, mint the token. No I/O of its own beyond the stores it is
//! given; for a cached client, a client_credentials token touches no disk.

use std::fmt;
use std::sync::Arc;

use serde::Serialize;

use crate::jwt::{sign_access_token, AccessTokenClaims};
use crate::secret::VerifiedSecrets;
use crate::store::ClientLookup;
use crate::{
    Client, ClientAuth, ClientId, ClientSecret, Clock, GrantRequest, GrantType, KeyRing, OAuthError, Random,
    Scope, TokenFormat, TokenRequest, UnixTime,
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
    /// The granted scope.
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

/// The token endpoint.
pub struct TokenService {
    config: IssuerConfig,
    clients: Arc<dyn ClientLookup>,
    keys: Arc<KeyRing>,
    clock: Arc<dyn Clock>,
    rng: Arc<dyn Random>,
    verified: VerifiedSecrets,
}

/// The description of every client authentication failure, so that an unknown client
/// and a wrong secret look the same from outside.
const CLIENT_AUTH_FAILED: &str = "Client authentication failed.";

impl TokenService {
    /// A token endpoint that finds clients in `clients` and signs with `keys`.
    pub fn new(
        config: IssuerConfig,
        clients: Arc<dyn ClientLookup>,
        keys: Arc<KeyRing>,
        clock: Arc<dyn Clock>,
        rng: Arc<dyn Random>,
    ) -> Self {
        Self {
            config,
            clients,
            keys,
            clock,
            rng,
            verified: VerifiedSecrets::default(),
        }
    }

    /// The settings tokens are issued with.
    pub fn config(&self) -> &IssuerConfig {
        &self.config
    }

    /// Serves a token request.
    pub async fn exchange(&self, request: TokenRequest) -> Result<TokenResponse, OAuthError> {
        let client = self.authenticate(&request.client_auth).await?;
        let grant = request.grant?;
        if !client.grant_types.contains(grant.grant_type()) {
            return Err(OAuthError::UnauthorizedClient(
                "This client may not use this grant type.".into(),
            ));
        }
        match grant {
            GrantRequest::ClientCredentials { scope } => self.client_credentials(&client, scope.as_ref()),
            GrantRequest::Password { .. } | GrantRequest::RefreshToken { .. } => Err(
                OAuthError::UnsupportedGrantType("This grant type is not supported yet.".into()),
            ),
        }
    }

    /// Authenticates the client of a request (RFC 6749 §2.3.1). Every failure is the
    /// same `invalid_client`, whether the client is unknown or the secret wrong.
    pub async fn authenticate(&self, auth: &ClientAuth) -> Result<Arc<Client>, OAuthError> {
        let basic = auth.is_basic();
        let failed = || OAuthError::invalid_client(CLIENT_AUTH_FAILED, basic);
        let (client_id, secret) = match auth {
            ClientAuth::Basic { client_id, secret } | ClientAuth::Post { client_id, secret } => {
                (client_id, secret)
            }
            ClientAuth::None => {
                return Err(OAuthError::invalid_client(
                    "Client authentication is required (client_secret_basic or client_secret_post).",
                    false,
                ))
            }
        };
        let id = ClientId::parse(client_id).ok_or_else(failed)?;
        let client = self.clients.find_client(&id).await?.ok_or_else(failed)?;
        if self.verify_secret(&client, secret).await? {
            Ok(client)
        } else {
            Err(failed())
        }
    }

    async fn verify_secret(&self, client: &Client, secret: &ClientSecret) -> Result<bool, OAuthError> {
        if !client.secret_hash.is_slow() {
            return Ok(client.secret_hash.verify(secret));
        }
        let key = VerifiedSecrets::key(client.id.as_str(), &client.secret_hash, secret);
        if self.verified.contains(&key) {
            return Ok(true);
        }
        // Argon2id takes tens of milliseconds of CPU: keep it off the async workers.
        let (hash, presented) = (client.secret_hash.clone(), secret.clone());
        let ok = tokio::task::spawn_blocking(move || hash.verify(&presented))
            .await
            .map_err(|_| OAuthError::ServerError)?;
        if ok {
            self.verified.insert(key);
        }
        Ok(ok)
    }

    /// RFC 6749 §4.4: the client acts on its own behalf; `sub` is the client id.
    fn client_credentials(
        &self,
        client: &Client,
        requested: Option<&Scope>,
    ) -> Result<TokenResponse, OAuthError> {
        let scope = Scope::grant(requested, &client.scope)?;
        let now = self.clock.now();
        let (access_token, expires_in) = self.mint_access_token(client, client.id.as_str(), &scope, now)?;
        Ok(TokenResponse {
            access_token,
            token_type: "Bearer",
            expires_in,
            scope: scope.to_string(),
            refresh_token: None,
            grant_type: GrantType::ClientCredentials,
        })
    }

    /// Signs an RFC 9068 access token for `client`, about `subject`.
    fn mint_access_token(
        &self,
        client: &Client,
        subject: &str,
        scope: &Scope,
        now: UnixTime,
    ) -> Result<(String, i64), OAuthError> {
        if client.token_format == TokenFormat::Opaque {
            return Err(OAuthError::UnauthorizedClient(
                "Opaque access tokens are not available yet.".into(),
            ));
        }
        let ttl = client.access_token_ttl.unwrap_or(self.config.access_token_ttl);
        let keys = self.keys.get().ok_or(OAuthError::ServerError)?;
        let claims = AccessTokenClaims {
            iss: self.config.issuer.clone(),
            sub: subject.to_owned(),
            aud: client
                .audience
                .clone()
                .unwrap_or_else(|| self.config.default_audience.clone()),
            exp: now + ttl,
            iat: now,
            jti: self.rng.token(16),
            client_id: client.id.as_str().to_owned(),
            scope: scope.to_string(),
        };
        let token = sign_access_token(&keys.current, &claims).map_err(|_| OAuthError::ServerError)?;
        Ok((token, ttl))
    }
}

#[cfg(test)]
mod tests;
