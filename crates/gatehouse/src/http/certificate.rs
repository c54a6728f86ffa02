//! The TLS client certificate a request comes with (RFC 8705), made into the core's
//! [`PresentedCertificate`]: its `x5t#S256` thumbprint, its subject DN in the
//! canonical form, and whether it chains to a CA of `tls_client_ca`.
//!
//! A certificate arrives one of two ways:
//! - on the server's own TLS connection: the listener asks for one (and requires
//!   none), rustls checks the handshake signature, and [`presented`] turns the peer's
//!   chain into one [`PresentedCertificate`] per connection, which every request on
//!   it carries as a request extension (`Option<Arc<PresentedCertificate>>`);
//! - in `tls_client_cert_header` from a TLS-terminating proxy ([`Forwarded`]):
//!   URL-encoded PEM, believed only when the TCP peer is in `trusted_proxies`. From
//!   a trusted proxy the header is the whole truth: without it the request has no
//!   certificate, even if the proxy's own connection presented one (that one is the
//!   proxy's, not its client's).
//!
//! Whether a certificate was issued by `tls_client_ca` is decided here, by webpki
//! (chain, validity at the server's clock, extended key usage allowing client
//! authentication when the certificate has one), not at the TLS layer: a
//! `self_signed_tls_client_auth` client's certificate chains to nothing and must
//! still get through the handshake (RFC 8705 §2.2).

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use axum::http::{HeaderMap, HeaderName};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use gatehouse_core::authn::canonical_dn;
use gatehouse_core::{Clock, OAuthError, PresentedCertificate};
use percent_encoding::percent_decode;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::ClientCertVerifier;
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;
use x509_parser::asn1_rs::{Any, Tag, ToDer};
use x509_parser::prelude::{FromDer, X509Certificate, X509Name};

use crate::config::TrustedProxies;

/// Why `tls_client_ca` cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CaError(String);

/// The CAs of `tls_client_ca`, read again on SIGHUP.
pub struct ClientCa {
    path: PathBuf,
    provider: Arc<CryptoProvider>,
    clock: Arc<dyn Clock>,
    current: RwLock<Arc<CaRoots>>,
}

impl fmt::Debug for ClientCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCa")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// One reading of the CA bundle: webpki's client verifier over its certificates,
/// which checks chains for [`ClientCa::trusts`] and, at the TLS layer, handshake
/// signatures and the CA names hinted to clients.
pub struct CaRoots {
    verifier: Arc<dyn ClientCertVerifier>,
    count: usize,
}

impl CaRoots {
    /// webpki's verifier of these CAs.
    pub fn verifier(&self) -> &Arc<dyn ClientCertVerifier> {
        &self.verifier
    }
}

impl ClientCa {
    /// Reads the PEM bundle at `path`; chains are checked at `clock`'s time.
    pub fn load(path: &Path, provider: Arc<CryptoProvider>, clock: Arc<dyn Clock>) -> Result<Self, CaError> {
        let roots = read_roots(path, &provider)?;
        Ok(Self {
            path: path.to_owned(),
            provider,
            clock,
            current: RwLock::new(Arc::new(roots)),
        })
    }

    /// Reads the bundle again; on any error the CAs in use stay. Returns how many
    /// certificates it holds.
    pub fn reload(&self) -> Result<usize, CaError> {
        let fresh = Arc::new(read_roots(&self.path, &self.provider)?);
        let count = fresh.count;
        match self.current.write() {
            Ok(mut current) => *current = fresh,
            Err(poisoned) => *poisoned.into_inner() = fresh,
        }
        Ok(count)
    }

    /// The CAs in use.
    pub fn current(&self) -> Arc<CaRoots> {
        match self.current.read() {
            Ok(current) => current.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The bundle's path, for log lines.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether `leaf`, with the `intermediates` its sender gave, chains to one of
    /// the CAs, is valid now and may authenticate a TLS client.
    pub fn trusts(&self, leaf: &CertificateDer<'_>, intermediates: &[CertificateDer<'_>]) -> bool {
        let now = UnixTime::since_unix_epoch(self.clock.since_epoch());
        self.current()
            .verifier
            .verify_client_cert(leaf, intermediates, now)
            .is_ok()
    }
}

fn read_roots(path: &Path, provider: &Arc<CryptoProvider>) -> Result<CaRoots, CaError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| CaError(format!("cannot read {}: {e}", path.display())))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CaError(format!("{} is not PEM: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(CaError(format!("no certificate in {}", path.display())));
    }
    let count = certs.len();
    let mut roots = RootCertStore::empty();
    for (n, cert) in certs.into_iter().enumerate() {
        roots.add(cert).map_err(|e| {
            CaError(format!(
                "certificate {} of {} cannot be a CA: {e}",
                n + 1,
                path.display()
            ))
        })?;
    }
    // Anonymous clients are let through: a request without a certificate is for the
    // token endpoint to judge (most clients use a secret or an assertion).
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()
        .map_err(|e| CaError(format!("{}: {e}", path.display())))?;
    Ok(CaRoots { verifier, count })
}

