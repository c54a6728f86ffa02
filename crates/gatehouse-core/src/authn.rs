//! How a client proves who it is beyond a shared secret: a key it holds
//! (`private_key_jwt`, RFC 7523 §2.2) or the certificate of its TLS connection
//! (RFC 8705), and what its tokens are bound to (`cnf`, RFC 8705 §3, RFC 9449 §6).
//!
//! The core decides; the server supplies what only it can see: the certificate the
//! connection (or a trusted proxy) presented ([`PresentedCertificate`]), the URLs that
//! name this server as an assertion's audience ([`AuthContext`]), and a client's keys,
//! inline or fetched from its `jwks_uri` ([`ClientKeys`]).

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::client_jwks::ClientKeySet;
use crate::{Client, OAuthError};

/// `client_assertion_type` of a JWT client assertion (RFC 7523 §2.2).
pub const JWT_BEARER_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How a client authenticates (RFC 7591 §2 `token_endpoint_auth_method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum AuthMethod {
    /// A shared secret in HTTP Basic. The secret methods are one credential in two
    /// encodings: a client registered for either may use either.
    #[default]
    ClientSecretBasic,
    /// A shared secret in the body.
    ClientSecretPost,
    /// A JWT signed with one of the client's keys (RFC 7523 §2.2).
    PrivateKeyJwt,
    /// A certificate from the configured CA with a registered subject DN (RFC 8705 §2.1).
    TlsClientAuth,
    /// A self-signed certificate registered in the client's JWK Set (RFC 8705 §2.2).
    SelfSignedTlsClientAuth,
}

impl AuthMethod {
    /// Every method, in a stable order.
    pub const ALL: [AuthMethod; 5] = [
        Self::ClientSecretBasic,
        Self::ClientSecretPost,
        Self::PrivateKeyJwt,
        Self::TlsClientAuth,
        Self::SelfSignedTlsClientAuth,
    ];

    /// The RFC 7591 name, as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::PrivateKeyJwt => "private_key_jwt",
            Self::TlsClientAuth => "tls_client_auth",
            Self::SelfSignedTlsClientAuth => "self_signed_tls_client_auth",
        }
    }

    /// Whether the client authenticates with a shared secret.
    pub fn uses_secret(self) -> bool {
        matches!(self, Self::ClientSecretBasic | Self::ClientSecretPost)
    }

    /// Whether the client authenticates with its TLS client certificate.
    pub fn uses_certificate(self) -> bool {
        matches!(self, Self::TlsClientAuth | Self::SelfSignedTlsClientAuth)
    }

    /// Whether the client's keys (`jwks` or `jwks_uri`) authenticate it.
    pub fn uses_keys(self) -> bool {
        matches!(self, Self::PrivateKeyJwt | Self::SelfSignedTlsClientAuth)
    }
}

impl FromStr for AuthMethod {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        Self::ALL.into_iter().find(|m| m.as_str() == s).ok_or(())
    }
}

impl fmt::Display for AuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A client's authentication settings beyond its secret, and whether its access
/// tokens are bound to its certificate.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuthSettings {
    /// How it authenticates.
    pub method: AuthMethod,
    /// Its JWK Set (a JSON document of public keys), for `private_key_jwt` and
    /// `self_signed_tls_client_auth`; checked when stored ([`ClientKeySet::parse`]).
    pub jwks: Option<String>,
    /// Where its JWK Set is fetched from, instead of `jwks`.
    pub jwks_uri: Option<String>,
    /// The subject DN its certificate must carry (`tls_client_auth`), in the
    /// canonical RFC 4514 form of [`canonical_dn`].
    pub tls_subject_dn: Option<String>,
    /// Whether its access tokens carry `cnf.x5t#S256` of the certificate it
    /// connected with (RFC 8705 §3, `tls_client_certificate_bound_access_tokens`).
    pub bound_tokens: bool,
}

