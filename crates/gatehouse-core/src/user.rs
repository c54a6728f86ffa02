//! Resource owners (users) for the password grant (RFC 6749 §4.3).

use std::fmt;

use crate::{Scope, SecretHash, UnixTime};

/// A user's stable id: the `sub` of their tokens. Not their username, which may be
/// reused after a deletion.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UserId(pub String);

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The shortest password `user create` accepts (NIST SP 800-63B §5.1.1.2).
pub const MIN_PASSWORD_LEN: usize = 8;

/// A registered user, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Stable id.
    pub id: UserId,
    /// Login name, unique.
    pub username: String,
    /// Argon2id of the password.
    pub password_hash: SecretHash,
    /// Scopes the user may grant; `None`: not restricted beyond the client (a user
    /// created without `--scope`). Never `Some` of the empty set, which the stores
    /// keep as "no restriction" (see `gatehouse-store`'s `users.rs`).
    pub scope: Option<Scope>,
    /// A disabled user can neither log in nor refresh.
    pub disabled: bool,
    /// When the user was created.
    pub created_at: UnixTime,
}
