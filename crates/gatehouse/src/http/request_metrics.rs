//! Request metrics: a count and a latency histogram per endpoint and status.
//!
//! The `metrics` macros with dynamic labels allocate the labels and look the series
//! up in the registry on every call; here each (endpoint, status) pair is resolved
//! once and its handles kept, so a request costs one read-locked map lookup.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use metrics::{Counter, Histogram};

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

/// Middleware: counts the request and records its latency.
pub async fn record(State(metrics): State<RequestMetrics>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let endpoint = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let response = next.run(request).await;
    let series = metrics.series(&endpoint, response.status().as_u16());
    series.requests.increment(1);
    series.latency.record(started.elapsed().as_secs_f64());
    response
}
