//! Configuration: a typed [`Settings`] built once from command-line flags, then
//! `GATEHOUSE_*` environment variables, then the TOML file, then defaults (CONTRACT §2).
//!
//! Every value arrives as text (clap reads flags and the environment; TOML scalars are
//! turned into text) and is checked in one place, so that a bad value from any source
//! stops start-up with the same one-line message naming the key. `[[routes]]`, a list
//! of tables, exists only in the file ([`routes`]).

mod args;
pub mod routes;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use gatehouse_core::sealing::MasterKey;
use gatehouse_core::SigningAlg;
use gatehouse_store::{Backend, PoolOptions};

pub use self::args::ConfigArgs;
pub use self::routes::{Endpoint, Route};
pub use crate::http::client_address::TrustedProxies;
pub use crate::net::tls::TlsFiles;
pub use crate::net::Limits;

/// A setting that cannot be used: which key, and what is wrong with it. Never holds
/// the value of a secret setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The contract's name of the key.
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

/// Keys the TOML file may hold (the contract's names).
const FILE_KEYS: &[&str] = &[
    "listen",
    "database_url",
    "issuer",
    "default_audience",
    "access_token_ttl",
    "refresh_token_ttl",
    "signing_alg",
    "master_key",
    "master_key_file",
    "tls_cert",
    "tls_key",
    "allow_insecure_http",
    "log_format",
    "cleanup_interval",
    "max_connections",
    "max_connections_per_address",
    "request_timeout",
    "idle_timeout",
    "rate_limit_per_client",
    "rate_limit_per_address",
    "password_hash_concurrency",
    "login_lockout_threshold",
    "login_lockout_duration",
    "database_max_connections",
    "database_acquire_timeout",
    "database_statement_timeout",
    "trusted_proxies",
    "routes",
];

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object a line.
    Json,
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

/// The checked configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Address to serve on.
    pub listen: SocketAddr,
    /// The database.
    pub database_url: String,
    /// Its backend.
    pub backend: Backend,
    /// `iss`; `None` means `http://<bound address>`, known once bound.
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
    /// Plain HTTP allowed on a non-loopback address.
    pub allow_insecure_http: bool,
    /// How logs are written.
    pub log_format: LogFormat,
    /// Seconds between sweeps of expired tokens.
    pub cleanup_interval: i64,
    /// Extra paths for the standard endpoints (CONTRACT §7).
    pub routes: Vec<Route>,
    /// Connection limits.
    pub limits: Limits,
    /// Abuse protection of the token endpoint.
    pub protection: Protection,
    /// The database connection pool.
    pub pool: PoolOptions,
    /// Reverse proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: TrustedProxies,
}

/// Abuse protection of the token endpoint (issue 6): rate limits, and lockouts of
/// password guessing.
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

/// Longest token lifetime accepted: ten years.
const MAX_TTL: i64 = 10 * 365 * 24 * 3600;

impl Settings {
    /// The settings `serve` needs: everything [`Settings::load`] checks, and a master key.
    pub fn load_for_serving(args: &ConfigArgs) -> Result<Self, ConfigError> {
        let settings = Self::load(args)?;
        if matches!(settings.master_key, MasterKeySource::Missing) {
            return Err(MasterKeySource::missing());
        }
        Ok(settings)
    }

