//! TLS with rustls: the certificate chain and key from PEM files (ECDSA, RSA or
//! Ed25519), HTTP/2 and HTTP/1.1 by ALPN, and the files read again on SIGHUP without
//! touching open connections.
//!
//! With `tls_client_ca`, every client is asked for a certificate, with the CAs'
//! names as hints, and none is required (RFC 8705): [`AnyClientCertificate`] lets any
//! certificate through the handshake (a `self_signed_tls_client_auth` client's
//! chains to nothing, RFC 8705 §2.2) while rustls still checks that the client holds
//! its key (the handshake signature). Whether a certificate chains to the CAs is
//! decided after the handshake ([`crate::http::certificate`]), once per connection.

use std::fmt;
use std::path::Path;
use std::sync::{Arc, RwLock};

use gatehouse_core::PresentedCertificate;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert, ServerConnection};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, DistinguishedName, ServerConfig, SignatureScheme};
use tokio_rustls::TlsAcceptor;

use crate::config::TlsFiles;
use crate::http::certificate::{self, CaRoots, ClientCa};

/// Why the files cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file cannot be read or holds no usable PEM.
    #[error("{key}: {problem}")]
    File {
        /// `tls_cert` or `tls_key`.
        key: &'static str,
        /// What is wrong.
        problem: String,
    },
}

/// The certificate in use, swapped whole on reload.
pub struct ReloadableCert {
    files: TlsFiles,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
}

impl fmt::Debug for ReloadableCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReloadableCert")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl ReloadableCert {
    /// Reads the files again; on any error the certificate in use stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let fresh = Arc::new(load(&self.files, &self.provider)?);
        match self.current.write() {
            Ok(mut current) => *current = fresh,
            Err(poisoned) => *poisoned.into_inner() = fresh,
        }
        Ok(())
    }
}

impl ResolvesServerCert for ReloadableCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(match self.current.read() {
            Ok(current) => current.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        })
    }
}

/// The TLS side of the listener: the acceptor in use (made again when the client
/// CAs are reloaded), the certificate, and the client CAs.
pub struct Tls {
    cert: Arc<ReloadableCert>,
    client_ca: Option<Arc<ClientCa>>,
    provider: Arc<CryptoProvider>,
    acceptor: RwLock<TlsAcceptor>,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls")
            .field("cert", &self.cert)
            .field("client_ca", &self.client_ca)
            .finish_non_exhaustive()
    }
}

impl Tls {
    /// TLS with the certificate of `files`; with `client_ca`, clients are asked for a
    /// certificate.
    pub fn new(files: &TlsFiles, client_ca: Option<Arc<ClientCa>>) -> Result<Self, TlsError> {
        let provider = provider();
        let cert = Arc::new(ReloadableCert {
            current: RwLock::new(Arc::new(load(files, &provider)?)),
            files: files.clone(),
            provider: provider.clone(),
        });
        let roots = client_ca.as_ref().map(|ca| ca.current());
        let acceptor = RwLock::new(server_config(&provider, &cert, roots)?);
        Ok(Self {
            cert,
            client_ca,
            provider,
            acceptor,
        })
    }

