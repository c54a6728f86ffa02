//! Request ids, and the one log line of a request the server failed.
//!
//! Every request gets an id. A request that brings an `x-request-id` of at most
//! [`MAX_GIVEN_ID_BYTES`] printable ASCII characters (no spaces) keeps it, so that a
//! proxy's or a caller's id links their logs to this one, and the answer echoes it;
//! any other value is ignored (it could be a log line in disguise, or 8 KB), and the
//! server makes one: a random prefix per process and a counter, `5f3a09c1-1234`.
//!
//! A server failure ([`super::error`]: `server_error`, or `temporarily_unavailable`
//! for the database) carries its cause on the response; this layer writes it, once,
//! with the id, the method, the path (never the query: it may hold credentials) and
//! the status, and names the id in the answer's `x-request-id` so that a client's
//! report can be found in the log. Answers that are not failures pay for no more than
//! an atomic increment, a header lookup and two reference-counted clones (method and
//! URI): their made-up id is never formatted. Refusals that are not failures (a rate
//! limit, every password-hash slot busy) are not logged here: under an attack they
//! would flood the log, and the audit log and metrics count them.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::future::Future;
use std::hash::BuildHasher as _;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::http::{HeaderName, HeaderValue, Method, Request, Response, StatusCode, Uri};
use gatehouse_core::error::Cause;
use tower::{Layer, Service};

/// The request id header, read and answered.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The longest `x-request-id` taken from a request (a UUID is 36).
pub const MAX_GIVEN_ID_BYTES: usize = 64;

/// Gives each request an id and logs the cause of every server failure.
#[derive(Clone)]
pub struct RequestLogLayer {
    ids: Arc<IdSource>,
}

impl RequestLogLayer {
    /// Ids with a new random prefix.
    pub fn new() -> Self {
        Self {
            ids: Arc::new(IdSource {
                // A random value without a dependency: the standard library seeds
                // every `RandomState` from the operating system.
                prefix: RandomState::new().hash_one(0u8) as u32,
                next: AtomicU64::new(1),
            }),
        }
    }
}

impl Default for RequestLogLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl<S> Layer<S> for RequestLogLayer {
    type Service = RequestLog<S>;

    fn layer(&self, inner: S) -> RequestLog<S> {
        RequestLog {
            inner,
            ids: self.ids.clone(),
        }
    }
}

/// Where made-up ids come from: unique in this process, and unlikely to repeat
/// another process's.
struct IdSource {
    prefix: u32,
    next: AtomicU64,
}

/// The id of one request.
#[derive(Clone)]
enum RequestId {
    /// Taken from the request, checked to be short and printable.
    Given(HeaderValue),
    /// Made here, formatted only when it is needed.
    Made { prefix: u32, number: u64 },
}

impl RequestId {
    fn of<B>(request: &Request<B>, ids: &IdSource) -> Self {
        let given = request.headers().get(&X_REQUEST_ID).filter(|value| {
            let bytes = value.as_bytes();
            !bytes.is_empty() && bytes.len() <= MAX_GIVEN_ID_BYTES && bytes.iter().all(u8::is_ascii_graphic)
        });
        match given {
            Some(value) => Self::Given(value.clone()),
            None => Self::Made {
                prefix: ids.prefix,
                number: ids.next.fetch_add(1, Ordering::Relaxed),
            },
        }
    }

    fn header_value(&self) -> Option<HeaderValue> {
        match self {
            Self::Given(value) => Some(value.clone()),
            Self::Made { .. } => HeaderValue::try_from(self.to_string()).ok(),
        }
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // Checked to be visible ASCII when it was taken.
            Self::Given(value) => f.write_str(value.to_str().unwrap_or_default()),
            Self::Made { prefix, number } => write!(f, "{prefix:08x}-{number}"),
        }
    }
}

/// The service of [`RequestLogLayer`].
#[derive(Clone)]
pub struct RequestLog<S> {
    inner: S,
    ids: Arc<IdSource>,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for RequestLog<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Future: Unpin,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = LoggedResponse<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let id = RequestId::of(&request, &self.ids);
        let method = request.method().clone();
        let uri = request.uri().clone();
        LoggedResponse {
            inner: self.inner.call(request),
            request: Some((id, method, uri)),
        }
    }
}

/// The response future of [`RequestLog`].
pub struct LoggedResponse<F> {
    inner: F,
    request: Option<(RequestId, Method, Uri)>,
}

impl<F, B, E> Future for LoggedResponse<F>
where
    F: Future<Output = Result<Response<B>, E>> + Unpin,
{
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let mut response = match Pin::new(&mut self.inner).poll(cx) {
            Poll::Ready(Ok(response)) => response,
            other => return other,
        };
        if let Some((id, method, uri)) = self.request.take() {
            finish(&mut response, id, &method, &uri);
        }
        Poll::Ready(Ok(response))
    }
}

