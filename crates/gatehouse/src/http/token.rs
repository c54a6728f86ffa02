//! POST /oauth/token (RFC 6749 §3.2): parse, call the core, map the result.

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::fmt;
use std::net::IpAddr;
use tokio::time::Instant;

use gatehouse_core::{GrantType, OAuthError, TokenRequest, TokenResponse};

use super::client_auth::{self, Refusal};
use super::error::ApiError;
use super::params::OAuthRequest;
use super::AppState;

/// Issues an access token.
#[utoipa::path(
    post,
    path = "/oauth/token",
    tag = "oauth",
    request_body(
        content(
            (super::openapi::TokenRequestDoc = "application/x-www-form-urlencoded"),
            (super::openapi::TokenRequestDoc = "application/json"),
        ),
        description = "RFC 6749 §4.4 client_credentials, §4.3 password, §6 refresh_token. Client authentication by one method: HTTP Basic, client_id/client_secret in the body, a client_assertion (private_key_jwt, RFC 7523), or client_id alone over a connection with a TLS client certificate (tls_client_auth, self_signed_tls_client_auth, RFC 8705)."
    ),
    responses(
        (status = 200, description = "Token issued", body = super::openapi::TokenResponseDoc),
        (status = 400, description = "invalid_request, invalid_grant, unauthorized_client, unsupported_grant_type or invalid_scope", body = super::openapi::ErrorDoc),
        (status = 401, description = "invalid_client", body = super::openapi::ErrorDoc),
        (status = 408, description = "The request took longer than request_timeout", body = super::openapi::ErrorDoc),
        (status = 413, description = "Body over 16 KiB", body = super::openapi::ErrorDoc),
        (status = 429, description = "Rate limited, or too many failed logins: wait Retry-After seconds", body = super::openapi::ErrorDoc),
        (status = 500, description = "server_error", body = super::openapi::ErrorDoc),
        (status = 503, description = "temporarily_unavailable: the database cannot be reached, or every slot for a password hash is busy (Retry-After)", body = super::openapi::ErrorDoc),
    ),
    security(("client_secret_basic" = []), ()),
)]
pub async fn token(
    State(state): State<AppState>,
    mut request: OAuthRequest,
) -> Result<TokenIssued, ApiError> {
    let started = Instant::now();
    let address = Peer(request.peer);
    let refused = |client_id: &str, grant: &str, error: &str| {
        metrics::counter!("gatehouse_token_errors_total", "error" => error.to_owned()).increment(1);
        tracing::info!(target: "gatehouse::audit", event = "token_refused", client_id = %client_id, grant, error, address = %address);
    };
    if let Err(Refusal::RateLimited(wait)) = client_auth::admit_address(&state, request.peer) {
        refused("", "", "rate_limited");
        return Err(ApiError::TooManyRequests(wait));
    }
    let params = std::mem::take(&mut request.params);
    let mut parsed = TokenRequest::parse(params, request.authorization(), &request.token_options())
        .map_err(|err| request.error(err))?;
    // What the issued token may be bound to (RFC 8705 §3).
    parsed.certificate = request.certificate.clone();
    let client_id = parsed.client_auth.client_id().unwrap_or_default().to_owned();
    let grant = parsed
        .grant
        .as_ref()
        .map_or("unsupported", |g| g.grant_type().as_str());
    // A password attempt takes its place in the brake before anything is checked.
    let login = match parsed.username() {
        Some(username) => match state.protection.begin_login(username, request.peer).await {
            Ok(attempt) => Some(attempt),
            Err(wait) => {
                refused(&client_id, grant, "login_locked");
                return Err(ApiError::TooManyRequests(wait));
            }
        },
        None => None,
    };
    let context = request.auth_context(&state.tokens.config().issuer, parsed.client_auth.is_assertion());
    let client = match client_auth::authenticate(&state, &parsed.client_auth, &context, started).await {
        Ok(client) => client,
        Err(refusal) => {
            if let Some(attempt) = login {
                attempt.not_checked();
            }
            return Err(match refusal {
                Refusal::RateLimited(wait) => {
                    refused(&client_id, grant, "rate_limited");
                    ApiError::TooManyRequests(wait)
                }
                Refusal::OAuth(err) => {
                    refused(&client_id, grant, err.code());
                    request.error(err)
                }
            });
        }
    };
    match state.tokens.exchange_as(&client, parsed).await {
        Ok(response) => {
            if let Some(attempt) = login {
                attempt.succeeded();
            }
            let grant = response.grant_type;
            metrics::counter!("gatehouse_tokens_issued_total", "grant" => grant.as_str()).increment(1);
            let event = if grant == GrantType::RefreshToken {
                "token_refreshed"
            } else {
                "token_issued"
            };
            tracing::info!(target: "gatehouse::audit", event, client_id = %client_id, grant = grant.as_str(), scope = %response.scope, address = %address);
            Ok(TokenIssued(response))
        }
        Err(err) => {
            if let Some(attempt) = login {
                // The core reports credentials it checked and refused as LoginFailed;
                // any other error means they were not checked (or were right, and
                // something else refused the request).
                if matches!(err, OAuthError::LoginFailed) {
                    attempt.failed();
                } else {
                    attempt.not_checked();
                }
            }
            refused(&client_id, grant, err.code());
            Err(request.error(err))
        }
    }
}

/// The source address of a request, for the audit log (empty when unknown).
pub struct Peer(pub Option<IpAddr>);

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(address) => write!(f, "{address}"),
            None => Ok(()),
        }
    }
}

/// A 200 token response with the headers RFC 6749 §5.1 requires.
pub struct TokenIssued(pub TokenResponse);

impl IntoResponse for TokenIssued {
    fn into_response(self) -> Response {
        // Into a buffer the tokens fit from the start: axum's `Json` starts at 128
        // bytes and grows through a JWT several times.
        let tokens = self.0.access_token.len() + self.0.refresh_token.as_ref().map_or(0, String::len);
        let mut body = Vec::with_capacity(tokens + 192);
        if serde_json::to_writer(&mut body, &self.0).is_err() {
            // Strings and integers cannot fail to serialize; were it to happen, axum's
            // `Json` answers 500.
            return Json(self.0).into_response();
        }
        (
            [
                (header::CONTENT_TYPE, HeaderValue::from_static("application/json")),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
                (header::PRAGMA, HeaderValue::from_static("no-cache")),
            ],
            body,
        )
            .into_response()
    }
}
