//! The HTTP surface: routes, shared state, and the middleware every request passes.
//! Handlers parse, call the core, and map the result; they decide nothing.

pub mod discovery;
pub mod error;
pub mod inspect;
pub mod openapi;
pub mod ops;
pub mod params;
pub mod request_metrics;
pub mod token;

use axum::middleware;
use axum::routing::{get, post};
use axum::Router;
use gatehouse_core::{Clock, KeyRing, TokenService};
use gatehouse_store::SqlStore;
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::Value;
use std::sync::Arc;

use self::error::ApiError;

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

/// Every route of the server.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/oauth/token", post(token::token))
        .route("/oauth/revoke", post(inspect::revoke))
        .route("/oauth/introspect", post(inspect::introspect))
        .route("/oauth/jwks", get(discovery::jwks))
        .route(
            "/.well-known/oauth-authorization-server",
            get(discovery::oauth_metadata),
        )
        .route(
            "/.well-known/openid-configuration",
            get(discovery::openid_configuration),
        )
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/openapi.json", get(openapi::openapi_json))
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(middleware::from_fn_with_state(
            request_metrics::RequestMetrics::default(),
            request_metrics::record,
        ))
        .with_state(state)
}
