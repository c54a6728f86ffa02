//! gatehouse-client: the caller's side of OAuth 2.0 (`docs/client.md`). It keeps a
//! valid access token at hand, from client credentials (RFC 6749 §4.4) or
//! from a user's password login kept alive with refresh tokens (§4.3, §6),
//! and adds it to `reqwest` requests. It works with any RFC 6749 server;
//! gatehouse is the one it is tested against.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use gatehouse_client::{ClientCredentials, OAuthClient, SecretString, TokenEndpoint, TokenParams};
//!
//! let client = OAuthClient::builder(
//!     TokenEndpoint::discover("https://auth.example.com")?,
//!     ClientCredentials::new("reporting", SecretString::from(std::env::var("CLIENT_SECRET")?)),
//! )
//! .build()?;
//! let source = client.token_source(TokenParams::new().scope("read"));
//! let api = gatehouse_client::authorized_client(reqwest::Client::new(), source);
//! let cities = api.get("https://api.example.com/v3/cities").send().await?;
//! # Ok(()) }
//! ```
//!
//! # Design
//!
//! **Renewal.** A cached token is renewed ahead of its expiry: by default at
//! 80 % of its lifetime or 30 s before it ends, whichever is earlier, but
//! never before half of it has passed (else a 20 s token would be renewed
//! on every call). Lifetimes count from when the request was sent, and the
//! last second of `expires_in` is never used, because servers round expiry
//! to whole seconds. Expiry uses `tokio::time::Instant`, so tests can pause
//! time. See [`RenewalPolicy`].
//!
//! **Single flight.** However many callers ask at once, one request renews a
//! token. While the cached token is still valid but due, one caller starts
//! the renewal in the background and everyone, that caller included, keeps
//! using the valid token; when there is none, everyone waits for the same
//! renewal, and its error, if it fails, is everyone's answer. A renewal runs
//! as a task of its own: a caller that gives up does not cancel it for the
//! others.
//!
//! **Retries.** Transient failures (no response, 408, 429, 5xx) are retried
//! with exponential backoff and jitter, honouring `Retry-After` (seconds or
//! HTTP-date), within a bounded number of attempts and a bounded total wait.
//! OAuth refusals (400/401 with an `error`) are never retried: they come back
//! as [`Error::OAuth`] with the server's `error` and `error_description`. See
//! [`RetryPolicy`].
//!
//! **Rejected tokens.** When the API answers 401, the token is replaced once
//! and the request retried once ([`BearerAuth`]; a streamed body cannot be
//! sent again, so such a request gets the 401, and the next one the
//! replacement). The replacement is keyed
//! to the token that failed: fifty requests refused with one token cause one
//! renewal, and a request refused with a token that was already replaced
//! just gets the replacement.
//!
//! **Cache key.** A token is cached under everything that changes it: the
//! token endpoint, the client id, the scope (normalised: order and repeats
//! do not matter) and the audience. A token asked for scope A is never
//! served for scope B, the mistake behind a security advisory of
//! Duende.AccessTokenManagement. One [`TokenSource`] serves any number of
//! scopes and audiences ([`TokenSource::token_for`]). `scope` is sent as the
//! RFC 6749 parameter, `audience` as an `audience` form parameter, which
//! servers that do not use it ignore (gatehouse among them: a client's
//! audience is fixed when it is created).
//!
//! **Sessions.** A [`Session`] logs a user in with the password grant and
//! keeps the refresh token, storing the rotated one from every refresh
//! before handing out the new access token. A refused refresh token
//! (`invalid_grant`) ends the session ([`Error::SessionEnded`]); it is never
//! presented again, and the password is never kept.
//!
//! **Runtime.** Renewals run as tokio tasks, so the token source, the session
//! and the middleware are used from within a tokio runtime (as reqwest is).
//!
//! **Secrets.** Client secrets, passwords and tokens live in
//! [`SecretString`] or in types whose `Debug` prints `[redacted]`; none of
//! them is logged or put into an error message. Plain HTTP is refused except
//! to loopback addresses (RFC 6749 §3.2 requires TLS), unless explicitly
//! allowed. Client authentication is `client_secret_basic` by default, with
//! RFC 6749 §2.3.1's form-encoding of id and secret, or `client_secret_post`.
//!
//! **Clients without secrets.** [`ClientCredentials::private_key_jwt`] signs a
//! new assertion (RFC 7523 §2.2) for every request, retries included: `aud` is the
//! URL of the endpoint it goes to, `exp` a minute after `iat`, `jti` 128 random
//! bits, because servers refuse an assertion they have seen before.
//! [`ClientCredentials::tls_client_auth`] names the client and lets the TLS client
//! certificate ([`OAuthClientBuilder::client_certificate_pem`]) prove it (RFC 8705
//! §2); the same certificate gets certificate-bound access tokens (RFC 8705 §3)
//! with any credentials. The key and the certificate's key never appear in
//! `Debug` output or errors.
#![warn(missing_docs)]
// Tests may unwrap: a panic there is a failed test (the workspace lint is for the rest).
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod assertion;
mod cell;
mod client;
mod credentials;
mod endpoint;
mod error;
mod middleware;
mod params;
mod renewal;
mod response;
mod retry;
mod session;
mod source;
mod token;
mod token_request;

pub use assertion::PrivateKey;
pub use client::{OAuthClient, OAuthClientBuilder};
pub use credentials::{ClientAuthMethod, ClientCredentials};
pub use endpoint::TokenEndpoint;
pub use error::{Error, ErrorCode, OAuthError, SessionEnd};
pub use middleware::{authorized_client, BearerAuth, TokenProvider};
pub use params::TokenParams;
pub use renewal::RenewalPolicy;
pub use retry::RetryPolicy;
pub use secrecy::{ExposeSecret, SecretString};
pub use session::Session;
pub use source::TokenSource;
pub use token::AccessToken;
