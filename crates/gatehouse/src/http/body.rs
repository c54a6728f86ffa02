//! Reading a request body within bounds, and telling whether it is labelled JSON: the
//! one way every endpoint does it (the OAuth endpoints' forms, the admin API's and
//! registration's JSON), each wording the refusal in its own error format.

use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderMap};

/// The largest JSON body the admin API and registration read: 64 KiB, far above any
/// real client, user or metadata document.
pub const MAX_JSON_BODY_BYTES: usize = 64 * 1024;

/// Why a body was not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyError {
    /// It did not arrive within the time allowed (a client trickling it a byte at a
    /// time gets 408, not a task held forever).
    Timeout,
    /// It is larger than the endpoint accepts (413).
    TooLarge,
    /// The connection failed while it arrived.
    Unreadable,
}

/// Reads `body`, at most `limit` bytes, within `timeout`.
pub async fn read_limited(body: Body, limit: usize, timeout: Duration) -> Result<Vec<u8>, BodyError> {
    let read = tokio::time::timeout(timeout, axum::body::to_bytes(body, limit));
    match read.await.map_err(|_| BodyError::Timeout)? {
        Ok(bytes) => Ok(bytes.to_vec()),
        Err(err) => {
            let too_large =
                std::error::Error::source(&err).is_some_and(|e| e.is::<http_body_util::LengthLimitError>());
            Err(if too_large {
                BodyError::TooLarge
            } else {
                BodyError::Unreadable
            })
        }
    }
}

/// Whether a request's `Content-Type` is `application/json` or a structured
/// `application/*+json` type (RFC 6839 §3.1), parameters (a charset) aside; `None`
/// when it has none.
pub fn is_json(headers: &HeaderMap) -> Option<bool> {
    let value = headers.get(header::CONTENT_TYPE)?;
    let Ok(value) = value.to_str() else {
        return Some(false);
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    Some(
        essence == "application/json"
            || essence
                .strip_prefix("application/")
                .and_then(|subtype| subtype.strip_suffix("+json"))
                .is_some_and(|name| !name.is_empty() && !name.contains('/')),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_content_types() {
        let of = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, value.parse().unwrap());
            is_json(&headers)
        };
        assert_eq!(is_json(&HeaderMap::new()), None);
        for json in [
            "application/json",
            "Application/JSON; charset=utf-8",
            "application/merge-patch+json",
        ] {
            assert_eq!(of(json), Some(true), "{json}");
        }
        for other in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "application/+json",
            "text/json",
            "application/jsonx",
        ] {
            assert_eq!(of(other), Some(false), "{other}");
        }
    }
}
