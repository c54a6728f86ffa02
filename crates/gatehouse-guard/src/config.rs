//! The guard and how to configure it.

use std::sync::Arc;
use std::time::Duration;

use http::request::Parts;
use http::HeaderName;
use ipnet::IpNet;
use jsonwebtoken::Algorithm;

use crate::bearer::bearer_token;
use crate::certificate::{CertificateSource, ForwardedCertificate};
use crate::claims::Claims;
use crate::discovery::Discovery;
use crate::error::{Rejection, DEFAULT_REALM};
use crate::introspect::{IntrospectionCredentials, Introspector};
use crate::jwks::Jwks;
use crate::layer::GuardLayer;
use crate::local::LocalValidator;
use crate::validator::TokenValidator;

/// Validates bearer tokens for one issuer and one audience. Cheap to clone; build one
/// per API with [`Guard::builder`] and apply [`Guard::layer`] to its router.
#[derive(Clone)]
pub struct Guard(Arc<Inner>);

struct Inner {
    realm: Arc<str>,
    validator: Validator,
    /// Where a request's TLS client certificate is, for certificate-bound tokens.
    certificates: CertificateSource,
}

enum Validator {
    Local(LocalValidator),
    Introspection(Introspector),
    /// The server's own check ([`Guard::from_validator`]).
    Custom(Arc<dyn TokenValidator>),
}

/// The realm a guard names in its challenges, in the request's extensions for
/// [`crate::RequireScope`].
#[derive(Clone)]
pub(crate) struct Realm(pub Arc<str>);

impl Guard {
    /// A guard for tokens issued by `issuer` (the URL its metadata names, e.g.
    /// `https://auth.example.com`).
    pub fn builder(issuer: impl Into<String>) -> GuardBuilder {
        GuardBuilder::new(issuer.into())
    }

    /// A guard that checks tokens with `validator` rather than the JWKS or
    /// introspection, naming `realm` in its challenges. Nothing is cached: every
    /// request is checked by the validator.
    pub fn from_validator(realm: impl Into<String>, validator: impl TokenValidator) -> Guard {
        Guard(Arc::new(Inner {
            realm: realm.into().into(),
            validator: Validator::Custom(Arc::new(validator)),
            certificates: CertificateSource::default(),
        }))
    }

    /// The tower layer that checks every request's bearer token and hands the
    /// [`Claims`] to the handlers behind it.
    pub fn layer(&self) -> GuardLayer {
        GuardLayer::new(self.clone())
    }

    /// The realm named in challenges.
    pub fn realm(&self) -> &str {
        &self.0.realm
    }

    pub(crate) fn realm_extension(&self) -> Realm {
        Realm(self.0.realm.clone())
    }

    /// Checks the bearer token of a request (its `Authorization` header), and, for a
    /// token bound to a TLS client certificate (RFC 8705 §3), that the request
    /// presented that certificate.
    pub async fn check(&self, parts: &Parts) -> Result<Arc<Claims>, Rejection> {
        let token = bearer_token(parts)?;
        let claims = self.validate_token(token).await?;
        self.0.certificates.check_binding(&claims, Some(parts))?;
        Ok(claims)
    }

    /// Checks a bearer token taken from no request. A token bound to a TLS client
    /// certificate is refused: without the request there is no certificate to
    /// compare it with ([`Guard::check`] has one).
    pub async fn validate(&self, token: &str) -> Result<Arc<Claims>, Rejection> {
        let claims = self.validate_token(token).await?;
        self.0.certificates.check_binding(&claims, None)?;
        Ok(claims)
    }

    /// The claims of a token, its binding not yet checked.
    async fn validate_token(&self, token: &str) -> Result<Arc<Claims>, Rejection> {
        match &self.0.validator {
            Validator::Local(local) => local.validate(token).await,
            Validator::Introspection(introspector) => introspector.validate(token).await,
            Validator::Custom(custom) => custom.validate(token).await.map(Arc::new),
        }
    }
}

