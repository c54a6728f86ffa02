//! The command line (`docs/protocol.md`, Commands).

use std::path::PathBuf;

use clap::builder::PossibleValuesParser;
use clap::{Args, CommandFactory as _, FromArgMatches as _, Parser, Subcommand, ValueEnum};
use gatehouse_core::{AuthMethod, GrantType, GrantTypes};

use crate::config::{flags, ConfigArgs, Flags};

/// gatehouse: an OAuth 2.0 authorization server for APIs.
#[derive(Debug, Parser)]
#[command(name = "gatehouse", version, about, args = flags(Flags::BeforeCommand))]
pub struct Cli {
    /// The settings given as flags; filled by [`Cli::parse_with_settings`]. Each
    /// command takes the flags of the settings it uses (`#[command(args = flags(…))]`
    /// below); environment variables and the file reach every command.
    #[arg(skip)]
    pub config: ConfigArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// Parses the process's arguments, settings included; exits with clap's message
    /// (status 2) on bad usage, as `Cli::parse` does.
    pub fn parse_with_settings() -> Self {
        let matches = Self::command().get_matches();
        match Self::from_arg_matches(&matches) {
            Ok(cli) => Self {
                config: ConfigArgs::from_matches(&matches),
                ..cli
            },
            Err(err) => err.format(&mut Self::command()).exit(),
        }
    }
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the OAuth endpoints.
    #[command(args = flags(Flags::Serve))]
    Serve,
    /// Manage clients.
    #[command(subcommand, args = flags(Flags::Admin))]
    Client(ClientCommand),
    /// Manage users of the password grant.
    #[command(subcommand, args = flags(Flags::Admin))]
    User(UserCommand),
    /// Act on issued tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Manage signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Apply database migrations and exit.
    #[command(args = flags(Flags::Admin))]
    Migrate(JsonFlag),
}

/// `--json`: print one JSON object.
#[derive(Debug, Clone, Copy, Args)]
pub struct JsonFlag {
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// `gatehouse client …`
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Register a client and print its secret (shown this once).
    Create(CreateClient),
    /// List clients.
    List(JsonFlag),
    /// Show one client.
    Show(ClientRef),
    /// Change a client's settings; only the flags given change (a new --auth-method
    /// also drops the keys and subject DN it does not use). Prints the client.
    Update(UpdateClient),
    /// Delete a client.
    Delete(ClientRef),
    /// Give a client a new secret and print it (shown this once).
    RotateSecret(RotateSecret),
}

/// `gatehouse client rotate-secret`
#[derive(Debug, Args)]
pub struct RotateSecret {
    /// The client id (may start with `-`).
    #[arg(allow_hyphen_values = true)]
    pub id: String,
    /// Keep the old secret valid this many more seconds, so that a fleet can roll
    /// over to the new one without downtime. Without it the old secret stops at once.
    #[arg(long, value_name = "SECONDS")]
    pub grace: Option<i64>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub json: JsonFlag,
}

/// A client named on the command line.
#[derive(Debug, Args)]
pub struct ClientRef {
    /// The client id (may start with `-`).
    #[arg(allow_hyphen_values = true)]
    pub id: String,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub json: JsonFlag,
}

/// `gatehouse client create`
#[derive(Debug, Args)]
pub struct CreateClient {
    /// A name for people.
    #[arg(long)]
    pub name: String,
    /// The client id; generated when absent.
    #[arg(long)]
    pub client_id: Option<String>,
    /// Scopes the client may ask for, space-separated.
    #[arg(long, default_value = "")]
    pub scope: String,
    /// Grant types, comma-separated.
    #[arg(long, default_value = "client_credentials", value_parser = parse_grant_types,
          help = grant_types_help())]
    pub grant_types: GrantTypes,
    /// `aud` of its access tokens; default_audience when absent.
    #[arg(long)]
    pub audience: Option<String>,
    /// Access token lifetime, seconds.
    #[arg(long, value_name = "SECONDS")]
    pub token_ttl: Option<i64>,
    /// Refresh token lifetime, seconds.
    #[arg(long, value_name = "SECONDS")]
    pub refresh_token_ttl: Option<i64>,
    /// `jwt` or `opaque` access tokens.
    #[arg(long, default_value = "jwt")]
    pub token_format: String,
    /// Read an existing secret (16 characters or more) from standard input.
    #[arg(long)]
    pub secret_stdin: bool,
    /// May introspect any token (a resource server).
    #[arg(long)]
    pub can_introspect: bool,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub auth: AuthFlags,
    /// Bind its access tokens to the TLS client certificate it connects with
    /// (`cnf.x5t#S256`, RFC 8705 §3); a token request without one is refused.
    #[arg(long)]
    pub bound_tokens: bool,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub json: JsonFlag,
    /// `env`: print `CLIENT_ID=…` and `CLIENT_SECRET=…` lines, for `eval` in a shell.
    #[arg(long, value_enum, conflicts_with = "json")]
    pub format: Option<CreateFormat>,
}

