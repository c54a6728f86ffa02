//! The admin operations: one set, two front ends. The command line (`crate::admin`)
//! and the admin API (`crate::http::admin`, and RFC 7591 registration) both parse
//! their input into the types here and call a [`Manager`]; the rules (what a valid
//! client is, how long a lifetime may be, how a secret is hashed, which changes are
//! one transaction) live here once, and each front end only words the answer.
//!
//! Every change is validated in full before anything is written, and then written
//! with one store call (one transaction), so a refused change leaves nothing behind.
//! Every change made through the API is an audit event ([`Actor`]).

mod client_auth;
mod client_view;
mod clients;
mod keys;
pub mod registration;
mod users;

use std::fmt;
use std::sync::Arc;

use gatehouse_core::{ClientSecret, Clock, OAuthError, Random, SecretHash, SlowHashGate, StoreError};
use gatehouse_store::SqlStore;

pub use self::client_auth::JwksDocument;
pub use self::client_view::{ClientView, CreatedClient, RotatedSecret};
pub use self::clients::{parse_grant_types, ClientPatch, NewClient, MAX_GRACE, MAX_TTL};
pub use self::keys::{KeyRotation, KeyView};
pub use self::users::{NewUser, UserPatch, UserView};

/// How many items a page of a list holds when the caller does not say.
pub const DEFAULT_PAGE: i64 = 100;
/// The most items one page may hold.
pub const MAX_PAGE: i64 = 1000;

/// Why an admin operation was refused or failed.
#[derive(Debug)]
pub enum ManageError {
    /// A value breaks a rule. `field` is the API member (`token_ttl`); the command
    /// line names its flag instead ([`crate::admin`]).
    Invalid {
        /// The member at fault; empty when the request as a whole is.
        field: &'static str,
        /// What is wrong, for people.
        problem: String,
    },
    /// No client or user with that id.
    NotFound {
        /// `client` or `user`.
        kind: &'static str,
        /// The id asked for.
        id: String,
    },
    /// The id is taken.
    Conflict {
        /// `client_id` or `username`.
        field: &'static str,
        /// The id asked for.
        id: String,
    },
    /// The operation does not apply to the client as it is (a new secret for a
    /// client that authenticates without one): the API's 409.
    Inapplicable(String),
    /// Every slot for password hashing is busy: try again shortly.
    Busy,
    /// The database failed.
    Store(StoreError),
    /// Anything else (a key that cannot be made, a hash thread gone).
    Failed(String),
}

impl ManageError {
    pub(crate) fn invalid(field: &'static str, problem: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            problem: problem.into(),
        }
    }
}

impl fmt::Display for ManageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Invalid { field: "", problem } => f.write_str(problem),
            Self::Invalid { field, problem } => write!(f, "{field}: {problem}"),
            Self::NotFound { kind: "user", id } => write!(f, "no user named {id:?}"),
            Self::NotFound { kind, id } => write!(f, "no {kind} with id {id:?}"),
            Self::Conflict {
                field: "username",
                id,
            } => write!(f, "a user named {id:?} exists already"),
            Self::Conflict { field, id } => write!(f, "a client with {field} {id:?} exists already"),
            Self::Inapplicable(why) => f.write_str(why),
            Self::Busy => f.write_str("every password hashing slot is busy; try again shortly"),
            Self::Store(e) => write!(f, "database: {e}"),
            Self::Failed(why) => f.write_str(why),
        }
    }
}

impl From<StoreError> for ManageError {
    fn from(err: StoreError) -> Self {
        Self::Store(err)
    }
}

/// Who makes a change: named in its audit event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// An operator at the command line.
    Cli,
    /// A client with an admin token (its id), or a client managing its own
    /// registration (RFC 7592).
    Client(String),
    /// Anyone: an open registration (RFC 7591 without an initial access token).
    Anonymous,
}

impl Actor {
    fn as_str(&self) -> &str {
        match self {
            Self::Cli => "cli",
            Self::Client(id) => id,
            Self::Anonymous => "-",
        }
    }
}

/// How secrets and passwords are hashed with Argon2id.
#[derive(Clone)]
pub enum Hashing {
    /// On the calling thread: the command line, one hash per run.
    Inline,
    /// On the server's bounded hash workers, shared with the token endpoint, so that
    /// admin requests cannot queue unbounded hashing either.
    Gate(SlowHashGate),
}

