//! The OpenAPI 3 description, generated from the handlers' annotations.

use axum::response::{IntoResponse, Response};
use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

/// The grant types of the token endpoint.
#[derive(ToSchema)]
#[allow(dead_code, non_camel_case_types)]
pub enum GrantTypeDoc {
    /// RFC 6749 §4.4.
    client_credentials,
    /// RFC 6749 §4.3.
    password,
    /// RFC 6749 §6.
    refresh_token,
}

/// Parameters of a token request (form fields or JSON members, all strings). An
/// empty value counts as omitted (RFC 6749 §3.1): a required one may not be empty.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct TokenRequestDoc {
    /// `client_credentials` (§4.4), `password` (§4.3) or `refresh_token` (§6).
    grant_type: GrantTypeDoc,
    /// For `password`.
    username: Option<String>,
    /// For `password`.
    password: Option<String>,
    /// For `refresh_token`.
    refresh_token: Option<String>,
    /// Space-separated scopes; absent means all the client may have.
    scope: Option<String>,
    /// For `client_secret_post`.
    client_id: Option<String>,
    /// For `client_secret_post`.
    client_secret: Option<String>,
}

/// Parameters of a revocation or introspection request.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct TokenParamDoc {
    /// The token.
    #[schema(min_length = 1)]
    token: String,
    /// `access_token` or `refresh_token`; a hint only.
    token_type_hint: Option<String>,
    /// For `client_secret_post`.
    client_id: Option<String>,
    /// For `client_secret_post`.
    client_secret: Option<String>,
}

/// A token response (RFC 6749 §5.1).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct TokenResponseDoc {
    /// An RFC 9068 JWT.
    access_token: String,
    /// `Bearer`.
    token_type: String,
    /// Seconds until expiry.
    expires_in: i64,
    /// The granted scope.
    scope: String,
    /// Present for the refresh-capable grants.
    refresh_token: Option<String>,
}

/// An error (RFC 6749 §5.2).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ErrorDoc {
    /// The RFC error code.
    error: String,
    /// A sentence for people.
    error_description: String,
}

struct ClientAuthSchemes;

impl Modify for ClientAuthSchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "client_secret_basic",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Basic).build()),
        );
    }
}

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(title = "gatehouse", description = "OAuth 2.0 authorization server for APIs"),
    paths(
        super::token::token,
        super::inspect::revoke,
        super::inspect::introspect,
        super::discovery::jwks,
        super::discovery::oauth_metadata,
        super::discovery::openid_configuration,
        super::ops::healthz,
        super::ops::readyz,
        super::ops::metrics,
        openapi_json,
    ),
    components(schemas(GrantTypeDoc, TokenRequestDoc, TokenParamDoc, TokenResponseDoc, ErrorDoc)),
    modifiers(&ClientAuthSchemes),
)]
pub struct ApiDoc;

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "OpenAPI 3 description", body = Object)))]
pub async fn openapi_json() -> Response {
    Json(ApiDoc::openapi()).into_response()
}
