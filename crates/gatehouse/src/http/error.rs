//! One error type for every endpoint: RFC-shaped JSON, the right status and headers.
//!
//! A server failure (`server_error`, or `temporarily_unavailable` for the database)
//! answers a fixed sentence. Its cause travels on the response as an extension
//! ([`Cause`](gatehouse_core::error::Cause)), never in the body, and the request log
//! writes it once, with the request id ([`super::request_log`]). A panic in a
//! handler becomes the same answer ([`panic_response`]).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use gatehouse_core::OAuthError;
use serde_json::json;

/// An error answered to a client.
#[derive(Debug)]
pub enum ApiError {
    /// A protocol error (RFC 6749 §5.2) or a server failure.
    OAuth(OAuthError),
    /// The body is larger than the endpoint accepts.
    PayloadTooLarge,
    /// No such path.
    NotFound,
    /// The path exists, the method does not.
    MethodNotAllowed,
    /// The request took longer than `request_timeout`.
    RequestTimeout,
    /// Over a rate limit, or a login locked out: retry after this long.
    TooManyRequests(std::time::Duration),
    /// `invalid_client` for a client id nobody has, with the status a `[[routes]]`
    /// entry gives it (`unknown_client_status`, `docs/migrating.md`). The standard
    /// endpoints never answer it.
    UnknownClient(u16),
}

impl From<OAuthError> for ApiError {
    fn from(err: OAuthError) -> Self {
        Self::OAuth(err)
    }
}

/// The HTTP status of a protocol error (RFC 6749 §5.2; 503 for an unreachable
/// database).
pub fn status_of(err: &OAuthError) -> StatusCode {
    match err {
        OAuthError::InvalidClient { .. } => StatusCode::UNAUTHORIZED,
        OAuthError::ServerError(_) => StatusCode::INTERNAL_SERVER_ERROR,
        OAuthError::TemporarilyUnavailable(_) | OAuthError::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, description): (StatusCode, &str, &str) = match &self {
            Self::OAuth(err) => (status_of(err), err.code(), err.description()),
            Self::PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "invalid_request",
                "The request body is larger than this endpoint accepts.",
            ),
            Self::NotFound => (
                StatusCode::NOT_FOUND,
                "invalid_request",
                "There is no endpoint at this path.",
            ),
            Self::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "invalid_request",
                "This endpoint does not accept this HTTP method.",
            ),
            Self::TooManyRequests(_) => (
                StatusCode::TOO_MANY_REQUESTS,
                "temporarily_unavailable",
                "Too many requests: retry after the number of seconds in Retry-After.",
            ),
            Self::RequestTimeout => (
                StatusCode::REQUEST_TIMEOUT,
                "invalid_request",
                "The request took too long to arrive or to answer.",
            ),
            Self::UnknownClient(status) => (
                StatusCode::from_u16(*status).unwrap_or(StatusCode::UNAUTHORIZED),
                "invalid_client",
                "Client not found.",
            ),
        };
        let mut response = (
            status,
            Json(json!({"error": code, "error_description": description})),
        )
            .into_response();
        let headers = response.headers_mut();
        // RFC 6749 §5.1/§5.2: token responses must not be cached; errors never should.
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        match &self {
            Self::TooManyRequests(wait) => {
                // RFC 9110 §10.2.3: whole seconds, rounded up so that a retry is not early.
                let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
            }
            // Every slot for a slow hash was busy: one second frees dozens of them.
            Self::OAuth(OAuthError::Overloaded) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            Self::PayloadTooLarge => close_after(headers),
            _ => {}
        }
        if status == StatusCode::UNAUTHORIZED {
            // RFC 6749 §5.2 and RFC 9110 §15.5.2: a 401 names the scheme to use.
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"gatehouse\""),
            );
        }
        if let Self::OAuth(OAuthError::ServerError(cause) | OAuthError::TemporarilyUnavailable(cause)) = self
        {
            response.extensions_mut().insert(cause);
        }
        response
    }
}

/// Says that the connection ends after this answer. A body refused for its size is
/// left unread, so the server closes the connection; announcing it (RFC 9112 §9.6)
/// keeps an HTTP/1.1 client from sending its next request into a closing socket.
/// HTTP/2 has no such header (hyper leaves it out) and resets the stream instead.
pub fn close_after(headers: &mut axum::http::HeaderMap) {
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
}

/// The answer to a request whose handler panicked: `server_error`, like any other
/// server failure, with the panic's message as the cause for the log.
pub fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let message = if let Some(message) = panic.downcast_ref::<&str>() {
        (*message).to_owned()
    } else if let Some(message) = panic.downcast_ref::<String>() {
        message.clone()
    } else {
        "a payload that is not a string".to_owned()
    };
    ApiError::OAuth(OAuthError::server_error(format!("a handler panicked: {message}"))).into_response()
}