/// The certificate of a peer that sent `chain` (leaf first), checked against `ca`;
/// `None` for an empty chain.
pub fn presented(chain: &[CertificateDer<'_>], ca: Option<&ClientCa>) -> Option<PresentedCertificate> {
    let (leaf, intermediates) = chain.split_first()?;
    Some(PresentedCertificate {
        der: leaf.to_vec(),
        thumbprint: thumbprint(leaf),
        subject_dn: subject_dn(leaf),
        chain_trusted: ca.is_some_and(|ca| ca.trusts(leaf, intermediates)),
    })
}

/// `x5t#S256` (RFC 8705 §3.1): base64url, unpadded, of the SHA-256 of the DER.
pub fn thumbprint(der: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der))
}

/// The subject DN of the certificate `der`, canonical; `None` if the certificate
/// cannot be parsed or its subject is empty.
pub fn subject_dn(der: &[u8]) -> Option<String> {
    let (_, certificate) = X509Certificate::from_der(der).ok()?;
    canonical_dn(&rfc4514(certificate.subject())?)
}

/// `name` as an RFC 4514 string: the RDNs in reverse order of the encoding (RFC 4514
/// §2.1: most specific first), each attribute as its dotted OID, `=`, and its value.
/// A value of a string type is its text with every byte but ASCII letters and digits
/// written `\XX` (valid RFC 4514, and the canonical form undoes it); any other
/// value is `#` and the hex of its DER (§2.4). `None` for an empty name.
fn rfc4514(name: &X509Name<'_>) -> Option<String> {
    let encoded: Vec<_> = name.iter().collect();
    let rdns: Vec<String> = encoded
        .into_iter()
        .rev()
        .map(|rdn| {
            rdn.iter()
                .map(|attribute| {
                    let mut text = attribute.attr_type().to_id_string();
                    text.push('=');
                    match directory_string(attribute.attr_value()) {
                        Some(value) => escape_all(&mut text, &value),
                        None => {
                            text.push('#');
                            let der = attribute.attr_value().to_der_vec().unwrap_or_default();
                            text.push_str(&hex(&der));
                        }
                    }
                    text
                })
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect();
    (!rdns.is_empty()).then(|| rdns.join(","))
}

/// The text of a value of one of the string types certificates use for names.
fn directory_string(value: &Any<'_>) -> Option<String> {
    let data = value.data;
    match value.tag() {
        Tag::Utf8String | Tag::PrintableString | Tag::Ia5String | Tag::NumericString | Tag::VisibleString => {
            std::str::from_utf8(data).ok().map(str::to_owned)
        }
        // UCS-2, big-endian.
        Tag::BmpString => {
            let units: Vec<u16> = data
                .chunks(2)
                .map(|pair| match pair {
                    [high, low] => Some(u16::from_be_bytes([*high, *low])),
                    _ => None,
                })
                .collect::<Option<_>>()?;
            String::from_utf16(&units).ok()
        }
        // UCS-4, big-endian.
        Tag::UniversalString => data
            .chunks(4)
            .map(|quad| match quad {
                [a, b, c, d] => char::from_u32(u32::from_be_bytes([*a, *b, *c, *d])),
                _ => None,
            })
            .collect(),
        _ => None,
    }
}

fn escape_all(out: &mut String, value: &str) {
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("\\{byte:02X}"));
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Certificates forwarded by a TLS-terminating proxy in `tls_client_cert_header`.
#[derive(Debug, Clone)]
pub struct Forwarded {
    header: HeaderName,
    trusted_proxies: TrustedProxies,
    ca: Option<Arc<ClientCa>>,
}

/// What a request's certificate header says.
#[derive(Debug)]
pub enum FromProxy {
    /// The TCP peer is no trusted proxy, or no header is configured: the
    /// connection's own certificate stands.
    NotAsked,
    /// A trusted proxy forwarded this certificate (`None`: no certificate).
    Certificate(Option<Arc<PresentedCertificate>>),
}

impl Forwarded {
    /// Reads `header` from `trusted_proxies`, checking chains against `ca`.
    pub fn new(header: HeaderName, trusted_proxies: TrustedProxies, ca: Option<Arc<ClientCa>>) -> Self {
        Self {
            header,
            trusted_proxies,
            ca,
        }
    }

    /// The certificate a request from `peer` (the TCP peer) with `headers` carries.
    /// A header from anyone but a trusted proxy is ignored; an empty one (nginx's
    /// `$ssl_client_escaped_cert` without a client certificate) is no certificate;
    /// a repeated or malformed one from a trusted proxy is `invalid_request`.
    pub fn read(&self, peer: IpAddr, headers: &HeaderMap) -> Result<FromProxy, OAuthError> {
        if !self.trusted_proxies.trusts(peer) {
            return Ok(FromProxy::NotAsked);
        }
        let malformed = || {
            OAuthError::invalid_request(
                "The client certificate forwarded by the proxy is not one URL-encoded PEM certificate.",
            )
        };
        let mut values = headers.get_all(&self.header).iter();
        let Some(value) = values.next() else {
            return Ok(FromProxy::Certificate(None));
        };
        if values.next().is_some() {
            return Err(malformed());
        }
        let chain = parse_forwarded(value.as_bytes()).ok_or_else(malformed)?;
        Ok(FromProxy::Certificate(
            presented(&chain, self.ca.as_deref()).map(Arc::new),
        ))
    }
}

/// A header value of URL-encoded PEM certificates, leaf first; `Some(empty)` for an
/// empty value; `None` if it is anything else, or if the leaf is not an X.509
/// certificate. `+` is taken as itself (base64 holds it; some proxies leave it
/// unescaped), not as a space.
fn parse_forwarded(value: &[u8]) -> Option<Vec<CertificateDer<'static>>> {
    let value = value.trim_ascii();
    if value.is_empty() {
        return Some(Vec::new());
    }
    let pem: Vec<u8> = percent_decode(value).collect();
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .ok()?;
    let leaf = chain.first()?;
    X509Certificate::from_der(leaf).ok()?;
    Some(chain)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_core::FixedClock;

    fn provider() -> Arc<CryptoProvider> {
        Arc::new(rustls::crypto::aws_lc_rs::default_provider())
    }

    fn self_signed(dn: rcgen::DistinguishedName) -> rcgen::CertifiedKey<rcgen::KeyPair> {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = dn;
        let cert = params.self_signed(&key).unwrap();
        rcgen::CertifiedKey {
            cert,
            signing_key: key,
        }
    }

    #[test]
    fn subject_dn_is_most_specific_first_and_canonical() {
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(rcgen::DnType::CountryName, "DE");
        dn.push(rcgen::DnType::OrganizationName, "Acme, Inc.");
        dn.push(rcgen::DnType::OrganizationalUnitName, "R+D");
        dn.push(rcgen::DnType::CommonName, " client #1 ");
        let cert = self_signed(dn);
        assert_eq!(
            subject_dn(cert.cert.der()).as_deref(),
            Some("CN=\\ client #1\\ ,OU=R\\+D,O=Acme\\, Inc.,C=DE")
        );
        // The same DN as an operator would write it.
        assert_eq!(
            subject_dn(cert.cert.der()),
            canonical_dn("cn=\\ client #1\\ , ou=R\\+D, o=Acme\\, Inc., c=DE")
        );
    }

    #[test]
    fn other_values_and_types() {
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(
            rcgen::DnType::CustomDnType(vec![1, 3, 6, 1, 4, 1, 99999, 1]),
            rcgen::DnValue::BmpString(rcgen::string::BmpString::try_from("Müller").unwrap()),
        );
        dn.push(
            rcgen::DnType::CommonName,
            rcgen::DnValue::Utf8String("Ünïcode".into()),
        );
        let cert = self_signed(dn);
        assert_eq!(
            subject_dn(cert.cert.der()).as_deref(),
            Some("CN=Ünïcode,1.3.6.1.4.1.99999.1=Müller")
        );
        assert_eq!(subject_dn(b"not a certificate"), None);
        let empty = self_signed(rcgen::DistinguishedName::new());
        assert_eq!(subject_dn(empty.cert.der()), None);
    }

    #[test]
    fn thumbprints_are_base64url_sha256() {
        // SHA-256 of "abc" (FIPS 180-2 example), base64url.
        assert_eq!(thumbprint(b"abc"), "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0");
    }

    #[test]
    fn chains_are_checked_against_the_ca_at_the_clock() {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Test CA");
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let client_key = rcgen::KeyPair::generate().unwrap();
        let mut client_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        client_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "client");
        client_params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let client = client_params.signed_by(&client_key, &issuer).unwrap();

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, ca_cert.pem()).unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let clock = Arc::new(FixedClock::new(now));
        let ca = ClientCa::load(&path, provider(), clock.clone()).unwrap();

        let chain = [client.der().clone()];
        let seen = presented(&chain, Some(&ca)).unwrap();
        assert!(seen.chain_trusted);
        assert_eq!(seen.subject_dn.as_deref(), Some("CN=client"));
        assert_eq!(seen.thumbprint, thumbprint(client.der()));
        assert_eq!(seen.der, client.der().to_vec());
        // No CA configured: nothing is trusted.
        assert!(!presented(&chain, None).unwrap().chain_trusted);
        // A self-signed certificate chains to nothing.
        let stranger = self_signed(rcgen::DistinguishedName::new());
        assert!(
            !presented(&[stranger.cert.der().clone()], Some(&ca))
                .unwrap()
                .chain_trusted
        );
        // Not yet valid at the server's clock (rcgen's default validity starts in 1975).
        clock.set(100);
        assert!(!ca.trusts(client.der(), &[]));
        assert!(presented(&[], Some(&ca)).is_none());
    }

    #[test]
    fn bad_bundles_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let clock: Arc<dyn Clock> = Arc::new(FixedClock::new(0));
        let missing = dir.path().join("missing.pem");
        let err = ClientCa::load(&missing, provider(), clock.clone()).unwrap_err();
        assert!(err.to_string().starts_with("cannot read"), "{err}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "no PEM here\n").unwrap();
        let err = ClientCa::load(&empty, provider(), clock.clone()).unwrap_err();
        assert!(err.to_string().starts_with("no certificate in"), "{err}");
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(
            &garbage,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        assert!(ClientCa::load(&garbage, provider(), clock).is_err());
    }

    fn headers(name: &str, values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        headers
    }

    fn url_encoded(pem: &str) -> String {
        percent_encoding::utf8_percent_encode(pem, percent_encoding::NON_ALPHANUMERIC).to_string()
    }

    #[test]
    fn forwarded_certificates_come_from_trusted_proxies_only() {
        let cert = self_signed({
            let mut dn = rcgen::DistinguishedName::new();
            dn.push(rcgen::DnType::CommonName, "forwarded");
            dn
        });
        let forwarded = Forwarded::new(
            HeaderName::from_static("x-client-cert"),
            TrustedProxies::parse("10.0.0.0/8").unwrap(),
            None,
        );
        let proxy: IpAddr = "10.0.0.2".parse().unwrap();
        let stranger: IpAddr = "192.0.2.1".parse().unwrap();
        let with_cert = headers("x-client-cert", &[&url_encoded(&cert.cert.pem())]);
        match forwarded.read(proxy, &with_cert).unwrap() {
            FromProxy::Certificate(Some(seen)) => {
                assert_eq!(seen.der, cert.cert.der().to_vec());
                assert_eq!(seen.subject_dn.as_deref(), Some("CN=forwarded"));
                assert!(!seen.chain_trusted, "no tls_client_ca");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            forwarded.read(stranger, &with_cert),
            Ok(FromProxy::NotAsked)
        ));
        // A proxy that sends none, or an empty one, says the client has none.
        assert!(matches!(
            forwarded.read(proxy, &HeaderMap::new()),
            Ok(FromProxy::Certificate(None))
        ));
        assert!(matches!(
            forwarded.read(proxy, &headers("x-client-cert", &[""])),
            Ok(FromProxy::Certificate(None))
        ));
        // `+` is part of base64, not a space: a proxy that leaves it unescaped works.
        let plus_kept = url_encoded(&cert.cert.pem()).replace("%2B", "+");
        assert!(matches!(
            forwarded.read(proxy, &headers("x-client-cert", &[&plus_kept])),
            Ok(FromProxy::Certificate(Some(_)))
        ));
        // A chain: the leaf is the first.
        let chain = format!(
            "{}{}",
            cert.cert.pem(),
            self_signed(rcgen::DistinguishedName::new()).cert.pem()
        );
        match forwarded
            .read(proxy, &headers("x-client-cert", &[&url_encoded(&chain)]))
            .unwrap()
        {
            FromProxy::Certificate(Some(seen)) => assert_eq!(seen.der, cert.cert.der().to_vec()),
            other => panic!("{other:?}"),
        }
        for bad in [
            vec!["garbage".to_owned()],
            vec![url_encoded(
                "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            )],
            vec![url_encoded(&cert.signing_key.serialize_pem())],
            vec![url_encoded(&cert.cert.pem()), url_encoded(&cert.cert.pem())],
        ] {
            let bad: Vec<&str> = bad.iter().map(String::as_str).collect();
            let err = forwarded
                .read(proxy, &headers("x-client-cert", &bad))
                .unwrap_err();
            assert_eq!(err.code(), "invalid_request", "{bad:?}");
            // From a stranger, the same header is not even read.
            assert!(matches!(
                forwarded.read(stranger, &headers("x-client-cert", &bad)),
                Ok(FromProxy::NotAsked)
            ));
        }
    }
}