/// The TLS client certificate a request came with: from the connection, or from a
/// trusted proxy's header. Computed once per connection (or request) by the server.
#[derive(Clone, PartialEq, Eq)]
pub struct PresentedCertificate {
    /// The end-entity certificate, DER.
    pub der: Vec<u8>,
    /// `x5t#S256`: base64url (unpadded) SHA-256 of `der` (RFC 8705 §3.1).
    pub thumbprint: String,
    /// The subject DN in the canonical form of [`canonical_dn`]; `None` if the
    /// certificate could not be parsed.
    pub subject_dn: Option<String>,
    /// Whether the certificate chains to a CA of `tls_client_ca` (needed by
    /// `tls_client_auth`; a self-signed certificate does not).
    pub chain_trusted: bool,
}

impl fmt::Debug for PresentedCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PresentedCertificate")
            .field("thumbprint", &self.thumbprint)
            .field("subject_dn", &self.subject_dn)
            .field("chain_trusted", &self.chain_trusted)
            .finish_non_exhaustive()
    }
}

/// What the server knows of a request that client authentication needs.
#[derive(Debug, Clone, Default)]
pub struct AuthContext {
    /// The values an assertion's `aud` may take here: the issuer, and the URL of the
    /// endpoint the request was sent to (RFC 7523 §3, item 3).
    pub audiences: Vec<String>,
    /// The TLS client certificate, if the request came with one.
    pub certificate: Option<Arc<PresentedCertificate>>,
}

/// `cnf` (RFC 7800): what an access token is bound to.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Confirmation {
    /// SHA-256 thumbprint of the client certificate (RFC 8705 §3.1).
    #[serde(rename = "x5t#S256", default, skip_serializing_if = "Option::is_none")]
    pub x5t_s256: Option<String>,
    /// JWK SHA-256 thumbprint of the DPoP key (RFC 9449 §6.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jkt: Option<String>,
}

impl Confirmation {
    /// Whether it binds to nothing.
    pub fn is_empty(&self) -> bool {
        self.x5t_s256.is_none() && self.jkt.is_none()
    }
}

/// A client's public keys: from its inline `jwks`, or fetched from its `jwks_uri`
/// (cached, and fetched again on an unknown `kid` at most once a minute per client).
#[async_trait]
pub trait ClientKeys: Send + Sync {
    /// The keys of `client`. `unknown_kid` names a `kid` the caller looked for and
    /// did not find in what this returned before: a fetched set may be refreshed for
    /// it (rate-limited). Errors are `invalid_client` with a description that names
    /// no internal detail.
    async fn client_keys(
        &self,
        client: &Client,
        unknown_kid: Option<&str>,
    ) -> Result<Arc<ClientKeySet>, OAuthError>;
}

/// Keys from a client's inline `jwks` only, parsed on every call: for tests and for
/// tools without a network. A client with a `jwks_uri` has no keys here.
#[derive(Debug, Default, Clone, Copy)]
pub struct InlineKeysOnly;

#[async_trait]
impl ClientKeys for InlineKeysOnly {
    async fn client_keys(
        &self,
        client: &Client,
        _unknown_kid: Option<&str>,
    ) -> Result<Arc<ClientKeySet>, OAuthError> {
        let Some(jwks) = client.auth.jwks.as_deref() else {
            return Err(OAuthError::invalid_client(
                "The client has no registered keys.",
                false,
            ));
        };
        ClientKeySet::parse(jwks)
            .map(Arc::new)
            .map_err(|_| OAuthError::invalid_client("The client's registered keys cannot be used.", false))
    }
}

/// A distinguished name in one canonical form, so that a DN registered by hand and
/// one read from a certificate compare equal when they name the same thing: RFC 4514
/// string order (most specific RDN first), attribute types upper-cased, as short names
/// where one is known (`CN`, `O`, `OU`, `C`, `L`, `ST`, `DC`, `UID`, `STREET`, for
/// their OIDs and aliases too), the attributes of a multi-valued RDN sorted, no spaces
/// around `,` `+` `=`, `#hex` values lower-cased, and one RFC 4514 escaping. Values are
/// then compared exactly. `None` if `dn` is not an RFC 4514 string.
pub fn canonical_dn(dn: &str) -> Option<String> {
    crate::dn::canonical(dn)
}
