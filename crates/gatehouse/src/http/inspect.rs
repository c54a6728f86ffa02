//! POST /oauth/revoke (RFC 7009) and POST /oauth/introspect (RFC 7662): parse, call
//! the core with the client authenticated in [`client_auth`]'s order, map the result.

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use gatehouse_core::{AuthContext, Client, ClientAuth, IntrospectionRequest, RevocationRequest};
use std::sync::Arc;
use tokio::time::Instant;

use super::client_auth::{self, Refusal};
use super::error::ApiError;
use super::params::OAuthRequest;
use super::AppState;

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
    let params = std::mem::take(&mut request.params);
    let parsed = RevocationRequest::parse(params, request.authorization())?;
    let assertion = parsed.client_auth.as_ref().is_some_and(ClientAuth::is_assertion);
    let context = request.auth_context(&state.tokens.config().issuer, assertion);
    // A client_id alone, without the certificate that would authenticate it, is a
    // holder giving up its token (RFC 7009 §2.1), as it was before certificates.
    let client = match parsed.authentication(&context) {
        Some(auth) => Some(authenticate("revoke", &state, &request, auth, &context, started).await?),
        None => None,
    };
    let client = client.as_deref();
    let revoked = state
        .tokens
        .revoke_as(client, parsed)
        .await
        .map_err(|err| refused("revoke", &request, Refusal::OAuth(err)))?;
    let client_id = client.map_or("", |c| c.id.as_str());
    tracing::info!(target: "gatehouse::audit", event = "token_revoked", client_id, found = revoked, address = %super::token::Peer(request.peer));
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
    let params = std::mem::take(&mut request.params);
    let parsed = IntrospectionRequest::parse(params, request.authorization())?;
    let context = request.auth_context(&state.tokens.config().issuer, parsed.client_auth.is_assertion());
    let client = authenticate(
        "introspect",
        &state,
        &request,
        &parsed.client_auth,
        &context,
        started,
    )
    .await?;
    let answer = state
        .tokens
        .introspect_as(&client, parsed)
        .await
        .map_err(|err| refused("introspect", &request, Refusal::OAuth(err)))?;
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
    context: &AuthContext,
    started: Instant,
) -> Result<Arc<Client>, ApiError> {
    client_auth::authenticate(state, auth, context, started)
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
