//! Configuration: a typed [`Settings`] built once from command-line flags, then
//! `GATEHOUSE_*` environment variables, then the TOML file, then defaults.
//!
//! Every setting is declared once, in [`keys`]: its name (which makes the flag, the
//! variable and the TOML key), type, default, parser, which commands take the flag,
//! and its documentation. Every value arrives as text (a TOML scalar is turned into
//! text) and goes through the key's parser, so a bad value from any source stops
//! start-up with the same one-line message naming the key. [`Settings::load`] then
//! checks what one key alone cannot (`tls_cert` needs `tls_key`) and groups the values
//! for the parts of the server that use them. `[[routes]]`, a list of tables, exists
//! only in the file ([`routes`]).
//!
//! This module depends on nothing else of the server: the HTTP layer and the listener
//! take their settings from here.

mod command_line;
mod file;
pub mod keys;
pub mod routes;
mod source;
pub mod trusted_proxies;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use axum::http::HeaderName;
use gatehouse_core::sealing::MasterKey;
use gatehouse_core::{IssuerConfig, SigningAlg};
use gatehouse_store::{Backend, PoolOptions};

pub use self::command_line::{flags, ConfigArgs, Flags, CONFIG_ENV};
use self::file::ConfigFile;
use self::keys::Values;
pub use self::routes::{Endpoint, Route};
use self::source::{Env, Source};
pub use self::trusted_proxies::TrustedProxies;

/// A setting that cannot be used: which key, and what is wrong with it. Never holds
/// the value of a secret setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The key's name, as in the file.
    pub key: &'static str,
    /// What is wrong.
    pub problem: String,
}

impl ConfigError {
    pub(crate) fn new(key: &'static str, problem: impl Into<String>) -> Self {
        Self {
            key,
            problem: problem.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "gatehouse: invalid configuration: {}: {}",
            self.key, self.problem
        )
    }
}

impl std::error::Error for ConfigError {}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object a line.
    Json,
}

/// Who may register a client at `/oauth/register` (RFC 7591).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RegistrationMode {
    /// Nobody: the endpoint does not exist.
    #[default]
    Off,
    /// Holders of an access token of this server with scope `gatehouse:register`
    /// (RFC 7591 §3: an initial access token).
    Token,
    /// Anyone, within a per-address limit.
    Open,
}

/// Where the master key comes from.
#[derive(Debug, Clone)]
pub enum MasterKeySource {
    /// Given as a setting.
    Given(MasterKey),
    /// A key file beside the SQLite database, created on first use.
    File(PathBuf),
    /// The file `master_key_file` names: read, never created.
    NamedFile(PathBuf),
    /// Nowhere to keep one (an in-memory SQLite database): a fresh key per process.
    Ephemeral,
    /// Not given, and needed: PostgreSQL nodes must share one key. Only commands that
    /// touch signing keys (`serve`, `keys rotate`) fail on this.
    Missing,
}

impl MasterKeySource {
    /// The error for [`MasterKeySource::Missing`].
    pub fn missing() -> ConfigError {
        ConfigError::new(
            "master_key",
            "must be given (or master_key_file) for PostgreSQL: every node needs the same key",
        )
    }
}

/// The certificate and key files of `tls_cert` and `tls_key`.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// PEM: the certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM: the private key (PKCS#8, SEC1 or PKCS#1).
    pub key: PathBuf,
}

/// Where the server sees the TLS client certificates of mutual-TLS client
/// authentication (RFC 8705): its own TLS connections, a trusted proxy's header, or
/// both.
#[derive(Debug, Clone, Default)]
pub struct ClientCertificates {
    /// `tls_client_ca`: PEM bundle of the CAs of `tls_client_auth` certificates;
    /// with TLS, the listener asks clients for a certificate.
    pub ca: Option<PathBuf>,
    /// `tls_client_cert_header`: where a trusted proxy forwards a certificate.
    pub header: Option<HeaderName>,
}

impl ClientCertificates {
    /// Whether any request can come with a certificate: what the metadata offers
    /// the mutual-TLS methods and bound tokens on.
    pub fn visible(&self) -> bool {
        self.ca.is_some() || self.header.is_some()
    }
}

