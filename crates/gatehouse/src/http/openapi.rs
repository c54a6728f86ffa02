//! The OpenAPI 3 description, generated from the handlers' annotations.

use std::sync::Arc;

use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use utoipa::openapi::path::{ParameterBuilder, ParameterIn, PathItem};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Required, Schema};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::config::{Endpoint, Route};

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
    /// For `client_secret_post`, and alone for `tls_client_auth` and
    /// `self_signed_tls_client_auth` (the TLS client certificate authenticates); with
    /// `client_assertion`, if given, the assertion's `sub`.
    client_id: Option<String>,
    /// For `client_secret_post`.
    client_secret: Option<String>,
    /// For `private_key_jwt`: `urn:ietf:params:oauth:client-assertion-type:jwt-bearer`.
    client_assertion_type: Option<String>,
    /// For `private_key_jwt` (RFC 7523 §2.2): a JWT signed with one of the client's
    /// keys (ES256, EdDSA, RS256 or PS256), `iss` and `sub` its client id, `aud` the
    /// issuer or this endpoint's URL, `exp` at most an hour ahead, a `jti` used once.
    client_assertion: Option<String>,
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
    /// For `client_secret_post`, and alone for the mutual-TLS methods.
    client_id: Option<String>,
    /// For `client_secret_post`.
    client_secret: Option<String>,
    /// For `private_key_jwt`: `urn:ietf:params:oauth:client-assertion-type:jwt-bearer`.
    client_assertion_type: Option<String>,
    /// For `private_key_jwt`: as at the token endpoint.
    client_assertion: Option<String>,
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
    /// The granted scope; left out when it is empty (RFC 6749 §5.1 makes it optional
    /// when it is what was asked for).
    scope: Option<String>,
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

/// The description of a server with `routes`: the standard endpoints, and each route
/// as a copy of its endpoint's operation, with its differences said and, where it
/// serves `GET`, the parameters in the query string.
pub fn document(routes: &[Route]) -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.merge(AdminApiDoc::openapi());
    for (index, route) in routes.iter().enumerate() {
        let (standard, params) = match route.endpoint {
            Endpoint::Token => (super::TOKEN_PATH, TokenRequestDoc::name()),
            Endpoint::Revoke => (super::REVOKE_PATH, TokenParamDoc::name()),
            Endpoint::Introspect => (super::INTROSPECT_PATH, TokenParamDoc::name()),
        };
        let Some(post) = doc.paths.paths.get(standard).and_then(|item| item.post.clone()) else {
            continue;
        };
        let mut operation = post;
        operation.operation_id = Some(format!("route{}_{}", index + 1, route.endpoint.as_str()));
        operation.summary = Some(format!(
            "{standard}, served at {} for an existing API's clients",
            route.path
        ));
        operation.description = Some(route_differences(route, standard));
        let mut item = PathItem::default();
        if route.get {
            let mut get = operation.clone();
            get.operation_id = Some(format!("route{}_{}_get", index + 1, route.endpoint.as_str()));
            get.request_body = None;
            get.parameters = Some(query_parameters(&doc, &params, route));
            item.get = Some(get);
        }
        if route.post {
            item.post = Some(operation);
        }
        doc.paths.paths.insert(route.path.clone(), item);
    }
    doc
}

/// What a route does unlike its standard endpoint, in a sentence or two.
fn route_differences(route: &Route, standard: &str) -> String {
    let mut text = format!("As `POST {standard}`");
    if route.get {
        text.push_str(
            "; `GET` takes the parameters from the query string (logged as a warning, without their values)",
        );
    }
    if let Some(grant) = route.token.default_grant_type {
        text.push_str(&format!(
            "; a request without `grant_type` is a `{}` request",
            grant.as_str()
        ));
    }
    if route.token.refresh_on_client_credentials {
        text.push_str(
            "; `client_credentials` also issues a refresh token to clients with the `refresh_token` grant",
        );
    }
    if let Some(status) = route.unknown_client_status {
        text.push_str(&format!("; an unknown client is answered with status {status}"));
    }
    text.push('.');
    text
}

