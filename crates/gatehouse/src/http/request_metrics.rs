//! Request metrics: a count and a latency histogram per endpoint and status.
//!
//! The `metrics` macros with dynamic labels allocate the labels and look the series
//! up in the registry on every call; here each (endpoint, status) pair is resolved
//! once and its handles kept, so a request costs one read-locked map lookup. The
//! layer is a plain tower service whose future records when it completes: no boxed
//! future, no clone of the rest of the stack per request (what
//! `axum::middleware::from_fn` costs).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::response::Response;
use metrics::{Counter, Histogram};
use tower::{Layer, Service};

/// The metric handles of one (endpoint, status) pair.
#[derive(Clone)]
struct Series {
    requests: Counter,
    latency: Histogram,
}

/// Handles resolved so far, by endpoint and then status.
#[derive(Clone, Default)]
pub struct RequestMetrics(Arc<RwLock<HashMap<String, HashMap<u16, Series>>>>);

impl RequestMetrics {
    fn series(&self, endpoint: &str, status: u16) -> Series {
        if let Some(series) = self.0.read().ok().and_then(|map| {
            map.get(endpoint)
                .and_then(|by_status| by_status.get(&status).cloned())
        }) {
            return series;
        }
        let labels = [("endpoint", endpoint.to_owned()), ("status", status.to_string())];
        let series = Series {
            requests: metrics::counter!("gatehouse_http_requests_total", &labels),
            latency: metrics::histogram!("gatehouse_http_request_duration_seconds", &labels),
        };
        if let Ok(mut map) = self.0.write() {
            map.entry(endpoint.to_owned())
                .or_default()
                .insert(status, series.clone());
        }
        series
    }
}

impl<S> Layer<S> for RequestMetrics {
    type Service = Recorded<S>;

    fn layer(&self, inner: S) -> Recorded<S> {
        Recorded {
            inner,
            metrics: self.clone(),
        }
    }
}

/// The service of [`RequestMetrics`]: counts each request and records its latency.
#[derive(Clone)]
pub struct Recorded<S> {
    inner: S,
    metrics: RequestMetrics,
}

impl<S> Service<Request> for Recorded<S>
where
    S: Service<Request, Response = Response>,
    S::Future: Unpin,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Recording<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let started = Instant::now();
        let endpoint = request.extensions().get::<MatchedPath>().cloned();
        Recording {
            inner: self.inner.call(request),
            pending: Some((self.metrics.clone(), endpoint, started)),
        }
    }
}

/// The response future of [`Recorded`].
pub struct Recording<F> {
    inner: F,
    pending: Option<(RequestMetrics, Option<MatchedPath>, Instant)>,
}

impl<F, E> Future for Recording<F>
where
    F: Future<Output = Result<Response, E>> + Unpin,
{
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let answer = std::task::ready!(Pin::new(&mut self.inner).poll(cx));
        if let (Ok(response), Some((metrics, endpoint, started))) = (&answer, self.pending.take()) {
            let endpoint = endpoint.as_ref().map_or("unmatched", MatchedPath::as_str);
            let series = metrics.series(endpoint, response.status().as_u16());
            series.requests.increment(1);
            series.latency.record(started.elapsed().as_secs_f64());
        }
        Poll::Ready(answer)
    }
}
