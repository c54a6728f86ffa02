//! Every setting, declared once.
//!
//! A declaration names the key (`access_token_ttl`); the flag (`--access-token-ttl`),
//! the environment variable (`GATEHOUSE_ACCESS_TOKEN_TTL`) and the TOML key are made
//! from that name. It gives the type, the default, the parser, the value's name in
//! help, which commands take the flag, and the documentation. From the one list come
//! the flags of each command ([`super::command_line`]), the keys the TOML file may
//! hold ([`super::file`]), the typed [`Values`] the settings are built from, and the
//! table in `docs/configuration.md` (a test keeps that table equal to
//! [`markdown_table`]).
//!
//! A parser turns text into the value or says what is wrong; every source (flag,
//! variable, file) arrives as text, so a bad value reads the same wherever it came
//! from. A key with a default in quotes parses that default when given nowhere; a key
//! whose default is described (`unset "…"`) is `None` then, and the settings decide.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use axum::http::HeaderName;
use gatehouse_core::sealing::MasterKey;
use gatehouse_core::SigningAlg;
use gatehouse_store::Backend;

use super::source::Source;
use super::{ConfigError, LogFormat, RegistrationMode, TrustedProxies};

/// Longest token lifetime accepted: ten years.
pub const MAX_TTL: i64 = 10 * 365 * 24 * 3600;

/// The prefix of every environment variable.
const ENV_PREFIX: &str = "GATEHOUSE_";

/// The prefix of a key's id among a command's arguments, apart from its own.
const ID_PREFIX: &str = "setting.";

/// One setting, as the command line, the environment, the file and the docs see it.
#[derive(Debug, Clone, Copy)]
pub struct Key {
    /// The TOML key, and the name error messages use: `access_token_ttl`.
    pub name: &'static str,
    /// The argument's id in clap: `setting.access_token_ttl`.
    pub id: &'static str,
    /// The flag without its dashes: `access-token-ttl`.
    pub flag: &'static str,
    /// The environment variable: `GATEHOUSE_ACCESS_TOKEN_TTL`.
    pub env: &'static str,
    /// The value's name in help: `SECONDS`.
    pub value_name: &'static str,
    /// What applies when the key is given nowhere.
    pub default: KeyDefault,
    /// Markdown: a summary paragraph, then details.
    pub doc: &'static str,
    /// Which commands take it as a flag.
    pub on: On,
    /// In the file, also a list of strings (joined with commas).
    pub list: bool,
    /// The flag may stand alone, meaning `true`.
    pub switch: bool,
}

/// What applies when a key is given nowhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyDefault {
    /// This text, parsed like a given value.
    Value(&'static str),
    /// No value; the settings derive one, as this markdown says.
    Unset(&'static str),
}

/// Which commands take a key as a flag. Environment variables and the file reach every
/// command, whatever this says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum On {
    /// `serve` alone.
    Serve,
    /// Every command: they all open the database.
    Every,
    /// Every command (they all open the database), shown in `serve`'s help alone:
    /// tuning a one-shot admin command rarely needs.
    EveryTuning,
    /// `serve` and the commands that open signing keys (`keys rotate`, `token revoke`);
    /// the other admin commands accept it without showing it, so that one set of
    /// connection flags (`--database-url`, `--master-key`) works for every command.
    MasterKey,
    /// `serve` and `keys rotate`: what a new signing key is made with.
    Signing,
}

impl Key {
    /// `--flag`.
    pub fn long_flag(&self) -> String {
        format!("--{}", self.flag)
    }

    /// The first paragraph of the documentation, as one line of markdown.
    pub fn summary(&self) -> String {
        paragraphs(self.doc).into_iter().next().unwrap_or_default()
    }

    /// The whole documentation, its paragraphs joined into one line of markdown.
    pub fn meaning(&self) -> String {
        paragraphs(self.doc).join(" ")
    }

    /// The default as the docs show it.
    pub fn default_markdown(&self) -> String {
        match self.default {
            KeyDefault::Value(value) => format!("`{value}`"),
            KeyDefault::Unset(description) => description.to_owned(),
        }
    }
}

