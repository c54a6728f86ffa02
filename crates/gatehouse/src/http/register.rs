//! Dynamic client registration: `POST /oauth/register` (RFC 7591) and
//! `GET`/`PUT`/`DELETE /oauth/register/{client_id}` (RFC 7592). The handlers parse
//! JSON, call the [`Manager`](crate::manage::Manager), and word the answer; the rules
//! of what may be registered are in [`crate::manage::registration`].
//!
//! Served only when `registration` is `token` or `open`; when off the paths are
//! unknown (404, as any other). Every request counts against its source address
//! first (the limit of the token endpoint). In `token` mode a registration then
//! needs an access token of this server with scope `gatehouse:register` (RFC 7591
//! §3: an initial access token), checked by the server's own guard. In `open` mode
//! each address may register [`OPEN_REGISTRATIONS_PER_MINUTE`] clients a minute;
//! only metadata that passed its checks counts, so a registrant fixing a mistake is
//! not locked out by it.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use gatehouse_core::OAuthError;
use gatehouse_guard::{Claims, Rejection, RequireScope};
use governor::clock::Clock as _;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::Serialize;
use serde_json::json;

use super::bearer_guard::{server_guard, REALM};
use super::body::{is_json, read_limited, BodyError};
use super::error::ApiError;
use super::AppState;
use crate::cache::CachedClients;
use crate::config::RegistrationMode;
use crate::manage::registration::{ClientMetadata, Registered, RegistrationError};
use crate::manage::{Actor, ManageError};

/// `POST`: RFC 7591 §3.
pub const REGISTER_PATH: &str = "/oauth/register";
/// `GET`, `PUT`, `DELETE`: RFC 7592 §2, the `registration_client_uri`.
pub const REGISTRATION_PATH: &str = "/oauth/register/{client_id}";
/// The scope an initial access token needs in `token` mode.
pub const REGISTER_SCOPE: &str = "gatehouse:register";
/// The largest body read: metadata is small, and 64 KiB leaves room for long
/// lists of redirect URIs and vendor extensions.
pub use super::body::MAX_JSON_BODY_BYTES as MAX_BODY_BYTES;
/// Clients one address may register a minute in `open` mode (in bursts of as many).
pub const OPEN_REGISTRATIONS_PER_MINUTE: u32 = 10;
/// Addresses the open-mode limit tracks before it forgets those that are back to a
/// full allowance (and, were they all still limited, every one of them).
const MAX_TRACKED_ADDRESSES: usize = 100_000;

/// Characters escaped in a client id placed in a path segment: all but RFC 3986 §2.3
/// unreserved ones.
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Registration as configured, in the shared state.
pub struct Registration {
    mode: RegistrationMode,
    /// `<issuer>/oauth/register`.
    endpoint: String,
    /// Open mode: registrations per address.
    open_limit: Option<OpenLimit>,
    /// This node's client cache, told of each change at once: RFC 7592 §2.3 wants a
    /// deleted client's credentials to stop working immediately, and a replacement
    /// should not wait for the change feed either (other nodes follow it as always).
    clients: Arc<CachedClients>,
}

impl Registration {
    /// Registration in `mode`, for a server whose issuer is `issuer` and whose client
    /// cache is `clients`.
    pub fn new(mode: RegistrationMode, issuer: &str, clients: Arc<CachedClients>) -> Self {
        Self {
            mode,
            endpoint: format!("{issuer}{REGISTER_PATH}"),
            open_limit: (mode == RegistrationMode::Open).then(OpenLimit::new),
            clients,
        }
    }

    /// Who may register.
    pub fn mode(&self) -> RegistrationMode {
        self.mode
    }

    /// Counts one acceptable registration from `address` (open mode only); `Err` is
    /// how long to wait when over the limit.
    fn admit(&self, address: Option<IpAddr>) -> Result<(), Duration> {
        match (&self.open_limit, address) {
            (Some(limit), Some(address)) => limit.admit(address),
            _ => Ok(()),
        }
    }
}

/// [`OPEN_REGISTRATIONS_PER_MINUTE`] registrations per address, in bursts of as many.
struct OpenLimit {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    /// When addresses were last forgotten.
    last_sweep: Mutex<Option<std::time::Instant>>,
}

impl OpenLimit {
    fn new() -> Self {
        let rate = NonZeroU32::new(OPEN_REGISTRATIONS_PER_MINUTE).unwrap_or(NonZeroU32::MIN);
        Self {
            limiter: RateLimiter::keyed(Quota::per_minute(rate).allow_burst(rate)),
            last_sweep: Mutex::new(None),
        }
    }

