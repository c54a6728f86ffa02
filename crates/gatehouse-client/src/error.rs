//! What can go wrong while getting a token, as types a caller can match on.
//!
//! Nothing secret ever reaches these messages: no client secret, password or
//! token is part of any variant. What the authorization server said about an
//! error (`error`, `error_description`) is kept, cleaned of control characters
//! and shortened, because it is what tells the caller what to fix.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;

/// The `error` code of an OAuth error response (RFC 6749 §5.2).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// `invalid_request`: a parameter is missing, repeated, or malformed.
    InvalidRequest,
    /// `invalid_client`: client authentication failed (unknown client, wrong
    /// secret, unsupported authentication method).
    InvalidClient,
    /// `invalid_grant`: the username and password, or the refresh token, are
    /// invalid, expired or revoked.
    InvalidGrant,
    /// `unauthorized_client`: this client may not use this grant type.
    UnauthorizedClient,
    /// `unsupported_grant_type`: the server does not support the grant type.
    UnsupportedGrantType,
    /// `invalid_scope`: the scope is unknown, malformed, or wider than allowed.
    InvalidScope,
    /// Any other code, such as `server_error` or `temporarily_unavailable`.
    Other(String),
}

impl ErrorCode {
    /// The code as it appears on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidClient => "invalid_client",
            ErrorCode::InvalidGrant => "invalid_grant",
            ErrorCode::UnauthorizedClient => "unauthorized_client",
            ErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            ErrorCode::InvalidScope => "invalid_scope",
            ErrorCode::Other(code) => code,
        }
    }

    pub(crate) fn parse(code: &str) -> ErrorCode {
        let code = printable(code, MAX_CODE_CHARS);
        match code.as_str() {
            "invalid_request" => ErrorCode::InvalidRequest,
            "invalid_client" => ErrorCode::InvalidClient,
            "invalid_grant" => ErrorCode::InvalidGrant,
            "unauthorized_client" => ErrorCode::UnauthorizedClient,
            "unsupported_grant_type" => ErrorCode::UnsupportedGrantType,
            "invalid_scope" => ErrorCode::InvalidScope,
            _ => ErrorCode::Other(code),
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How much of a server-supplied text an error keeps.
const MAX_CODE_CHARS: usize = 64;
const MAX_DESCRIPTION_CHARS: usize = 300;

/// Keeps the printable characters of `text`, at most `max` of them: RFC 6749
/// §5.2 allows only printable ASCII in these fields, and anything else would
/// end up in the caller's logs.
fn printable(text: &str, max: usize) -> String {
    text.chars().filter(|c| !c.is_control()).take(max).collect()
}

/// An error response of the authorization server (RFC 6749 §5.2): the
/// request was understood and refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OAuthError {
    status: StatusCode,
    error: ErrorCode,
    error_description: Option<String>,
}

impl OAuthError {
    pub(crate) fn new(status: StatusCode, error: &str, error_description: Option<&str>) -> Self {
        OAuthError {
            status,
            error: ErrorCode::parse(error),
            error_description: error_description.map(|text| printable(text, MAX_DESCRIPTION_CHARS)),
        }
    }

    /// The HTTP status of the response (400 or 401 for the errors of §5.2).
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The `error` code.
    pub fn error(&self) -> &ErrorCode {
        &self.error
    }

    /// The `error_description`, when the server gave one.
    pub fn error_description(&self) -> Option<&str> {
        self.error_description.as_deref()
    }
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.error)?;
        if let Some(description) = &self.error_description {
            write!(f, " ({description})")?;
        }
        Ok(())
    }
}

/// Why a [`Session`](crate::Session) can no longer produce tokens. Every one
/// of them means the same to the caller: log in again.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionEnd {
    /// The server refused the refresh token (`invalid_grant`): it expired, was
    /// revoked, or its login was revoked because a rotated-out refresh token
    /// was presented again (RFC 9700 §4.14.2).
    RefreshRefused(OAuthError),
    /// The access token expired and the login came without a refresh token
    /// (the client lacks the `refresh_token` grant).
    NoRefreshToken,
    /// [`Session::logout`](crate::Session::logout) was called.
    LoggedOut,
}

impl fmt::Display for SessionEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionEnd::RefreshRefused(error) => write!(f, "the refresh token was refused: {error}"),
            SessionEnd::NoRefreshToken => f.write_str("the token expired and no refresh token was issued"),
            SessionEnd::LoggedOut => f.write_str("logged out"),
        }
    }
}

