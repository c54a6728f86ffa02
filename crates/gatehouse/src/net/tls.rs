//! TLS with rustls: the certificate chain and key from PEM files (ECDSA, RSA or
//! Ed25519), HTTP/2 and HTTP/1.1 by ALPN, and the files read again on SIGHUP without
//! touching open connections.

use std::fmt;
use std::path::Path;
use std::sync::{Arc, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

use crate::config::TlsFiles;

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

/// A TLS acceptor for `files`, and the handle to reload them.
pub fn acceptor(files: &TlsFiles) -> Result<(TlsAcceptor, Arc<ReloadableCert>), TlsError> {
    // Explicit provider: reqwest (a dependency of tests and libraries) may enable
    // ring in rustls too, and then no process-wide default could be chosen.
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let cert = Arc::new(ReloadableCert {
        current: RwLock::new(Arc::new(load(files, &provider)?)),
        files: files.clone(),
        provider: provider.clone(),
    });
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::File {
            key: "tls_cert",
            problem: e.to_string(),
        })?
        .with_no_client_auth()
        .with_cert_resolver(cert.clone());
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok((TlsAcceptor::from(Arc::new(config)), cert))
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

/// Reloads the certificate on every SIGHUP, for as long as the server runs. SIGHUP is
/// caught from this call on, not from the future's first poll: a SIGHUP sent as soon
/// as the server says it is listening must not find the default action (exit).
pub fn reload_on_sighup(cert: Arc<ReloadableCert>) -> impl std::future::Future<Output = ()> + Send {
    let hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup());
    async move {
        let Ok(mut hangups) = hangups else {
            tracing::warn!("cannot listen for SIGHUP: the TLS certificate will not be reloaded");
            return;
        };
        while hangups.recv().await.is_some() {
            match cert.reload() {
                Ok(()) => tracing::info!(cert = %cert.files.cert.display(), "TLS certificate reloaded"),
                Err(e) => {
                    tracing::error!(error = %e, "TLS certificate not reloaded; the old one stays in use")
                }
            }
        }
    }
}
