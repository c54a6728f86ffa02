//! The program as an OAuth client (RFC 6749 §2): its credentials, the server
//! it talks to, and how patiently; the token sources and sessions made from it.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretSlice};
use tokio::sync::OnceCell;

use crate::cell::TokenCell;
use crate::credentials::ClientCredentials;
use crate::endpoint::{Endpoints, TokenEndpoint};
use crate::error::Error;
use crate::params::{CacheKey, TokenParams};
use crate::renewal::RenewalPolicy;
use crate::retry::RetryPolicy;
use crate::session::Session;
use crate::source::TokenSource;

/// How long one request to the authorization server may take, in the
/// default HTTP client.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A configured OAuth client: cheap to clone, and every clone, every
/// [`TokenSource`] made from it, shares one token cache.
///
/// ```no_run
/// # async fn example() -> Result<(), gatehouse_client::Error> {
/// use gatehouse_client::{ClientCredentials, OAuthClient, SecretString, TokenEndpoint, TokenParams};
///
/// let client = OAuthClient::builder(
///     TokenEndpoint::discover("https://auth.example.com")?,
///     ClientCredentials::new("my-service", SecretString::from(std::env::var("SECRET").unwrap_or_default())),
/// )
/// .build()?;
/// let source = client.token_source(TokenParams::new().scope("read"));
/// let token = source.token().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct OAuthClient {
    pub(crate) inner: Arc<ClientInner>,
}

pub(crate) struct ClientInner {
    endpoint: TokenEndpoint,
    endpoints: OnceCell<Endpoints>,
    pub credentials: ClientCredentials,
    pub http: reqwest::Client,
    pub retry: RetryPolicy,
    pub renewal: RenewalPolicy,
    allow_insecure_http: bool,
    cells: Mutex<HashMap<CacheKey, Arc<TokenCell>>>,
}

/// Settings of an [`OAuthClient`]; [`OAuthClientBuilder::build`] checks them.
#[must_use]
pub struct OAuthClientBuilder {
    endpoint: TokenEndpoint,
    credentials: ClientCredentials,
    http: Option<reqwest::Client>,
    client_certificate: Option<ClientCertificatePem>,
    retry: RetryPolicy,
    renewal: RenewalPolicy,
    allow_insecure_http: bool,
}

/// A TLS client certificate and its key, as PEM, until the HTTP client is built.
struct ClientCertificatePem {
    chain: Vec<u8>,
    key: SecretSlice<u8>,
}

impl OAuthClientBuilder {
    /// The HTTP client for requests to the authorization server. The default
    /// one follows no redirects (a redirected token request would carry the
    /// credentials elsewhere), and times out after 30 s.
    pub fn http_client(mut self, http: reqwest::Client) -> Self {
        self.http = Some(http);
        self
    }

    /// A TLS client certificate for the default HTTP client to present to the
    /// authorization server (RFC 8705): `certificate_chain` is the PEM of the
    /// client's certificate (then any intermediates), `private_key` the PEM of its
    /// key (PKCS#8, PKCS#1 or SEC1). It authenticates a client created with
    /// [`ClientCredentials::tls_client_auth`](crate::ClientCredentials::tls_client_auth),
    /// and gets certificate-bound access tokens for a client registered for them,
    /// whatever its credentials. [`OAuthClientBuilder::build`] reports a PEM it
    /// cannot use. With [`OAuthClientBuilder::http_client`], give the identity to
    /// that client instead (`reqwest::ClientBuilder::identity`).
    pub fn client_certificate_pem(
        mut self,
        certificate_chain: impl AsRef<[u8]>,
        private_key: impl AsRef<[u8]>,
    ) -> Self {
        self.client_certificate = Some(ClientCertificatePem {
            chain: certificate_chain.as_ref().to_vec(),
            key: SecretSlice::from(private_key.as_ref().to_vec()),
        });
        self
    }

    /// How failed requests are retried ([`RetryPolicy::default`] otherwise).
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// When tokens are renewed ([`RenewalPolicy::default`] otherwise).
    pub fn renewal(mut self, renewal: RenewalPolicy) -> Self {
        self.renewal = renewal;
        self
    }

    /// Allows plain HTTP to hosts other than loopback (behind a TLS proxy
    /// inside one machine, say). Off by default: RFC 6749 §3.2 requires TLS.
    pub fn allow_insecure_http(mut self, allow: bool) -> Self {
        self.allow_insecure_http = allow;
        self
    }