/// How a client authenticates: `client create` and `client update`.
#[derive(Debug, Args)]
pub struct AuthFlags {
    /// How the client authenticates. `client_secret_basic` (the default) and
    /// `client_secret_post` are one secret, sent either way; `private_key_jwt` needs
    /// --jwks-file or --jwks-uri; `tls_client_auth` needs --tls-subject-dn;
    /// `self_signed_tls_client_auth` needs --jwks-file (keys with x5c) or --jwks-uri.
    /// A client of the last three has no secret.
    #[arg(long, value_name = "METHOD", value_parser = PossibleValuesParser::new(AuthMethod::ALL.map(AuthMethod::as_str)))]
    pub auth_method: Option<String>,
    /// A file holding the client's JWK Set (public keys; at most 64 KiB).
    #[arg(long, value_name = "FILE", conflicts_with = "jwks_uri")]
    pub jwks_file: Option<PathBuf>,
    /// The https URL of the client's JWK Set, fetched when it authenticates.
    #[arg(long, value_name = "URL")]
    pub jwks_uri: Option<String>,
    /// The subject DN of the client's certificate (RFC 4514, e.g. "CN=billing,O=Example").
    #[arg(long, value_name = "DN")]
    pub tls_subject_dn: Option<String>,
}

/// `client create --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CreateFormat {
    /// `key: value` lines for people (the default).
    Text,
    /// One JSON object, as `--json`.
    Json,
    /// `CLIENT_ID=…` and `CLIENT_SECRET=…`, quoted for a POSIX shell.
    Env,
}

/// `gatehouse client update`
#[derive(Debug, Args)]
pub struct UpdateClient {
    /// The client id (may start with `-`).
    #[arg(allow_hyphen_values = true)]
    pub id: String,
    /// A new name for people.
    #[arg(long)]
    pub name: Option<String>,
    /// Scopes the client may ask for, space-separated: replaces the old list.
    #[arg(long)]
    pub scope: Option<String>,
    /// Grant types, comma-separated: replaces the old list.
    #[arg(long, value_parser = parse_grant_types, help = grant_types_help())]
    pub grant_types: Option<GrantTypes>,
    /// `aud` of its access tokens.
    #[arg(long, conflicts_with = "clear_audience")]
    pub audience: Option<String>,
    /// Give its access tokens the server's default_audience again.
    #[arg(long)]
    pub clear_audience: bool,
    /// Access token lifetime: seconds, or `default` for the server's access_token_ttl.
    #[arg(long, value_name = "SECONDS|default", value_parser = parse_lifetime)]
    pub token_ttl: Option<Lifetime>,
    /// Refresh token lifetime: seconds, or `default` for the server's
    /// refresh_token_ttl.
    #[arg(long, value_name = "SECONDS|default", value_parser = parse_lifetime)]
    pub refresh_token_ttl: Option<Lifetime>,
    /// Whether it may introspect any token (a resource server).
    #[arg(long, value_name = "true|false")]
    pub can_introspect: Option<bool>,
    // A new method, keys or subject DN. A new method drops the keys and subject DN
    // it does not use; --jwks-file and --jwks-uri replace the keys of either kind.
    #[command(flatten)]
    #[allow(missing_docs)]
    pub auth: AuthFlags,
    /// Whether its access tokens are bound to its TLS client certificate.
    #[arg(long, value_name = "true|false")]
    pub bound_tokens: Option<bool>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub json: JsonFlag,
}

/// A token lifetime given to `client update`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifetime {
    /// This many seconds.
    Seconds(i64),
    /// The server's setting.
    ServerDefault,
}