    fn admit(&self, address: IpAddr) -> Result<(), Duration> {
        // Bounded memory: an address is kept until its allowance is full again (a
        // minute at most). When that many addresses are tracked, those back to a full
        // allowance are forgotten (at most once a second: it walks them all); were
        // every one still limited, open registration is a flood, and waits for room
        // rather than grow.
        if self.limiter.len() >= MAX_TRACKED_ADDRESSES {
            self.sweep();
            if self.limiter.len() >= MAX_TRACKED_ADDRESSES {
                return Err(Duration::from_secs(60 / u64::from(OPEN_REGISTRATIONS_PER_MINUTE)));
            }
        }
        self.limiter
            .check_key(&address)
            .map_err(|not_until| not_until.wait_time_from(self.limiter.clock().now()))
    }

    fn sweep(&self) {
        let mut last = match self.last_sweep.lock() {
            Ok(last) => last,
            Err(poisoned) => poisoned.into_inner(),
        };
        let now = std::time::Instant::now();
        if last.is_none_or(|at| now.duration_since(at) >= Duration::from_secs(1)) {
            *last = Some(now);
            self.limiter.retain_recent();
            self.limiter.shrink_to_fit();
        }
    }
}

/// The registration routes `state` asks for, added to `router`: none when
/// registration is off.
pub fn add_routes(router: Router<AppState>, state: &AppState) -> Router<AppState> {
    let register = match state.registration.mode {
        RegistrationMode::Off => return router,
        RegistrationMode::Open => post(register),
        // The guard runs first (route layers added later wrap those before).
        RegistrationMode::Token => post(register)
            .route_layer(RequireScope::new(REGISTER_SCOPE))
            .route_layer(server_guard(state).layer()),
    };
    let admit = middleware::from_fn_with_state(state.clone(), admit_address);
    router
        .route(REGISTER_PATH, register.route_layer(admit.clone()))
        .route(
            REGISTRATION_PATH,
            get(read_registration)
                .put(replace_registration)
                .delete(delete_registration)
                .route_layer(admit),
        )
}

/// The general per-address limit, before anything else is done for the request.
async fn admit_address(State(state): State<AppState>, request: Request, next: Next) -> Response {
    match state.protection.admit_address(peer(&state, &request)) {
        Ok(()) => next.run(request).await,
        Err(wait) => ApiError::TooManyRequests(wait).into_response(),
    }
}

/// The source address, through trusted proxies.
fn peer(state: &AppState, request: &Request) -> Option<IpAddr> {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| state.trusted_proxies.client(addr.ip(), request.headers()))
}

/// Registers a client.
#[utoipa::path(
    post,
    path = "/oauth/register",
    tag = "registration",
    request_body(content = super::openapi::ClientMetadataDoc, content_type = "application/json",
        description = "RFC 7591 §2 client metadata; members not listed are ignored. At most 64 KiB."),
    responses(
        (status = 201, description = "Registered (RFC 7591 §3.2.1); the secret and registration access token are shown this once", body = super::openapi::RegistrationDoc),
        (status = 400, description = "invalid_client_metadata or invalid_redirect_uri (RFC 7591 §3.2.2)", body = super::openapi::ErrorDoc),
        (status = 401, description = "token mode: no initial access token, or not a valid one", body = super::openapi::ErrorDoc),
        (status = 403, description = "token mode: the token lacks scope gatehouse:register", body = super::openapi::ErrorDoc),
        (status = 413, description = "Body over 64 KiB", body = super::openapi::ErrorDoc),
        (status = 415, description = "The body is not application/json", body = super::openapi::ErrorDoc),
        (status = 429, description = "Over the per-address limit: wait Retry-After seconds", body = super::openapi::ErrorDoc),
        (status = 503, description = "temporarily_unavailable", body = super::openapi::ErrorDoc),
    ),
    security(("initial_access_token" = []), ()),
)]
pub async fn register(
    State(state): State<AppState>,
    claims: Option<Extension<Arc<Claims>>>,
    request: Request,
) -> Result<Response, RegisterError> {
    let address = peer(&state, &request);
    let metadata = read_metadata(request, state.body_timeout).await?;
    let checked = state.manager.check_registration(&metadata)?;
    state
        .registration
        .admit(address)
        .map_err(|wait| RegisterError::Api(ApiError::TooManyRequests(wait)))?;
    let actor = match claims {
        Some(Extension(claims)) => Actor::Client(claims.client_id.clone()),
        None => Actor::Anonymous,
    };
    let registered = state.manager.register_client(&actor, checked).await?;
    // Known to this node's cache at once, so the new client is never taken for a
    // made-up id while the change feed catches up.
    state.registration.clients.invalidate(&registered.client.id);
    Ok(answer(StatusCode::CREATED, &state, &registered))
}