    /// The acceptor for a new connection.
    pub fn acceptor(&self) -> TlsAcceptor {
        match self.acceptor.read() {
            Ok(acceptor) => acceptor.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The certificate the client of `connection` presented, checked against the
    /// client CAs; `None` without one.
    pub fn presented(&self, connection: &ServerConnection) -> Option<Arc<PresentedCertificate>> {
        let chain = connection.peer_certificates()?;
        certificate::presented(chain, self.client_ca.as_deref()).map(Arc::new)
    }

    /// Reads the certificate files and the client CAs again; open connections keep
    /// what they have. On an error, what failed stays as it was.
    fn reload(&self) {
        match self.cert.reload() {
            Ok(()) => tracing::info!(cert = %self.cert.files.cert.display(), "TLS certificate reloaded"),
            Err(e) => tracing::error!(error = %e, "TLS certificate not reloaded; the old one stays in use"),
        }
        let Some(ca) = &self.client_ca else {
            return;
        };
        if !reload_client_ca(ca) {
            return;
        }
        // The CAs' names, hinted in the handshake, live in the server config.
        match server_config(&self.provider, &self.cert, Some(ca.current())) {
            Ok(fresh) => match self.acceptor.write() {
                Ok(mut acceptor) => *acceptor = fresh,
                Err(poisoned) => *poisoned.into_inner() = fresh,
            },
            Err(e) => {
                tracing::error!(error = %e, "TLS configuration not rebuilt for the reloaded client CAs")
            }
        }
    }
}

/// Reloads `ca`, logging the outcome; whether it changed.
fn reload_client_ca(ca: &ClientCa) -> bool {
    match ca.reload() {
        Ok(count) => {
            tracing::info!(tls_client_ca = %ca.path().display(), certificates = count, "client CAs reloaded");
            true
        }
        Err(e) => {
            tracing::error!(error = %e, "client CAs (tls_client_ca) not reloaded; the old ones stay in use");
            false
        }
    }
}

/// The crypto provider of the server's TLS and certificate checks.
///
/// Explicit: reqwest (a dependency of tests and libraries) may enable ring in rustls
/// too, and then no process-wide default could be chosen.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn server_config(
    provider: &Arc<CryptoProvider>,
    cert: &Arc<ReloadableCert>,
    client_roots: Option<Arc<CaRoots>>,
) -> Result<TlsAcceptor, TlsError> {
    let versions = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::File {
            key: "tls_cert",
            problem: e.to_string(),
        })?;
    let builder = match client_roots {
        Some(roots) => versions.with_client_cert_verifier(Arc::new(AnyClientCertificate { roots })),
        None => versions.with_no_client_auth(),
    };
    let mut config = builder.with_cert_resolver(cert.clone());
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Asks for a client certificate, hinting the client CAs, requires none, and lets
/// any through; the handshake signature is checked by webpki's verifier for the CAs
/// (it needs no chain: only the certificate's key).
struct AnyClientCertificate {
    roots: Arc<CaRoots>,
}

impl fmt::Debug for AnyClientCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AnyClientCertificate").finish_non_exhaustive()
    }
}

impl ClientCertVerifier for AnyClientCertificate {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.roots.verifier().root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        // Chains are judged after the handshake, where a certificate that is no CA's
        // can still authenticate a self_signed_tls_client_auth client.
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.roots.verifier().verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.roots.verifier().verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.roots.verifier().supported_verify_schemes()
    }
}

fn load(files: &TlsFiles, provider: &CryptoProvider) -> Result<CertifiedKey, TlsError> {
    let chain = read_pem_certs(&files.cert)?;
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| TlsError::File {
        key: "tls_key",
        problem: format!("no private key in {}: {e}", files.key.display()),
    })?;
    let certified = CertifiedKey::from_der(chain, key, provider).map_err(|e| TlsError::File {
        key: "tls_key",
        problem: format!("does not match the certificate or is not supported: {e}"),
    })?;
    Ok(certified)
}

fn read_pem_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let problem = |problem: String| TlsError::File {
        key: "tls_cert",
        problem,
    };
    let chain = CertificateDer::pem_file_iter(path)
        .map_err(|e| problem(format!("cannot read {}: {e}", path.display())))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| problem(format!("{} is not PEM: {e}", path.display())))?;
    if chain.is_empty() {
        return Err(problem(format!("no certificate in {}", path.display())));
    }
    Ok(chain)
}

/// On every SIGHUP, for as long as the server runs, reloads the TLS certificate and
/// the client CAs (`tls`), or the client CAs alone (`client_ca`, behind a proxy).
/// SIGHUP is caught from this call on, not from the future's first poll: a SIGHUP
/// sent as soon as the server says it is listening must not find the default action
/// (exit).
pub fn reload_on_sighup(
    tls: Option<Arc<Tls>>,
    client_ca: Option<Arc<ClientCa>>,
) -> impl std::future::Future<Output = ()> + Send {
    let hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup());
    async move {
        let Ok(mut hangups) = hangups else {
            tracing::warn!("cannot listen for SIGHUP: TLS files will not be reloaded");
            return;
        };
        while hangups.recv().await.is_some() {
            match (&tls, &client_ca) {
                (Some(tls), _) => tls.reload(),
                (None, Some(ca)) => {
                    reload_client_ca(ca);
                }
                (None, None) => {}
            }
        }
    }
}