    /// Builds the settings: flags and environment (already merged by clap) over the
    /// TOML file over defaults.
    pub fn load(args: &ConfigArgs) -> Result<Self, ConfigError> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => toml::Table::new(),
        };
        let value = |given: &Option<String>, key: &'static str| -> Result<Option<String>, ConfigError> {
            match given {
                Some(v) => Ok(Some(v.clone())),
                None => file.get(key).map(|v| toml_scalar(key, v)).transpose(),
            }
        };
        let listen = value(&args.listen, "listen")?;
        let listen: SocketAddr = listen
            .as_deref()
            .unwrap_or("127.0.0.1:8080")
            .parse()
            .map_err(|_| {
                ConfigError::new(
                    "listen",
                    "must be an IP address and port, like 127.0.0.1:8080 or [::1]:0",
                )
            })?;

        let database_url =
            value(&args.database_url, "database_url")?.unwrap_or_else(|| "sqlite://gatehouse.db".into());
        let backend = Backend::from_url(&database_url)
            .ok_or_else(|| ConfigError::new("database_url", "must start with sqlite:// or postgres://"))?;

        let issuer = value(&args.issuer, "issuer")?
            .map(|i| check_url("issuer", i))
            .transpose()?;
        let default_audience = value(&args.default_audience, "default_audience")?;
        if default_audience.as_deref() == Some("") {
            return Err(ConfigError::new("default_audience", "must not be empty"));
        }
        let access_token_ttl = ttl(
            "access_token_ttl",
            value(&args.access_token_ttl, "access_token_ttl")?,
            3600,
        )?;
        let refresh_token_ttl = ttl(
            "refresh_token_ttl",
            value(&args.refresh_token_ttl, "refresh_token_ttl")?,
            2_592_000,
        )?;
        let signing_alg = match value(&args.signing_alg, "signing_alg")? {
            None => SigningAlg::ES256,
            Some(name) => name
                .parse()
                .map_err(|()| ConfigError::new("signing_alg", "must be one of ES256, EdDSA, RS256, PS256"))?,
        };

        let master_key_file = value(&args.master_key_file, "master_key_file")?;
        let master_key = match (value(&args.master_key, "master_key")?, master_key_file) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::new(
                    "master_key_file",
                    "cannot be set together with master_key: give one of them",
                ))
            }
            (None, Some(path)) if path.is_empty() => {
                return Err(ConfigError::new("master_key_file", "must not be empty"))
            }
            (None, Some(path)) => MasterKeySource::NamedFile(PathBuf::from(path)),
            (Some(text), None) => MasterKeySource::Given(
                MasterKey::from_base64(&text).map_err(|e| ConfigError::new("master_key", e.to_string()))?,
            ),
            (None, None) => match backend {
                Backend::Postgres => MasterKeySource::Missing,
                Backend::Sqlite => match sqlite_path(&database_url) {
                    Some(db) => MasterKeySource::File(db.with_file_name("gatehouse.master.key")),
                    None => MasterKeySource::Ephemeral,
                },
            },
        };

        let tls = match (
            value(&args.tls_cert, "tls_cert")?,
            value(&args.tls_key, "tls_key")?,
        ) {
            (None, None) => None,
            (Some(_), None) => return Err(ConfigError::new("tls_key", "must be set together with tls_cert")),
            (None, Some(_)) => return Err(ConfigError::new("tls_cert", "must be set together with tls_key")),
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert: PathBuf::from(cert),
                key: PathBuf::from(key),
            }),
        };
        let allow_insecure_http = match value(&args.allow_insecure_http, "allow_insecure_http")?.as_deref() {
            None | Some("false") => false,
            Some("true") => true,
            Some(_) => return Err(ConfigError::new("allow_insecure_http", "must be true or false")),
        };
        if tls.is_none() && !listen.ip().is_loopback() && !allow_insecure_http {
            return Err(ConfigError::new(
                "listen",
                "plain HTTP on a non-loopback address needs tls_cert and tls_key, or allow_insecure_http = true",
            ));
        }
        let log_format = match value(&args.log_format, "log_format")?.as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(_) => return Err(ConfigError::new("log_format", "must be text or json")),
        };

        let cleanup_interval = ttl(
            "cleanup_interval",
            value(&args.cleanup_interval, "cleanup_interval")?,
            60,
        )?;

        let limits = Limits {
            max_connections: count(
                "max_connections",
                value(&args.max_connections, "max_connections")?,
                4096,
                1..=1_000_000,
            )? as usize,
            max_connections_per_address: count(
                "max_connections_per_address",
                value(&args.max_connections_per_address, "max_connections_per_address")?,
                64,
                0..=1_000_000,
            )? as usize,
            request_timeout: seconds(
                "request_timeout",
                value(&args.request_timeout, "request_timeout")?,
                10,
            )?,
            idle_timeout: seconds("idle_timeout", value(&args.idle_timeout, "idle_timeout")?, 60)?,
        };
        let protection = Protection {
            rate_per_client: count(
                "rate_limit_per_client",
                value(&args.rate_limit_per_client, "rate_limit_per_client")?,
                1000,
                0..=1_000_000,
            )?,
            rate_per_address: count(
                "rate_limit_per_address",
                value(&args.rate_limit_per_address, "rate_limit_per_address")?,
                1000,
                0..=1_000_000,
            )?,
            lockout_threshold: count(
                "login_lockout_threshold",
                value(&args.login_lockout_threshold, "login_lockout_threshold")?,
                10,
                0..=1_000_000,
            )?,
            lockout_duration: seconds(
                "login_lockout_duration",
                value(&args.login_lockout_duration, "login_lockout_duration")?,
                900,
            )?,
            password_hash_concurrency: count(
                "password_hash_concurrency",
                value(&args.password_hash_concurrency, "password_hash_concurrency")?,
                u32::try_from(gatehouse_core::SlowHashGate::default_concurrency()).unwrap_or(1),
                1..=1024,
            )?,
        };

        let pool = PoolOptions {
            max_connections: count(
                "database_max_connections",
                value(&args.database_max_connections, "database_max_connections")?,
                8,
                1..=1000,
            )?,
            acquire_timeout: seconds(
                "database_acquire_timeout",
                value(&args.database_acquire_timeout, "database_acquire_timeout")?,
                3,
            )?,
            statement_timeout: seconds(
                "database_statement_timeout",
                value(&args.database_statement_timeout, "database_statement_timeout")?,
                5,
            )?,
        };

        // The file may list the proxies as an array, or as one string like the flag.
        let trusted_proxies = match (&args.trusted_proxies, file.get("trusted_proxies")) {
            (Some(given), _) => Some(given.clone()),
            (None, Some(toml::Value::Array(entries))) => Some(
                entries
                    .iter()
                    .map(|entry| match entry {
                        toml::Value::String(entry) => Ok(entry.as_str()),
                        _ => Err(ConfigError::new(
                            "trusted_proxies",
                            "must list addresses as strings",
                        )),
                    })
                    .collect::<Result<Vec<_>, _>>()?
                    .join(","),
            ),
            (None, _) => value(&None, "trusted_proxies")?,
        };
        let trusted_proxies = TrustedProxies::parse(trusted_proxies.as_deref().unwrap_or_default())
            .map_err(|problem| ConfigError::new("trusted_proxies", problem))?;

        let routes = match file.get("routes") {
            Some(value) => routes::parse_routes(value, crate::http::STANDARD_PATHS)?,
            None => Vec::new(),
        };

        Ok(Self {
            cleanup_interval,
            trusted_proxies,
            routes,
            limits,
            protection,
            pool,
            listen,
            database_url,
            backend,
            issuer,
            default_audience,
            access_token_ttl,
            refresh_token_ttl,
            signing_alg,
            master_key,
            tls,
            allow_insecure_http,
            log_format,
        })
    }
}