/// Runs the admin operations against one database.
#[derive(Clone)]
pub struct Manager {
    store: Arc<SqlStore>,
    clock: Arc<dyn Clock>,
    rng: Arc<dyn Random>,
    hashing: Hashing,
    allow_insecure_jwks_uri: bool,
}

impl Manager {
    /// Operations on `store`, at the times `clock` tells.
    pub fn new(store: Arc<SqlStore>, clock: Arc<dyn Clock>, rng: Arc<dyn Random>, hashing: Hashing) -> Self {
        Self {
            store,
            clock,
            rng,
            hashing,
            allow_insecure_jwks_uri: false,
        }
    }

    /// Takes `http` URLs for a client's `jwks_uri` too (`allow_insecure_jwks_uri`:
    /// development and tests; the fetcher then also reaches private addresses).
    pub fn with_allow_insecure_jwks_uri(mut self, allow: bool) -> Self {
        self.allow_insecure_jwks_uri = allow;
        self
    }

    /// Whether `http` jwks URIs are taken.
    pub fn allow_insecure_jwks_uri(&self) -> bool {
        self.allow_insecure_jwks_uri
    }

    /// The database.
    pub fn store(&self) -> &SqlStore {
        &self.store
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The random source.
    pub fn rng(&self) -> &Arc<dyn Random> {
        &self.rng
    }

    /// `secret` hashed with Argon2id, for imported secrets and passwords.
    pub async fn argon2id(&self, secret: &ClientSecret) -> Result<SecretHash, ManageError> {
        match &self.hashing {
            Hashing::Inline => SecretHash::argon2id(secret, self.rng.as_ref()).map_err(ManageError::Failed),
            Hashing::Gate(gate) => gate.hash(secret, self.rng.clone()).await.map_err(|e| match e {
                OAuthError::Overloaded => ManageError::Busy,
                other => ManageError::Failed(other.description().to_owned()),
            }),
        }
    }

    /// Waits until the clock's second has passed. Revocation marks have second
    /// precision (a token issued at or before the mark's second is dead), so an answer
    /// given after this wait promises that any token issued after it lives.
    pub(crate) async fn wait_out_second(&self) {
        let since = self.clock.since_epoch();
        let rest = std::time::Duration::from_secs(1)
            .saturating_sub(std::time::Duration::from_nanos(u64::from(since.subsec_nanos())));
        tokio::time::sleep(rest).await;
    }
}

/// One audit event: who changed what, and which members; never a value.
pub(crate) fn audit(actor: &Actor, action: &'static str, target: &str, fields: &[&str]) {
    tracing::info!(
        target: "gatehouse::audit",
        admin_client_id = actor.as_str(),
        action,
        target_id = target,
        fields = fields.join(","),
        "admin change"
    );
}

/// A text a person gave (a name): 1 to 255 characters, none of them a control
/// character.
pub(crate) fn check_text(field: &'static str, text: &str) -> Result<(), ManageError> {
    if text.is_empty() || text.chars().count() > 255 {
        return Err(ManageError::invalid(field, "must be 1 to 255 characters"));
    }
    if text.chars().any(char::is_control) {
        return Err(ManageError::invalid(field, "must not contain control characters"));
    }
    Ok(())
}

/// A page size: `None` is [`DEFAULT_PAGE`].
pub fn page_limit(limit: Option<i64>) -> Result<i64, ManageError> {
    match limit {
        None => Ok(DEFAULT_PAGE),
        Some(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
        Some(_) => Err(ManageError::invalid(
            "limit",
            format!("must be from 1 to {MAX_PAGE}"),
        )),
    }
}

/// One page of a list, and the cursor of the next when there is one.
#[derive(Debug, Clone)]
pub struct Page<T> {
    /// The items, in order.
    pub items: Vec<T>,
    /// The `after` that reads the next page; `None` at the end.
    pub next: Option<String>,
}

impl<T> Page<T> {
    /// Cuts `fetched` (read with `limit + 1`) down to `limit` items; `key` gives the
    /// cursor of the last one kept when more followed.
    pub(crate) fn from_fetched(mut fetched: Vec<T>, limit: i64, key: impl Fn(&T) -> String) -> Self {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let more = fetched.len() > limit;
        fetched.truncate(limit);
        let next = if more { fetched.last().map(key) } else { None };
        Self { items: fetched, next }
    }
}
