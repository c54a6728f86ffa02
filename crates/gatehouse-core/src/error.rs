//! The errors of the protocol: the error codes of RFC 6749 section 5.2, and the
//! failures of storage that the protocol has to answer for.

use std::borrow::Cow;

/// A refusal the token endpoint sends back, with the RFC's error code.
///
/// The description is what the client sees: it never holds a secret, a token or an
/// internal cause.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OAuthError {
    /// RFC 6749 §5.2: "The request is missing a required parameter, includes an
    /// unsupported parameter value (other than grant type), repeats a parameter,
    /// includes multiple credentials, utilizes more than one mechanism for
    /// authenticating the client, or is otherwise malformed."
    #[error("invalid_request: {0}")]
    InvalidRequest(Cow<'static, str>),

    /// RFC 6749 §5.2: "Client authentication failed (e.g., unknown client, no client
    /// authentication included, or unsupported authentication method)." Answered with
    /// 401, and `WWW-Authenticate` naming the scheme the client tried (`basic`).
    #[error("invalid_client: {description}")]
    InvalidClient {
        /// What the client sees.
        description: Cow<'static, str>,
        /// Whether the client authenticated with HTTP Basic.
        basic: bool,
        /// Whether no client has the presented id. The standard endpoints answer this
        /// exactly like a wrong secret; a `[[routes]]` entry may answer it apart
        /// (`unknown_client_status`, `docs/migrating.md`).
        unknown_client: bool,
    },

    /// RFC 6749 §5.2: "The provided authorization grant (e.g., authorization code,
    /// resource owner credentials) or refresh token is invalid, expired, revoked, does
    /// not match the redirection URI used in the authorization request, or was issued
    /// to another client."
    #[error("invalid_grant: {0}")]
    InvalidGrant(Cow<'static, str>),

    /// RFC 6749 §5.2: "The authenticated client is not authorized to use this
    /// authorization grant type."
    #[error("unauthorized_client: {0}")]
    UnauthorizedClient(Cow<'static, str>),

    /// RFC 6749 §5.2: "The authorization grant type is not supported by the
    /// authorization server."
    #[error("unsupported_grant_type: {0}")]
    UnsupportedGrantType(Cow<'static, str>),

    /// RFC 6749 §5.2: "The requested scope is invalid, unknown, malformed, or exceeds
    /// the scope granted by the resource owner."
    #[error("invalid_scope: {0}")]
    InvalidScope(Cow<'static, str>),

    /// `invalid_grant` again (RFC 6749 §5.2: "The provided authorization grant (e.g.,
    /// ... resource owner credentials) ... is invalid"), for a password grant whose
    /// credentials were checked and refused: unknown user, wrong password or disabled
    /// user, which the client cannot tell apart. A variant of its own so that the
    /// server's login brake counts exactly these, without reading error codes.
    #[error("invalid_grant: {}", LOGIN_FAILED)]
    LoginFailed,

    /// RFC 6749 §4.1.2.1: "The authorization server encountered an unexpected condition
    /// that prevented it from fulfilling the request." The client sees a fixed
    /// sentence; the [`Cause`] is for the server's log.
    #[error("server_error")]
    ServerError(#[source] Cause),

    /// RFC 6749 §4.1.2.1: "The authorization server is currently unable to handle the
    /// request due to a temporary overloading or maintenance of the server." Sent when
    /// the database cannot be reached; the [`Cause`] is for the server's log.
    #[error("temporarily_unavailable")]
    TemporarilyUnavailable(#[source] Cause),

    /// `temporarily_unavailable` again (RFC 6749 §4.1.2.1, "temporary overloading"),
    /// for a request that needs a slow password hash when every slot for one is busy
    /// (see [`crate::SlowHashGate`]). Answered with 503 and `Retry-After`.
    #[error("temporarily_unavailable (overloaded)")]
    Overloaded,
}

/// The description of [`OAuthError::LoginFailed`]: one sentence for an unknown user, a
/// wrong password and a disabled user, so that none can be told from another.
const LOGIN_FAILED: &str = "The username or password is incorrect.";

/// Why the server could not serve a request: for the operator's log, never for the
/// client (it may name a table, a file or a host).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Cause(Cow<'static, str>);

impl From<&'static str> for Cause {
    fn from(cause: &'static str) -> Self {
        Self(Cow::Borrowed(cause))
    }
}

impl From<String> for Cause {
    fn from(cause: String) -> Self {
        Self(Cow::Owned(cause))
    }
}

impl OAuthError {
    /// `server_error`, for `cause`.
    pub fn server_error(cause: impl Into<Cause>) -> Self {
        Self::ServerError(cause.into())
    }

    /// `temporarily_unavailable` (the database), for `cause`.
    pub fn temporarily_unavailable(cause: impl Into<Cause>) -> Self {
        Self::TemporarilyUnavailable(cause.into())
    }

    /// Why the server failed, for a `server_error` or `temporarily_unavailable`: what
    /// the log says, never the answer.
    pub fn cause(&self) -> Option<&Cause> {
        match self {
            Self::ServerError(cause) | Self::TemporarilyUnavailable(cause) => Some(cause),
            _ => None,
        }
    }

    /// `invalid_request` with a fixed description.
    pub fn invalid_request(description: &'static str) -> Self {
        Self::InvalidRequest(Cow::Borrowed(description))
    }

    /// `invalid_client`; `basic` says whether HTTP Basic was used.
    pub fn invalid_client(description: &'static str, basic: bool) -> Self {
        Self::InvalidClient {
            description: Cow::Borrowed(description),
            basic,
            unknown_client: false,
        }
    }

    /// Whether this is `invalid_client` because no client has the presented id.
    pub fn is_unknown_client(&self) -> bool {
        matches!(
            self,
            Self::InvalidClient {
                unknown_client: true,
                ..
            }
        )
    }

    /// The RFC 6749 error code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) => "invalid_request",
            Self::InvalidClient { .. } => "invalid_client",
            Self::InvalidGrant(_) | Self::LoginFailed => "invalid_grant",
            Self::UnauthorizedClient(_) => "unauthorized_client",
            Self::UnsupportedGrantType(_) => "unsupported_grant_type",
            Self::InvalidScope(_) => "invalid_scope",
            Self::ServerError(_) => "server_error",
            Self::TemporarilyUnavailable(_) | Self::Overloaded => "temporarily_unavailable",
        }
    }

    /// The `error_description` the client sees.
    pub fn description(&self) -> &str {
        match self {
            Self::InvalidRequest(d)
            | Self::InvalidGrant(d)
            | Self::UnauthorizedClient(d)
            | Self::UnsupportedGrantType(d)
            | Self::InvalidScope(d) => d,
            Self::InvalidClient { description, .. } => description,
            Self::LoginFailed => LOGIN_FAILED,
            Self::ServerError(_) => "The server encountered an unexpected condition.",
            Self::TemporarilyUnavailable(_) => {
                "The server cannot reach its database right now; try again shortly."
            }
            Self::Overloaded => {
                "The server is busy checking other credentials; retry after the seconds in Retry-After."
            }
        }
    }
}

/// A failure of a store. The message is for the log, never for a client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached (connection refused or lost, pool exhausted,
    /// locked beyond the busy timeout). Answered with 503.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A uniqueness rule was broken (a client id that already exists, say).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The database aborted a transaction to break a lock cycle or a serialization
    /// conflict with another; running it again succeeds. Answered with 503 when the
    /// store's own retries run out.
    #[error("transaction aborted by contention: {0}")]
    Contention(String),
    /// Anything else: a bug or corrupt data. Answered with 500.
    #[error("database error: {0}")]
    Other(String),
}

impl From<StoreError> for OAuthError {
    fn from(err: StoreError) -> Self {
        let cause = Cause::from(err.to_string());
        match err {
            StoreError::Unavailable(_) | StoreError::Contention(_) => Self::TemporarilyUnavailable(cause),
            StoreError::Conflict(_) | StoreError::Other(_) => Self::ServerError(cause),
        }
    }
}