fn parse_lifetime(text: &str) -> Result<Lifetime, String> {
    if text == "default" {
        return Ok(Lifetime::ServerDefault);
    }
    text.parse()
        .map(Lifetime::Seconds)
        .map_err(|_| "a number of seconds, or `default`".to_owned())
}

/// `--grant-types`: at least one known grant type; an unknown one is named with
/// the valid ones.
fn parse_grant_types(text: &str) -> Result<GrantTypes, String> {
    let grant_types = GrantTypes::parse(text)
        .map_err(|name| format!("unknown grant type {name:?}; valid: {}", valid_grant_types()))?;
    if grant_types.is_empty() {
        return Err(format!("name at least one grant type: {}", valid_grant_types()));
    }
    Ok(grant_types)
}

fn valid_grant_types() -> String {
    GrantType::ALL.map(GrantType::as_str).join(", ")
}

fn grant_types_help() -> String {
    format!("Grant types, comma-separated, from: {}", valid_grant_types())
}

/// `gatehouse keys …`
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Make a new current signing key; the old one stays published while its tokens live.
    #[command(args = flags(Flags::KeyRotation))]
    Rotate(JsonFlag),
    /// Print a new random master key (32 bytes, base64), for `master_key` or the
    /// file `master_key_file` names.
    GenerateMasterKey(GenerateMasterKey),
}

/// `gatehouse keys generate-master-key`
#[derive(Debug, Args)]
pub struct GenerateMasterKey {
    /// Write the key to this new file (mode 0600) instead; an existing file is never
    /// replaced.
    #[arg(long, value_name = "FILE")]
    pub output: Option<std::path::PathBuf>,
}

/// `gatehouse user …`
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Register a user; the password is read from standard input.
    Create(CreateUser),
    /// List users.
    List(JsonFlag),
    /// Delete a user: their logins stop refreshing.
    Delete(UserRef),
    /// Disable a user: they can neither log in nor refresh.
    Disable(UserRef),
    /// Enable a disabled user: they can log in again. Tokens and logins from before
    /// the disable stay dead.
    Enable(UserRef),
    /// Change a user's password or scope; only the flags given change. Prints the user.
    Update(UpdateUser),
}

/// `gatehouse user update`
#[derive(Debug, Args)]
pub struct UpdateUser {
    /// The username.
    #[arg(allow_hyphen_values = true)]
    pub username: String,
    /// Read a new password from standard input. The user's logins go on; disable and
    /// enable the user to end them.
    #[arg(long)]
    pub password_stdin: bool,
    /// Scopes the user may grant, space-separated: replaces the old list.
    #[arg(long, conflicts_with = "clear_scope")]
    pub scope: Option<String>,
    /// Remove the user's own scope list: the user is limited only by the client.
    #[arg(long)]
    pub clear_scope: bool,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub json: JsonFlag,
}

/// `gatehouse user create`
#[derive(Debug, Args)]
pub struct CreateUser {
    /// Login name.
    #[arg(long)]
    pub username: String,
    /// Read the password from standard input (required: never on the command line).
    #[arg(long, required = true)]
    pub password_stdin: bool,
    /// Scopes the user may grant, space-separated; without it the user is limited
    /// only by the client they log in with.
    #[arg(long)]
    pub scope: Option<String>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub json: JsonFlag,
}

/// A user named on the command line.
#[derive(Debug, Args)]
pub struct UserRef {
    /// The username.
    #[arg(allow_hyphen_values = true)]
    pub username: String,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub json: JsonFlag,
}

/// `gatehouse token …`
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Revoke a token as POST /oauth/revoke does without client authentication: a
    /// refresh token ends its whole login. Prefer --token-stdin: a token given as an
    /// argument shows in the process list to every user, and in shell history.
    #[command(args = flags(Flags::SigningKeys))]
    Revoke(RevokeToken),
}

/// `gatehouse token revoke`
#[derive(Debug, Args)]
pub struct RevokeToken {
    /// The token (or use --token-stdin).
    #[arg(
        allow_hyphen_values = true,
        required_unless_present = "token_stdin",
        conflicts_with = "token_stdin"
    )]
    pub token: Option<String>,
    /// Read the token from standard input: keeps it off the command line.
    #[arg(long)]
    pub token_stdin: bool,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub json: JsonFlag,
}