    /// The client, or what is wrong with the settings.
    pub fn build(self) -> Result<OAuthClient, Error> {
        self.endpoint.check(self.allow_insecure_http)?;
        let http = match (self.http, self.client_certificate) {
            (Some(_), Some(_)) => {
                return Err(Error::Config(
                    "a client certificate cannot be added to a given HTTP client: \
                     give it to that client with reqwest::ClientBuilder::identity"
                        .into(),
                ))
            }
            (Some(http), None) => http,
            (None, certificate) => default_http_client(certificate.as_ref())?,
        };
        Ok(OAuthClient {
            inner: Arc::new(ClientInner {
                endpoint: self.endpoint,
                endpoints: OnceCell::new(),
                credentials: self.credentials,
                http,
                retry: self.retry,
                renewal: self.renewal,
                allow_insecure_http: self.allow_insecure_http,
                cells: Mutex::new(HashMap::new()),
            }),
        })
    }
}

/// The HTTP client used when none is given: no redirects, bounded waits, and the
/// client certificate if there is one.
fn default_http_client(certificate: Option<&ClientCertificatePem>) -> Result<reqwest::Client, Error> {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(REQUEST_TIMEOUT)
        .connect_timeout(CONNECT_TIMEOUT);
    if let Some(certificate) = certificate {
        builder = builder.identity(identity(certificate)?);
    }
    builder
        .build()
        .map_err(|e| Error::Config(format!("cannot build the HTTP client: {e}")))
}

/// The reqwest identity of a certificate chain and key: rustls's reqwest reads both
/// from one PEM buffer.
fn identity(certificate: &ClientCertificatePem) -> Result<reqwest::Identity, Error> {
    let key = certificate.key.expose_secret();
    let mut pem = Vec::with_capacity(key.len() + certificate.chain.len() + 1);
    pem.extend_from_slice(key);
    pem.push(b'\n');
    pem.extend_from_slice(&certificate.chain);
    let pem = SecretSlice::from(pem);
    // reqwest's message does not quote the PEM, so it can be shown.
    reqwest::Identity::from_pem(pem.expose_secret())
        .map_err(|e| Error::Config(format!("the client certificate or its key cannot be used: {e}")))
}

impl OAuthClient {
    /// Starts the settings of a client with `credentials` at `endpoint`.
    pub fn builder(endpoint: TokenEndpoint, credentials: ClientCredentials) -> OAuthClientBuilder {
        OAuthClientBuilder {
            endpoint,
            credentials,
            http: None,
            client_certificate: None,
            retry: RetryPolicy::default(),
            renewal: RenewalPolicy::default(),
            allow_insecure_http: false,
        }
    }

    /// A source of client_credentials tokens (RFC 6749 §4.4) for `params`.
    pub fn token_source(&self, params: TokenParams) -> TokenSource {
        TokenSource::new(self.clone(), params)
    }

    /// A user session (password grant, then refresh tokens) for `params`;
    /// [`Session::login`] starts it.
    pub fn session(&self, params: TokenParams) -> Session {
        Session::new(self.clone(), params)
    }

    /// The client id.
    pub fn client_id(&self) -> &str {
        self.inner.credentials.client_id()
    }

    /// The endpoints, discovered on first use if they were not given. A
    /// failed discovery is not kept: the next call tries again.
    pub(crate) async fn endpoints(&self) -> Result<&Endpoints, Error> {
        let inner = &self.inner;
        inner
            .endpoints
            .get_or_try_init(|| {
                inner
                    .endpoint
                    .resolve(&inner.http, &inner.retry, inner.allow_insecure_http)
            })
            .await
    }

    /// The cache cell of tokens for `params`.
    pub(crate) async fn cell(&self, params: &TokenParams) -> Result<Arc<TokenCell>, Error> {
        let key = CacheKey {
            token_endpoint: self.endpoints().await?.token.to_string(),
            client_id: self.client_id().to_string(),
            params: params.clone(),
        };
        let mut cells = self
            .inner
            .cells
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Ok(Arc::clone(cells.entry(key).or_insert_with(TokenCell::new)))
    }
}

impl fmt::Debug for OAuthClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthClient")
            .field("endpoint", &self.inner.endpoint)
            .field("credentials", &self.inner.credentials)
            .field("retry", &self.inner.retry)
            .field("renewal", &self.inner.renewal)
            .finish_non_exhaustive()
    }
}
