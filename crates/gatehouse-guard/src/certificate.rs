//! Certificate-bound access tokens (RFC 8705 §3): a token whose `cnf` names the
//! SHA-256 thumbprint of a TLS client certificate (`x5t#S256`) is accepted only on
//! a request that presents that certificate, so a stolen token is worthless without
//! the certificate's private key.
//!
//! The guard does not terminate TLS, so the certificate reaches it one of two ways:
//! - the application's TLS acceptor puts the connection's leaf certificate into each
//!   request's extensions as a [`ClientCertificate`];
//! - a TLS-terminating proxy forwards it in a header (URL-encoded PEM, nginx's
//!   `$ssl_client_escaped_cert`), believed only when the TCP peer (axum's
//!   `ConnectInfo<SocketAddr>`) is one of the configured proxies
//!   ([`crate::GuardBuilder::client_cert_header`]). From a trusted proxy the header
//!   is the whole truth: without it the request has no certificate, even if the
//!   proxy's own connection presented one (that one is the proxy's).
//!
//! The certificate is only looked at for bound tokens: unbound tokens work as before.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use aws_lc_rs::digest;
use axum::extract::ConnectInfo;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as BASE64URL;
use base64::Engine as _;
use http::request::Parts;
use http::HeaderName;
use ipnet::IpNet;
use percent_encoding::percent_decode;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::CertificateDer;

use crate::claims::Claims;
use crate::error::Rejection;

/// The TLS client certificate of a request's connection: the leaf certificate, DER.
///
/// The application's TLS acceptor inserts it into the extensions of every request
/// of a connection that presented one (rustls: the first of
/// `ServerConnection::peer_certificates()`), so that the guard can check
/// certificate-bound tokens. `docs/guard.md` shows an acceptor that does.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientCertificate(pub Vec<u8>);

impl ClientCertificate {
    /// Its `x5t#S256` (RFC 8705 §3.1): base64url, unpadded, of the SHA-256 of the DER.
    pub fn thumbprint(&self) -> String {
        thumbprint(&self.0)
    }
}

impl fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ClientCertificate")
            .field(&self.thumbprint())
            .finish()
    }
}

fn thumbprint(der: &[u8]) -> String {
    BASE64URL.encode(digest::digest(&digest::SHA256, der))
}

/// A header a TLS-terminating proxy forwards the client certificate in, and the
/// proxies believed.
#[derive(Clone, Debug)]
pub(crate) struct ForwardedCertificate {
    pub header: HeaderName,
    pub trusted_proxies: Vec<IpNet>,
}

/// Where the guard looks for a request's certificate.
#[derive(Clone, Debug, Default)]
pub(crate) struct CertificateSource {
    pub forwarded: Option<ForwardedCertificate>,
}

const NO_CERTIFICATE: Rejection = Rejection::InvalidToken(
    "The access token is bound to a TLS client certificate (cnf x5t#S256), and the request presented none.",
);
const OTHER_CERTIFICATE: Rejection = Rejection::InvalidToken(
    "The access token is bound to a TLS client certificate other than the one the request presented.",
);
const UNKNOWN_CONFIRMATION: Rejection = Rejection::InvalidToken(
    "The access token is bound to a proof of possession this API cannot check (cnf).",
);
const MALFORMED_HEADER: Rejection = Rejection::InvalidRequest(
    "The client certificate forwarded by the proxy is not one URL-encoded PEM certificate.",
);

impl CertificateSource {
    /// Refuses `claims` unless the token is unbound or bound to the certificate of
    /// the request whose head is `parts` (`None`: no request to look at).
    pub fn check_binding(&self, claims: &Claims, parts: Option<&Parts>) -> Result<(), Rejection> {
        let Some(cnf) = &claims.cnf else {
            return Ok(());
        };
        // A binding the guard cannot check (a DPoP key, say) must not pass as a
        // plain bearer token: that would undo the binding.
        if cnf.has_unknown_members() {
            return Err(UNKNOWN_CONFIRMATION);
        }
        let Some(expected) = cnf.x5t_s256.as_deref() else {
            return Ok(());
        };
        let presented = match parts {
            Some(parts) => self.thumbprint_of(parts)?,
            None => None,
        };
        match presented {
            None => Err(NO_CERTIFICATE),
            Some(presented) if presented == expected => Ok(()),
            Some(_) => Err(OTHER_CERTIFICATE),
        }
    }

