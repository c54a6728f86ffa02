//! Introspection (RFC 7662) and revocation (RFC 7009) of every kind of token.

use serde::Serialize;

use super::TokenService;
use crate::jwt::AccessTokenClaims;
use crate::tokens::{RefreshView, TokenDigest, TokenKind};
use crate::{Client, Confirmation, OAuthError};

/// An introspection answer (RFC 7662 §2.2). Inactive is exactly `{"active": false}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Introspection {
    /// Whether the token is active.
    pub active: bool,
    /// The rest, for an active token.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub details: Option<ActiveToken>,
}

/// What introspection tells of an active token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActiveToken {
    /// Granted scope; left out when empty (optional in RFC 7662 §2.2).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub scope: String,
    /// The client it was issued to.
    pub client_id: String,
    /// The user's name, for user tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// `Bearer` or `refresh_token`.
    pub token_type: &'static str,
    /// Expiry.
    pub exp: i64,
    /// Issue time.
    pub iat: i64,
    /// Subject.
    pub sub: String,
    /// Audience.
    pub aud: String,
    /// Issuer.
    pub iss: String,
    /// Token id.
    pub jti: String,
    /// What the token is bound to (RFC 8705 §3.2: a resource server introspecting a
    /// certificate-bound token learns `cnf.x5t#S256`); left out when nothing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
}

impl Introspection {
    fn inactive() -> Self {
        Self {
            active: false,
            details: None,
        }
    }

    fn active(details: ActiveToken) -> Self {
        Self {
            active: true,
            details: Some(details),
        }
    }
}

/// A token found in storage or verified, with the client it belongs to.
enum Found {
    Refresh { family_id: String, client_id: String },
    Opaque { digest: TokenDigest, client_id: String },
    Jwt(AccessTokenClaims),
}

impl Found {
    fn client_id(&self) -> &str {
        match self {
            Self::Refresh { client_id, .. } | Self::Opaque { client_id, .. } => client_id,
            Self::Jwt(claims) => &claims.client_id,
        }
    }
}

/// Who is looking at a token: a client through introspection, or the server itself.
#[derive(Clone, Copy)]
enum Viewer<'a> {
    /// RFC 7662 §2.1: a client, which sees only what it may.
    Client(&'a Client),
    /// The server's own check (its admin API's bearer tokens): every token.
    Server,
}

impl Viewer<'_> {
    /// May this viewer see a token issued to `owner`? A client its own, or any for a
    /// resource server; the server, any.
    fn may_see(self, owner: &str) -> bool {
        match self {
            Self::Client(client) => client.can_introspect || client.id.as_str() == owner,
            Self::Server => true,
        }
    }
}

impl TokenService {
    /// RFC 7662: what `client` may know of `token`. The hint is not needed: the form
    /// of a token says what it is.
    pub(crate) async fn introspect_token(
        &self,
        client: &Client,
        token: &str,
    ) -> Result<Introspection, OAuthError> {
        Ok(match self.active_token(Viewer::Client(client), token).await? {
            Some(details) => Introspection::active(details),
            None => Introspection::inactive(),
        })
    }

    /// The server's own view of `token`: what introspection would tell a resource
    /// server, with no client to answer to. `None` for a token that is not active:
    /// unknown, expired, revoked (by itself, its login, or its client's or user's
    /// revocation mark), or of a deleted or disabled holder. The answer is read from
    /// storage each time, never cached, so a revocation takes effect on the next
    /// call on every node. Refresh tokens are active too: check
    /// [`ActiveToken::token_type`] where only access tokens will do.
    pub async fn inspect(&self, token: &str) -> Result<Option<ActiveToken>, OAuthError> {
        self.active_token(Viewer::Server, token).await
    }

