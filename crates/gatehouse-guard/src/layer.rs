//! The tower layer: checks the bearer token of every request before the inner service
//! sees it.

use std::convert::Infallible;
use std::task::{Context, Poll};

use axum::response::{IntoResponse, Response};
use futures::future::BoxFuture;
use http::Request;
use tower::{Layer, Service};

use crate::config::Guard;

/// Applies a [`Guard`] to a service ([`Guard::layer`]).
#[derive(Clone)]
pub struct GuardLayer {
    guard: Guard,
}

impl GuardLayer {
    pub(crate) fn new(guard: Guard) -> Self {
        Self { guard }
    }
}

impl<S> Layer<S> for GuardLayer {
    type Service = GuardService<S>;

    fn layer(&self, inner: S) -> GuardService<S> {
        GuardService {
            inner,
            guard: self.guard.clone(),
        }
    }
}

/// A service whose requests carry a valid bearer token: the [`crate::Claims`] are in
/// their extensions. Any other request is answered by the guard (RFC 6750 §3).
#[derive(Clone)]
pub struct GuardService<S> {
    inner: S,
    guard: Guard,
}

impl<S, B> Service<Request<B>> for GuardService<S>
where
    S: Service<Request<B>, Error = Infallible> + Clone + Send + 'static,
    S::Response: IntoResponse,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        // The clone that was polled ready serves this request (tower's usual dance).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let guard = self.guard.clone();
        Box::pin(async move {
            let (mut parts, body) = request.into_parts();
            match guard.check(&parts).await {
                Ok(claims) => {
                    parts.extensions.insert(claims);
                    parts.extensions.insert(guard.realm_extension());
                    let response = inner.call(Request::from_parts(parts, body)).await?;
                    Ok(response.into_response())
                }
                Err(rejection) => Ok(rejection.into_response_in(guard.realm())),
            }
        })
    }
}