/// Per-connection limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections open at once.
    pub max_connections: usize,
    /// Connections open at once from one address (trusted proxies excepted); 0: no cap.
    pub max_connections_per_address: usize,
    /// Headers of one request, and a TLS handshake, must arrive within this.
    pub request_timeout: Duration,
    /// A connection silent this long, or without a request in flight this long, is
    /// closed.
    pub idle_timeout: Duration,
}

/// Abuse protection of the token endpoint: rate limits, and lockouts of password
/// guessing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Protection {
    /// Token requests per second per client id; 0: no limit.
    pub rate_per_client: u32,
    /// Token requests per second per source address; 0: no limit.
    pub rate_per_address: u32,
    /// Failed logins of one username from one address before a lockout; 0: no
    /// brake on password guessing.
    pub lockout_threshold: u32,
    /// How long a lockout lasts.
    pub lockout_duration: Duration,
    /// Slow password-hash verifications at once.
    pub password_hash_concurrency: u32,
}

/// The checked configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Address to serve on.
    pub listen: SocketAddr,
    /// The database.
    pub database_url: String,
    /// Its backend.
    pub backend: Backend,
    /// `iss` as configured; `None`: derived from the address ([`Settings::issuer`]).
    pub issuer: Option<String>,
    /// `aud` for clients without their own; `None` means the issuer.
    pub default_audience: Option<String>,
    /// Seconds.
    pub access_token_ttl: i64,
    /// Seconds.
    pub refresh_token_ttl: i64,
    /// The algorithm of new signing keys.
    pub signing_alg: SigningAlg,
    /// Where the master key comes from.
    pub master_key: MasterKeySource,
    /// TLS certificate and key files.
    pub tls: Option<TlsFiles>,
    /// Where client certificates come from.
    pub client_certificates: ClientCertificates,
    /// Plain HTTP allowed on a non-loopback address.
    pub allow_insecure_http: bool,
    /// `jwks_uri` fetched over `http://` and from loopback and private addresses.
    pub allow_insecure_jwks_uri: bool,
    /// How logs are written.
    pub log_format: LogFormat,
    /// Seconds between sweeps of expired tokens.
    pub cleanup_interval: i64,
    /// Extra paths for the standard endpoints.
    pub routes: Vec<Route>,
    /// Connection limits.
    pub limits: Limits,
    /// Abuse protection of the token endpoint.
    pub protection: Protection,
    /// The database connection pool.
    pub pool: PoolOptions,
    /// Reverse proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: TrustedProxies,
    /// Dynamic client registration.
    pub registration: RegistrationMode,
}

impl Settings {
    /// The settings `serve` needs: everything [`Settings::load`] checks, and a master key.
    pub fn load_for_serving(args: &ConfigArgs) -> Result<Self, ConfigError> {
        let settings = Self::load(args)?;
        if matches!(settings.master_key, MasterKeySource::Missing) {
            return Err(MasterKeySource::missing());
        }
        Ok(settings)
    }

    /// Builds the settings: flags over the process's environment over the TOML file
    /// over defaults.
    pub fn load(args: &ConfigArgs) -> Result<Self, ConfigError> {
        Self::load_with_env(args, &|name| std::env::var_os(name))
    }

    /// [`Settings::load`] with `env` for the environment.
    pub fn load_with_env(args: &ConfigArgs, env: Env<'_>) -> Result<Self, ConfigError> {
        let config = match &args.config {
            Some(path) => Some(path.clone()),
            None => env(CONFIG_ENV).map(PathBuf::from),
        };
        let file = config.as_deref().map(ConfigFile::read).transpose()?;
        let source = Source {
            flags: &args.flags,
            env,
            file: file.as_ref(),
        };
        let values = Values::read(&source)?;
        let routes = match file.as_ref().and_then(|file| file.get(file::ROUTES_KEY)) {
            Some(value) => routes::parse_routes(value)?,
            None => Vec::new(),
        };
        Self::from_values(values, routes)
    }