/// Settings of a [`Guard`].
#[derive(Debug)]
pub struct GuardBuilder {
    issuer: String,
    audience: Option<String>,
    leeway: Duration,
    realm: String,
    algorithms: Vec<Algorithm>,
    introspection: Option<IntrospectionCredentials>,
    introspection_cache_ttl: Duration,
    jwks_refetch_interval: Duration,
    jwks_max_age: Duration,
    cache_capacity: usize,
    http_timeout: Duration,
    http: Option<reqwest::Client>,
    client_cert_header: Option<(String, Vec<IpNet>)>,
}

/// Why a guard cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum GuardBuildError {
    /// The issuer is not an `http://` or `https://` URL.
    #[error("the issuer must be an http:// or https:// URL")]
    Issuer,
    /// An algorithm that is not asymmetric, or none at all.
    #[error("only ES256, EdDSA, RS256 and PS256 can be allowed, and at least one must be")]
    Algorithms,
    /// The introspection cache TTL is zero or longer than a minute.
    #[error("the introspection cache TTL must be from 1 ms to 60 s")]
    IntrospectionCacheTtl,
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
    /// The client certificate header is not a valid header name, or no proxy is
    /// trusted to send it.
    #[error("client_cert_header: {0}")]
    ClientCertHeader(&'static str),
}

/// The algorithms a guard accepts by default: every one gatehouse signs with. HMAC is
/// never allowed: a resource server holding a shared secret could mint tokens.
const DEFAULT_ALGORITHMS: [Algorithm; 4] = [
    Algorithm::ES256,
    Algorithm::EdDSA,
    Algorithm::RS256,
    Algorithm::PS256,
];

impl GuardBuilder {
    fn new(issuer: String) -> Self {
        Self {
            issuer: issuer.trim_end_matches('/').to_owned(),
            audience: None,
            leeway: Duration::from_secs(30),
            realm: DEFAULT_REALM.to_owned(),
            algorithms: DEFAULT_ALGORITHMS.to_vec(),
            introspection: None,
            introspection_cache_ttl: Duration::from_secs(5),
            jwks_refetch_interval: Duration::from_secs(5),
            jwks_max_age: Duration::from_secs(600),
            cache_capacity: 10_000,
            http_timeout: Duration::from_secs(5),
            http: None,
            client_cert_header: None,
        }
    }

    /// The `aud` tokens must carry. Default: the issuer (gatehouse's default audience).
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// Clock skew allowed on `exp` and `nbf`. Default 30 s.
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// The realm of `WWW-Authenticate` challenges. Default `api`.
    pub fn realm(mut self, realm: impl Into<String>) -> Self {
        self.realm = realm.into();
        self
    }

    /// The signature algorithms accepted, of ES256, EdDSA, RS256, PS256 (the default:
    /// all four).
    pub fn algorithms(mut self, algorithms: &[Algorithm]) -> Self {
        self.algorithms = algorithms.to_vec();
        self
    }

    /// Validates by introspection (RFC 7662) with these credentials (a client created
    /// with `--can-introspect`), instead of locally.
    pub fn introspect(mut self, client_id: impl Into<String>, client_secret: impl Into<String>) -> Self {
        self.introspection = Some(IntrospectionCredentials {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
        });
        self
    }

    /// How long an introspection answer is reused (never past the token's `exp`): the
    /// longest a revocation can go unseen. Default 5 s.
    pub fn introspection_cache_ttl(mut self, ttl: Duration) -> Self {
        self.introspection_cache_ttl = ttl;
        self
    }

    /// The least time between two JWKS fetches caused by unknown `kid`s. Default 5 s.
    pub fn jwks_refetch_interval(mut self, interval: Duration) -> Self {
        self.jwks_refetch_interval = interval;
        self
    }

    /// The JWKS is fetched again in the background when older than this, so that
    /// withdrawn keys stop being accepted. Default 10 minutes.
    pub fn jwks_max_age(mut self, max_age: Duration) -> Self {
        self.jwks_max_age = max_age;
        self
    }

