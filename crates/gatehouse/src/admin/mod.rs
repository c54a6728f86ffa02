//! The admin commands (`docs/protocol.md`, Commands). They work on the database
//! directly, with or without a running server; every change is recorded in the change
//! feed, which running servers follow (`crate::sync`): within a second on SQLite, at
//! once on PostgreSQL.

mod clients;
mod table;
mod tokens;
mod users;

use std::fmt;
use std::io::{Read as _, Write as _};

use gatehouse_core::sealing::MasterKey;
use gatehouse_core::{ClientSecret, Clock as _, Random, StoreError, SystemClock, SystemRandom};
use gatehouse_store::SqlStore;
use serde_json::{json, Value};

use crate::cli::{ClientCommand, GenerateMasterKey, JsonFlag, KeysCommand, TokenCommand, UserCommand};
use crate::config::{ConfigError, Settings};
use crate::keyring::{self, KeyringError};
use crate::manage::{Hashing, ManageError, Manager};
use crate::master_key::write_new_key_file;

/// An admin command failed: the message for stderr, and the exit status.
#[derive(Debug)]
pub struct AdminError {
    /// 2 for bad usage, 1 for everything else.
    pub status: u8,
    /// One line.
    pub message: String,
}

impl AdminError {
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self {
            status: 2,
            message: message.into(),
        }
    }

    pub(crate) fn failed(message: impl Into<String>) -> Self {
        Self {
            status: 1,
            message: message.into(),
        }
    }
}

impl fmt::Display for AdminError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "gatehouse: {}", self.message)
    }
}

impl From<StoreError> for AdminError {
    fn from(err: StoreError) -> Self {
        Self::failed(format!("database: {err}"))
    }
}

impl From<ManageError> for AdminError {
    fn from(err: ManageError) -> Self {
        match err {
            // The command line names its flag where the API names a member.
            ManageError::Invalid { field: "", problem } => Self::usage(problem),
            ManageError::Invalid { field, problem } => Self::usage(format!("{}: {problem}", flag_of(field))),
            ManageError::Store(e) => e.into(),
            other => Self::failed(other.to_string()),
        }
    }
}

/// The flag that sets an API member.
fn flag_of(field: &str) -> String {
    match field {
        "client_secret" => "--secret-stdin".to_owned(),
        "jwks" => "--jwks-file".to_owned(),
        "password" => "--password-stdin".to_owned(),
        other => format!("--{}", other.replace('_', "-")),
    }
}

impl From<ConfigError> for AdminError {
    fn from(err: ConfigError) -> Self {
        Self::usage(format!("invalid configuration: {}: {}", err.key, err.problem))
    }
}

impl From<KeyringError> for AdminError {
    fn from(err: KeyringError) -> Self {
        match err {
            KeyringError::Config(e) => e.into(),
            KeyringError::Store(e) => e.into(),
            KeyringError::Key(e) => Self::failed(e),
        }
    }
}

/// Opens and migrates the database the settings name. A SQLite file that was not
/// there before is reported on stderr: a command run in the wrong directory would
/// otherwise work silently on a new, empty database.
pub async fn open_store(settings: &Settings) -> Result<SqlStore, AdminError> {
    let new_file = gatehouse_store::sqlite_database_file(&settings.database_url).filter(
        |path| matches!(std::fs::symlink_metadata(path), Err(e) if e.kind() == std::io::ErrorKind::NotFound),
    );
    let store = SqlStore::open(&settings.database_url, &settings.pool)
        .map_err(|e| AdminError::usage(format!("invalid configuration: database_url: {e}")))?;
    if let Some(path) = new_file {
        let shown = std::path::absolute(&path).unwrap_or(path);
        // A notice that cannot be written is no reason to fail the command.
        let _ = writeln!(
            std::io::stderr(),
            "gatehouse: created a new database at {}",
            shown.display()
        );
    }
    store.migrate().await?;
    Ok(store)
}

/// Prints `value` as JSON, or as `key: value` lines for people.
pub(crate) fn print(value: &Value, json: JsonFlag) -> Result<(), AdminError> {
    if json.json {
        return write_stdout(&format!("{value}\n"));
    }
    let mut text = String::new();
    if let Value::Object(members) = value {
        for (key, value) in members {
            let line = match value {
                Value::String(s) => format!("{key}: {s}\n"),
                Value::Null => format!("{key}: -\n"),
                other => format!("{key}: {other}\n"),
            };
            text.push_str(&line);
        }
    }
    write_stdout(&text)
}