    /// The thumbprint of the certificate the request presented, if any.
    fn thumbprint_of(&self, parts: &Parts) -> Result<Option<String>, Rejection> {
        if let Some(forwarded) = &self.forwarded {
            if peer(parts).is_some_and(|peer| forwarded.trusts(peer)) {
                return forwarded.read(parts).map(|der| der.as_deref().map(thumbprint));
            }
        }
        Ok(parts
            .extensions
            .get::<ClientCertificate>()
            .map(ClientCertificate::thumbprint))
    }
}

/// The TCP peer, as axum's `into_make_service_with_connect_info::<SocketAddr>()`
/// records it.
fn peer(parts: &Parts) -> Option<IpAddr> {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip());
    if peer.is_none() {
        tracing::debug!("no ConnectInfo<SocketAddr>: the client certificate header is not believed");
    }
    peer
}

impl ForwardedCertificate {
    fn trusts(&self, peer: IpAddr) -> bool {
        // A dual-stack listener reports IPv4 peers as ::ffff:a.b.c.d.
        let peer = peer.to_canonical();
        self.trusted_proxies.iter().any(|net| net.contains(&peer))
    }

    /// The leaf certificate in the header (`None`: no header, or an empty one, which
    /// is how nginx says the client presented none). Repeated or malformed:
    /// `invalid_request`, as the authorization server answers it.
    fn read(&self, parts: &Parts) -> Result<Option<Vec<u8>>, Rejection> {
        let mut values = parts.headers.get_all(&self.header).iter();
        let Some(value) = values.next() else {
            return Ok(None);
        };
        if values.next().is_some() {
            return Err(MALFORMED_HEADER);
        }
        leaf_of_forwarded(value.as_bytes())
    }
}

/// The leaf of a header value of URL-encoded PEM certificates. `+` is itself (base64
/// holds it, and some proxies leave it unescaped), not a space.
pub(crate) fn leaf_of_forwarded(value: &[u8]) -> Result<Option<Vec<u8>>, Rejection> {
    let value = value.trim_ascii();
    if value.is_empty() {
        return Ok(None);
    }
    let pem: Vec<u8> = percent_decode(value).collect();
    match CertificateDer::pem_slice_iter(&pem).next() {
        Some(Ok(leaf)) => Ok(Some(leaf.to_vec())),
        _ => Err(MALFORMED_HEADER),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pem(der: &[u8]) -> String {
        use base64::engine::general_purpose::STANDARD;
        format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            STANDARD.encode(der)
        )
    }

    #[test]
    fn the_thumbprint_is_base64url_sha256_of_the_der() {
        // SHA-256("abc"), RFC 6234's test vector, base64url without padding.
        assert_eq!(
            ClientCertificate(b"abc".to_vec()).thumbprint(),
            "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0"
        );
        assert_eq!(
            format!("{:?}", ClientCertificate(b"abc".to_vec())),
            r#"ClientCertificate("ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0")"#
        );
    }

    #[test]
    fn forwarded_pem_is_url_decoded_and_its_leaf_taken() {
        // Leaf first, then an intermediate; '+' and '/' in base64 as sent raw or encoded.
        let leaf = vec![0xfb, 0xff, 0xbf, 1, 2, 3];
        let chain = format!("{}{}", pem(&leaf), pem(b"intermediate"));
        let encoded: String =
            percent_encoding::utf8_percent_encode(&chain, percent_encoding::NON_ALPHANUMERIC).to_string();
        assert_eq!(leaf_of_forwarded(encoded.as_bytes()), Ok(Some(leaf.clone())));
        let raw_plus = chain.replace('\n', "%0A");
        assert!(raw_plus.contains('+'), "{raw_plus}");
        assert_eq!(leaf_of_forwarded(raw_plus.as_bytes()), Ok(Some(leaf)));
        assert_eq!(leaf_of_forwarded(b"  "), Ok(None));
        for bad in [
            &b"garbage"[..],
            b"-----BEGIN CERTIFICATE-----%0A!!!%0A-----END CERTIFICATE-----",
        ] {
            assert_eq!(leaf_of_forwarded(bad), Err(MALFORMED_HEADER), "{bad:?}");
        }
    }

    #[test]
    fn proxies_are_matched_by_network_and_mapped_addresses_count() {
        let forwarded = ForwardedCertificate {
            header: HeaderName::from_static("x-client-cert"),
            trusted_proxies: vec!["10.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()],
        };
        for (peer, trusted) in [
            ("10.1.2.3", true),
            ("::ffff:10.1.2.3", true),
            ("::1", true),
            ("11.0.0.1", false),
            ("127.0.0.1", false),
        ] {
            assert_eq!(forwarded.trusts(peer.parse().unwrap()), trusted, "{peer}");
        }
    }
}