fn read_file(path: &Path) -> Result<toml::Table, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new("config", format!("cannot read {}: {e}", path.display())))?;
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        let message = e.message().to_owned();
        ConfigError::new(
            "config",
            format!("{} is not valid TOML: {message}", path.display()),
        )
    })?;
    if let Some(unknown) = table.keys().find(|k| !FILE_KEYS.contains(&k.as_str())) {
        return Err(ConfigError::new(
            "config",
            format!("unknown key {unknown:?} in {}", path.display()),
        ));
    }
    Ok(table)
}

/// A TOML scalar as text, so that it is checked like a flag or variable.
fn toml_scalar(key: &'static str, value: &toml::Value) -> Result<String, ConfigError> {
    match value {
        toml::Value::String(s) => Ok(s.clone()),
        toml::Value::Integer(i) => Ok(i.to_string()),
        toml::Value::Boolean(b) => Ok(b.to_string()),
        _ => Err(ConfigError::new(
            key,
            "must be a string, a whole number or a boolean",
        )),
    }
}

fn ttl(key: &'static str, value: Option<String>, default: i64) -> Result<i64, ConfigError> {
    let Some(text) = value else { return Ok(default) };
    match text.trim().parse::<i64>() {
        Ok(seconds) if (1..=MAX_TTL).contains(&seconds) => Ok(seconds),
        _ => Err(ConfigError::new(
            key,
            format!("must be a whole number of seconds from 1 to {MAX_TTL}"),
        )),
    }
}

/// A whole number in `range`, or `default` when not given.
fn count(
    key: &'static str,
    value: Option<String>,
    default: u32,
    range: std::ops::RangeInclusive<u32>,
) -> Result<u32, ConfigError> {
    let Some(text) = value else { return Ok(default) };
    match text.trim().parse::<u32>() {
        Ok(n) if range.contains(&n) => Ok(n),
        _ => Err(ConfigError::new(
            key,
            format!("must be a whole number from {} to {}", range.start(), range.end()),
        )),
    }
}

/// A number of seconds from 1 to a day, or `default` when not given.
fn seconds(key: &'static str, value: Option<String>, default: u64) -> Result<Duration, ConfigError> {
    count(key, value, u32::try_from(default).unwrap_or(u32::MAX), 1..=86_400)
        .map(|s| Duration::from_secs(s.into()))
}

