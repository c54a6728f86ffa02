//! RFC 9457 problem details: the answer to every admin API error but the guard's
//! 401 and 403 (which RFC 6750 §3 shapes).
//!
//! A problem says what is wrong in `detail`, and names the member or query
//! parameter at fault in the extension member `field` (RFC 9457 §3.2) when there is
//! one, so that a pipeline can point at it. A server failure says a fixed sentence;
//! its cause goes to the request log ([`Cause`], as for the OAuth endpoints).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use gatehouse_core::error::Cause;
use gatehouse_core::StoreError;
use serde::Serialize;

use crate::manage::ManageError;

/// The media type of a problem (RFC 9457 §3).
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An admin API error, answered as a problem detail.
#[derive(Debug)]
pub struct Problem {
    status: StatusCode,
    detail: String,
    field: Option<String>,
    retry_after: Option<u64>,
    cause: Option<Cause>,
}

/// A problem detail's body (RFC 9457 §3.1), as the OpenAPI description shows it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ProblemDoc {
    /// Always `about:blank`: the status says what kind of problem it is (RFC 9457 §4.2.1).
    #[serde(rename = "type")]
    pub problem_type: &'static str,
    /// The reason phrase of the status.
    pub title: &'static str,
    /// The HTTP status.
    pub status: u16,
    /// What is wrong, for people.
    pub detail: String,
    /// The request member or query parameter at fault, when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl Problem {
    /// A problem with `status`, explained by `detail`.
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            status,
            detail: detail.into(),
            field: None,
            retry_after: None,
            cause: None,
        }
    }

    /// 400: `field` is at fault.
    pub fn invalid(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, detail).with_field(field)
    }

    /// 400 with no single member at fault (malformed JSON, say).
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, detail)
    }

    /// Names the member or parameter at fault.
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// Asks the client to wait this many seconds (`Retry-After`, RFC 9110 §10.2.3).
    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds.max(1));
        self
    }

    /// A server failure: a fixed sentence for the client, `cause` for the log.
    fn failure(status: StatusCode, cause: impl Into<Cause>) -> Self {
        let detail = if status == StatusCode::SERVICE_UNAVAILABLE {
            "The database cannot be reached right now; try again shortly."
        } else {
            "The server encountered an unexpected condition."
        };
        Self {
            cause: Some(cause.into()),
            ..Self::new(status, detail)
        }
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The member at fault, if any.
    pub fn field(&self) -> Option<&str> {
        self.field.as_deref()
    }

    /// What is wrong.
    pub fn detail(&self) -> &str {
        &self.detail
    }
}

impl From<ManageError> for Problem {
    fn from(err: ManageError) -> Self {
        match err {
            ManageError::Invalid { field: "", .. } => Self::new(StatusCode::BAD_REQUEST, err.to_string()),
            ManageError::Invalid { field, .. } => {
                let detail = err.to_string();
                Self::invalid(field, detail)
            }
            ManageError::NotFound { .. } => Self::new(StatusCode::NOT_FOUND, err.to_string()),
            ManageError::Conflict { field, .. } => {
                let detail = err.to_string();
                Self::new(StatusCode::CONFLICT, detail).with_field(field)
            }
            ManageError::Inapplicable(_) => Self::new(StatusCode::CONFLICT, err.to_string()),
            // Every hashing slot busy: one second frees dozens of them.
            ManageError::Busy => {
                Self::new(StatusCode::SERVICE_UNAVAILABLE, err.to_string()).with_retry_after(1)
            }
            ManageError::Store(store) => match store {
                StoreError::Unavailable(_) | StoreError::Contention(_) => {
                    Self::failure(StatusCode::SERVICE_UNAVAILABLE, store.to_string()).with_retry_after(1)
                }
                StoreError::Conflict(_) | StoreError::Other(_) => {
                    Self::failure(StatusCode::INTERNAL_SERVER_ERROR, store.to_string())
                }
            },
            ManageError::Failed(why) => Self::failure(StatusCode::INTERNAL_SERVER_ERROR, why),
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = ProblemDoc {
            problem_type: "about:blank",
            // RFC 9457 §3.1.4: with `about:blank`, the title is the reason phrase.
            title: self.status.canonical_reason().unwrap_or("Error"),
            status: self.status.as_u16(),
            detail: self.detail,
            field: self.field,
        };
        // Strings and integers: serializing cannot fail; were it to, an empty body
        // still carries the status.
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        let mut response = (self.status, bytes).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if self.status == StatusCode::PAYLOAD_TOO_LARGE {
            crate::http::error::close_after(headers);
        }
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if let Some(cause) = self.cause {
            response.extensions_mut().insert(cause);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn answer(problem: Problem) -> (StatusCode, axum::http::HeaderMap, serde_json::Value) {
        let response = problem.into_response();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, headers, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn invalid_names_the_field() {
        let (status, headers, body) =
            answer(ManageError::invalid("token_ttl", "must be from 1 to 10").into()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(headers[header::CONTENT_TYPE], PROBLEM_JSON);
        assert_eq!(headers[header::CACHE_CONTROL], "no-store");
        assert_eq!(
            body,
            serde_json::json!({
                "type": "about:blank",
                "title": "Bad Request",
                "status": 400,
                "detail": "token_ttl: must be from 1 to 10",
                "field": "token_ttl",
            })
        );
    }

    #[tokio::test]
    async fn not_found_and_conflict() {
        let (status, _, body) = answer(
            ManageError::NotFound {
                kind: "client",
                id: "svc".into(),
            }
            .into(),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(body["detail"].as_str().unwrap().contains("svc"));
        assert!(body.get("field").is_none());
        let (status, _, body) = answer(
            ManageError::Conflict {
                field: "username",
                id: "alice".into(),
            }
            .into(),
        )
        .await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(body["field"], "username");
        assert_eq!(body["title"], "Conflict");
    }

    #[tokio::test]
    async fn failures_keep_their_cause_out_of_the_answer() {
        let problem = Problem::from(ManageError::Store(StoreError::Unavailable(
            "pool timed out at db.internal".into(),
        )));
        let response = problem.into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(response.headers().contains_key(header::RETRY_AFTER));
        assert!(
            response.extensions().get::<Cause>().is_some(),
            "the log gets the cause"
        );
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body["title"], "Service Unavailable");
        assert!(!body.to_string().contains("db.internal"), "{body}");

        let (status, _, body) =
            answer(ManageError::Failed("key sealing failed: /etc/secret".into()).into()).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!body.to_string().contains("/etc/secret"), "{body}");

        let (status, headers, _) = answer(ManageError::Busy.into()).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(headers[header::RETRY_AFTER], "1");
    }
}
