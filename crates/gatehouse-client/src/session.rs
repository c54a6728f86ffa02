//! A user's session: a password login (RFC 6749 §4.3), then refresh tokens
//! (§6), rotated on every use.
//!
//! The refresh token is the session. It is stored before the access token of
//! the same response is handed out, so a caller never holds an access token
//! whose refresh token was lost. Only one refresh is in flight at a time (a
//! rotated refresh token presented twice makes the server revoke the whole
//! login, RFC 9700 §4.14.2). When the server refuses the refresh token
//! (`invalid_grant`), the session is over: it is not presented again, and
//! every later call answers [`SessionEnd::RefreshRefused`] without a request.
//! The password is used for the login request and dropped; it is never kept.
//!
//! Nothing of the session lives in the server's memory: a refresh after the
//! server restarted works (the refresh token is in its database), and
//! connection failures while it is down are retried like any others.

use std::fmt;
use std::sync::Arc;

use secrecy::SecretString;
use tokio::sync::Mutex;

use crate::cell::{Outcome, TokenCell};
use crate::client::OAuthClient;
use crate::error::{Error, ErrorCode, SessionEnd};
use crate::params::TokenParams;
use crate::token::AccessToken;
use crate::token_request::Grant;

/// A user's session; cheap to clone, every clone the same session.
///
/// ```no_run
/// # async fn example(client: gatehouse_client::OAuthClient) -> Result<(), gatehouse_client::Error> {
/// use gatehouse_client::{SecretString, TokenParams};
///
/// let session = client.session(TokenParams::new().scope("read"));
/// session.login("alice", SecretString::from("correct horse battery")).await?;
/// let token = session.token().await?; // refreshed as needed
/// session.logout().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Session {
    inner: Arc<SessionInner>,
}

struct SessionInner {
    client: OAuthClient,
    params: TokenParams,
    cell: Arc<TokenCell>,
    /// Held across every request that uses or replaces the refresh token, so
    /// that there is only ever one.
    login: Mutex<LoginState>,
}

enum LoginState {
    NotLoggedIn,
    Active { refresh_token: Option<SecretString> },
    Ended(SessionEnd),
}

impl Session {
    pub(crate) fn new(client: OAuthClient, params: TokenParams) -> Self {
        Session {
            inner: Arc::new(SessionInner {
                client,
                params,
                cell: TokenCell::new(),
                login: Mutex::new(LoginState::NotLoggedIn),
            }),
        }
    }

    /// Logs `username` in with the password grant, replacing any earlier
    /// login of this session. A failed login leaves the session as it was.
    pub async fn login(&self, username: &str, password: SecretString) -> Result<AccessToken, Error> {
        let inner = &self.inner;
        let mut login = inner.login.lock().await;
        let grant = Grant::Password {
            username,
            password: &password,
        };
        let issued = inner.client.request_token(&grant, &inner.params).await?;
        drop(password);
        *login = LoginState::Active {
            refresh_token: issued.refresh,
        };
        inner.cell.reset(Some(issued.access.clone()));
        Ok(issued.access)
    }

    /// Resumes a session from a refresh token kept from an earlier one
    /// ([`Session::refresh_token`]); the next [`Session::token`] refreshes.
    pub async fn resume(&self, refresh_token: SecretString) {
        let mut login = self.inner.login.lock().await;
        *login = LoginState::Active {
            refresh_token: Some(refresh_token),
        };
        self.inner.cell.reset(None);
    }

    /// The current refresh token, to keep the session across restarts of this
    /// program ([`Session::resume`]). Waits for a refresh in flight, so what
    /// it returns is never already rotated out.
    pub async fn refresh_token(&self) -> Option<SecretString> {
        match &*self.inner.login.lock().await {
            LoginState::Active { refresh_token } => refresh_token.clone(),
            _ => None,
        }
    }

    /// A valid access token, refreshed as needed.
    pub async fn token(&self) -> Result<AccessToken, Error> {
        self.inner.cell.get(|| refresh(Arc::clone(&self.inner))).await
    }

    /// A replacement for `rejected`, an access token of this session that the
    /// API refused (401): refreshed if it is still the current one, else the
    /// token that already replaced it.
    pub async fn renew_rejected(&self, rejected: &AccessToken) -> Result<AccessToken, Error> {
        let inner = &self.inner;
        inner
            .cell
            .replace_rejected(rejected, || refresh(Arc::clone(inner)))
            .await
    }

    /// Ends the session: forgets its tokens and revokes the refresh token
    /// (RFC 7009), which at gatehouse revokes the login's access tokens too.
    /// Without a revocation endpoint, only forgets. An error means the
    /// revocation failed; the tokens are forgotten all the same.
    pub async fn logout(&self) -> Result<(), Error> {
        let inner = &self.inner;
        let mut login = inner.login.lock().await;
        let previous = std::mem::replace(&mut *login, LoginState::Ended(SessionEnd::LoggedOut));
        inner.cell.reset(None);
        if let LoginState::Active {
            refresh_token: Some(refresh_token),
        } = previous
        {
            inner.client.revoke(&refresh_token, "refresh_token").await?;
        }
        Ok(())
    }
}

/// One refresh: presents the refresh token and stores its successor before
/// the new access token is handed out.
async fn refresh(inner: Arc<SessionInner>) -> Outcome {
    let mut login = inner.login.lock().await;
    let refresh_token = match &*login {
        LoginState::NotLoggedIn => return Err(Error::NotLoggedIn),
        LoginState::Ended(reason) => return Err(Error::SessionEnded(reason.clone())),
        LoginState::Active { refresh_token: None } => {
            return Err(Error::SessionEnded(SessionEnd::NoRefreshToken));
        }
        LoginState::Active {
            refresh_token: Some(refresh_token),
        } => refresh_token.clone(),
    };
    match inner
        .client
        .request_token(&Grant::RefreshToken(&refresh_token), &inner.params)
        .await
    {
        Ok(issued) => {
            // RFC 6749 §6: the server may issue a new refresh token, and then
            // the old one is no longer to be used; without a new one, the
            // old one stays valid.
            if let Some(rotated) = issued.refresh {
                *login = LoginState::Active {
                    refresh_token: Some(rotated),
                };
            }
            Ok(issued.access)
        }
        Err(Error::OAuth(refused)) if refused.error() == &ErrorCode::InvalidGrant => {
            let end = SessionEnd::RefreshRefused(refused);
            *login = LoginState::Ended(end.clone());
            Err(Error::SessionEnded(end))
        }
        // Anything else (server down, client misconfigured) keeps the
        // refresh token: it was not refused. Had the server consumed it and
        // only its answer been lost, the next refresh learns so from an
        // `invalid_grant`.
        Err(error) => Err(error),
    }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("client", &self.inner.client)
            .field("params", &self.inner.params)
            .finish_non_exhaustive()
    }
}
