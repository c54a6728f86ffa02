//! RFC 6749 §6: the refresh token grant, with rotation and reuse detection
//! (RFC 9700 §4.14.2).

use super::{PreparedAccess, Subject, TokenService};
use crate::grant::Credential;
use crate::tokens::{
    LoginState, MintedToken, NewOpaqueToken, NewRefreshToken, RefreshState, RefreshVerdict, RotationStep,
    RotationWrites, TokenDigest, TokenKind, OPAQUE_ACCESS_PREFIX, REFRESH_PREFIX,
};
use crate::{
    Client, Confirmation, GrantType, OAuthError, Scope, StoreError, TokenFormat, TokenResponse, UnixTime,
};

const INVALID_REFRESH: &str = "The refresh token is invalid, expired or revoked.";
const REUSED_REFRESH: &str = "The refresh token was used before; its login has been revoked.";

/// The scope of the access token a refresh gives: RFC 6749 §6, "The requested scope
/// MUST NOT include any scope not originally granted by the resource owner, and if
/// omitted is treated as equal to the scope originally granted". What the client or
/// the user has lost since the login is dropped.
fn refreshed_scope(
    login: &LoginState,
    client: &Client,
    requested: Option<&Scope>,
) -> Result<Scope, OAuthError> {
    let granted = Scope::regrant(requested, &login.scope)?;
    let mut scope = granted.intersection(&client.scope);
    if let Some(user_scope) = login.user.as_ref().and_then(|user| user.scope.as_ref()) {
        scope = scope.intersection(user_scope);
    }
    Ok(scope)
}

/// Refuses a login whose user was deleted or disabled since.
fn check_login_user(login: &LoginState) -> Result<(), OAuthError> {
    match (&login.user, login.had_user) {
        (Some(user), _) if user.disabled => Err(OAuthError::InvalidGrant(INVALID_REFRESH.into())),
        (None, true) => Err(OAuthError::InvalidGrant(INVALID_REFRESH.into())),
        _ => Ok(()),
    }
}

impl TokenService {
    /// Rotates `presented` into a new refresh token and a new access token, bound
    /// to `cnf`: the certificate of this request, whatever the login's first token
    /// was bound to (RFC 8705 §3: a client may renew its certificate).
    pub(super) async fn refresh(
        &self,
        client: &Client,
        presented: &Credential,
        requested: Option<&Scope>,
        cnf: Option<&Confirmation>,
    ) -> Result<TokenResponse, OAuthError> {
        if TokenKind::of(presented.expose()) != TokenKind::Refresh {
            return Err(OAuthError::InvalidGrant(INVALID_REFRESH.into()));
        }
        let now = self.clock.now();
        // Minted before the transaction (randomness needs none), stored inside it.
        let next_refresh = MintedToken::generate(REFRESH_PREFIX, self.rng.as_ref());
        let next_opaque = (client.token_format == TokenFormat::Opaque)
            .then(|| MintedToken::generate(OPAQUE_ACCESS_PREFIX, self.rng.as_ref()));
        let decide = {
            let client_id = client.id.clone();
            let client = client.clone();
            let requested = requested.cloned();
            let cnf = cnf.cloned();
            let refresh_digest = next_refresh.digest;
            let opaque = next_opaque.as_ref().map(|m| (m.digest, self.rng.token(16)));
            let access_ttl = client.access_token_ttl.unwrap_or(self.config.access_token_ttl);
            let refresh_ttl = self.refresh_ttl(&client);
            let audience = client
                .audience
                .clone()
                .unwrap_or_else(|| self.config.default_audience.clone());
            let writes = move |login: &LoginState| -> Result<RotationWrites, OAuthError> {
                check_login_user(login)?;
                let scope = refreshed_scope(login, &client, requested.as_ref())?;
                Ok(RotationWrites {
                    refresh: NewRefreshToken {
                        digest: refresh_digest,
                        family_id: login.family_id.clone(),
                        client_id: client.id.clone(),
                        issued_at: now,
                        expires_at: now + refresh_ttl,
                    },
                    opaque: opaque.as_ref().map(|(digest, jti)| NewOpaqueToken {
                        digest: *digest,
                        jti: jti.clone(),
                        family_id: Some(login.family_id.clone()),
                        client_id: client.id.clone(),
                        subject: subject_of(login, &client),
                        username: login.user.as_ref().map(|u| u.username.clone()),
                        scope: scope.clone(),
                        audience: audience.clone(),
                        issued_at: now,
                        expires_at: now + access_ttl,
                        cnf: cnf.clone(),
                    }),
                    access_scope: scope,
                })
            };
            Box::new(move |found: Option<&RefreshState>| {
                let invalid = || RotationStep::Refuse(OAuthError::InvalidGrant(INVALID_REFRESH.into()));
                let Some(token) = found else { return invalid() };
                match token.verdict(&client_id, now) {
                    RefreshVerdict::Rotate => match writes(&token.login) {
                        Ok(writes) => RotationStep::Rotate(Box::new(writes)),
                        Err(refusal) => RotationStep::Refuse(refusal),
                    },
                    RefreshVerdict::Reused => RotationStep::RevokeLogin,
                    RefreshVerdict::Invalid => invalid(),
                }
            })
        };
        let rotation = self
            .stores
            .tokens
            .rotate_refresh_token(&TokenDigest::of(presented.expose()), now, decide)
            .await?;
        let (login, writes) = match (rotation.presented, rotation.step) {
            (Some(token), RotationStep::Rotate(writes)) => (token.login, *writes),
            (None, RotationStep::Rotate(_)) => {
                return Err(
                    StoreError::Other("the store rotated a refresh token it did not find".into()).into(),
                )
            }
            (_, RotationStep::RevokeLogin) => return Err(OAuthError::InvalidGrant(REUSED_REFRESH.into())),
            (_, RotationStep::Refuse(refusal)) => return Err(refusal),
        };
        let access = match next_opaque {
            Some(minted) => PreparedAccess {
                token: minted.value,
                opaque_row: None,
                expires_in: client.access_token_ttl.unwrap_or(self.config.access_token_ttl),
            },
            None => self.access_after_rotation(client, &login, &writes.access_scope, now, cnf)?,
        };
        Ok(self.response(
            access,
            &writes.access_scope,
            Some(next_refresh.value),
            GrantType::RefreshToken,
        ))
    }

    fn access_after_rotation(
        &self,
        client: &Client,
        login: &LoginState,
        scope: &Scope,
        now: UnixTime,
        cnf: Option<&Confirmation>,
    ) -> Result<PreparedAccess, OAuthError> {
        let sub = subject_of(login, client);
        let subject = Subject {
            sub: &sub,
            username: login.user.as_ref().map(|u| u.username.as_str()),
            sid: Some(&login.family_id),
        };
        self.prepare_access(client, &subject, scope, now, cnf)
    }
}

/// `sub` of a login's tokens: the user, or the client for a client_credentials login.
fn subject_of(login: &LoginState, client: &Client) -> String {
    login
        .user
        .as_ref()
        .map_or_else(|| client.id.as_str().to_owned(), |u| u.user_id.clone())
}