/// The key called `name`, if one is.
pub fn find(name: &str) -> Option<&'static Key> {
    KEYS.iter().find(|key| key.name == name)
}

/// The paragraphs of a doc comment, each joined into one line.
fn paragraphs(doc: &str) -> Vec<String> {
    let mut paragraphs = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    for line in doc.lines().map(str::trim) {
        if line.is_empty() {
            if !current.is_empty() {
                paragraphs.push(current.join(" "));
                current.clear();
            }
        } else {
            current.push(line);
        }
    }
    if !current.is_empty() {
        paragraphs.push(current.join(" "));
    }
    paragraphs
}

/// The table of every key for `docs/configuration.md`.
pub fn markdown_table() -> String {
    let mut table =
        String::from("| key | flag | environment variable | default | meaning |\n|---|---|---|---|---|\n");
    for key in KEYS {
        table.push_str(&format!(
            "| `{}` | `{}` | `{}` | {} | {} |\n",
            key.name,
            key.long_flag(),
            key.env,
            key.default_markdown().replace('|', "\\|"),
            key.meaning().replace('|', "\\|"),
        ));
    }
    table
}

/// A name made from a key's name at compile time: `prefix`, then the name, in capitals
/// when `upper`, with `-` for `_` when `dashes`. `N` is the length of the result.
const fn derived_name<const N: usize>(prefix: &str, name: &str, upper: bool, dashes: bool) -> [u8; N] {
    let prefix = prefix.as_bytes();
    let name = name.as_bytes();
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N {
        out[i] = if i < prefix.len() {
            prefix[i]
        } else {
            let c = name[i - prefix.len()];
            if dashes && c == b'_' {
                b'-'
            } else if upper {
                c.to_ascii_uppercase()
            } else {
                c
            }
        };
        i += 1;
    }
    out
}

/// Bytes made from an ASCII key name, as text; a name that is not ASCII fails the build.
const fn ascii(bytes: &'static [u8]) -> &'static str {
    match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(_) => panic!("a setting's name must be ASCII"),
    }
}

