//! `/admin/v1/clients`: the bodies as the API takes them, and the handlers, which
//! turn a body into the admin operations' input and the result into JSON.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use gatehouse_guard::Claims;
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};

use super::input::{nullable, present, JsonBody, OptionalJsonBody, PageQuery, PathId, SecretInput};
use super::problem::Problem;
use super::{actor, location, ProblemDoc};
use crate::http::AppState;
use crate::manage::{parse_grant_types, ClientPatch, ClientView, JwksDocument, NewClient, RotatedSecret};

/// A new client. Members of client kinds this server does not have yet are taken
/// only with the value that means "not used" ([`Unsupported`]).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewClientBody {
    /// A name for people: 1 to 255 characters, no control characters.
    name: String,
    /// The id: 1 to 255 printable ASCII characters (RFC 6749 appendix A.1); 128
    /// random bits in hex when absent.
    #[serde(default)]
    client_id: Option<String>,
    /// The scopes it may ask for, space-separated; none when absent.
    #[serde(default)]
    scope: Option<String>,
    /// Its grants; `["client_credentials"]` when absent.
    #[serde(default)]
    grant_types: Option<Vec<String>>,
    /// The `aud` of its tokens; the server's `default_audience` when absent.
    #[serde(default)]
    audience: Option<String>,
    /// Access token lifetime, 1 to 315360000 seconds; the server's default when absent.
    #[serde(default)]
    token_ttl: Option<i64>,
    /// Refresh token lifetime, 1 to 315360000 seconds; the server's default when absent.
    #[serde(default)]
    refresh_token_ttl: Option<i64>,
    /// `jwt` (default) or `opaque`.
    #[serde(default)]
    token_format: Option<String>,
    /// Whether it may introspect any token (a resource server).
    #[serde(default)]
    can_introspect: Option<bool>,
    /// A secret to import, at least 16 characters (stored as Argon2id); a new
    /// 256-bit secret when absent. Only for the secret methods.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    client_secret: Option<SecretInput>,
    /// `client_secret_basic` (the default) or `client_secret_post`: one secret, and
    /// both ways of sending it are accepted; `private_key_jwt` (needs `jwks` or
    /// `jwks_uri`); `tls_client_auth` (needs `tls_subject_dn`);
    /// `self_signed_tls_client_auth` (needs `jwks` with `x5c`, or `jwks_uri`). A
    /// client of the last three has no secret.
    #[serde(default)]
    auth_method: Option<String>,
    /// Its JWK Set (RFC 7517 §5): public keys only.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    jwks: Option<serde_json::Value>,
    /// The `https` URL of its JWK Set, instead of `jwks`.
    #[serde(default)]
    jwks_uri: Option<String>,
    /// The subject DN its certificate carries (RFC 4514), for `tls_client_auth`.
    #[serde(default)]
    tls_subject_dn: Option<String>,
    /// Bind its access tokens to its TLS client certificate (RFC 8705 §3).
    #[serde(default)]
    bound_tokens: Option<bool>,
    /// Not supported yet: `false` only.
    #[serde(default)]
    require_dpop: Option<bool>,
    /// Not supported yet: `[]` only.
    #[serde(default)]
    redirect_uris: Option<Vec<String>>,
    /// Not supported yet: `[]` only.
    #[serde(default)]
    post_logout_redirect_uris: Option<Vec<String>>,
    /// Not supported yet: `false` only.
    #[serde(default)]
    first_party: Option<bool>,
    /// Not supported yet: `false` only.
    #[serde(default)]
    public: Option<bool>,
}

