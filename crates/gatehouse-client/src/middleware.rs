//! The reqwest integration: every request gets `Authorization: Bearer …`
//! (RFC 6750 §2.1), and a 401 gets one renewal and one retry.

use async_trait::async_trait;
use http::header::AUTHORIZATION;
use http::{Extensions, StatusCode};
use reqwest::{Request, Response};
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware, Middleware, Next};

use crate::error::Error;
use crate::session::Session;
use crate::source::TokenSource;
use crate::token::AccessToken;

/// Something that hands out access tokens and replaces one the API refused:
/// a [`TokenSource`] (its default scope and audience) or a [`Session`].
#[async_trait]
pub trait TokenProvider: Send + Sync + 'static {
    /// A valid token.
    async fn token(&self) -> Result<AccessToken, Error>;

    /// A replacement for `rejected`, which the API answered 401 to.
    async fn renew_rejected(&self, rejected: &AccessToken) -> Result<AccessToken, Error>;
}

#[async_trait]
impl TokenProvider for TokenSource {
    async fn token(&self) -> Result<AccessToken, Error> {
        TokenSource::token(self).await
    }

    async fn renew_rejected(&self, rejected: &AccessToken) -> Result<AccessToken, Error> {
        TokenSource::renew_rejected(self, rejected).await
    }
}

#[async_trait]
impl TokenProvider for Session {
    async fn token(&self) -> Result<AccessToken, Error> {
        Session::token(self).await
    }

    async fn renew_rejected(&self, rejected: &AccessToken) -> Result<AccessToken, Error> {
        Session::renew_rejected(self, rejected).await
    }
}

/// A [`reqwest_middleware::Middleware`] that adds the provider's token to
/// every request that has no `Authorization` header of its own.
///
/// On a 401 it gets a replacement for the token that was refused (one
/// renewal however many requests fail with that token at once) and sends
/// the request once more, if the request can be cloned. A streaming body
/// cannot be: then the 401 is the answer, and the caller's next request
/// carries the replacement. A failed renewal is the
/// answer as an error: it says why (`SessionEnded` means log in again).
/// Errors of this middleware are [`reqwest_middleware::Error::Middleware`]
/// holding an [`Error`]:
///
/// ```
/// # fn cause(error: &reqwest_middleware::Error) -> Option<&gatehouse_client::Error> {
/// match error {
///     reqwest_middleware::Error::Middleware(error) => error.downcast_ref::<gatehouse_client::Error>(),
///     reqwest_middleware::Error::Reqwest(_) => None,
/// }
/// # }
/// ```
///
/// Every request through the client carries the token: use one such client
/// per API, not for requests to anywhere else.
pub struct BearerAuth {
    provider: Box<dyn TokenProvider>,
}

impl BearerAuth {
    /// Middleware with tokens from `provider`.
    pub fn new(provider: impl TokenProvider) -> Self {
        BearerAuth {
            provider: Box::new(provider),
        }
    }
}

/// `http`, with [`BearerAuth`] from `provider`: `client.get(url).send()`
/// carries a valid token.
///
/// ```no_run
/// # async fn example(source: gatehouse_client::TokenSource) -> Result<(), Box<dyn std::error::Error>> {
/// let api = gatehouse_client::authorized_client(reqwest::Client::new(), source);
/// let cities = api.get("https://api.example/v3/cities").send().await?;
/// # Ok(()) }
/// ```
pub fn authorized_client(http: reqwest::Client, provider: impl TokenProvider) -> ClientWithMiddleware {
    ClientBuilder::new(http).with(BearerAuth::new(provider)).build()
}

fn with_token(mut request: Request, token: &AccessToken) -> Request {
    request
        .headers_mut()
        .insert(AUTHORIZATION, token.authorization_header());
    request
}

#[async_trait]
impl Middleware for BearerAuth {
    async fn handle(
        &self,
        request: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        if request.headers().contains_key(AUTHORIZATION) {
            // The caller chose its own credentials for this one.
            return next.run(request, extensions).await;
        }
        let token = self
            .provider
            .token()
            .await
            .map_err(reqwest_middleware::Error::middleware)?;
        let retry = request.try_clone();
        let response = next.clone().run(with_token(request, &token), extensions).await?;
        // RFC 6750 §3.1: 401 is an invalid (expired, revoked) token; a 403
        // (insufficient_scope) would not be helped by a new one.
        if response.status() != StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        let renewed = self
            .provider
            .renew_rejected(&token)
            .await
            .map_err(reqwest_middleware::Error::middleware)?;
        // A streamed body cannot be sent again: the caller gets the 401, and its next
        // request the renewed token.
        let Some(retry) = retry else {
            return Ok(response);
        };
        // Host and path only: a query string may hold anything.
        let (host, path) = (retry.url().host_str().unwrap_or_default(), retry.url().path());
        tracing::debug!(host, path, "401 from the API; retrying once with a renewed token");
        next.run(with_token(retry, &renewed), extensions).await
    }
}