    /// How many verified tokens (or introspection answers) are remembered. Default 10,000.
    pub fn cache_capacity(mut self, capacity: usize) -> Self {
        self.cache_capacity = capacity;
        self
    }

    /// The HTTP client to reach the issuer with (its own timeouts, proxies, roots).
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// Behind a TLS-terminating proxy: reads the client certificate of a request
    /// from the header `name` (URL-encoded PEM, leaf first, as nginx's
    /// `$ssl_client_escaped_cert`), believed only when the TCP peer is one of
    /// `trusted_proxies` (addresses or networks: `"10.0.0.0/8".parse::<IpNet>()?`,
    /// `IpAddr::from([127, 0, 0, 1])`). The peer is axum's `ConnectInfo<SocketAddr>`,
    /// so serve the app with `into_make_service_with_connect_info::<SocketAddr>()`;
    /// without it the header is never believed. From a trusted proxy the header is
    /// the whole truth (no header: no certificate); from anyone else it is ignored,
    /// and a [`crate::ClientCertificate`] extension stands. Only certificate-bound
    /// tokens look at it.
    pub fn client_cert_header<N: Into<IpNet>>(
        mut self,
        name: impl Into<String>,
        trusted_proxies: impl IntoIterator<Item = N>,
    ) -> Self {
        self.client_cert_header = Some((name.into(), trusted_proxies.into_iter().map(Into::into).collect()));
        self
    }

    /// Builds the guard. Nothing is fetched yet: the metadata and keys are read on the
    /// first request, so an API can start before its issuer.
    pub fn build(self) -> Result<Guard, GuardBuildError> {
        if !(self.issuer.starts_with("https://") || self.issuer.starts_with("http://")) {
            return Err(GuardBuildError::Issuer);
        }
        if self.algorithms.is_empty() || self.algorithms.iter().any(|a| !DEFAULT_ALGORITHMS.contains(a)) {
            return Err(GuardBuildError::Algorithms);
        }
        let ttl = self.introspection_cache_ttl;
        if ttl.is_zero() || ttl > Duration::from_secs(60) {
            return Err(GuardBuildError::IntrospectionCacheTtl);
        }
        let certificates = certificate_source(self.client_cert_header.as_ref())?;
        let http = match self.http {
            Some(http) => http,
            None => reqwest::Client::builder()
                .timeout(self.http_timeout)
                .redirect(reqwest::redirect::Policy::none())
                .build()?,
        };
        let audience = self.audience.unwrap_or_else(|| self.issuer.clone());
        let discovery = Arc::new(Discovery::new(http, self.issuer.clone()));
        let validator = match &self.introspection {
            Some(credentials) => Validator::Introspection(Introspector::new(
                discovery,
                credentials,
                &audience,
                self.leeway,
                ttl,
                self.cache_capacity,
            )),
            None => {
                let jwks = Arc::new(Jwks::new(
                    discovery,
                    self.algorithms.clone(),
                    self.jwks_refetch_interval,
                    self.jwks_max_age,
                ));
                Validator::Local(LocalValidator::new(
                    jwks,
                    &self.algorithms,
                    &self.issuer,
                    &audience,
                    self.leeway,
                    self.cache_capacity,
                ))
            }
        };
        Ok(Guard(Arc::new(Inner {
            realm: self.realm.into(),
            validator,
            certificates,
        })))
    }
}

fn certificate_source(header: Option<&(String, Vec<IpNet>)>) -> Result<CertificateSource, GuardBuildError> {
    let Some((name, trusted_proxies)) = header else {
        return Ok(CertificateSource::default());
    };
    let header = HeaderName::try_from(name.as_str())
        .map_err(|_| GuardBuildError::ClientCertHeader("not a valid HTTP header name"))?;
    if trusted_proxies.is_empty() {
        // A header no one may send would silently do nothing.
        return Err(GuardBuildError::ClientCertHeader(
            "no trusted proxy: the header would be believed from no one",
        ));
    }
    Ok(CertificateSource {
        forwarded: Some(ForwardedCertificate {
            header,
            trusted_proxies: trusted_proxies.clone(),
        }),
    })
}