/// Reads a registration.
#[utoipa::path(
    get,
    path = "/oauth/register/{client_id}",
    tag = "registration",
    params(("client_id" = String, Path, description = "The registered client")),
    responses(
        (status = 200, description = "The client's metadata (RFC 7592 §3), without its secret or token", body = super::openapi::RegistrationDoc),
        (status = 401, description = "invalid_token: no registration access token, a wrong one, or no such client", body = super::openapi::ErrorDoc),
    ),
    security(("registration_access_token" = [])),
)]
pub async fn read_registration(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, RegisterError> {
    let access = state
        .manager
        .authorize_registration(&client_id, bearer(&headers))
        .await?;
    let registered = state.manager.read_registration(&access).await?;
    Ok(answer(StatusCode::OK, &state, &registered))
}

/// Replaces a registration.
#[utoipa::path(
    put,
    path = "/oauth/register/{client_id}",
    tag = "registration",
    params(("client_id" = String, Path, description = "The registered client")),
    request_body(content = super::openapi::ClientMetadataDoc, content_type = "application/json",
        description = "The whole metadata (RFC 7592 §2.2): members left out return to their defaults. `client_id`, if given, must be this client's; `client_secret` is ignored."),
    responses(
        (status = 200, description = "Replaced; a new registration access token, the old one no longer works", body = super::openapi::RegistrationDoc),
        (status = 400, description = "invalid_client_metadata or invalid_redirect_uri", body = super::openapi::ErrorDoc),
        (status = 401, description = "invalid_token", body = super::openapi::ErrorDoc),
        (status = 413, description = "Body over 64 KiB", body = super::openapi::ErrorDoc),
        (status = 415, description = "The body is not application/json", body = super::openapi::ErrorDoc),
    ),
    security(("registration_access_token" = [])),
)]
pub async fn replace_registration(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    request: Request,
) -> Result<Response, RegisterError> {
    // Checked before the body is read, so a stranger learns nothing from its parsing.
    // The update is conditional on the token it checked: of concurrent updates with
    // one token, on any nodes, one wins and the others find the token replaced.
    let access = state
        .manager
        .authorize_registration(&client_id, bearer(request.headers()))
        .await?;
    let metadata = read_metadata(request, state.body_timeout).await?;
    let registered = state.manager.replace_registration(access, metadata).await?;
    state.registration.clients.invalidate(&registered.client.id);
    Ok(answer(StatusCode::OK, &state, &registered))
}

/// Deletes a registration.
#[utoipa::path(
    delete,
    path = "/oauth/register/{client_id}",
    tag = "registration",
    params(("client_id" = String, Path, description = "The registered client")),
    responses(
        (status = 204, description = "Deleted, with every token of the client (RFC 7592 §2.3)"),
        (status = 401, description = "invalid_token", body = super::openapi::ErrorDoc),
    ),
    security(("registration_access_token" = [])),
)]
pub async fn delete_registration(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, RegisterError> {
    let access = state
        .manager
        .authorize_registration(&client_id, bearer(&headers))
        .await?;
    let client_id = access.client_id().clone();
    state.manager.delete_registration(access).await?;
    state.registration.clients.invalidate(&client_id);
    Ok(with_no_store(StatusCode::NO_CONTENT.into_response()))
}

/// The registration access token of a request: one `Authorization: Bearer` header
/// (RFC 6750 §2.1). Anything else is no token.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    let (scheme, token) = value.to_str().ok()?.split_once(' ')?;
    let token = token.trim_start_matches(' ');
    (scheme.eq_ignore_ascii_case("Bearer") && !token.is_empty()).then_some(token)
}

