//! POST /oauth/revoke (RFC 7009) and POST /oauth/introspect (RFC 7662).

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use gatehouse_core::{Client, ClientAuth, OAuthError};
use std::sync::Arc;
use tokio::time::Instant;

use super::client_auth::{self, Refusal};
use super::error::ApiError;
use super::params::OAuthRequest;
use super::AppState;

/// The client authentication and the `token` of a revocation or introspection request.
/// `token_type_hint` is accepted and not needed: a token's form says what it is.
fn token_request(request: &mut OAuthRequest) -> Result<(ClientAuth, String), ApiError> {
    let mut params = std::mem::take(&mut request.params);
    let auth = ClientAuth::from_request(&mut params, request.authorization())?;
    let token = params
        .take("token")
        .ok_or(OAuthError::invalid_request("The token parameter is missing."))?;
    Ok((auth, token))
}

/// Adds the headers RFC 7009 and RFC 7662 answers carry.
fn no_store(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// Revokes a token.
#[utoipa::path(post, path = "/oauth/revoke", tag = "oauth",
    request_body(content(
        (super::openapi::TokenParamDoc = "application/x-www-form-urlencoded"),
        (super::openapi::TokenParamDoc = "application/json"),
    ), description = "RFC 7009. Client authentication optional: without it, the presented token itself is revoked."),
    responses(
        (status = 200, description = "Revoked, or unknown (RFC 7009 §2.2)"),
        (status = 400, description = "invalid_request, or unauthorized_client for another client's token", body = super::openapi::ErrorDoc),
        (status = 401, description = "invalid_client", body = super::openapi::ErrorDoc),
        (status = 408, description = "The request took longer than request_timeout", body = super::openapi::ErrorDoc),
        (status = 413, description = "Body over 16 KiB", body = super::openapi::ErrorDoc),
        (status = 429, description = "Rate limited per address or per client: wait Retry-After seconds", body = super::openapi::ErrorDoc),
        (status = 500, description = "server_error", body = super::openapi::ErrorDoc),
        (status = 503, description = "temporarily_unavailable: the database cannot be reached, or every slot for a password hash is busy (Retry-After)", body = super::openapi::ErrorDoc),
    ))]
pub async fn revoke(State(state): State<AppState>, mut request: OAuthRequest) -> Result<Response, ApiError> {
    let started = Instant::now();
    admit("revoke", &state, &request)?;
    let (auth, token) = token_request(&mut request)?;
    let client = match auth {
        ClientAuth::None => None,
        auth => Some(authenticate("revoke", &state, &request, &auth, started).await?),
    };
    let client_id = client.as_ref().map(|c| c.id.to_string()).unwrap_or_default();
    let revoked = state.tokens.revoke(client.as_ref(), &token).await?;
    tracing::info!(target: "gatehouse::audit", event = "token_revoked", client_id = %client_id, found = revoked, address = %super::token::Peer(request.peer));
    Ok(no_store(StatusCode::OK.into_response()))
}

/// Tells a client what a token is.
#[utoipa::path(post, path = "/oauth/introspect", tag = "oauth",
    request_body(content(
        (super::openapi::TokenParamDoc = "application/x-www-form-urlencoded"),
        (super::openapi::TokenParamDoc = "application/json"),
    ), description = "RFC 7662. Client authentication required; a client sees its own tokens, a --can-introspect client any."),
    responses(
        (status = 200, description = "RFC 7662 §2.2 answer; inactive is exactly {\"active\": false}", body = Object),
        (status = 400, description = "invalid_request", body = super::openapi::ErrorDoc),
        (status = 401, description = "invalid_client", body = super::openapi::ErrorDoc),
        (status = 408, description = "The request took longer than request_timeout", body = super::openapi::ErrorDoc),
        (status = 413, description = "Body over 16 KiB", body = super::openapi::ErrorDoc),
        (status = 429, description = "Rate limited per address or per client: wait Retry-After seconds", body = super::openapi::ErrorDoc),
        (status = 500, description = "server_error", body = super::openapi::ErrorDoc),
        (status = 503, description = "temporarily_unavailable: the database cannot be reached, or every slot for a password hash is busy (Retry-After)", body = super::openapi::ErrorDoc),
    ))]
pub async fn introspect(
    State(state): State<AppState>,
    mut request: OAuthRequest,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    admit("introspect", &state, &request)?;
    let (auth, token) = token_request(&mut request)?;
    let client = authenticate("introspect", &state, &request, &auth, started).await?;
    let answer = state.tokens.introspect(&client, &token).await?;
    Ok(no_store(Json(answer).into_response()))
}

/// Counts the request against its source address, as the token endpoint does.
fn admit(endpoint: &'static str, state: &AppState, request: &OAuthRequest) -> Result<(), ApiError> {
    client_auth::admit_address(state, request.peer).map_err(|refusal| refused(endpoint, request, refusal))
}

/// Authenticates the client with the token endpoint's rules ([`client_auth`]).
async fn authenticate(
    endpoint: &'static str,
    state: &AppState,
    request: &OAuthRequest,
    auth: &ClientAuth,
    started: Instant,
) -> Result<Arc<Client>, ApiError> {
    client_auth::authenticate(state, auth, started)
        .await
        .map_err(|refusal| refused(endpoint, request, refusal))
}

fn refused(endpoint: &'static str, request: &OAuthRequest, refusal: Refusal) -> ApiError {
    let error = match &refusal {
        Refusal::RateLimited(_) => "rate_limited",
        Refusal::OAuth(err) => err.code(),
    };
    tracing::info!(target: "gatehouse::audit", event = "request_refused", endpoint, error, address = %super::token::Peer(request.peer));
    match refusal {
        Refusal::RateLimited(wait) => ApiError::TooManyRequests(wait),
        Refusal::OAuth(err) => request.error(err),
    }
}
