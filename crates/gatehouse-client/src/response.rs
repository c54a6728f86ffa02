//! Reading the token endpoint's answers: a token response (RFC 6749 §5.1)
//! or an error response (§5.2).
//!
//! Nothing from a response body is echoed into an error message except the
//! OAuth `error` and `error_description`: a malformed token response holds a
//! token, and serde's messages quote the values they choke on.

use http::StatusCode;
use reqwest::Response;
use secrecy::SecretString;
use serde_json::{Map, Value};
use tokio::time::Instant;

use crate::error::{Error, OAuthError};
use crate::renewal::RenewalPolicy;
use crate::retry::{is_retryable_status, retry_after};
use crate::token::AccessToken;

/// The largest response body read; token responses are a few hundred bytes.
const MAX_BODY_BYTES: usize = 64 * 1024;

/// What a successful token request yields.
pub(crate) struct IssuedTokens {
    pub access: AccessToken,
    /// A refresh token, when one was issued (RFC 6749 §5.1: optional).
    pub refresh: Option<SecretString>,
}

/// The body of `response`, at most [`MAX_BODY_BYTES`] of it.
pub(crate) async fn read_body(mut response: Response) -> Result<Vec<u8>, Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(Error::transport)? {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(Error::InvalidResponse("the response body is larger than 64 KiB"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The tokens of a token endpoint response to a request sent at `sent_at`
/// for `requested_scope`, or the error it stands for.
pub(crate) async fn token_response(
    response: Response,
    sent_at: Instant,
    renewal: &RenewalPolicy,
    requested_scope: Option<&str>,
) -> Result<IssuedTokens, Error> {
    let status = response.status();
    let asked_to_wait = retry_after(response.headers());
    let body = read_body(response).await?;
    if status != StatusCode::OK {
        return Err(refusal(status, asked_to_wait, &body));
    }
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(&body) else {
        return Err(Error::InvalidResponse("the body is not a JSON object"));
    };
    let text = |name: &str| fields.get(name).and_then(Value::as_str);
    let access_token = text("access_token").ok_or(Error::InvalidResponse("no access_token"))?;
    let token_type = text("token_type").ok_or(Error::InvalidResponse("no token_type"))?;
    // RFC 6749 §7.1: a client must not use a token whose type it does not
    // understand; the type name is case-insensitive (§5.1).
    if !token_type.eq_ignore_ascii_case("bearer") {
        return Err(Error::InvalidResponse("token_type is not Bearer"));
    }
    let schedule = renewal.schedule(sent_at, expires_in(&fields));
    // §5.1: the scope may be left out when it is the one requested.
    let scope = text("scope").or(requested_scope).map(str::to_string);
    Ok(IssuedTokens {
        access: AccessToken::new(access_token, scope, schedule)?,
        refresh: text("refresh_token")
            .filter(|token| !token.is_empty())
            .map(SecretString::from),
    })
}

/// `expires_in` in seconds: a number, or (as some servers send it) a string
/// of digits. A negative or fractional number counts as what it rounds down
/// to, at least zero; anything else as unknown.
fn expires_in(fields: &Map<String, Value>) -> Option<u64> {
    match fields.get("expires_in")? {
        Value::Number(number) => number.as_u64().or_else(|| {
            number
                .as_f64()
                .filter(|s| s.is_finite())
                .map(|s| s.max(0.0) as u64)
        }),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

/// The error a non-200 answer stands for. An OAuth error with a 4xx status
/// is a refusal (not retried); everything else is a status error that may
/// carry the OAuth error it came with.
pub(crate) fn refusal(status: StatusCode, retry_after: Option<std::time::Duration>, body: &[u8]) -> Error {
    let oauth_error = oauth_error(status, body);
    match oauth_error {
        Some(error) if status.is_client_error() && !is_retryable_status(status) => Error::OAuth(error),
        oauth_error => Error::Status {
            status,
            retry_after,
            oauth_error,
        },
    }
}

/// The RFC 6749 §5.2 error in `body`, if it is one.
fn oauth_error(status: StatusCode, body: &[u8]) -> Option<OAuthError> {
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(body) else {
        return None;
    };
    let code = fields.get("error").and_then(Value::as_str)?;
    let description = fields.get("error_description").and_then(Value::as_str);
    Some(OAuthError::new(status, code, description))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use secrecy::ExposeSecret;
    use serde_json::json;

    use super::*;
    use crate::error::ErrorCode;

    /// `body` served with `status` by a real (loopback) HTTP exchange is what
    /// `token_response` needs; this builds the same from parts.
    fn response(status: u16, body: &str) -> Response {
        let response = http::Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(body.to_string())
            .unwrap();
        Response::from(response)
    }

    async fn parse(status: u16, body: Value) -> Result<IssuedTokens, Error> {
        token_response(
            response(status, &body.to_string()),
            Instant::now(),
            &RenewalPolicy::default(),
            Some("read"),
        )
        .await
    }

    #[tokio::test]
    async fn a_token_response() {
        let sent = Instant::now();
        let issued = parse(
            200,
            json!({"access_token": "at", "token_type": "bearer", "expires_in": 3600,
                   "refresh_token": "rt", "scope": "read write"}),
        )
        .await
        .unwrap();
        assert_eq!(issued.access.secret().expose_secret(), "at");
        assert_eq!(issued.access.scope(), Some("read write"));
        let lifetime = issued.access.expires_at() - sent;
        assert!(lifetime >= Duration::from_secs(3599) && lifetime < Duration::from_secs(3600));
        assert_eq!(issued.refresh.unwrap().expose_secret(), "rt");
    }

    #[tokio::test]
    async fn the_scope_defaults_to_the_one_requested() {
        let issued = parse(200, json!({"access_token": "at", "token_type": "Bearer"}))
            .await
            .unwrap();
        assert_eq!(issued.access.scope(), Some("read"));
        assert!(issued.refresh.is_none());
    }

    #[test]
    fn expires_in_is_read_leniently() {
        let read = |value: Value| expires_in(json!({ "expires_in": value }).as_object().unwrap());
        assert_eq!(read(json!(60)), Some(60));
        assert_eq!(read(json!("60")), Some(60));
        assert_eq!(read(json!(59.9)), Some(59));
        assert_eq!(read(json!(-5)), Some(0));
        assert_eq!(read(json!("soon")), None);
        assert_eq!(read(json!(null)), None);
        assert_eq!(expires_in(&Map::new()), None);
    }

    #[tokio::test]
    async fn unusable_token_responses_never_quote_the_body() {
        for body in [
            json!("eyJ-secret-token"),
            json!({"token_type": "Bearer"}),
            json!({"access_token": "eyJ-secret-token"}),
            json!({"access_token": "eyJ-secret-token", "token_type": "mac"}),
            json!({"access_token": 42, "token_type": "Bearer"}),
            json!({"access_token": "eyJ secret token", "token_type": "Bearer"}),
        ] {
            let error = parse(200, body.clone()).await.err().unwrap();
            assert!(matches!(error, Error::InvalidResponse(_)), "{body}: {error:?}");
            assert!(!format!("{error} {error:?}").contains("secret"), "{error}");
        }
        let error = token_response(
            response(200, "not json eyJ-secret"),
            Instant::now(),
            &RenewalPolicy::default(),
            None,
        )
        .await
        .err()
        .unwrap();
        assert!(!error.to_string().contains("secret"), "{error}");
    }

    #[tokio::test]
    async fn oauth_errors_are_typed() {
        let error = parse(
            401,
            json!({"error": "invalid_client", "error_description": "unknown client"}),
        )
        .await
        .err()
        .unwrap();
        let Error::OAuth(oauth) = &error else {
            panic!("{error:?}")
        };
        assert_eq!(oauth.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(oauth.error(), &ErrorCode::InvalidClient);
        assert_eq!(oauth.error_description(), Some("unknown client"));
    }

    #[tokio::test]
    async fn other_statuses_keep_what_they_said() {
        let error = parse(
            503,
            json!({"error": "temporarily_unavailable", "error_description": "db down"}),
        )
        .await
        .err()
        .unwrap();
        match &error {
            Error::Status {
                status,
                oauth_error: Some(oauth),
                ..
            } => {
                assert_eq!(*status, StatusCode::SERVICE_UNAVAILABLE);
                assert_eq!(oauth.error().as_str(), "temporarily_unavailable");
            }
            other => panic!("{other:?}"),
        }
        assert!(error.is_transient());
        let not_found = token_response(
            response(404, "<html>"),
            Instant::now(),
            &RenewalPolicy::default(),
            None,
        )
        .await
        .err()
        .unwrap();
        assert!(
            matches!(
                not_found,
                Error::Status {
                    status: StatusCode::NOT_FOUND,
                    oauth_error: None,
                    ..
                }
            ),
            "{not_found:?}"
        );
        assert!(!not_found.is_transient());
    }
}
