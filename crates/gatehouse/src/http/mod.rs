//! The HTTP surface: routes, shared state, and the middleware every request passes.
//! Handlers parse, call the core, and map the result; they decide nothing.

pub mod admin;
pub mod bearer_guard;
pub mod body;
pub mod certificate;
pub mod client_address;
pub mod client_auth;
pub mod discovery;
pub mod error;
pub mod inspect;
pub mod openapi;
pub mod ops;
pub mod params;
pub mod protection;
pub mod register;
pub mod request_log;
pub mod request_metrics;
pub mod routes;
pub mod token;

use axum::routing::{get, post};
use axum::{Extension, Router};
use gatehouse_core::{Clock, KeyRing, TokenService};
use gatehouse_store::SqlStore;
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::Value;
use std::sync::Arc;
use tower_http::catch_panic::CatchPanicLayer;

use self::error::ApiError;
use crate::config::Route;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

/// The contents of [`AppState`].
pub struct Shared {
    /// The token endpoint's logic.
    pub tokens: TokenService,
    /// The signing keys in force.
    pub keys: Arc<KeyRing>,
    /// The database, for readiness.
    pub store: Arc<SqlStore>,
    /// RFC 8414 metadata, built once.
    pub metadata: Value,
    /// Prometheus rendering.
    pub metrics: PrometheusHandle,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// Rate limits and login lockouts.
    pub protection: protection::Protection,
    /// How long a request body may take to arrive.
    pub body_timeout: std::time::Duration,
    /// Reverse proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: crate::config::TrustedProxies,
    /// Client certificates forwarded by those proxies (`tls_client_cert_header`).
    pub forwarded_certificates: Option<certificate::Forwarded>,
    /// The admin operations, for the admin API and registration.
    pub manager: crate::manage::Manager,
    /// What `POST /admin/v1/keys/rotate` needs.
    pub key_rotation: crate::manage::KeyRotation,
    /// Dynamic client registration: its mode and the open-mode limit.
    pub registration: register::Registration,
}

impl AppState {
    /// Wraps the shared state.
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// `POST`: RFC 6749 §3.2.
pub const TOKEN_PATH: &str = "/oauth/token";
/// `POST`: RFC 7009.
pub const REVOKE_PATH: &str = "/oauth/revoke";
/// `POST`: RFC 7662.
pub const INTROSPECT_PATH: &str = "/oauth/introspect";
/// `GET`: RFC 7517.
pub const JWKS_PATH: &str = "/oauth/jwks";
/// `GET`: RFC 8414 §3.
pub const OAUTH_METADATA_PATH: &str = "/.well-known/oauth-authorization-server";
/// `GET`: the same metadata, where OpenID Connect clients look.
pub const OPENID_CONFIGURATION_PATH: &str = "/.well-known/openid-configuration";

/// Every path the server serves on its own; a `[[routes]]` entry may use none of them.
/// An entry ending in `/` is a tree (`config::routes::check_reserved`).
pub const STANDARD_PATHS: &[&str] = &[
    TOKEN_PATH,
    REVOKE_PATH,
    INTROSPECT_PATH,
    JWKS_PATH,
    OAUTH_METADATA_PATH,
    OPENID_CONFIGURATION_PATH,
    "/healthz",
    "/readyz",
    "/metrics",
    "/openapi.json",
    // Dynamic client registration, and every registration's URI under it.
    register::REGISTER_PATH,
    "/oauth/register/",
    // The admin API: `/admin/v1` and every path under it ([`admin::PREFIX`]).
    "/admin/v1/",
];

/// Every route of the server: the standard endpoints, then the configured `routes`,
/// inside [`with_middleware`].
pub fn router(state: AppState, routes: &[Route]) -> Router {
    let standard = Router::new()
        .route(TOKEN_PATH, post(token::token))
        .route(REVOKE_PATH, post(inspect::revoke))
        .route(INTROSPECT_PATH, post(inspect::introspect))
        .route(JWKS_PATH, get(discovery::jwks))
        .route(OAUTH_METADATA_PATH, get(discovery::oauth_metadata))
        .route(OPENID_CONFIGURATION_PATH, get(discovery::openid_configuration))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route(
            "/openapi.json",
            get(openapi::openapi_json).layer(Extension(Arc::new(openapi::with_registration(
                openapi::document(routes),
                state.registration.mode(),
            )))),
        )
        .merge(admin::router(&state));
    let standard = register::add_routes(standard, &state);
    let app = routes
        .iter()
        .fold(standard, |router, route| {
            router.route(&route.path, self::routes::method_router(route))
        })
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(request_metrics::RequestMetrics::default())
        .with_state(state);
    with_middleware(app)
}

/// What every request passes on its way to `routes`, outermost first: its id and
/// the log line of a failure ([`request_log`]), then the catch of a panic, which
/// answers `server_error` ([`error::panic_response`]) and keeps serving.
///
/// Wrapped around the whole router rather than added with `Router::layer`, which
/// wraps each route apart (one more boxed service to clone per request and layer).
pub fn with_middleware(routes: Router) -> Router {
    let stack = tower::ServiceBuilder::new()
        .layer(request_log::RequestLogLayer::new())
        .layer(CatchPanicLayer::custom(error::panic_response as fn(_) -> _))
        .service(routes);
    Router::new().fallback_service(stack)
}