/// Writes `text` to standard output. A reader that went away (`gatehouse client list
/// | head`) ends the output quietly, as it does for `ls` or `cat`: the command's work
/// is done, and the rest was not wanted. (`println!` would panic there.) Any other
/// failure to write is an error.
pub(crate) fn write_stdout(text: &str) -> Result<(), AdminError> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(AdminError::failed(format!(
            "cannot write to standard output: {e}"
        ))),
        _ => Ok(()),
    }
}

/// `n` random bytes in hex: no `-` or `_` that a shell or a flag parser could trip on.
pub(crate) fn random_hex(rng: &dyn Random, n: usize) -> String {
    let mut buf = vec![0u8; n];
    rng.fill(&mut buf);
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// A secret from standard input, less one trailing line break, of at least `min`
/// characters.
pub(crate) fn read_stdin_secret(flag: &str, min: usize) -> Result<ClientSecret, AdminError> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .map_err(|e| AdminError::usage(format!("{flag}: cannot read standard input as UTF-8: {e}")))?;
    let secret = text
        .strip_suffix('\n')
        .map(|s| s.strip_suffix('\r').unwrap_or(s))
        .unwrap_or(&text);
    if secret.chars().count() < min {
        return Err(AdminError::usage(format!(
            "{flag}: must be at least {min} characters"
        )));
    }
    Ok(ClientSecret::new(secret))
}

/// `gatehouse user …`
pub async fn user(settings: &Settings, command: UserCommand) -> Result<(), AdminError> {
    let store = std::sync::Arc::new(open_store(settings).await?);
    let result = users::run(&manager(settings, store.clone()), command).await;
    store.close().await;
    result
}

/// The admin operations on `store`, as the command line runs them: hashing on its
/// own thread, at the system's time, with the server's rule for jwks URIs.
fn manager(settings: &Settings, store: std::sync::Arc<SqlStore>) -> Manager {
    Manager::new(
        store,
        std::sync::Arc::new(SystemClock),
        std::sync::Arc::new(SystemRandom),
        Hashing::Inline,
    )
    .with_allow_insecure_jwks_uri(settings.allow_insecure_jwks_uri)
}

/// `gatehouse token …`
pub async fn token(settings: &Settings, command: TokenCommand) -> Result<(), AdminError> {
    let store = std::sync::Arc::new(open_store(settings).await?);
    let result = tokens::run(settings, store.clone(), command).await;
    store.close().await;
    result
}

/// `gatehouse client …`
pub async fn client(settings: &Settings, command: ClientCommand) -> Result<(), AdminError> {
    let store = std::sync::Arc::new(open_store(settings).await?);
    let result = clients::run(&manager(settings, store.clone()), command).await;
    store.close().await;
    result
}

/// `gatehouse keys rotate|generate-master-key`
pub async fn keys(settings: &Settings, command: KeysCommand) -> Result<(), AdminError> {
    let json = match command {
        KeysCommand::Rotate(json) => json,
        KeysCommand::GenerateMasterKey(args) => return generate_master_key(args),
    };
    // The key first: a command refused for its key makes no database.
    let master = keyring::load_master_key(&settings.master_key, &SystemRandom)?;
    let store = open_store(settings).await?;
    let key = keyring::rotate(
        &store,
        &master,
        settings.signing_alg,
        settings.access_token_ttl,
        &SystemRandom,
        SystemClock.now(),
    )
    .await;
    store.close().await;
    let key = key?;
    print(&json!({"kid": key.kid(), "alg": key.alg().as_str()}), json)
}

/// `gatehouse migrate`
pub async fn migrate(settings: &Settings, json: JsonFlag) -> Result<(), AdminError> {
    let store = open_store(settings).await?;
    store.close().await;
    print(&json!({"migrated": true}), json)
}

/// `gatehouse keys generate-master-key`: a new key on stdout, or in a new file of
/// mode 0600, written as gatehouse writes its own default key file. No database is
/// opened.
fn generate_master_key(args: GenerateMasterKey) -> Result<(), AdminError> {
    let key = MasterKey::generate(&SystemRandom);
    let Some(path) = args.output else {
        return write_stdout(&format!("{}\n", key.to_base64()));
    };
    write_new_key_file(&path, &key, &SystemRandom).map_err(|e| {
        let problem = match e.kind() {
            std::io::ErrorKind::AlreadyExists => "exists already; it is not replaced".to_owned(),
            _ => format!("cannot be written: {e}"),
        };
        AdminError::failed(format!("--output: {} {problem}", path.display()))
    })
}