fn check_url(key: &'static str, url: String) -> Result<String, ConfigError> {
    if url.starts_with("https://") || url.starts_with("http://") {
        Ok(url.trim_end_matches('/').to_owned())
    } else {
        Err(ConfigError::new(key, "must be an http:// or https:// URL"))
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
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let s = Settings::load(&ConfigArgs::default()).unwrap();
        assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(s.database_url, "sqlite://gatehouse.db");
        assert_eq!(s.access_token_ttl, 3600);
        assert_eq!(s.refresh_token_ttl, 2_592_000);
        assert_eq!(s.signing_alg, SigningAlg::ES256);
        assert!(
            matches!(s.master_key, MasterKeySource::File(ref p) if p == Path::new("gatehouse.master.key"))
        );
    }

    #[test]
    fn errors_name_the_key() {
        let cases: Vec<(ConfigArgs, &str)> = vec![
            (
                ConfigArgs {
                    access_token_ttl: Some("abc".into()),
                    ..Default::default()
                },
                "access_token_ttl",
            ),
            (
                ConfigArgs {
                    signing_alg: Some("HS256".into()),
                    ..Default::default()
                },
                "signing_alg",
            ),
            (
                ConfigArgs {
                    listen: Some("nonsense".into()),
                    ..Default::default()
                },
                "listen",
            ),
            (
                ConfigArgs {
                    listen: Some("0.0.0.0:0".into()),
                    ..Default::default()
                },
                "listen",
            ),
            (
                ConfigArgs {
                    database_url: Some("mysql://x".into()),
                    ..Default::default()
                },
                "database_url",
            ),
            (
                ConfigArgs {
                    master_key: Some("short".into()),
                    ..Default::default()
                },
                "master_key",
            ),
            (
                ConfigArgs {
                    trusted_proxies: Some("10.0.0.0/8,lb.internal".into()),
                    ..Default::default()
                },
                "trusted_proxies",
            ),
        ];
        for (args, key) in cases {
            let err = Settings::load(&args).unwrap_err();
            assert_eq!(err.key, key, "{err}");
            assert!(!err.to_string().contains('\n'));
        }
    }

    #[test]
    fn postgres_needs_a_master_key_to_serve_only() {
        let args = ConfigArgs {
            database_url: Some("postgres://x/y".into()),
            ..Default::default()
        };
        assert!(matches!(
            Settings::load(&args).unwrap().master_key,
            MasterKeySource::Missing
        ));
        assert_eq!(Settings::load_for_serving(&args).unwrap_err().key, "master_key");
    }

    #[test]
    fn insecure_http_can_be_allowed() {
        let args = ConfigArgs {
            listen: Some("0.0.0.0:0".into()),
            allow_insecure_http: Some("true".into()),
            ..Default::default()
        };
        assert!(Settings::load(&args).unwrap().allow_insecure_http);
    }

    #[test]
    fn trusted_proxies_as_a_list_or_a_string() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("g.toml");
        let load = |toml: &str| {
            std::fs::write(&file, toml).unwrap();
            Settings::load(&ConfigArgs {
                config: Some(file.clone()),
                ..Default::default()
            })
        };
        let expected = TrustedProxies::parse("10.0.0.0/8,192.0.2.7").unwrap();
        let listed = load("trusted_proxies = [\"10.0.0.0/8\", \"192.0.2.7\"]\n").unwrap();
        assert_eq!(listed.trusted_proxies, expected);
        let one_string = load("trusted_proxies = \"10.0.0.0/8 192.0.2.7\"\n").unwrap();
        assert_eq!(one_string.trusted_proxies, expected);
        assert_eq!(
            load("trusted_proxies = [1]\n").unwrap_err().key,
            "trusted_proxies"
        );
        assert_eq!(load("").unwrap().trusted_proxies, TrustedProxies::default());
    }

    #[test]
    fn max_connections_per_address_from_each_source() {
        assert_eq!(
            Settings::load(&ConfigArgs::default())
                .unwrap()
                .limits
                .max_connections_per_address,
            64
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("g.toml");
        std::fs::write(&file, "max_connections_per_address = 0\n").unwrap();
        let from_file = ConfigArgs {
            config: Some(file.clone()),
            ..Default::default()
        };
        assert_eq!(
            Settings::load(&from_file)
                .unwrap()
                .limits
                .max_connections_per_address,
            0
        );
        let flag_over_file = ConfigArgs {
            max_connections_per_address: Some("8".into()),
            ..from_file
        };
        assert_eq!(
            Settings::load(&flag_over_file)
                .unwrap()
                .limits
                .max_connections_per_address,
            8
        );
        for bad in ["-1", "many", "1000001"] {
            let args = ConfigArgs {
                max_connections_per_address: Some(bad.into()),
                ..Default::default()
            };
            assert_eq!(
                Settings::load(&args).unwrap_err().key,
                "max_connections_per_address",
                "{bad}"
            );
        }
    }

    #[test]
    fn sqlite_paths() {
        assert_eq!(
            sqlite_path("sqlite:///tmp/a.db?mode=rwc"),
            Some(PathBuf::from("/tmp/a.db"))
        );
        assert_eq!(
            sqlite_path("sqlite://gatehouse.db"),
            Some(PathBuf::from("gatehouse.db"))
        );
        assert_eq!(sqlite_path("sqlite::memory:"), None);
    }
}