/// The members of the `schema` component as query parameters.
fn query_parameters(
    doc: &utoipa::openapi::OpenApi,
    schema: &str,
    route: &Route,
) -> Vec<utoipa::openapi::path::Parameter> {
    let Some(utoipa::openapi::RefOr::T(Schema::Object(object))) =
        doc.components.as_ref().and_then(|c| c.schemas.get(schema))
    else {
        return Vec::new();
    };
    object
        .properties
        .iter()
        .map(|(name, property)| {
            let required = object.required.contains(name)
                && !(name == "grant_type" && route.token.default_grant_type.is_some());
            ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Query)
                .required(if required { Required::True } else { Required::False })
                .schema(Some(property.clone()))
                .build()
        })
        .collect()
}

/// The admin API's token: one this server issues (`client_credentials` to a client
/// registered with the scope), checked at each request, revocation honoured at once.
struct AdminSecurity;

impl Modify for AdminSecurity {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{ClientCredentials, Flow, OAuth2, Scopes};
        let scopes = Scopes::from_iter([
            (
                super::admin::ADMIN_SCOPE,
                "Read and change clients, users and keys",
            ),
            (super::admin::ADMIN_READ_SCOPE, "Read them only (GET)"),
        ]);
        // The guard's answers, common to every operation (RFC 6750 §3.1), and the
        // per-address limit before it.
        let guard_answers = [
            (
                "401",
                "No token (bare challenge), or one that is invalid, expired or revoked (`invalid_token`)",
            ),
            (
                "403",
                "The token lacks the scope (`insufficient_scope`; the challenge names it)",
            ),
            (
                "429",
                "Too many requests from this address: wait Retry-After seconds",
            ),
        ];
        for (path, item) in openapi.paths.paths.iter_mut() {
            if !path.starts_with(super::admin::PREFIX) {
                continue;
            }
            let operations = [&mut item.get, &mut item.post, &mut item.patch, &mut item.delete];
            for operation in operations.into_iter().flatten() {
                for (status, description) in guard_answers {
                    let body = if status == "429" { "ProblemDoc" } else { "ErrorDoc" };
                    let media = if status == "429" {
                        "application/problem+json"
                    } else {
                        "application/json"
                    };
                    let response = utoipa::openapi::ResponseBuilder::new()
                        .description(description)
                        .content(
                            media,
                            utoipa::openapi::Content::new(Some(utoipa::openapi::Ref::from_schema_name(body))),
                        )
                        .build();
                    operation
                        .responses
                        .responses
                        .insert(status.to_owned(), response.into());
                }
            }
        }
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "admin_token",
            SecurityScheme::OAuth2(OAuth2::with_description(
                [Flow::ClientCredentials(ClientCredentials::new(
                    super::TOKEN_PATH,
                    scopes,
                ))],
                "An access token of this server, sent as `Authorization: Bearer` (RFC 6750). \
                 A client gets these scopes only when registered with them.",
            )),
        );
    }
}

/// The admin API, `/admin/v1`. Errors other than the bearer challenges (401, 403)
/// are RFC 9457 problem details.
#[derive(OpenApi)]
#[openapi(
    paths(
        super::admin::clients::list,
        super::admin::clients::create,
        super::admin::clients::show,
        super::admin::clients::update,
        super::admin::clients::delete,
        super::admin::clients::rotate_secret,
        super::admin::clients::revoke_tokens,
        super::admin::users::list,
        super::admin::users::create,
        super::admin::users::show,
        super::admin::users::update,
        super::admin::users::delete,
        super::admin::users::revoke_tokens,
        super::admin::keys::list,
        super::admin::keys::rotate,
    ),
    components(schemas(
        ErrorDoc,
        super::admin::ProblemDoc,
        super::admin::clients::NewClientBody,
        super::admin::clients::ClientPatchBody,
        super::admin::clients::RotateSecretBody,
        super::admin::clients::EmptyBody,
        super::admin::clients::ClientList,
        super::admin::clients::CreatedClientView,
        super::admin::users::NewUserBody,
        super::admin::users::UserPatchBody,
        super::admin::users::UserList,
        super::admin::keys::KeyList,
        crate::manage::ClientView,
        crate::manage::UserView,
        crate::manage::KeyView,
        crate::manage::RotatedSecret,
    )),
    tags((name = "admin", description = "Clients, users and signing keys, as the admin commands manage them (`/admin/v1`)")),
    modifiers(&AdminSecurity),
)]
pub struct AdminApiDoc;

