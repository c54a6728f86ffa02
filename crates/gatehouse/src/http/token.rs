//! POST /oauth/token (RFC 6749 §3.2): parse, call the core, map the result.

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use gatehouse_core::{TokenRequest, TokenResponse};

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
        description = "RFC 6749 §4.4 client_credentials, §4.3 password, §6 refresh_token. Client authentication by HTTP Basic or client_id/client_secret in the body, not both."
    ),
    responses(
        (status = 200, description = "Token issued", body = super::openapi::TokenResponseDoc),
        (status = 400, description = "invalid_request, invalid_grant, unauthorized_client, unsupported_grant_type or invalid_scope", body = super::openapi::ErrorDoc),
        (status = 401, description = "invalid_client", body = super::openapi::ErrorDoc),
        (status = 413, description = "Body over 16 KiB", body = super::openapi::ErrorDoc),
        (status = 500, description = "server_error", body = super::openapi::ErrorDoc),
        (status = 503, description = "temporarily_unavailable: the database cannot be reached", body = super::openapi::ErrorDoc),
    ),
    security(("client_secret_basic" = []), ()),
)]
pub async fn token(
    State(state): State<AppState>,
    mut request: OAuthRequest,
) -> Result<TokenIssued, ApiError> {
    let params = std::mem::take(&mut request.params);
    let parsed = TokenRequest::parse(params, request.authorization(), &request.token_options())
        .map_err(|err| request.error(err))?;
    let client_id = parsed.client_auth.client_id().unwrap_or_default().to_owned();
    match state.tokens.exchange(parsed).await {
        Ok(response) => {
            metrics::counter!("gatehouse_tokens_issued_total", "grant" => response.grant_type.as_str())
                .increment(1);
            tracing::info!(target: "gatehouse::audit", event = "token_issued", client_id = %client_id, grant = response.grant_type.as_str(), scope = %response.scope);
            Ok(TokenIssued(response))
        }
        Err(err) => {
            metrics::counter!("gatehouse_token_errors_total", "error" => err.code()).increment(1);
            tracing::info!(target: "gatehouse::audit", event = "token_refused", client_id = %client_id, error = err.code());
            Err(request.error(err))
        }
    }
}

/// A 200 token response with the headers RFC 6749 §5.1 requires.
pub struct TokenIssued(pub TokenResponse);

impl IntoResponse for TokenIssued {
    fn into_response(self) -> Response {
        let mut response = Json(self.0).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        response
    }
}
