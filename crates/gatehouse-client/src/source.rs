//! Client-credentials tokens (RFC 6749 §4.4), cached per scope and audience.

use crate::cell::Outcome;
use crate::client::OAuthClient;
use crate::error::Error;
use crate::params::TokenParams;
use crate::token::AccessToken;
use crate::token_request::Grant;

/// Hands out client_credentials tokens: cached, renewed before they expire,
/// one request however many callers ask at once.
///
/// Cheap to clone; clones, and every source of the same [`OAuthClient`],
/// share the cache. Each scope and audience has its own cache entry.
///
/// ```no_run
/// # async fn example(client: gatehouse_client::OAuthClient) -> Result<(), gatehouse_client::Error> {
/// use gatehouse_client::TokenParams;
///
/// let source = client.token_source(TokenParams::new().scope("read"));
/// let read = source.token().await?;
/// let orders = TokenParams::new().scope("write").audience("https://orders.example");
/// let write = source.token_for(&orders).await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct TokenSource {
    client: OAuthClient,
    params: TokenParams,
}

impl TokenSource {
    pub(crate) fn new(client: OAuthClient, params: TokenParams) -> Self {
        TokenSource { client, params }
    }

    /// What [`TokenSource::token`] asks for.
    pub fn params(&self) -> &TokenParams {
        &self.params
    }

    /// A valid token for this source's scope and audience.
    pub async fn token(&self) -> Result<AccessToken, Error> {
        self.token_for(&self.params).await
    }

    /// A valid token for `params`, cached apart from every other scope and
    /// audience.
    pub async fn token_for(&self, params: &TokenParams) -> Result<AccessToken, Error> {
        let cell = self.client.cell(params).await?;
        cell.get(|| self.request(params.clone())).await
    }

    /// A replacement for `rejected`, a token of this source that the API
    /// refused (401): renewed if it is still the cached one, else the token
    /// that already replaced it.
    pub async fn renew_rejected(&self, rejected: &AccessToken) -> Result<AccessToken, Error> {
        let cell = self.client.cell(&self.params).await?;
        cell.replace_rejected(rejected, || self.request(self.params.clone()))
            .await
    }

    /// The renewal: a future of its own, which outlives the caller if need be.
    fn request(&self, params: TokenParams) -> impl std::future::Future<Output = Outcome> + Send + 'static {
        let client = self.client.clone();
        async move {
            let issued = client.request_token(&Grant::ClientCredentials, &params).await?;
            // RFC 6749 §4.4.3: no refresh token is expected here; if one comes
            // anyway, asking again with the client's credentials is simpler
            // and as good, so it is dropped.
            Ok(issued.access)
        }
    }
}