/// The metadata in a request's body: JSON (415 otherwise), at most
/// [`MAX_BODY_BYTES`] (413), arriving within `timeout` (408).
async fn read_metadata(request: Request, timeout: Duration) -> Result<ClientMetadata, RegisterError> {
    if is_json(request.headers()) != Some(true) {
        return Err(RegisterError::UnsupportedMediaType);
    }
    let body = read_limited(request.into_body(), MAX_BODY_BYTES, timeout)
        .await
        .map_err(|e| {
            RegisterError::Api(match e {
                BodyError::Timeout => ApiError::RequestTimeout,
                BodyError::TooLarge => ApiError::PayloadTooLarge,
                BodyError::Unreadable => {
                    OAuthError::invalid_request("The request body could not be read.").into()
                }
            })
        })?;
    parse_metadata(&body)
}

/// The metadata object; a body that is not one, or a member of the wrong type, is
/// `invalid_client_metadata` naming where.
fn parse_metadata(body: &[u8]) -> Result<ClientMetadata, RegisterError> {
    let refused = |problem: String| {
        RegisterError::Registration(RegistrationError::InvalidMetadata {
            field: "body",
            problem,
        })
    };
    // As a value first: serde would read an array into the struct's fields in order.
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|err| {
        refused(format!(
            "the body is not valid JSON (line {}, column {})",
            err.line(),
            err.column()
        ))
    })?;
    if !value.is_object() {
        return Err(refused(
            "the body must be a JSON object of client metadata (RFC 7591 §2)".to_owned(),
        ));
    }
    serde_path_to_error::deserialize(value).map_err(|err| {
        refused(format!(
            "{}: the value has the wrong type (RFC 7591 §2)",
            err.path()
        ))
    })
}

/// A registration as answered (RFC 7591 §3.2.1, RFC 7592 §3).
#[derive(Serialize)]
struct RegistrationBody<'a> {
    client_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_secret: Option<&'a str>,
    client_id_issued_at: i64,
    /// 0: the secret does not expire.
    client_secret_expires_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    registration_access_token: Option<&'a str>,
    registration_client_uri: String,
    client_name: &'a str,
    grant_types: Vec<&'static str>,
    scope: String,
    token_endpoint_auth_method: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    jwks: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    jwks_uri: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_client_auth_subject_dn: Option<&'a str>,
    /// RFC 8705 §3.4: false when absent.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    tls_client_certificate_bound_access_tokens: bool,
}

fn answer(status: StatusCode, state: &AppState, registered: &Registered) -> Response {
    let client = &registered.client;
    let id = client.id.as_str();
    let body = RegistrationBody {
        client_id: id,
        client_secret: registered.client_secret.as_ref().map(|s| s.expose()),
        client_id_issued_at: client.created_at,
        client_secret_expires_at: 0,
        registration_access_token: registered.registration_access_token.as_ref().map(|t| t.expose()),
        registration_client_uri: format!(
            "{}/{}",
            state.registration.endpoint,
            utf8_percent_encode(id, PATH_SEGMENT)
        ),
        client_name: &client.name,
        grant_types: client.grant_types.iter().map(|g| g.as_str()).collect(),
        scope: client.scope.to_string(),
        token_endpoint_auth_method: client.auth.method.as_str(),
        jwks: client
            .auth
            .jwks
            .as_deref()
            .and_then(|text| serde_json::from_str(text).ok()),
        jwks_uri: client.auth.jwks_uri.as_deref(),
        tls_client_auth_subject_dn: client.auth.tls_subject_dn.as_deref(),
        tls_client_certificate_bound_access_tokens: client.auth.bound_tokens,
    };
    with_no_store((status, Json(body)).into_response())
}

