//! Why a request is refused, and the RFC 6750 §3 answer for it.

use std::sync::Arc;

use axum::response::{IntoResponse, Response};
use axum::Json;
use http::header::{CACHE_CONTROL, WWW_AUTHENTICATE};
use http::{HeaderValue, StatusCode};
use serde_json::json;

/// The realm named in challenges when none is configured.
pub const DEFAULT_REALM: &str = "api";

/// A refusal. Descriptions are fixed sentences: nothing from the token or the
/// issuer's answers reaches a client or a header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// No credentials, or credentials of another scheme: 401 and the bare challenge
    /// (RFC 6750 §3.1: "SHOULD NOT include an error code or other error information").
    MissingToken,
    /// RFC 6750 §3.1 `invalid_request` (400): "The request is missing a required
    /// parameter, includes an unsupported parameter or parameter value, repeats the
    /// same parameter, uses more than one method for including an access token, or is
    /// otherwise malformed."
    InvalidRequest(&'static str),
    /// RFC 6750 §3.1 `invalid_token` (401): "The access token provided is expired,
    /// revoked, malformed, or invalid for other reasons."
    InvalidToken(&'static str),
    /// RFC 6750 §3.1 `insufficient_scope` (403): "The request requires higher
    /// privileges than provided by the access token." Carries the scope needed.
    InsufficientScope(Arc<str>),
    /// The issuer cannot be reached to check the token (503).
    Unavailable,
    /// A route requires a scope, but no guard ran before it (500: a wiring mistake).
    NotGuarded,
}

impl Rejection {
    /// The answer, naming `realm` in the challenge.
    pub fn into_response_in(self, realm: &str) -> Response {
        let (status, code, description) = match &self {
            Self::MissingToken => (
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "This resource needs a bearer token in the Authorization header.",
            ),
            Self::InvalidRequest(d) => (StatusCode::BAD_REQUEST, "invalid_request", *d),
            Self::InvalidToken(d) => (StatusCode::UNAUTHORIZED, "invalid_token", *d),
            Self::InsufficientScope(_) => (
                StatusCode::FORBIDDEN,
                "insufficient_scope",
                "The access token does not carry the scope this resource needs.",
            ),
            Self::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "The token cannot be checked right now; try again shortly.",
            ),
            Self::NotGuarded => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "The server encountered an unexpected condition.",
            ),
        };
        let mut challenge = format!("Bearer realm=\"{}\"", quoted(realm));
        match &self {
            Self::MissingToken | Self::Unavailable | Self::NotGuarded => {}
            Self::InsufficientScope(scope) => {
                challenge.push_str(&format!(
                    ", error=\"{code}\", error_description=\"{description}\", scope=\"{}\"",
                    quoted(scope)
                ));
            }
            Self::InvalidRequest(_) | Self::InvalidToken(_) => {
                challenge.push_str(&format!(
                    ", error=\"{code}\", error_description=\"{description}\""
                ));
            }
        }
        let mut response = (
            status,
            Json(json!({"error": code, "error_description": description})),
        )
            .into_response();
        let headers = response.headers_mut();
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if matches!(
            status,
            StatusCode::UNAUTHORIZED | StatusCode::BAD_REQUEST | StatusCode::FORBIDDEN
        ) {
            if let Ok(value) = HeaderValue::from_str(&challenge) {
                headers.insert(WWW_AUTHENTICATE, value);
            }
        }
        response
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        self.into_response_in(DEFAULT_REALM)
    }
}

/// The content of an RFC 9110 quoted-string: `"` and `\` escaped, controls dropped.
fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars().filter(|c| !c.is_control()) {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn challenge(rejection: Rejection) -> (StatusCode, String) {
        let response = rejection.into_response_in("orders \"api\"");
        let header = response
            .headers()
            .get(WWW_AUTHENTICATE)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        (response.status(), header)
    }

    #[test]
    fn rfc6750_challenges() {
        assert_eq!(
            challenge(Rejection::MissingToken),
            (
                StatusCode::UNAUTHORIZED,
                r#"Bearer realm="orders \"api\"""#.into()
            )
        );
        let (status, header) = challenge(Rejection::InvalidToken("The access token has expired."));
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            header,
            r#"Bearer realm="orders \"api\"", error="invalid_token", error_description="The access token has expired.""#
        );
        let (status, header) = challenge(Rejection::InsufficientScope("read write".into()));
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(header.ends_with(r#", scope="read write""#), "{header}");
        assert!(header.contains(r#"error="insufficient_scope""#), "{header}");
        let (status, header) = challenge(Rejection::InvalidRequest("The Authorization header is repeated."));
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(header.contains(r#"error="invalid_request""#), "{header}");
        assert_eq!(
            challenge(Rejection::Unavailable),
            (StatusCode::SERVICE_UNAVAILABLE, String::new())
        );
    }
}
