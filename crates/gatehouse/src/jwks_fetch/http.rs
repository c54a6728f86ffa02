//! One fetch of a client's JWK Set over HTTP: bounded in time and size, no redirects,
//! no proxy, and (unless `allow_insecure_jwks_uri`) https to public addresses only.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use gatehouse_core::client_jwks::MAX_JWKS_BYTES;
use gatehouse_core::ClientKeySet;
use reqwest::header::ACCEPT;
use reqwest::StatusCode;

use super::address::{literal_host_is_public, AddressError, PublicOnlyResolver};
use super::parse_jwks_uri;

/// The whole fetch: connection, request, and the body to its last byte.
pub(crate) const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// Establishing the connection (TCP and TLS) alone.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Why a client's keys could not be fetched. [`FetchError::description`] is what the
/// client is told; `Display` is for the log (never the response body).
#[derive(Debug, thiserror::Error)]
pub(crate) enum FetchError {
    /// The registered URI breaks the rules of [`super::check_jwks_uri`].
    #[error("jwks_uri refused: {0}")]
    Uri(String),
    /// The host is, or resolves only to, an address that is not public.
    #[error("the host has no public address")]
    NotPublic,
    /// The host name could not be resolved.
    #[error("cannot resolve the host: {0}")]
    Lookup(String),
    /// No connection or no complete answer.
    #[error("cannot fetch: {0}")]
    Unreachable(String),
    /// Not done within [`FETCH_TIMEOUT`].
    #[error("no complete answer within {FETCH_TIMEOUT:?}")]
    Timeout,
    /// A 3xx answer: redirects are not followed.
    #[error("redirect ({0}), not followed")]
    Redirect(u16),
    /// Any status but 200 and 3xx.
    #[error("status {0}")]
    Status(u16),
    /// The body is over [`MAX_JWKS_BYTES`].
    #[error("the body is over {MAX_JWKS_BYTES} bytes")]
    TooLarge,
    /// The body is not a JWK Set [`ClientKeySet::parse`] accepts.
    #[error("not a usable JWK Set: {0}")]
    Invalid(String),
    /// Too many fetches are under way on this server.
    #[error("too many fetches under way")]
    Busy,
}

impl FetchError {
    /// The `invalid_client` description: what went wrong, in terms of what the client
    /// controls, with no address, body or internal error.
    pub(crate) fn description(&self) -> &'static str {
        match self {
            Self::Uri(_) => "The client's jwks_uri is not allowed.",
            Self::NotPublic => "The client's jwks_uri does not name a public host.",
            Self::Lookup(_) => "The client's jwks_uri host cannot be resolved.",
            Self::Unreachable(_) => "The client's jwks_uri cannot be reached.",
            Self::Timeout => "The client's jwks_uri did not answer in time.",
            Self::Redirect(_) => "The client's jwks_uri answered with a redirect, which is not followed.",
            Self::Status(_) => "The client's jwks_uri did not answer 200 OK.",
            Self::TooLarge => "The client's JWK Set is larger than 64 KiB.",
            Self::Invalid(_) => "The client's jwks_uri did not return a usable JWK Set.",
            Self::Busy => "The client's keys cannot be fetched right now.",
        }
    }

    /// Names what reqwest failed at; a refusal of [`PublicOnlyResolver`] is found in
    /// the error's sources.
    fn from_reqwest(err: reqwest::Error) -> Self {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&err);
        while let Some(cause) = source {
            match cause.downcast_ref::<AddressError>() {
                Some(AddressError::NotPublic) => return Self::NotPublic,
                Some(AddressError::Lookup(e)) => return Self::Lookup(e.to_string()),
                None => source = cause.source(),
            }
        }
        if err.is_timeout() {
            return Self::Timeout;
        }
        Self::Unreachable(error_chain(&err))
    }
}

/// `err` and its sources, for the log.
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Where client keys come from: HTTP in the server, a fake in the cache's tests.
#[async_trait]
pub(crate) trait KeySource: Send + Sync {
    /// The JWK Set at `uri`.
    async fn fetch(&self, uri: &str) -> Result<ClientKeySet, FetchError>;
}

/// Fetches JWK Sets with reqwest.
pub(crate) struct HttpSource {
    client: reqwest::Client,
    allow_insecure: bool,
}

impl HttpSource {
    /// A fetcher; `allow_insecure` lifts the https and the public-address rules.
    pub(crate) fn new(allow_insecure: bool) -> Result<Self, reqwest::Error> {
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!(
                "gatehouse/",
                env!("CARGO_PKG_VERSION"),
                " (client jwks_uri)"
            ))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(FETCH_TIMEOUT)
            .https_only(!allow_insecure);
        if !allow_insecure {
            builder = builder.dns_resolver(Arc::new(PublicOnlyResolver));
        }
        Ok(Self {
            client: builder.build()?,
            allow_insecure,
        })
    }

    async fn get(&self, url: url::Url) -> Result<ClientKeySet, FetchError> {
        let mut response = self
            .client
            .get(url)
            .header(ACCEPT, "application/jwk-set+json, application/json")
            .send()
            .await
            .map_err(FetchError::from_reqwest)?;
        let status = response.status();
        if status.is_redirection() {
            return Err(FetchError::Redirect(status.as_u16()));
        }
        if status != StatusCode::OK {
            return Err(FetchError::Status(status.as_u16()));
        }
        if response
            .content_length()
            .is_some_and(|length| length > MAX_JWKS_BYTES as u64)
        {
            return Err(FetchError::TooLarge);
        }
        // Read chunk by chunk and stop at the limit: a body without a length (or
        // with a false one) is never held beyond it.
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(FetchError::from_reqwest)? {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err(FetchError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        let text =
            String::from_utf8(body).map_err(|_| FetchError::Invalid("the body is not UTF-8".into()))?;
        ClientKeySet::parse(&text).map_err(FetchError::Invalid)
    }
}

#[async_trait]
impl KeySource for HttpSource {
    async fn fetch(&self, uri: &str) -> Result<ClientKeySet, FetchError> {
        let url = parse_jwks_uri(uri, self.allow_insecure).map_err(FetchError::Uri)?;
        if !self.allow_insecure && !literal_host_is_public(&url) {
            return Err(FetchError::NotPublic);
        }
        // reqwest's own timeout covers the same; this one also bounds anything
        // between its pieces, and is the one the tests see.
        tokio::time::timeout(FETCH_TIMEOUT, self.get(url))
            .await
            .unwrap_or(Err(FetchError::Timeout))
    }
}
