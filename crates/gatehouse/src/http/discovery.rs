//! Authorization server metadata (RFC 8414) and the JWKS (RFC 7517).

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use gatehouse_core::client_jwks::ASSERTION_ALGORITHMS;
use gatehouse_core::{AuthMethod, GrantType, SigningAlg};
use serde_json::{json, Value};

use super::register::REGISTER_PATH;
use super::{AppState, INTROSPECT_PATH, JWKS_PATH, REVOKE_PATH, TOKEN_PATH};
use crate::config::RegistrationMode;

/// The metadata document for `issuer`, built once at start-up; it names the
/// registration endpoint (RFC 8414 §2, RFC 7591 §3) when `registration` is on.
///
/// The client authentication methods are those a client can succeed with here: the
/// secret ones and `private_key_jwt` always, the mutual-TLS ones (RFC 8705 §2.3)
/// only when requests can come with a certificate (`certificates_visible`:
/// `tls_client_ca` or `tls_client_cert_header` is set), as are certificate-bound
/// access tokens (§3.3). The three endpoints that authenticate clients share them.
pub fn metadata(issuer: &str, registration: RegistrationMode, certificates_visible: bool) -> Value {
    let auth_methods: Vec<&str> = AuthMethod::ALL
        .into_iter()
        .filter(|method| certificates_visible || !method.uses_certificate())
        .map(AuthMethod::as_str)
        .collect();
    // RFC 7523 §2.2 assertions: serialized as their JOSE names.
    let assertion_algs = json!(ASSERTION_ALGORITHMS);
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
        "token_endpoint_auth_signing_alg_values_supported": assertion_algs,
        "revocation_endpoint_auth_signing_alg_values_supported": assertion_algs,
        "introspection_endpoint_auth_signing_alg_values_supported": assertion_algs,
        "response_types_supported": [],
        "access_token_signing_alg_values_supported": SigningAlg::ALL.iter().map(|a| a.as_str()).collect::<Vec<_>>(),
        "service_documentation": format!("{issuer}/openapi.json"),
    });
    if certificates_visible {
        metadata["tls_client_certificate_bound_access_tokens"] = json!(true);
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(value: &Value) -> Vec<&str> {
        value
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect()
    }

    #[test]
    fn auth_methods_follow_what_the_server_can_see() {
        let blind = metadata("https://a.example", RegistrationMode::Off, false);
        let seeing = metadata("https://a.example", RegistrationMode::Off, true);
        for endpoint in ["token", "revocation", "introspection"] {
            let methods = format!("{endpoint}_endpoint_auth_methods_supported");
            assert_eq!(
                strings(&blind[&methods]),
                ["client_secret_basic", "client_secret_post", "private_key_jwt"]
            );
            assert_eq!(
                strings(&seeing[&methods]),
                [
                    "client_secret_basic",
                    "client_secret_post",
                    "private_key_jwt",
                    "tls_client_auth",
                    "self_signed_tls_client_auth"
                ]
            );
            let algs = format!("{endpoint}_endpoint_auth_signing_alg_values_supported");
            assert_eq!(strings(&blind[&algs]), ["ES256", "EdDSA", "RS256", "PS256"]);
        }
        assert_eq!(seeing["tls_client_certificate_bound_access_tokens"], json!(true));
        assert!(blind.get("tls_client_certificate_bound_access_tokens").is_none());
    }
}
