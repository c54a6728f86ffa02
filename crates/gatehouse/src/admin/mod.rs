//! The admin commands (CONTRACT §3). They work on the database directly, with or
//! without a running server; every change is recorded in the change feed, which
//! running servers follow within a second or two.

mod clients;

use std::fmt;

use gatehouse_core::{Clock as _, StoreError, SystemClock, SystemRandom};
use gatehouse_store::SqlStore;
use serde_json::{json, Value};

use crate::cli::{ClientCommand, JsonFlag, KeysCommand};
use crate::config::{ConfigError, Settings};
use crate::keyring::{self, KeyringError};

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

/// Opens and migrates the database the settings name.
pub async fn open_store(settings: &Settings) -> Result<SqlStore, AdminError> {
    let store = SqlStore::open(&settings.database_url, &Default::default())
        .map_err(|e| AdminError::usage(format!("invalid configuration: database_url: {e}")))?;
    store.migrate().await?;
    Ok(store)
}

/// Prints `value` as JSON, or as `key: value` lines for people.
pub(crate) fn print(value: &Value, json: JsonFlag) {
    if json.json {
        println!("{value}");
        return;
    }
    if let Value::Object(members) = value {
        for (key, value) in members {
            match value {
                Value::String(s) => println!("{key}: {s}"),
                Value::Null => println!("{key}: -"),
                other => println!("{key}: {other}"),
            }
        }
    }
}

/// `gatehouse client …`
pub async fn client(settings: &Settings, command: ClientCommand) -> Result<(), AdminError> {
    let store = open_store(settings).await?;
    let result = clients::run(&store, command).await;
    store.close().await;
    result
}

/// `gatehouse keys rotate`
pub async fn keys(settings: &Settings, command: KeysCommand) -> Result<(), AdminError> {
    let KeysCommand::Rotate(json) = command;
    let store = open_store(settings).await?;
    let master = keyring::load_master_key(&settings.master_key, &SystemRandom)?;
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
    print(&json!({"kid": key.kid(), "alg": key.alg().as_str()}), json);
    Ok(())
}

/// `gatehouse migrate`
pub async fn migrate(settings: &Settings, json: JsonFlag) -> Result<(), AdminError> {
    let store = open_store(settings).await?;
    store.close().await;
    print(&json!({"migrated": true}), json);
    Ok(())
}