/// This document: the one [`document`] made for the server's routes.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "OpenAPI 3 description", body = Object)))]
pub async fn openapi_json(Extension(doc): Extension<Arc<utoipa::openapi::OpenApi>>) -> Response {
    Json(doc.as_ref()).into_response()
}

/// Client metadata a registration takes (RFC 7591 §2); any other member is ignored.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ClientMetadataDoc {
    /// A name for people; the client id when absent.
    client_name: Option<String>,
    /// `client_credentials` (the default) and `refresh_token`.
    grant_types: Option<Vec<String>>,
    /// Space-separated scopes the client may ask for; no `gatehouse:*` scope.
    scope: Option<String>,
    /// `client_secret_basic` (the default) or `client_secret_post` (one secret, sent
    /// either way), `private_key_jwt`, `tls_client_auth` or
    /// `self_signed_tls_client_auth` (no secret).
    token_endpoint_auth_method: Option<String>,
    /// The client's JWK Set (public keys), for `private_key_jwt` and
    /// `self_signed_tls_client_auth` (a key with `x5c`).
    #[schema(value_type = Option<Object>)]
    jwks: Option<serde_json::Value>,
    /// The `https` URL of its JWK Set, instead of `jwks`.
    jwks_uri: Option<String>,
    /// The subject DN of its certificate (RFC 4514), for `tls_client_auth`.
    tls_client_auth_subject_dn: Option<String>,
    /// Bind its access tokens to its TLS client certificate (RFC 8705 §3.4).
    tls_client_certificate_bound_access_tokens: Option<bool>,
    /// Absent or empty.
    response_types: Option<Vec<String>>,
    /// Checked (`https`, or `http` on a loopback address; no fragment), not kept.
    redirect_uris: Option<Vec<String>>,
    /// RFC 7592 update: the client's own id, if given.
    client_id: Option<String>,
}

/// A registration (RFC 7591 §3.2.1, RFC 7592 §3).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct RegistrationDoc {
    /// The generated client id.
    client_id: String,
    /// The generated secret: in the answer to the registration of a client of a
    /// secret method only (and of a replacement that moves a client to one).
    client_secret: Option<String>,
    /// When the client was registered, seconds since the epoch.
    client_id_issued_at: i64,
    /// Always 0: the secret does not expire.
    client_secret_expires_at: i64,
    /// `ghm_…`: manages this registration; answered at registration and by each
    /// replacement, which makes the one before stop working.
    registration_access_token: Option<String>,
    /// Where the registration is read, replaced and deleted.
    registration_client_uri: String,
    /// A name for people.
    client_name: String,
    /// The client's grants.
    grant_types: Vec<String>,
    /// The scopes it may ask for, space-separated.
    scope: String,
    /// How it authenticates at the token endpoint.
    token_endpoint_auth_method: String,
    /// Its JWK Set, if registered.
    #[schema(value_type = Option<Object>)]
    jwks: Option<serde_json::Value>,
    /// Its JWK Set URL, if registered.
    jwks_uri: Option<String>,
    /// Its certificate's subject DN, canonical, if registered.
    tls_client_auth_subject_dn: Option<String>,
    /// Present, `true`, when its access tokens are bound to its certificate.
    tls_client_certificate_bound_access_tokens: Option<bool>,
}

struct RegistrationSchemes;

impl Modify for RegistrationSchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        for name in ["initial_access_token", "registration_access_token"] {
            components.add_security_scheme(
                name,
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
        }
    }
}

/// The registration endpoints, described only where they are served.
#[derive(OpenApi)]
#[openapi(
    paths(
        super::register::register,
        super::register::read_registration,
        super::register::replace_registration,
        super::register::delete_registration,
    ),
    components(schemas(ClientMetadataDoc, RegistrationDoc, ErrorDoc)),
    modifiers(&RegistrationSchemes),
)]
pub struct RegistrationApiDoc;

/// `doc`, with the registration endpoints when `mode` serves them.
pub fn with_registration(
    mut doc: utoipa::openapi::OpenApi,
    mode: crate::config::RegistrationMode,
) -> utoipa::openapi::OpenApi {
    if mode != crate::config::RegistrationMode::Off {
        doc.merge(RegistrationApiDoc::openapi());
    }
    doc
}