/// Logs the cause of a failure, and names the id in the answer where it helps.
fn finish<B>(response: &mut Response<B>, id: RequestId, method: &Method, uri: &Uri) {
    let failed = response.extensions_mut().remove::<Cause>();
    if let Some(cause) = &failed {
        let status = response.status().as_u16();
        let path = uri.path();
        if response.status() == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(request_id = %id, %method, path, status, %cause, "request failed");
        } else {
            tracing::warn!(request_id = %id, %method, path, status, %cause, "request failed");
        }
    }
    if failed.is_some() || matches!(id, RequestId::Given(_)) {
        if let Some(value) = id.header_value() {
            response.headers_mut().insert(X_REQUEST_ID, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::Mutex;

    use axum::body::Body;
    use axum::http::header;
    use axum::routing::get;
    use axum::Router;
    use gatehouse_core::OAuthError;
    use tower::ServiceExt as _;

    use super::*;
    use crate::http::error::ApiError;
    use crate::http::with_middleware;

    /// What a test's log subscriber wrote.
    #[derive(Clone, Default)]
    struct Log(Arc<Mutex<Vec<u8>>>);

    impl Write for Log {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Log {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    async fn panicking() -> &'static str {
        panic!("the sky fell: SELECT secret FROM vault")
    }

    fn app() -> Router {
        with_middleware(
            Router::new()
                .route("/panic", get(panicking))
                .route(
                    "/database",
                    get(|| async { ApiError::from(OAuthError::server_error("no such table: users")) }),
                )
                .route("/fine", get(|| async { "fine" })),
        )
    }

    /// Sends `request` through [`app`], with the log captured.
    async fn send(request: Request<Body>) -> (Response<axum::body::Body>, String, String) {
        let log = Log::default();
        let writer = log.clone();
        // The server's own text format (`crate::telemetry`).
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .fmt_fields(crate::telemetry::EscapedFields)
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let response = app().oneshot(request).await.unwrap();
        let (parts, body) = response.into_parts();
        let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        let body = String::from_utf8(body.to_vec()).unwrap();
        (Response::from_parts(parts, Body::empty()), body, log.text())
    }

    fn get_request(path: &str) -> Request<Body> {
        Request::get(path).body(Body::empty()).unwrap()
    }

    #[tokio::test]
    async fn a_panic_is_a_logged_server_error_and_the_server_goes_on() {
        let (response, body, log) = send(get_request("/panic?token=hidden")).await;
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["error"], "server_error", "{body}");
        assert_eq!(
            json["error_description"],
            "The server encountered an unexpected condition."
        );
        assert!(!body.contains("sky"), "the cause is not the client's: {body}");
        assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        let id = response.headers()[&X_REQUEST_ID].to_str().unwrap().to_owned();
        let lines: Vec<&str> = log.lines().filter(|l| l.contains("request failed")).collect();
        assert_eq!(lines.len(), 1, "logged once: {log}");
        for part in [
            "ERROR",
            "a handler panicked: the sky fell: SELECT secret FROM vault",
            &format!("request_id={id}"),
            "method=GET",
            "path=/panic",
            "status=500",
        ] {
            assert!(lines[0].contains(part), "{part:?} is not in {:?}", lines[0]);
        }
        assert!(!log.contains("hidden"), "the query is not logged: {log}");

        let (response, body, _) = send(get_request("/fine")).await;
        assert_eq!((response.status(), body.as_str()), (StatusCode::OK, "fine"));
    }

    #[tokio::test]
    async fn a_server_error_logs_its_cause_with_the_id_it_answers() {
        let (response, body, log) = send(get_request("/database")).await;
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!body.contains("users"), "{body}");
        let id = response.headers()[&X_REQUEST_ID].to_str().unwrap();
        let (prefix, number) = id.split_once('-').unwrap();
        assert_eq!(prefix.len(), 8, "{id}");
        assert!(number.parse::<u64>().is_ok(), "{id}");
        let line = log.lines().find(|l| l.contains("request failed")).unwrap();
        assert!(line.contains(&format!("request_id={id}")), "{line}");
        assert!(line.contains("no such table: users"), "{line}");
        assert!(
            response.extensions().get::<Cause>().is_none(),
            "the cause stays inside"
        );
    }

    #[tokio::test]
    async fn a_short_printable_request_id_is_kept_and_echoed() {
        let given = Request::get("/database")
            .header(&X_REQUEST_ID, "edge-7f3a:1")
            .body(Body::empty())
            .unwrap();
        let (response, _, log) = send(given).await;
        assert_eq!(response.headers()[&X_REQUEST_ID], "edge-7f3a:1");
        assert!(log.contains("request_id=edge-7f3a:1"), "{log}");

        let given = Request::get("/fine")
            .header(&X_REQUEST_ID, "edge-1")
            .body(Body::empty())
            .unwrap();
        let (response, _, _) = send(given).await;
        assert_eq!(
            response.headers()[&X_REQUEST_ID],
            "edge-1",
            "echoed on success too"
        );
    }

    #[tokio::test]
    async fn other_request_ids_are_replaced() {
        for bad in ["a b", &"x".repeat(MAX_GIVEN_ID_BYTES + 1), "tab\there"] {
            let given = Request::get("/database")
                .header(&X_REQUEST_ID, HeaderValue::from_str(bad).unwrap())
                .body(Body::empty())
                .unwrap();
            let (response, _, log) = send(given).await;
            let id = response.headers()[&X_REQUEST_ID].to_str().unwrap();
            assert_ne!(id, bad);
            assert!(log.contains(&format!("request_id={id}")), "{log}");
        }
    }

    #[tokio::test]
    async fn answers_that_are_not_failures_carry_no_made_up_id() {
        let (response, _, log) = send(get_request("/fine")).await;
        assert!(response.headers().get(&X_REQUEST_ID).is_none());
        assert!(!log.contains("request failed"), "{log}");
    }
}
