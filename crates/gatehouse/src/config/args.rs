//! The settings as flags and `GATEHOUSE_*` variables (clap reads both); each is also
//! a key of the TOML file.

use std::path::PathBuf;

use clap::Args;

/// The settings as given on the command line or in the environment; each is also a
/// TOML key of the same name in the `--config` file.
#[derive(Debug, Clone, Default, Args)]
pub struct ConfigArgs {
    /// TOML configuration file.
    #[arg(long, global = true, env = "GATEHOUSE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to serve on (`:0` picks a free port). Default 127.0.0.1:8080.
    #[arg(long, global = true, env = "GATEHOUSE_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,
    /// `sqlite://PATH` or `postgres://…`. Default sqlite://gatehouse.db.
    #[arg(long, global = true, env = "GATEHOUSE_DATABASE_URL", value_name = "URL")]
    pub database_url: Option<String>,
    /// The `iss` of every token and of the metadata. Default http://<listen>.
    #[arg(long, global = true, env = "GATEHOUSE_ISSUER", value_name = "URL")]
    pub issuer: Option<String>,
    /// `aud` of access tokens for clients created without `--audience`. Default: the issuer.
    #[arg(long, global = true, env = "GATEHOUSE_DEFAULT_AUDIENCE", value_name = "AUD")]
    pub default_audience: Option<String>,
    /// Access token lifetime in seconds. Default 3600.
    #[arg(
        long,
        global = true,
        env = "GATEHOUSE_ACCESS_TOKEN_TTL",
        value_name = "SECONDS"
    )]
    pub access_token_ttl: Option<String>,
    /// Refresh token lifetime in seconds. Not a global flag: `client create` has a
    /// `--refresh-token-ttl` of its own, so `serve` carries this one ([`crate::cli::ServeArgs`]).
    #[arg(skip)]
    pub refresh_token_ttl: Option<String>,
    /// ES256, EdDSA, RS256 or PS256. Default ES256.
    #[arg(long, global = true, env = "GATEHOUSE_SIGNING_ALG", value_name = "ALG")]
    pub signing_alg: Option<String>,
    /// 32 bytes, base64: encrypts private keys at rest. Default: a key file beside a
    /// SQLite database. Required for PostgreSQL (or master_key_file). Prefer
    /// --master-key-file: a flag's value shows in the process list to every user.
    #[arg(
        long,
        global = true,
        env = "GATEHOUSE_MASTER_KEY",
        value_name = "BASE64",
        hide_env_values = true
    )]
    pub master_key: Option<String>,
    /// File holding the master key in base64, readable by its owner only (chmod 600):
    /// keeps the key off command lines. Not together with master_key.
    #[arg(long, global = true, env = "GATEHOUSE_MASTER_KEY_FILE", value_name = "FILE")]
    pub master_key_file: Option<String>,
    /// PEM certificate chain; with tls_key, serve HTTPS.
    #[arg(long, global = true, env = "GATEHOUSE_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<String>,
    /// PEM private key for tls_cert.
    #[arg(long, global = true, env = "GATEHOUSE_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<String>,
    /// Serve plain HTTP on a non-loopback address (behind a TLS proxy).
    #[arg(long, global = true, env = "GATEHOUSE_ALLOW_INSECURE_HTTP", value_name = "BOOL",
          num_args = 0..=1, default_missing_value = "true")]
    pub allow_insecure_http: Option<String>,
    /// Seconds between sweeps that delete expired tokens. Default 60.
    #[arg(
        long,
        global = true,
        env = "GATEHOUSE_CLEANUP_INTERVAL",
        value_name = "SECONDS"
    )]
    pub cleanup_interval: Option<String>,
    /// `text` (default) or `json` log lines.
    #[arg(long, global = true, env = "GATEHOUSE_LOG_FORMAT", value_name = "FORMAT")]
    pub log_format: Option<String>,
    /// Connections open at once. Default 4096.
    #[arg(long, global = true, env = "GATEHOUSE_MAX_CONNECTIONS", value_name = "N")]
    pub max_connections: Option<String>,
    /// Connections open at once from one address; beyond, a new one is closed at once.
    /// Trusted proxies are exempt. 0 turns the cap off. Default 64.
    #[arg(
        long,
        global = true,
        env = "GATEHOUSE_MAX_CONNECTIONS_PER_ADDRESS",
        value_name = "N"
    )]
    pub max_connections_per_address: Option<String>,
    /// Seconds for the headers of a request, for its body, and for a TLS handshake.
    /// Default 10.
    #[arg(
        long,
        global = true,
        env = "GATEHOUSE_REQUEST_TIMEOUT",
        value_name = "SECONDS"
    )]
    pub request_timeout: Option<String>,
    /// Seconds a connection may stay silent, or go without a request in flight (HTTP/2
    /// PINGs do not count), before it is closed. Default 60.
    #[arg(long, global = true, env = "GATEHOUSE_IDLE_TIMEOUT", value_name = "SECONDS")]
    pub idle_timeout: Option<String>,
    /// Token requests per second per client id (bursts of twice that); 0 turns it off.
    /// Default 1000.
    #[arg(
        long,
        global = true,
        env = "GATEHOUSE_RATE_LIMIT_PER_CLIENT",
        value_name = "PER_SECOND"
    )]
    pub rate_limit_per_client: Option<String>,
    /// Token requests per second per source address (bursts of twice that); 0 turns it
    /// off. Default 1000.
    #[arg(
        long,
        global = true,
        env = "GATEHOUSE_RATE_LIMIT_PER_ADDRESS",
        value_name = "PER_SECOND"
    )]
    pub rate_limit_per_address: Option<String>,
    /// Slow (Argon2id) verifications of imported client secrets and user passwords run
    /// at once; a request that finds every slot busy for five seconds is answered 503
    /// with Retry-After. Default: half the cores, at least 1.
    #[arg(
        long,
        global = true,
        env = "GATEHOUSE_PASSWORD_HASH_CONCURRENCY",
        value_name = "N"
    )]
    pub password_hash_concurrency: Option<String>,
    /// Failed password logins of one username from one address before that pair is
    /// locked out; 0 turns the password-guessing brake off. Default 10.
    #[arg(
        long,
        global = true,
        env = "GATEHOUSE_LOGIN_LOCKOUT_THRESHOLD",
        value_name = "N"
    )]
    pub login_lockout_threshold: Option<String>,
    /// Most database connections of this node. Default 8.
    #[arg(
        long,
        global = true,
        env = "GATEHOUSE_DATABASE_MAX_CONNECTIONS",
        value_name = "N"
    )]
    pub database_max_connections: Option<String>,
    /// Seconds a query waits for a free connection before the database counts as
    /// unavailable (503). Default 3.
    #[arg(
        long,
        global = true,
        env = "GATEHOUSE_DATABASE_ACQUIRE_TIMEOUT",
        value_name = "SECONDS"
    )]
    pub database_acquire_timeout: Option<String>,
    /// Seconds a statement may run (PostgreSQL statement_timeout; SQLite's busy
    /// timeout). Default 5.
    #[arg(
        long,
        global = true,
        env = "GATEHOUSE_DATABASE_STATEMENT_TIMEOUT",
        value_name = "SECONDS"
    )]
    pub database_statement_timeout: Option<String>,
    /// Reverse proxies and load balancers whose X-Forwarded-For names the client, for
    /// rate limits, login lockouts and the audit log: addresses and CIDR ranges,
    /// comma-separated. Default none: every address is the connection's own.
    #[arg(
        long,
        global = true,
        env = "GATEHOUSE_TRUSTED_PROXIES",
        value_name = "ADDRESSES"
    )]
    pub trusted_proxies: Option<String>,
    /// Seconds a lockout lasts. Default 900.
    #[arg(
        long,
        global = true,
        env = "GATEHOUSE_LOGIN_LOCKOUT_DURATION",
        value_name = "SECONDS"
    )]
    pub login_lockout_duration: Option<String>,
}