/// Declares the settings: [`KEYS`], one [`Key`] constant per key in [`by_name`], and
/// [`Values`] with one typed field per key, read from a [`Source`].
///
/// Each entry: doc comment (markdown; the first paragraph is the summary `-h` shows),
/// `name: Type = default "text"` (parsed when given nowhere) or `= unset "markdown"`
/// (the field is an `Option`), then the parser (`Fn(&str) -> Result<Type, String>`),
/// the value's name in help, [`On`], and the options `list` and `switch` ([`Key`]).
macro_rules! settings {
    ($(
        $(#[doc = $doc:literal])+
        $name:ident: $ty:ty = $kind:ident $default:literal,
            parse $parse:expr, value $value_name:literal, on $on:ident $(, $option:ident)*;
    )*) => {
        /// One constant per key, named as the key.
        #[allow(non_upper_case_globals)]
        pub mod by_name {
            use super::*;
            $(
                $(#[doc = $doc])+
                pub const $name: Key = {
                    const NAME: &str = stringify!($name);
                    const ID: [u8; ID_PREFIX.len() + NAME.len()] = derived_name(ID_PREFIX, NAME, false, false);
                    const FLAG: [u8; NAME.len()] = derived_name("", NAME, false, true);
                    const ENV: [u8; ENV_PREFIX.len() + NAME.len()] = derived_name(ENV_PREFIX, NAME, true, false);
                    #[allow(unused_mut)]
                    let mut key = Key {
                        name: NAME,
                        id: ascii(&ID),
                        flag: ascii(&FLAG),
                        env: ascii(&ENV),
                        value_name: $value_name,
                        default: settings!(@default $kind $default),
                        doc: concat!($($doc, "\n"),+),
                        on: On::$on,
                        list: false,
                        switch: false,
                    };
                    $(key.$option = true;)*
                    key
                };
            )*
        }

        /// Every key, in the order of the documentation and of `--help`.
        pub const KEYS: &[Key] = &[$(by_name::$name),*];

        /// Every setting's value, parsed: given, or the default.
        #[derive(Debug)]
        pub(crate) struct Values {
            $(
                $(#[doc = $doc])+
                pub $name: settings!(@type $kind $ty),
            )*
        }

        impl Values {
            /// Reads every key from `source`; the first bad value is the error.
            pub(crate) fn read(source: &Source<'_>) -> Result<Self, ConfigError> {
                Ok(Self {
                    $($name: settings!(@read $kind source, by_name::$name, $parse, $default),)*
                })
            }
        }
    };
    (@default default $default:literal) => { KeyDefault::Value($default) };
    (@default unset $default:literal) => { KeyDefault::Unset($default) };
    (@type default $ty:ty) => { $ty };
    (@type unset $ty:ty) => { Option<$ty> };
    (@read default $source:ident, $key:expr, $parse:expr, $default:literal) => {
        $source.read_or(&$key, $parse, $default)?
    };
    (@read unset $source:ident, $key:expr, $parse:expr, $default:literal) => {
        $source.read(&$key, $parse)?
    };
}

settings! {
    /// Address to serve on: an IP address and a port.
    ///
    /// `:0` picks a free port; the bound address is logged as `listening addr=…`.
    listen: SocketAddr = default "127.0.0.1:8080",
        parse socket_address, value "ADDR", on Serve;

    /// The database, as a `sqlite://PATH` or `postgres://…` URL.
    ///
    /// The admin commands act on it as `serve` does, with or without a server running.
    database_url: (Backend, String) = default "sqlite://gatehouse.db",
        parse database_url, value "URL", on Every;

    /// The `iss` of every token and of the metadata: an `http://` or `https://` URL.
    ///
    /// The default is the address the server listens on: `http://`, or `https://` with
    /// `tls_cert`, then the address as bound, so `:0` gives the port picked. An
    /// unspecified address (`0.0.0.0`, `[::]`) becomes loopback of its family
    /// (`http://127.0.0.1:8080`): set `issuer` to the URL clients use when they reach
    /// the server from elsewhere. Admin commands, which bind nothing, use `listen` as
    /// configured.
    issuer: String = unset "`http://<listen>`",
        parse url, value "URL", on Serve;

    /// `aud` of access tokens for clients created without `--audience`.
    default_audience: String = unset "the issuer",
        parse not_empty, value "AUD", on Serve;

    /// Access token lifetime in seconds; a client's `--token-ttl` overrides it.
    ///
    /// `keys rotate` keeps the old key published at least this long.
    access_token_ttl: i64 = default "3600",
        parse ttl, value "SECONDS", on Signing;

    /// Refresh token lifetime in seconds (30 days); a client's `--refresh-token-ttl`
    /// overrides it.
    refresh_token_ttl: i64 = default "2592000",
        parse ttl, value "SECONDS", on Serve;

    /// Dynamic client registration (RFC 7591, RFC 7592) at `/oauth/register`: `off`,
    /// `token` (needs an access token of this server with scope `gatehouse:register`)
    /// or `open` (anyone, at most 10 a minute per address).
    ///
    /// Registered clients get a generated secret and never a `gatehouse:*` scope. See
    /// [Dynamic client registration](protocol.md#dynamic-client-registration).
    registration: RegistrationMode = default "off",
        parse registration_mode, value "MODE", on Serve;

    /// The algorithm of new signing keys: `ES256`, `EdDSA`, `RS256` (2048-bit) or
    /// `PS256` (2048-bit).
    signing_alg: SigningAlg = default "ES256",
        parse signing_alg, value "ALG", on Signing;

    /// 32 bytes, base64: the AES-256-GCM key that encrypts private signing keys at rest.
    ///
    /// Required for `serve` and `keys rotate` on PostgreSQL, where every node needs the
    /// same key. Prefer `master_key_file`: a flag's value shows in the process list to
    /// every user.
    master_key: MasterKey = unset "file `gatehouse.master.key` beside a SQLite database, created 0600",
        parse master_key, value "BASE64", on MasterKey;

    /// A file holding the master key (base64, one line), readable by its owner only
    /// (`chmod 600`).
    ///
    /// Keeps the key off command lines and out of the environment. Not together with
    /// `master_key`; never created.
    master_key_file: PathBuf = unset "none",
        parse path, value "FILE", on MasterKey;

    /// PEM certificate chain (leaf first); with `tls_key`, serve HTTPS.
    ///
    /// HTTP/2 and HTTP/1.1 by ALPN, with `Strict-Transport-Security: max-age=31536000`;
    /// the default issuer becomes `https://…`. `kill -HUP` re-reads both files without
    /// touching open connections (a bad file is logged and the old certificate stays).
    tls_cert: PathBuf = unset "none",
        parse any_path, value "FILE", on Serve;

    /// PEM private key of `tls_cert` (PKCS#8, SEC1 or PKCS#1; ECDSA, RSA or Ed25519).
    tls_key: PathBuf = unset "none",
        parse any_path, value "FILE", on Serve;

    /// PEM bundle of the certificate authorities whose client certificates
    /// `tls_client_auth` clients present (RFC 8705 §2.1).
    ///
    /// Needs `tls_cert` and `tls_key`, or `tls_client_cert_header`. Over TLS the server
    /// then asks every client for a certificate, naming these CAs, and requires none: a
    /// certificate from elsewhere (the self-signed one of a
    /// `self_signed_tls_client_auth` client) is accepted too, its handshake signature
    /// checked. A certificate counts as issued by these CAs only if it chains to one of
    /// them, is valid now and allows client authentication. Without this setting no
    /// certificate is asked for, and `tls_client_auth` cannot succeed. `kill -HUP`
    /// re-reads it (a bad file is logged and the old CAs stay). See [Client
    /// certificates](#client-certificates-mutual-tls).
    tls_client_ca: PathBuf = unset "none",
        parse path, value "FILE", on Serve;

    /// The request header in which a TLS-terminating proxy forwards the client's
    /// certificate as URL-encoded PEM (nginx `$ssl_client_escaped_cert`, leaf first
    /// if it sends a chain), for mutual-TLS client authentication behind it.
    ///
    /// Read only from connections of `trusted_proxies`, and ignored from anyone else;
    /// the proxy must set or remove it on every request. A malformed one from a
    /// trusted proxy is `400 invalid_request`. Its chain is checked against
    /// `tls_client_ca`, without which a forwarded certificate is only good for
    /// `self_signed_tls_client_auth` and bound tokens.
    tls_client_cert_header: HeaderName = unset "none",
        parse header_name, value "HEADER", on Serve;

    /// Serve plain HTTP on a non-loopback address (behind a TLS-terminating proxy).
    ///
    /// The flag alone means `true`.
    allow_insecure_http: bool = default "false",
        parse boolean, value "BOOL", on Serve, switch;

    /// Fetch clients' `jwks_uri` over plain `http://` and from any address, loopback
    /// and private ranges included: for development and tests only.
    ///
    /// By default a `jwks_uri` must be `https://` and resolve to public addresses only.
    /// The flag alone means `true`.
    allow_insecure_jwks_uri: bool = default "false",
        parse boolean, value "BOOL", on EveryTuning, switch;

    /// How log lines are written: `text`, or `json` (one JSON object a line, fields
    /// flattened).
    log_format: LogFormat = default "text",
        parse log_format, value "FORMAT", on Serve;

    /// Seconds between sweeps that delete expired refresh tokens, opaque tokens, jti
    /// revocations and dead logins (batches of 1,000).
    cleanup_interval: i64 = default "60",
        parse ttl, value "SECONDS", on Serve;

    /// Connections open at once; more wait in the kernel's backlog.
    max_connections: u32 = default "4096",
        parse count(1..=1_000_000), value "N", on Serve;

    /// Connections open at once from one TCP peer address; more are closed at accept.
    ///
    /// Trusted proxies are exempt; `0` turns the cap off.
    max_connections_per_address: u32 = default "64",
        parse count(0..=1_000_000), value "N", on Serve;

    /// Seconds for the headers of a request, for its body (408 beyond), and for a TLS
    /// handshake.
    ///
    /// On HTTP/1.1 also the wait for the next request on a kept-alive connection;
    /// handling is bounded by the database timeouts.
    request_timeout: Duration = default "10",
        parse seconds, value "SECONDS", on Serve;

    /// Seconds a connection may stay silent, or go without a request in flight (HTTP/2
    /// PINGs do not count), before it is closed.
    idle_timeout: Duration = default "60",
        parse seconds, value "SECONDS", on Serve;

    /// Requests a second per authenticated client (token, revocation and
    /// introspection), in bursts of up to twice that; `0` turns it off.
    ///
    /// A request whose client failed to authenticate never counts here.
    rate_limit_per_client: u32 = default "1000",
        parse count(0..=1_000_000), value "PER_SECOND", on Serve;

    /// Requests a second per source address at the token, revocation and
    /// introspection endpoints, in bursts of up to twice that; `0` turns it off.
    ///
    /// Counted before anything else.
    rate_limit_per_address: u32 = default "1000",
        parse count(0..=1_000_000), value "PER_SECOND", on Serve;

    /// Slow (Argon2id) verifications of imported client secrets and user passwords at
    /// once, each on a thread of its own.
    ///
    /// A request that waits five seconds for a slot is answered
    /// `503 temporarily_unavailable` with `Retry-After: 1`.
    password_hash_concurrency: u32 = unset "half the cores, at least 1",
        parse count(1..=1024), value "N", on Serve;

    /// Failed password logins of one username from one address before that pair is
    /// locked out; `0` turns the brake off.
    ///
    /// See [Security and hardening](security.md#security-and-hardening).
    login_lockout_threshold: u32 = default "10",
        parse count(0..=1_000_000), value "N", on Serve;

    /// Seconds a lockout lasts; failures older than this are forgotten.
    login_lockout_duration: Duration = default "900",
        parse seconds, value "SECONDS", on Serve;

    /// Reverse proxies and load balancers whose `X-Forwarded-For` names the client,
    /// for rate limits, login lockouts and the audit log.
    ///
    /// Addresses and CIDR ranges, separated by commas or spaces
    /// (`"10.0.0.0/8, 192.0.2.7"`); in the file also a list of strings. See
    /// [Security and hardening](security.md#security-and-hardening).
    trusted_proxies: TrustedProxies = unset "none: every address is the connection's own",
        parse TrustedProxies::parse, value "ADDRESSES", on Serve, list;

    /// Most database connections of this process.
    database_max_connections: u32 = default "8",
        parse count(1..=1000), value "N", on EveryTuning;

    /// Seconds a query waits for a free connection before the database counts as
    /// unavailable (503).
    database_acquire_timeout: Duration = default "3",
        parse seconds, value "SECONDS", on EveryTuning;

    /// Seconds a statement may run: PostgreSQL's `statement_timeout`, SQLite's busy
    /// timeout.
    database_statement_timeout: Duration = default "5",
        parse seconds, value "SECONDS", on EveryTuning;
}

fn socket_address(text: &str) -> Result<SocketAddr, String> {
    text.parse()
        .map_err(|_| "must be an IP address and port, like 127.0.0.1:8080 or [::1]:0".to_owned())
}

fn database_url(text: &str) -> Result<(Backend, String), String> {
    match Backend::from_url(text) {
        Some(backend) => Ok((backend, text.to_owned())),
        None => Err("must start with sqlite:// or postgres://".to_owned()),
    }
}

fn url(text: &str) -> Result<String, String> {
    if text.starts_with("https://") || text.starts_with("http://") {
        Ok(text.trim_end_matches('/').to_owned())
    } else {
        Err("must be an http:// or https:// URL".to_owned())
    }
}

fn not_empty(text: &str) -> Result<String, String> {
    if text.is_empty() {
        Err("must not be empty".to_owned())
    } else {
        Ok(text.to_owned())
    }
}

fn path(text: &str) -> Result<PathBuf, String> {
    not_empty(text).map(PathBuf::from)
}

fn any_path(text: &str) -> Result<PathBuf, String> {
    Ok(PathBuf::from(text))
}

/// Headers the server reads for other purposes, or that a proxy sets itself: naming
/// one would mistake them for a certificate.
const RESERVED_HEADERS: &[&str] = &[
    "authorization",
    "connection",
    "content-length",
    "content-type",
    "cookie",
    "host",
    "transfer-encoding",
    "x-forwarded-for",
];

fn header_name(text: &str) -> Result<HeaderName, String> {
    let name = HeaderName::from_bytes(text.trim().as_bytes())
        .map_err(|_| "must be an HTTP header name, like X-Client-Cert".to_owned())?;
    if RESERVED_HEADERS.contains(&name.as_str()) {
        return Err(format!(
            "cannot be {}: the server reads that header for something else",
            name.as_str()
        ));
    }
    Ok(name)
}

fn ttl(text: &str) -> Result<i64, String> {
    match text.trim().parse::<i64>() {
        Ok(seconds) if (1..=MAX_TTL).contains(&seconds) => Ok(seconds),
        _ => Err(format!("must be a whole number of seconds from 1 to {MAX_TTL}")),
    }
}

/// A whole number in `range`.
fn count(range: std::ops::RangeInclusive<u32>) -> impl Fn(&str) -> Result<u32, String> {
    move |text| match text.trim().parse::<u32>() {
        Ok(n) if range.contains(&n) => Ok(n),
        _ => Err(format!(
            "must be a whole number from {} to {}",
            range.start(),
            range.end()
        )),
    }
}

/// A number of seconds from 1 to a day.
fn seconds(text: &str) -> Result<Duration, String> {
    count(1..=86_400)(text).map(|s| Duration::from_secs(s.into()))
}

fn boolean(text: &str) -> Result<bool, String> {
    match text {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err("must be true or false".to_owned()),
    }
}

fn signing_alg(text: &str) -> Result<SigningAlg, String> {
    text.parse()
        .map_err(|()| "must be one of ES256, EdDSA, RS256, PS256".to_owned())
}

fn log_format(text: &str) -> Result<LogFormat, String> {
    match text {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        _ => Err("must be text or json".to_owned()),
    }
}

fn registration_mode(text: &str) -> Result<RegistrationMode, String> {
    match text {
        "off" => Ok(RegistrationMode::Off),
        "token" => Ok(RegistrationMode::Token),
        "open" => Ok(RegistrationMode::Open),
        _ => Err("must be off, token or open".to_owned()),
    }
}

fn master_key(text: &str) -> Result<MasterKey, String> {
    MasterKey::from_base64(text).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_make_the_flag_and_the_variable() {
        let key = by_name::max_connections_per_address;
        assert_eq!(key.name, "max_connections_per_address");
        assert_eq!(key.long_flag(), "--max-connections-per-address");
        assert_eq!(key.env, "GATEHOUSE_MAX_CONNECTIONS_PER_ADDRESS");
        assert_eq!(key.id, "setting.max_connections_per_address");
        let named = |option: fn(&Key) -> bool| -> Vec<&str> {
            KEYS.iter().filter(|k| option(k)).map(|k| k.name).collect()
        };
        assert_eq!(named(|k| k.list), ["trusted_proxies"]);
        assert_eq!(
            named(|k| k.switch),
            ["allow_insecure_http", "allow_insecure_jwks_uri"]
        );
    }

    #[test]
    fn names_are_unique_and_documented() {
        for (i, key) in KEYS.iter().enumerate() {
            assert!(
                KEYS[..i].iter().all(|earlier| earlier.name != key.name),
                "{} twice",
                key.name
            );
            assert!(!key.summary().is_empty(), "{} has no doc", key.name);
            assert!(key.name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
        }
    }

    #[test]
    fn paragraphs_of_a_doc_comment() {
        assert_eq!(paragraphs(" One\n two.\n\n Three.\n"), ["One two.", "Three."]);
        assert_eq!(
            by_name::listen.summary(),
            "Address to serve on: an IP address and a port."
        );
    }
}