/// A change to a client (a merge: an absent member is unchanged). `null` returns
/// `audience`, `token_ttl` and `refresh_token_ttl` to the server's default; no other
/// member may be `null`. The id cannot change.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientPatchBody {
    /// Refused: a client's id cannot change.
    #[serde(default, deserialize_with = "present")]
    #[schema(ignore)]
    client_id: Option<IgnoredAny>,
    /// A new name.
    #[serde(default, deserialize_with = "present")]
    name: Option<String>,
    /// New scopes, space-separated.
    #[serde(default, deserialize_with = "present")]
    scope: Option<String>,
    /// New grants.
    #[serde(default, deserialize_with = "present")]
    grant_types: Option<Vec<String>>,
    /// A new `aud`; `null`: the server's `default_audience`.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, nullable)]
    audience: Option<Option<String>>,
    /// A new access token lifetime; `null`: the server's default.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<i64>, nullable)]
    token_ttl: Option<Option<i64>>,
    /// A new refresh token lifetime; `null`: the server's default.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<i64>, nullable)]
    refresh_token_ttl: Option<Option<i64>>,
    /// `jwt` or `opaque`.
    #[serde(default, deserialize_with = "present")]
    token_format: Option<String>,
    /// Whether it may introspect any token.
    #[serde(default, deserialize_with = "present")]
    can_introspect: Option<bool>,
    /// A secret that replaces the current one at once (no grace period); only for
    /// the secret methods.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    client_secret: Option<SecretInput>,
    /// As for a new client. The method, keys and subject DN the client has after
    /// the change are checked together: moving to `tls_client_auth` from
    /// `private_key_jwt` takes `tls_subject_dn` and `jwks: null` in one change. A
    /// client leaving the secret methods loses its secret at once; one joining them
    /// has none until `client_secret` is given or `/secret` makes one.
    #[serde(default, deserialize_with = "present")]
    auth_method: Option<String>,
    /// A new JWK Set; `null`: none.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Object>, nullable)]
    jwks: Option<Option<serde_json::Value>>,
    /// A new JWK Set URL; `null`: none.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, nullable)]
    jwks_uri: Option<Option<String>>,
    /// A new certificate subject DN; `null`: none.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, nullable)]
    tls_subject_dn: Option<Option<String>>,
    /// Bind its access tokens to its TLS client certificate.
    #[serde(default, deserialize_with = "present")]
    bound_tokens: Option<bool>,
    /// Not supported yet: `false` only.
    #[serde(default)]
    require_dpop: Option<bool>,
    /// Not supported yet: `[]` only.
    #[serde(default)]
    redirect_uris: Option<Vec<String>>,
    /// Not supported yet: `[]` only.
    #[serde(default)]
    post_logout_redirect_uris: Option<Vec<String>>,
    /// Not supported yet: `false` only.
    #[serde(default)]
    first_party: Option<bool>,
    /// Not supported yet: `false` only.
    #[serde(default)]
    public: Option<bool>,
}

/// The members of client kinds to come (DPoP, redirect-based flows, public clients).
/// Taken now only with the value that means "not used", so that a pipeline written
/// for a later version fails loudly here instead of making a client that silently
/// lacks what it asked for.
struct Unsupported {
    require_dpop: Option<bool>,
    redirect_uris: Option<usize>,
    post_logout_redirect_uris: Option<usize>,
    first_party: Option<bool>,
    public: Option<bool>,
}

impl Unsupported {
    fn check(&self) -> Result<(), Problem> {
        let not_yet = |field: &'static str, what: &str| {
            Problem::invalid(
                field,
                format!("{field}: {what} is not supported by this server yet"),
            )
        };
        let given = [
            ("require_dpop", self.require_dpop == Some(true), "DPoP"),
            (
                "redirect_uris",
                self.redirect_uris.is_some_and(|n| n > 0),
                "a redirect URI",
            ),
            (
                "post_logout_redirect_uris",
                self.post_logout_redirect_uris.is_some_and(|n| n > 0),
                "a post-logout redirect URI",
            ),
            (
                "first_party",
                self.first_party == Some(true),
                "a first-party client",
            ),
            ("public", self.public == Some(true), "a public client (no secret)"),
        ];
        match given.into_iter().find(|(_, set, _)| *set) {
            Some((field, _, what)) => Err(not_yet(field, what)),
            None => Ok(()),
        }
    }
}

impl NewClientBody {
    fn unsupported(&self) -> Unsupported {
        Unsupported {
            require_dpop: self.require_dpop,
            redirect_uris: self.redirect_uris.as_ref().map(Vec::len),
            post_logout_redirect_uris: self.post_logout_redirect_uris.as_ref().map(Vec::len),
            first_party: self.first_party,
            public: self.public,
        }
    }

    /// The admin operation's input; the grant names are checked here, as they
    /// become a set.
    fn into_new_client(self) -> Result<NewClient, Problem> {
        self.unsupported().check()?;
        let grant_types = self
            .grant_types
            .map(|names| parse_grant_types("grant_types", &names))
            .transpose()?;
        Ok(NewClient {
            name: self.name,
            client_id: self.client_id,
            scope: self.scope,
            grant_types,
            audience: self.audience,
            token_ttl: self.token_ttl,
            refresh_token_ttl: self.refresh_token_ttl,
            token_format: self.token_format,
            can_introspect: self.can_introspect.unwrap_or(false),
            client_secret: self.client_secret.map(|s| s.0),
            auth_method: self.auth_method,
            jwks: self.jwks.map(JwksDocument::Json),
            jwks_uri: self.jwks_uri,
            tls_subject_dn: self.tls_subject_dn,
            bound_tokens: self.bound_tokens.unwrap_or(false),
        })
    }
}

