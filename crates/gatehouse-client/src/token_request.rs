//! Requests to the token endpoint (RFC 6749 §3.2) and the revocation
//! endpoint (RFC 7009 §2.1), with the client's authentication and retries.

use http::header::ACCEPT;
use http::StatusCode;
use secrecy::{ExposeSecret, SecretString};

use crate::client::OAuthClient;
use crate::error::Error;
use crate::params::TokenParams;
use crate::response::{read_body, refusal, token_response, IssuedTokens};
use crate::retry::{retry_after, send_with_retries};

/// The grant a token request presents.
pub(crate) enum Grant<'a> {
    /// RFC 6749 §4.4.
    ClientCredentials,
    /// RFC 6749 §4.3.
    Password {
        username: &'a str,
        password: &'a SecretString,
    },
    /// RFC 6749 §6.
    RefreshToken(&'a SecretString),
}

impl Grant<'_> {
    fn grant_type(&self) -> &'static str {
        match self {
            Grant::ClientCredentials => "client_credentials",
            Grant::Password { .. } => "password",
            Grant::RefreshToken(_) => "refresh_token",
        }
    }
}

impl OAuthClient {
    /// Sends one token request (retrying transient failures) and reads the
    /// answer. `scope` and `audience` of `params` go along, except on a
    /// refresh: RFC 6749 §6 keeps the login's scope when none is given.
    pub(crate) async fn request_token(
        &self,
        grant: &Grant<'_>,
        params: &TokenParams,
    ) -> Result<IssuedTokens, Error> {
        let inner = &self.inner;
        let endpoint = &self.endpoints().await?.token;
        let mut form = vec![("grant_type", grant.grant_type())];
        match grant {
            Grant::ClientCredentials => {}
            Grant::Password { username, password } => {
                form.push(("username", username));
                form.push(("password", password.expose_secret()));
            }
            Grant::RefreshToken(refresh_token) => form.push(("refresh_token", refresh_token.expose_secret())),
        }
        if !matches!(grant, Grant::RefreshToken(_)) {
            if let Some(scope) = params.scope_str() {
                form.push(("scope", scope));
            }
            if let Some(audience) = params.audience_str() {
                // Not an RFC 6749 parameter: servers that do not know it
                // ignore it (RFC 6749 §3.2).
                form.push(("audience", audience));
            }
        }
        tracing::debug!(
            %endpoint,
            client_id = inner.credentials.client_id(),
            auth_method = inner.credentials.method_name(),
            grant = grant.grant_type(),
            scope = params.scope_str(),
            audience = params.audience_str(),
            "requesting a token"
        );
        let (response, sent_at) = send_with_retries(&inner.retry, "token request", || {
            let request = inner
                .http
                .post(endpoint.clone())
                .header(ACCEPT, "application/json");
            inner.credentials.authenticate(request, endpoint, &form)
        })
        .await?;
        let issued = token_response(response, sent_at, &inner.renewal, params.scope_str()).await;
        match &issued {
            Ok(tokens) => tracing::debug!(
                client_id = inner.credentials.client_id(),
                grant = grant.grant_type(),
                scope = tokens.access.scope(),
                "token issued"
            ),
            Err(error) => tracing::warn!(
                client_id = inner.credentials.client_id(),
                grant = grant.grant_type(),
                %error,
                "token request failed"
            ),
        }
        issued
    }

    /// Revokes `token` (RFC 7009 §2.1), hinting its type. `Ok(false)` when the
    /// server has no revocation endpoint to ask.
    pub(crate) async fn revoke(&self, token: &SecretString, token_type_hint: &str) -> Result<bool, Error> {
        let inner = &self.inner;
        let Some(endpoint) = &self.endpoints().await?.revocation else {
            return Ok(false);
        };
        let form = [
            ("token", token.expose_secret()),
            ("token_type_hint", token_type_hint),
        ];
        let (response, _) = send_with_retries(&inner.retry, "revocation request", || {
            inner
                .credentials
                .authenticate(inner.http.post(endpoint.clone()), endpoint, &form)
        })
        .await?;
        // RFC 7009 §2.2: 200 whether or not the token was known.
        let status = response.status();
        if status == StatusCode::OK {
            return Ok(true);
        }
        let asked_to_wait = retry_after(response.headers());
        let body = read_body(response).await?;
        Err(refusal(status, asked_to_wait, &body))
    }
}
