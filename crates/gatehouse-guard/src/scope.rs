//! Scopes required per route: `.route_layer(RequireScope::new("read"))`.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::response::{IntoResponse, Response};
use futures::future::{BoxFuture, FutureExt};
use http::Request;
use tower::{Layer, Service};

use crate::claims::Claims;
use crate::config::Realm;
use crate::error::{Rejection, DEFAULT_REALM};

/// Requires the token to carry every one of some scopes, or at least one of them
/// ([`RequireScope::any`]); otherwise 403 `insufficient_scope` naming the scope
/// needed (RFC 6750 §3.1). Goes behind the guard.
#[derive(Clone, Debug)]
pub struct RequireScope {
    scopes: Arc<[String]>,
    /// Whether one of `scopes` is enough.
    any: bool,
    /// The scope the challenge's `scope` attribute names: all of them,
    /// space-separated, or the first of the alternatives.
    needed: Arc<str>,
}

impl RequireScope {
    /// Requires `scope`.
    pub fn new(scope: impl Into<String>) -> Self {
        Self::all([scope.into()])
    }

    /// Requires every one of `scopes`.
    pub fn all<I: IntoIterator<Item = S>, S: Into<String>>(scopes: I) -> Self {
        let scopes: Arc<[String]> = scopes.into_iter().map(Into::into).collect();
        let needed = scopes.join(" ").into();
        Self {
            scopes,
            any: false,
            needed,
        }
    }

    /// Requires at least one of `scopes`, e.g. `["orders:read", "orders:admin"]` for
    /// a read that either grants. A refusal names the first in its challenge: a
    /// challenge's `scope` is a list the token needs all of (RFC 6750 §3), so it
    /// names one alternative, the one to ask for. With no scopes, nothing passes.
    pub fn any<I: IntoIterator<Item = S>, S: Into<String>>(scopes: I) -> Self {
        let scopes: Arc<[String]> = scopes.into_iter().map(Into::into).collect();
        let needed = scopes.first().map_or("", String::as_str).into();
        Self {
            scopes,
            any: true,
            needed,
        }
    }

    fn check(&self, claims: Option<&Arc<Claims>>) -> Result<(), Rejection> {
        let claims = claims.ok_or(Rejection::NotGuarded)?;
        let granted = |scope: &String| claims.has_scope(scope);
        let passes = if self.any {
            self.scopes.iter().any(granted)
        } else {
            self.scopes.iter().all(granted)
        };
        if passes {
            Ok(())
        } else {
            Err(Rejection::InsufficientScope(self.needed.clone()))
        }
    }
}

impl<S> Layer<S> for RequireScope {
    type Service = RequireScopeService<S>;

    fn layer(&self, inner: S) -> RequireScopeService<S> {
        RequireScopeService {
            inner,
            required: self.clone(),
        }
    }
}

/// The service of [`RequireScope`].
#[derive(Clone, Debug)]
pub struct RequireScopeService<S> {
    inner: S,
    required: RequireScope,
}

impl<S, B> Service<Request<B>> for RequireScopeService<S>
where
    S: Service<Request<B>, Error = Infallible>,
    S::Response: IntoResponse,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        match self.required.check(request.extensions().get::<Arc<Claims>>()) {
            Ok(()) => self
                .inner
                .call(request)
                .map(|response| response.map(IntoResponse::into_response))
                .boxed(),
            Err(rejection) => {
                let realm = request
                    .extensions()
                    .get::<Realm>()
                    .map_or_else(|| DEFAULT_REALM.into(), |r| r.0.clone());
                futures::future::ready(Ok(rejection.into_response_in(&realm))).boxed()
            }
        }
    }
}