    /// Checks what no key can check alone, and groups the values.
    fn from_values(values: Values, routes: Vec<Route>) -> Result<Self, ConfigError> {
        let (backend, database_url) = values.database_url;
        let master_key = match (values.master_key, values.master_key_file) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::new(
                    "master_key_file",
                    "cannot be set together with master_key: give one of them",
                ))
            }
            (None, Some(path)) => MasterKeySource::NamedFile(path),
            (Some(key), None) => MasterKeySource::Given(key),
            (None, None) => match backend {
                Backend::Postgres => MasterKeySource::Missing,
                Backend::Sqlite => match sqlite_path(&database_url) {
                    Some(db) => MasterKeySource::File(db.with_file_name("gatehouse.master.key")),
                    None => MasterKeySource::Ephemeral,
                },
            },
        };
        let tls = match (values.tls_cert, values.tls_key) {
            (None, None) => None,
            (Some(_), None) => return Err(ConfigError::new("tls_key", "must be set together with tls_cert")),
            (None, Some(_)) => return Err(ConfigError::new("tls_cert", "must be set together with tls_key")),
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
        };
        if values.tls_client_ca.is_some() && tls.is_none() && values.tls_client_cert_header.is_none() {
            return Err(ConfigError::new(
                "tls_client_ca",
                "needs tls_cert and tls_key (client certificates on the server's own TLS connections) \
                 or tls_client_cert_header (certificates forwarded by a trusted proxy)",
            ));
        }
        if tls.is_none() && !values.listen.ip().is_loopback() && !values.allow_insecure_http {
            return Err(ConfigError::new(
                "listen",
                "plain HTTP on a non-loopback address needs tls_cert and tls_key, or allow_insecure_http = true",
            ));
        }
        let password_hash_concurrency = values.password_hash_concurrency.unwrap_or_else(|| {
            u32::try_from(gatehouse_core::SlowHashGate::default_concurrency()).unwrap_or(1)
        });
        Ok(Self {
            listen: values.listen,
            database_url,
            backend,
            issuer: values.issuer,
            default_audience: values.default_audience,
            access_token_ttl: values.access_token_ttl,
            refresh_token_ttl: values.refresh_token_ttl,
            signing_alg: values.signing_alg,
            master_key,
            tls,
            client_certificates: ClientCertificates {
                ca: values.tls_client_ca,
                header: values.tls_client_cert_header,
            },
            allow_insecure_http: values.allow_insecure_http,
            allow_insecure_jwks_uri: values.allow_insecure_jwks_uri,
            log_format: values.log_format,
            cleanup_interval: values.cleanup_interval,
            routes,
            limits: Limits {
                max_connections: values.max_connections as usize,
                max_connections_per_address: values.max_connections_per_address as usize,
                request_timeout: values.request_timeout,
                idle_timeout: values.idle_timeout,
            },
            protection: Protection {
                rate_per_client: values.rate_limit_per_client,
                rate_per_address: values.rate_limit_per_address,
                lockout_threshold: values.login_lockout_threshold,
                lockout_duration: values.login_lockout_duration,
                password_hash_concurrency,
            },
            pool: PoolOptions {
                max_connections: values.database_max_connections,
                acquire_timeout: values.database_acquire_timeout,
                statement_timeout: values.database_statement_timeout,
            },
            trusted_proxies: values.trusted_proxies.unwrap_or_default(),
            registration: values.registration,
        })
    }

    /// The issuer of a server listening on `listening`: `issuer` when configured, else
    /// the default, `http://<address>` (`https://` with `tls_cert`).
    ///
    /// `serve` passes the bound address, so `listen = "127.0.0.1:0"` gives the port
    /// picked. The admin commands have no bound address and pass `listen` as
    /// configured. An unspecified address (`0.0.0.0`, `[::]`) is no address a client
    /// can be told to use: the default names loopback of the same family instead
    /// (`http://127.0.0.1:8080`), the one place sure to reach the server. A server
    /// that others reach under a name sets `issuer` to it.
    pub fn issuer(&self, listening: SocketAddr) -> String {
        if let Some(issuer) = &self.issuer {
            return issuer.clone();
        }
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let ip = match listening.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        format!("{scheme}://{}", SocketAddr::new(ip, listening.port()))
    }

    /// What tokens are issued with, by a server listening on `listening`
    /// ([`Settings::issuer`]).
    pub fn issuer_config(&self, listening: SocketAddr) -> IssuerConfig {
        let issuer = self.issuer(listening);
        IssuerConfig {
            default_audience: self.default_audience.clone().unwrap_or_else(|| issuer.clone()),
            issuer,
            access_token_ttl: self.access_token_ttl,
            refresh_token_ttl: self.refresh_token_ttl,
        }
    }
}

/// The file behind a `sqlite:` URL, or `None` for an in-memory database.
pub fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        None
    } else {
        Some(PathBuf::from(path))
    }
}

#[cfg(test)]
mod tests;