impl ClientPatchBody {
    fn unsupported(&self) -> Unsupported {
        Unsupported {
            require_dpop: self.require_dpop,
            redirect_uris: self.redirect_uris.as_ref().map(Vec::len),
            post_logout_redirect_uris: self.post_logout_redirect_uris.as_ref().map(Vec::len),
            first_party: self.first_party,
            public: self.public,
        }
    }

    fn into_patch(self) -> Result<ClientPatch, Problem> {
        if self.client_id.is_some() {
            return Err(Problem::invalid(
                "client_id",
                "client_id: a client's id cannot change; create a new client instead",
            ));
        }
        self.unsupported().check()?;
        let grant_types = self
            .grant_types
            .map(|names| parse_grant_types("grant_types", &names))
            .transpose()?;
        Ok(ClientPatch {
            name: self.name,
            scope: self.scope,
            grant_types,
            audience: self.audience,
            token_ttl: self.token_ttl,
            refresh_token_ttl: self.refresh_token_ttl,
            token_format: self.token_format,
            can_introspect: self.can_introspect,
            client_secret: self.client_secret.map(|s| s.0),
            auth_method: self.auth_method,
            jwks: self.jwks.map(|j| j.map(JwksDocument::Json)),
            jwks_uri: self.jwks_uri,
            tls_subject_dn: self.tls_subject_dn,
            bound_tokens: self.bound_tokens,
        })
    }
}

/// The body of `POST /clients/{client_id}/secret`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateSecretBody {
    /// How long the replaced secret keeps working, 0 to 2592000 seconds; 0 (the
    /// default): it stops at once.
    #[serde(default)]
    grace_seconds: Option<i64>,
}

/// The body of `POST /clients/{client_id}/revoke-tokens` and
/// `POST /users/{username}/revoke-tokens`: nothing, or an empty object.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmptyBody {}

/// A page of clients.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ClientList {
    /// The clients, ordered by id.
    clients: Vec<ClientView>,
    /// The `after` of the next page; `null` on the last page.
    next: Option<String>,
}

/// A new client, with its secret shown this once.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CreatedClientView {
    #[serde(flatten)]
    client: ClientView,
    /// The secret: keep it now, it is never shown again. Absent for a client whose
    /// method uses no secret (keys or a certificate).
    #[serde(skip_serializing_if = "Option::is_none")]
    client_secret: Option<String>,
}

/// Lists clients, by id.
#[utoipa::path(get, path = "/admin/v1/clients", tag = "admin", operation_id = "admin_list_clients",
    params(
        ("limit" = Option<i64>, Query, description = "Page size, 1 to 1000; 100 when absent"),
        ("after" = Option<String>, Query, description = "The `next` of the previous page"),
    ),
    responses(
        (status = 200, description = "A page of clients", body = ClientList),
        (status = 400, description = "A bad or unknown query parameter (`field`)", body = ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("admin_token" = ["gatehouse:admin:read"]), ("admin_token" = ["gatehouse:admin"])),
)]
pub async fn list(State(state): State<AppState>, query: PageQuery) -> Result<Json<ClientList>, Problem> {
    let page = state
        .manager
        .list_clients(query.after.as_deref(), query.limit)
        .await?;
    Ok(Json(ClientList {
        clients: page.items.iter().map(ClientView::from).collect(),
        next: page.next,
    }))
}

/// Creates a client; its secret is in the answer, this once.
#[utoipa::path(post, path = "/admin/v1/clients", tag = "admin", operation_id = "admin_create_client",
    request_body = NewClientBody,
    responses(
        (status = 201, description = "Created; `Location` names it", body = CreatedClientView,
            headers(("Location" = String, description = "/admin/v1/clients/{client_id}"))),
        (status = 400, description = "An invalid or unknown member (`field`), or malformed JSON", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "The client_id is taken", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 413, description = "Body over 64 KiB", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 503, description = "The database cannot be reached, or every password hashing slot is busy (Retry-After)", body = ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("admin_token" = ["gatehouse:admin"])),
)]
pub async fn create(
    State(state): State<AppState>,
    claims: Claims,
    JsonBody(body): JsonBody<NewClientBody>,
) -> Result<Response, Problem> {
    let new = body.into_new_client()?;
    let created = state.manager.create_client(&actor(&claims), new).await?;
    let view = CreatedClientView {
        client: ClientView::from(&created.client),
        client_secret: created.secret.as_ref().map(|s| s.expose().to_owned()),
    };
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location("clients", created.client.id.as_str()))],
        Json(view),
    )
        .into_response())
}

