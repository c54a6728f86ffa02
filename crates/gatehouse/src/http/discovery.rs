//! Authorization server metadata (RFC 8414) and the JWKS (RFC 7517).

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use gatehouse_core::{GrantType, SigningAlg};
use serde_json::{json, Value};

use super::register::REGISTER_PATH;
use super::{AppState, INTROSPECT_PATH, JWKS_PATH, REVOKE_PATH, TOKEN_PATH};
use crate::config::RegistrationMode;

/// The metadata document for `issuer`, built once at start-up; it names the
/// registration endpoint (RFC 8414 §2, RFC 7591 §3) when `registration` is on.
pub fn metadata(issuer: &str, registration: RegistrationMode) -> Value {
    let auth_methods = ["client_secret_basic", "client_secret_post"];
    let mut metadata = json!({
        "issuer": issuer,
        "token_endpoint": format!("{issuer}{TOKEN_PATH}"),
        "jwks_uri": format!("{issuer}{JWKS_PATH}"),
        "revocation_endpoint": format!("{issuer}{REVOKE_PATH}"),
        "introspection_endpoint": format!("{issuer}{INTROSPECT_PATH}"),
        "grant_types_supported": GrantType::ALL.iter().map(|g| g.as_str()).collect::<Vec<_>>(),
        "token_endpoint_auth_methods_supported": auth_methods,
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "introspection_endpoint_auth_methods_supported": auth_methods,
        "response_types_supported": [],
        "access_token_signing_alg_values_supported": SigningAlg::ALL.iter().map(|a| a.as_str()).collect::<Vec<_>>(),
        "service_documentation": format!("{issuer}/openapi.json"),
    });
    if registration != RegistrationMode::Off {
        metadata["registration_endpoint"] = json!(format!("{issuer}{REGISTER_PATH}"));
    }
    metadata
}

/// RFC 8414 §3: the authorization server's metadata.
#[utoipa::path(get, path = "/.well-known/oauth-authorization-server", tag = "discovery",
    responses((status = 200, description = "RFC 8414 metadata", body = Object)))]
pub async fn oauth_metadata(State(state): State<AppState>) -> Response {
    Json(state.metadata.clone()).into_response()
}

/// The same metadata where OpenID Connect clients look for it.
#[utoipa::path(get, path = "/.well-known/openid-configuration", tag = "discovery",
    responses((status = 200, description = "The same metadata", body = Object)))]
pub async fn openid_configuration(state: State<AppState>) -> Response {
    oauth_metadata(state).await
}

/// The public signing keys: the current one and those whose tokens may still live.
#[utoipa::path(get, path = "/oauth/jwks", tag = "discovery",
    responses((status = 200, description = "JWK Set (RFC 7517 §5)", body = Object)))]
pub async fn jwks(State(state): State<AppState>) -> Response {
    let body = match state.keys.get() {
        Some(set) => set.jwks(state.clock.now()),
        None => json!({"keys": []}),
    };
    let mut response = Json(body).into_response();
    // Short, so that resource servers see a rotation soon; they re-fetch on an
    // unknown kid anyway.
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=60"),
    );
    response
}
