//! The command line (`docs/protocol.md`, Commands).

use clap::{Args, CommandFactory as _, FromArgMatches as _, Parser, Subcommand};

use crate::config::{flags, ConfigArgs, Flags};

/// gatehouse: an OAuth 2.0 authorization server for APIs.
#[derive(Debug, Parser)]
#[command(name = "gatehouse", version, about)]
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
    #[arg(long, default_value = "client_credentials")]
    pub grant_types: String,
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
    pub json: JsonFlag,
}

/// `gatehouse keys …`
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Make a new current signing key; the old one stays published while its tokens live.
    #[command(args = flags(Flags::KeyRotation))]
    Rotate(JsonFlag),
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