    /// What `viewer` may know of `token`, when it is active.
    async fn active_token(&self, viewer: Viewer<'_>, token: &str) -> Result<Option<ActiveToken>, OAuthError> {
        let now = self.clock.now();
        let details = match TokenKind::of(token) {
            TokenKind::Refresh => {
                let Some(RefreshView { token: view, holders }) =
                    self.stores.tokens.find_refresh(&TokenDigest::of(token)).await?
                else {
                    return Ok(None);
                };
                if !view.is_live(now)
                    || !holders.allows(view.issued_at)
                    || !viewer.may_see(view.client_id.as_str())
                {
                    return Ok(None);
                }
                let user = view.login.user;
                ActiveToken {
                    scope: view.login.scope.to_string(),
                    client_id: view.client_id.to_string(),
                    username: user.as_ref().map(|u| u.username.clone()),
                    token_type: "refresh_token",
                    exp: view.expires_at,
                    iat: view.issued_at,
                    sub: user.map_or_else(|| view.client_id.to_string(), |u| u.user_id),
                    // A refresh token is for this server alone.
                    aud: self.config.issuer.clone(),
                    iss: self.config.issuer.clone(),
                    jti: TokenDigest::of(token).id(),
                    // A refresh token is bound to nothing: its client authenticates.
                    cnf: None,
                }
            }
            TokenKind::OpaqueAccess => {
                let Some(view) = self.stores.tokens.find_opaque(&TokenDigest::of(token)).await? else {
                    return Ok(None);
                };
                if !view.is_live(now) || !viewer.may_see(view.token.client_id.as_str()) {
                    return Ok(None);
                }
                let row = view.token;
                ActiveToken {
                    scope: row.scope.to_string(),
                    client_id: row.client_id.to_string(),
                    username: row.username,
                    token_type: "Bearer",
                    exp: row.expires_at,
                    iat: row.issued_at,
                    sub: row.subject,
                    aud: row.audience,
                    iss: self.config.issuer.clone(),
                    jti: row.jti,
                    cnf: row.cnf.filter(|cnf| !cnf.is_empty()),
                }
            }
            TokenKind::Jwt => {
                let Some(claims) = self.verified_jwt(token) else {
                    return Ok(None);
                };
                if !viewer.may_see(&claims.client_id) {
                    return Ok(None);
                }
                let state = self
                    .stores
                    .tokens
                    .jwt_state(
                        &claims.jti,
                        claims.sid.as_deref(),
                        &claims.client_id,
                        claims.user_id(),
                    )
                    .await?;
                // A token of a login ends with it (a missing login counts as revoked).
                let login_ended = claims.sid.is_some() && !state.login.stands();
                if state.jti_revoked || login_ended || !state.holders.allows(claims.iat) {
                    return Ok(None);
                }
                ActiveToken {
                    scope: claims.scope,
                    client_id: claims.client_id,
                    username: claims.username,
                    token_type: "Bearer",
                    exp: claims.exp,
                    iat: claims.iat,
                    sub: claims.sub,
                    aud: claims.aud,
                    iss: claims.iss,
                    jti: claims.jti,
                    cnf: claims.cnf.filter(|cnf| !cnf.is_empty()),
                }
            }
            TokenKind::Unknown => return Ok(None),
        };
        Ok(Some(details))
    }

    /// RFC 7009: revokes `token`. With an authenticated `client`, only its own tokens
    /// (another client's is refused with `unauthorized_client`, RFC 7009 §2.1);
    /// without, the presented token itself: holding it is the right to give it up.
    /// A refresh token takes its whole login with it. Unknown tokens are no error.
    /// Returns whether anything was revoked.
    pub(crate) async fn revoke_token(
        &self,
        client: Option<&Client>,
        token: &str,
    ) -> Result<bool, OAuthError> {
        let now = self.clock.now();
        let found = match TokenKind::of(token) {
            TokenKind::Refresh => self
                .stores
                .tokens
                .find_refresh(&TokenDigest::of(token))
                .await?
                .map(|view| Found::Refresh {
                    family_id: view.token.login.family_id,
                    client_id: view.token.client_id.to_string(),
                }),
            TokenKind::OpaqueAccess => {
                let digest = TokenDigest::of(token);
                self.stores
                    .tokens
                    .find_opaque(&digest)
                    .await?
                    .map(|view| Found::Opaque {
                        digest,
                        client_id: view.token.client_id.to_string(),
                    })
            }
            TokenKind::Jwt => self.verified_jwt(token).map(Found::Jwt),
            TokenKind::Unknown => None,
        };
        let Some(found) = found else { return Ok(false) };
        if let Some(client) = client {
            if client.id.as_str() != found.client_id() {
                return Err(OAuthError::UnauthorizedClient(
                    "This token was not issued to this client.".into(),
                ));
            }
        }
        let tokens = &self.stores.tokens;
        Ok(match found {
            Found::Refresh { family_id, .. } => tokens.revoke_family(&family_id, now).await?,
            Found::Opaque { digest, .. } => tokens.revoke_opaque(&digest, now).await?,
            Found::Jwt(claims) => tokens.revoke_jti(&claims.jti, claims.exp).await?,
        })
    }

    /// The claims of a live JWT access token this server signed. A signature by one
    /// of our published keys is the proof: `iss` is inside what was signed.
    fn verified_jwt(&self, token: &str) -> Option<AccessTokenClaims> {
        let keys = self.keys.get()?;
        let claims = self.verified_jwts.verify(&keys, token, self.clock.now())?;
        Some(AccessTokenClaims::clone(&claims))
    }
}