/// Everything the token source, the session and the middleware can fail with.
///
/// `Clone`, because one failed renewal is the answer to every caller that was
/// waiting for it.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration cannot work: a malformed URL, plain HTTP to a host
    /// that is not loopback, an HTTP client that cannot be built.
    #[error("invalid configuration: {0}")]
    Config(String),

    /// The issuer's metadata (RFC 8414) could not be used.
    #[error("authorization server metadata: {0}")]
    Discovery(String),

    /// The request did not get an HTTP response (connection refused, reset,
    /// timed out), through every attempt the retry policy allowed.
    #[error("no response from the authorization server: {0}")]
    Transport(#[source] Arc<reqwest::Error>),

    /// The server refused the request with an OAuth error (RFC 6749 §5.2).
    /// Not retried: the same request would be refused again.
    #[error("the authorization server refused the request: {0}")]
    OAuth(OAuthError),

    /// An HTTP status that is not a token response nor an OAuth refusal: a
    /// 429 or 5xx that outlasted the retry policy, or something unexpected
    /// (a 404 from a wrong URL, a redirect).
    #[error("the authorization server answered HTTP {status}")]
    Status {
        /// The status of the last response.
        status: StatusCode,
        /// What its `Retry-After` asked for, if anything.
        retry_after: Option<Duration>,
        /// The OAuth error in its body, if it had one (`server_error`,
        /// `temporarily_unavailable`, ...).
        oauth_error: Option<OAuthError>,
    },

    /// A 200 whose body is not a usable token response (RFC 6749 §5.1).
    #[error("the token response is unusable: {0}")]
    InvalidResponse(&'static str),

    /// [`Session::token`](crate::Session::token) before any
    /// [`Session::login`](crate::Session::login).
    #[error("not logged in")]
    NotLoggedIn,

    /// The session is over; log in again.
    #[error("the session has ended: {0}")]
    SessionEnded(SessionEnd),

    /// A `private_key_jwt` assertion could not be signed (the system's random
    /// number generator failed).
    #[error("cannot sign the client assertion")]
    ClientAssertion,

    /// A renewal stopped before it had a result: its task panicked or the
    /// runtime is shutting down.
    #[error("the token renewal was interrupted")]
    Interrupted,
}

impl Error {
    /// The OAuth error the server answered with, if that is what this is.
    pub fn oauth_error(&self) -> Option<&OAuthError> {
        match self {
            Error::OAuth(error) => Some(error),
            Error::Status { oauth_error, .. } => oauth_error.as_ref(),
            Error::SessionEnded(SessionEnd::RefreshRefused(error)) => Some(error),
            _ => None,
        }
    }

    /// Whether the failure may go away by itself: no response, or a 429 or
    /// 5xx. Configuration errors and OAuth refusals will not.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Transport(_) | Error::Interrupted => true,
            Error::Status { status, .. } => crate::retry::is_retryable_status(*status),
            _ => false,
        }
    }

    /// Whether a cached token must be dropped with this failure: the login it
    /// belongs to is over.
    pub(crate) fn ends_session(&self) -> bool {
        matches!(self, Error::SessionEnded(_) | Error::NotLoggedIn)
    }

    pub(crate) fn transport(error: reqwest::Error) -> Self {
        Error::Transport(Arc::new(error))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_codes_are_typed_and_others_kept() {
        let error = OAuthError::new(StatusCode::UNAUTHORIZED, "invalid_client", Some("bad secret"));
        assert_eq!(error.error(), &ErrorCode::InvalidClient);
        assert_eq!(error.error_description(), Some("bad secret"));
        assert_eq!(error.to_string(), "invalid_client (bad secret)");
        let other = OAuthError::new(StatusCode::BAD_REQUEST, "slow_down", None);
        assert_eq!(other.error(), &ErrorCode::Other("slow_down".into()));
        assert_eq!(other.to_string(), "slow_down");
    }

    #[test]
    fn server_text_is_cleaned_and_bounded() {
        let long = "x".repeat(10_000);
        let error = OAuthError::new(
            StatusCode::BAD_REQUEST,
            "invalid_grant\n",
            Some(&format!("a\r\nb{long}")),
        );
        assert_eq!(error.error(), &ErrorCode::InvalidGrant);
        let description = error.error_description().unwrap();
        assert!(description.starts_with("abx"), "{description}");
        assert_eq!(description.chars().count(), MAX_DESCRIPTION_CHARS);
    }

    #[test]
    fn transient_means_retryable() {
        let status = |status| Error::Status {
            status,
            retry_after: None,
            oauth_error: None,
        };
        assert!(status(StatusCode::SERVICE_UNAVAILABLE).is_transient());
        assert!(status(StatusCode::TOO_MANY_REQUESTS).is_transient());
        assert!(!status(StatusCode::NOT_FOUND).is_transient());
        let refused = Error::OAuth(OAuthError::new(StatusCode::BAD_REQUEST, "invalid_scope", None));
        assert!(!refused.is_transient());
        assert!(refused.oauth_error().is_some());
    }
}