/// One client.
#[utoipa::path(get, path = "/admin/v1/clients/{client_id}", tag = "admin", operation_id = "admin_show_client",
    params(("client_id" = String, Path, description = "The client's id, percent-encoded")),
    responses(
        (status = 200, description = "The client", body = ClientView),
        (status = 400, description = "An id that no client or user can have (`field`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such client", body = ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("admin_token" = ["gatehouse:admin:read"]), ("admin_token" = ["gatehouse:admin"])),
)]
pub async fn show(State(state): State<AppState>, PathId(id): PathId) -> Result<Json<ClientView>, Problem> {
    let client = state.manager.client(&id).await?;
    Ok(Json(ClientView::from(&client)))
}

/// Changes a client: only the members given, all in one statement.
#[utoipa::path(patch, path = "/admin/v1/clients/{client_id}", tag = "admin", operation_id = "admin_update_client",
    params(("client_id" = String, Path, description = "The client's id, percent-encoded")),
    request_body = ClientPatchBody,
    responses(
        (status = 200, description = "The client as it is now", body = ClientView),
        (status = 400, description = "An invalid or unknown member (`field`), `client_id`, or nothing to change", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such client", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 413, description = "Body over 64 KiB", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("admin_token" = ["gatehouse:admin"])),
)]
pub async fn update(
    State(state): State<AppState>,
    claims: Claims,
    PathId(id): PathId,
    JsonBody(body): JsonBody<ClientPatchBody>,
) -> Result<Json<ClientView>, Problem> {
    let patch = body.into_patch()?;
    let client = state.manager.update_client(&actor(&claims), &id, patch).await?;
    Ok(Json(ClientView::from(&client)))
}

/// Deletes a client; every token it holds stops working.
#[utoipa::path(delete, path = "/admin/v1/clients/{client_id}", tag = "admin", operation_id = "admin_delete_client",
    params(("client_id" = String, Path, description = "The client's id, percent-encoded")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "An id that no client or user can have (`field`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such client", body = ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("admin_token" = ["gatehouse:admin"])),
)]
pub async fn delete(
    State(state): State<AppState>,
    claims: Claims,
    PathId(id): PathId,
) -> Result<StatusCode, Problem> {
    state.manager.delete_client(&actor(&claims), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Gives a client a new secret, shown this once; the old one works for
/// `grace_seconds` more.
#[utoipa::path(post, path = "/admin/v1/clients/{client_id}/secret", tag = "admin", operation_id = "admin_rotate_client_secret",
    params(("client_id" = String, Path, description = "The client's id, percent-encoded")),
    request_body(content = Option<RotateSecretBody>, description = "Optional: an empty body is no grace period"),
    responses(
        (status = 200, description = "The new secret", body = RotatedSecret),
        (status = 400, description = "grace_seconds out of range, or an unknown member", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 413, description = "Body over 64 KiB", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 415, description = "A body that is not JSON", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such client", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "The client authenticates with keys or a certificate: it has no secret", body = ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("admin_token" = ["gatehouse:admin"])),
)]
pub async fn rotate_secret(
    State(state): State<AppState>,
    claims: Claims,
    PathId(id): PathId,
    OptionalJsonBody(body): OptionalJsonBody<RotateSecretBody>,
) -> Result<Json<RotatedSecret>, Problem> {
    let grace = body.and_then(|b| b.grace_seconds);
    let rotated = state.manager.rotate_secret(&actor(&claims), &id, grace).await?;
    Ok(Json(rotated))
}

/// Ends every token the client holds, JWTs included. Answered once a token issued
/// afterwards is sure to live (revocation marks have second precision).
#[utoipa::path(post, path = "/admin/v1/clients/{client_id}/revoke-tokens", tag = "admin", operation_id = "admin_revoke_client_tokens",
    params(("client_id" = String, Path, description = "The client's id, percent-encoded")),
    request_body(content = Option<EmptyBody>, description = "Optional: nothing, or an empty object"),
    responses(
        (status = 204, description = "Every token the client held has stopped working"),
        (status = 400, description = "A body that is not an empty JSON object (`field` names the member)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 413, description = "Body over 64 KiB", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 415, description = "A body that is not JSON", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such client", body = ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("admin_token" = ["gatehouse:admin"])),
)]
pub async fn revoke_tokens(
    State(state): State<AppState>,
    claims: Claims,
    PathId(id): PathId,
    OptionalJsonBody(_): OptionalJsonBody<EmptyBody>,
) -> Result<StatusCode, Problem> {
    state.manager.revoke_client_tokens(&actor(&claims), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