/// RFC 7591 §3.2.1: an answer with credentials must not be cached; none here should.
fn with_no_store(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// Why a registration request is refused, answered as RFC 7591 §3.2.2 and RFC 7592
/// §2 say.
#[derive(Debug)]
pub enum RegisterError {
    /// From the registration rules.
    Registration(RegistrationError),
    /// The body is not JSON (415).
    UnsupportedMediaType,
    /// As every other endpoint answers it (413, 408, 429, 500, 503).
    Api(ApiError),
}

impl From<RegistrationError> for RegisterError {
    fn from(err: RegistrationError) -> Self {
        Self::Registration(err)
    }
}

fn error_body(status: StatusCode, code: &str, description: &str) -> Response {
    with_no_store(
        (
            status,
            Json(json!({"error": code, "error_description": description})),
        )
            .into_response(),
    )
}

impl IntoResponse for RegisterError {
    fn into_response(self) -> Response {
        match self {
            Self::Registration(RegistrationError::InvalidMetadata { field, problem }) => {
                let description = if field == "body" {
                    problem
                } else {
                    format!("{field}: {problem}")
                };
                error_body(StatusCode::BAD_REQUEST, "invalid_client_metadata", &description)
            }
            Self::Registration(RegistrationError::InvalidRedirectUri(problem)) => {
                error_body(StatusCode::BAD_REQUEST, "invalid_redirect_uri", &problem)
            }
            // RFC 7592 §2 answers as RFC 6750 §3.1 does, with a Bearer challenge.
            Self::Registration(RegistrationError::InvalidToken) => Rejection::InvalidToken(
                "The registration access token is missing or not valid for this client.",
            )
            .into_response_in(REALM),
            Self::Registration(RegistrationError::Failed(err)) => {
                ApiError::OAuth(failure(err)).into_response()
            }
            Self::UnsupportedMediaType => error_body(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "invalid_request",
                "The body must be JSON, sent with Content-Type: application/json.",
            ),
            Self::Api(err) => err.into_response(),
        }
    }
}

/// A failure that is no fault of the request: its cause goes to the log.
fn failure(err: ManageError) -> OAuthError {
    match err {
        ManageError::Busy => OAuthError::Overloaded,
        ManageError::Store(err) => err.into(),
        other => OAuthError::server_error(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(body: &str) -> String {
        match parse_metadata(body.as_bytes()) {
            Err(RegisterError::Registration(RegistrationError::InvalidMetadata { problem, .. })) => problem,
            other => panic!("{body}: {other:?}"),
        }
    }

    #[test]
    fn members_of_the_wrong_type_are_named() {
        assert!(refused(r#"{"grant_types": "x"}"#).starts_with("grant_types:"));
        assert!(refused(r#"{"scope": 5}"#).starts_with("scope:"));
        assert!(refused(r#"{"client_name": ["a"]}"#).starts_with("client_name:"));
        assert!(refused(r#"{"redirect_uris": "https://a.example/cb"}"#).starts_with("redirect_uris:"));
        assert!(refused(r#"{"token_endpoint_auth_method": 1}"#).starts_with("token_endpoint_auth_method:"));
    }

    #[test]
    fn a_body_that_is_no_object_is_refused() {
        assert!(refused(r#"{"client_name": "#).contains("not valid JSON"));
        assert!(refused("[]").contains("JSON object"));
        assert!(refused(r#""robot""#).contains("JSON object"));
        assert!(refused(r#"{} {}"#).contains("not valid JSON"));
    }

    #[test]
    fn unknown_members_and_nulls_pass() {
        let metadata =
            parse_metadata(br#"{"client_name": "r", "logo_uri": "x", "jwks": null, "x": {"y": [1]}}"#)
                .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(metadata.client_name.as_deref(), Some("r"));
        assert!(metadata.jwks.is_none());
    }

    #[test]
    fn certificate_members_of_the_wrong_type_are_named() {
        assert!(refused(r#"{"jwks_uri": 5}"#).starts_with("jwks_uri:"));
        assert!(
            refused(r#"{"tls_client_auth_subject_dn": ["CN=a"]}"#).starts_with("tls_client_auth_subject_dn:")
        );
        assert!(
            refused(r#"{"tls_client_certificate_bound_access_tokens": "yes"}"#)
                .starts_with("tls_client_certificate_bound_access_tokens:")
        );
    }

    #[test]
    fn bearer_tokens() {
        let with = |values: &[&str]| {
            let mut headers = HeaderMap::new();
            for value in values {
                headers.append(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
            }
            bearer(&headers).map(str::to_owned)
        };
        assert_eq!(with(&["Bearer ghm_x"]).as_deref(), Some("ghm_x"));
        assert_eq!(with(&["bearer ghm_x"]).as_deref(), Some("ghm_x"));
        assert_eq!(with(&["Basic Zm9vOmJhcg=="]), None);
        assert_eq!(with(&["Bearer "]), None);
        assert_eq!(with(&["Bearer a", "Bearer b"]), None);
        assert_eq!(with(&[]), None);
    }

    #[test]
    fn open_registration_is_limited_per_address() {
        let limit = OpenLimit::new();
        let one: IpAddr = [192, 0, 2, 1].into();
        let two: IpAddr = [192, 0, 2, 2].into();
        for _ in 0..OPEN_REGISTRATIONS_PER_MINUTE {
            assert!(limit.admit(one).is_ok());
        }
        let wait = limit.admit(one).unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(60),
            "{wait:?}"
        );
        assert!(limit.admit(two).is_ok());
    }
}
