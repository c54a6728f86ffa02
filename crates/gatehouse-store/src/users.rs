//! [`UserStore`] on SQL.

use async_trait::async_trait;
use gatehouse_core::store::UserStore;
use gatehouse_core::user::{User, UserId};
use gatehouse_core::{Scope, SecretHash, StoreError, UnixTime};

use crate::error::{corrupt, db_error};
use crate::tokens::mark_subject_revoked;
use crate::{on_pool, SqlStore};

#[derive(sqlx::FromRow)]
struct UserRow {
    user_id: String,
    username: String,
    password_hash: String,
    scope: String,
    disabled: bool,
    created_at: i64,
}

impl UserRow {
    fn into_user(self) -> Result<User, StoreError> {
        Ok(User {
            password_hash: SecretHash::from_stored(&self.password_hash)
                .map_err(|e| corrupt("password_hash", e))?,
            scope: user_scope_from_column(&self.scope)?,
            id: UserId(self.user_id),
            username: self.username,
            disabled: self.disabled,
            created_at: self.created_at,
        })
    }
}

/// A user's scope as the `users.scope` column holds it: space-separated, and the
/// empty string for a user not restricted beyond the client (`None`).
///
/// The empty string rather than NULL: users created without `--scope` by earlier
/// versions hold it, and were meant to be unrestricted, so they become so with no
/// migration (making the column nullable would rebuild the table on SQLite, and
/// still have to rewrite those rows). An empty set of allowed scopes is not a
/// state worth storing: every login of such a user would be granted nothing, and
/// a user who must not log in is disabled instead. In the rotation query a NULL
/// user scope already means "no user" (the LEFT JOIN found none).
fn user_scope_column(scope: Option<&Scope>) -> String {
    scope.map(Scope::to_string).unwrap_or_default()
}

/// The inverse of [`user_scope_column`].
pub(crate) fn user_scope_from_column(text: &str) -> Result<Option<Scope>, StoreError> {
    let scope = Scope::parse(text).map_err(|e| corrupt("user scope", e))?;
    Ok(Some(scope).filter(|scope| !scope.is_empty()))
}

const USER_COLUMNS: &str = "user_id, username, password_hash, scope, disabled, created_at";

#[async_trait]
impl UserStore for SqlStore {
    async fn find_user(&self, username: &str) -> Result<Option<User>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE username = $1");
        let row: Option<UserRow> =
            on_pool!(self, pool => sqlx::query_as(&sql).bind(username).fetch_optional(pool).await)
                .map_err(db_error)?;
        row.map(UserRow::into_user).transpose()
    }

    async fn insert_user(&self, user: &User) -> Result<(), StoreError> {
        let sql =
            format!("INSERT INTO users ({USER_COLUMNS}, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6)");
        on_pool!(self, pool => sqlx::query(&sql)
            .bind(&user.id.0)
            .bind(&user.username)
            .bind(user.password_hash.to_stored())
            .bind(user_scope_column(user.scope.as_ref()))
            .bind(user.disabled)
            .bind(user.created_at)
            .execute(pool)
            .await
            .map(|_| ()))
        .map_err(db_error)
    }

    async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users ORDER BY username");
        let rows: Vec<UserRow> =
            on_pool!(self, pool => sqlx::query_as(&sql).fetch_all(pool).await).map_err(db_error)?;
        rows.into_iter().map(UserRow::into_user).collect()
    }

    async fn delete_user(&self, username: &str, now: UnixTime) -> Result<bool, StoreError> {
        self.end_user(username, now, UserEnd::Delete).await
    }

    async fn disable_user(&self, username: &str, now: UnixTime) -> Result<bool, StoreError> {
        self.end_user(username, now, UserEnd::Disable).await
    }
}

/// How a user's tokens end.
#[derive(Clone, Copy)]
enum UserEnd {
    Delete,
    Disable,
}

/// Deletes or disables ([`UserEnd`]) the user `$username` inside the transaction
/// `$tx` and marks every token issued to the user up to `$now` revoked. Evaluates to
/// the user's id, `None` (nothing written) when there is no such user. The stored
/// tokens stay: introspection reads the user with them, and rotation refuses a
/// disabled or deleted user.
macro_rules! end_user_in {
    ($tx:expr, $end:expr, $username:expr, $now:expr) => {
        async {
            let query = match $end {
                UserEnd::Delete => {
                    sqlx::query_scalar("DELETE FROM users WHERE username = $1 RETURNING user_id")
                        .bind($username)
                }
                UserEnd::Disable => sqlx::query_scalar(
                    "UPDATE users SET disabled = TRUE, updated_at = $2 WHERE username = $1 RETURNING user_id",
                )
                .bind($username)
                .bind($now),
            };
            let user_id: Option<String> = query.fetch_optional(&mut *$tx).await?;
            if let Some(user_id) = &user_id {
                mark_subject_revoked!($tx, "user", user_id, $now)?;
            }
            Ok::<_, sqlx::Error>(user_id)
        }
        .await
    };
}

/// Ends every login (refresh token family) of the user whose id is `$2`, at `$1`.
pub(crate) const REVOKE_USER_LOGINS: &str =
    "UPDATE token_families SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL";

/// Enables the user `$username` inside the transaction `$tx` if disabled, and then
/// revokes the user's earlier logins (see [`SqlStore::enable_user`]). Evaluates to the
/// user's id if this flipped the user, `None` (nothing written) when there is no such
/// user or the user was enabled already.
macro_rules! enable_user_in {
    ($tx:expr, $username:expr, $now:expr) => {
        async {
            // Only a user this statement flips loses their logins: enabling an
            // enabled user changes nothing.
            let user_id: Option<String> = sqlx::query_scalar(
                "UPDATE users SET disabled = FALSE, updated_at = $2 \
                 WHERE username = $1 AND disabled RETURNING user_id",
            )
            .bind($username)
            .bind($now)
            .fetch_optional(&mut *$tx)
            .await?;
            if let Some(user_id) = &user_id {
                sqlx::query(REVOKE_USER_LOGINS)
                    .bind($now)
                    .bind(user_id)
                    .execute(&mut *$tx)
                    .await?;
            }
            Ok::<_, sqlx::Error>(user_id)
        }
        .await
    };
}

impl SqlStore {
    /// Deletes or disables a user and marks the user's tokens revoked, in one
    /// transaction ([`end_user_in!`]).
    async fn end_user(&self, username: &str, now: UnixTime, end: UserEnd) -> Result<bool, StoreError> {
        on_pool!(self, pool => async {
            let mut tx = pool.begin().await?;
            let Some(_) = end_user_in!(tx, end, username, now)? else { return Ok(false) };
            tx.commit().await.map(|()| true)
        }
        .await)
        .map_err(db_error)
    }
}

/// A change to a user, as `gatehouse user update` makes it: `None` leaves a setting
/// as it is; `scope: Some(None)` leaves the user limited by the client alone.
#[derive(Debug, Clone, Default)]
pub struct UserChanges {
    /// The hash of a new password.
    pub password_hash: Option<SecretHash>,
    /// The scopes the user may grant.
    pub scope: Option<Option<Scope>>,
    /// `true` disables the user as [`UserStore::disable_user`] does, `false` enables
    /// the user as [`SqlStore::enable_user`] does.
    pub disabled: Option<bool>,
}

/// What enabling a user found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enabled {
    /// The user was disabled and is now enabled.
    Now,
    /// The user was enabled already: nothing changed.
    Already,
    /// No user has that name.
    NoSuchUser,
}

impl SqlStore {
    /// Applies `changes` to the user `username` in one transaction and returns the
    /// user as it is now; `None` (nothing written) when there is no such user. Logins
    /// already made go on, unless `disabled` changes: disabling ends them, with a
    /// revocation mark, as [`UserStore::disable_user`] does, and enabling a disabled
    /// user revokes them, as [`SqlStore::enable_user`] does.
    pub async fn update_user(
        &self,
        username: &str,
        changes: &UserChanges,
        now: UnixTime,
    ) -> Result<Option<User>, StoreError> {
        let sql = format!(
            "UPDATE users SET password_hash = COALESCE($1, password_hash), \
                 scope = CASE WHEN $2 THEN $3 ELSE scope END, updated_at = $4 \
             WHERE username = $5 RETURNING {USER_COLUMNS}"
        );
        let row: Option<UserRow> = on_pool!(self, pool => async {
            let mut tx = pool.begin().await?;
            // The state change first: its own statement says whether it flipped the
            // user, which the one below, returning the row as it is now, cannot.
            match changes.disabled {
                Some(true) => {
                    end_user_in!(tx, UserEnd::Disable, username, now)?;
                }
                Some(false) => {
                    enable_user_in!(tx, username, now)?;
                }
                None => {}
            }
            let row: Option<UserRow> = sqlx::query_as(&sql)
                .bind(changes.password_hash.as_ref().map(SecretHash::to_stored))
                .bind(changes.scope.is_some())
                .bind(changes.scope.as_ref().map(|scope| user_scope_column(scope.as_ref())))
                .bind(now)
                .bind(username)
                .fetch_optional(&mut *tx)
                .await?;
            // No such user: the steps above found none either, and wrote nothing.
            tx.commit().await.map(|()| row)
        }
        .await)
        .map_err(db_error)?;
        row.map(UserRow::into_user).transpose()
    }

    /// One page of users in the order of their names: at most `limit`, each name after
    /// `after` (exclusive; `None` starts at the first), a range scan of the unique
    /// index on `username` (ordered as [`SqlStore::list_clients_page`] says).
    pub async fn list_users_page(&self, after: Option<&str>, limit: i64) -> Result<Vec<User>, StoreError> {
        // Two statements, as for clients: an index range for each.
        let rows: Vec<UserRow> = match after {
            Some(after) => {
                let sql = format!(
                    "SELECT {USER_COLUMNS} FROM users WHERE username > $1 ORDER BY username LIMIT $2"
                );
                on_pool!(self, pool => sqlx::query_as(&sql).bind(after).bind(limit).fetch_all(pool).await)
            }
            None => {
                let sql = format!("SELECT {USER_COLUMNS} FROM users ORDER BY username LIMIT $1");
                on_pool!(self, pool => sqlx::query_as(&sql).bind(limit).fetch_all(pool).await)
            }
        }
        .map_err(db_error)?;
        rows.into_iter().map(UserRow::into_user).collect()
    }

    /// Enables a disabled user, who can log in again. What the user held before stays
    /// dead: the revocation mark that disabling wrote still ends every access token
    /// issued up to then, and the user's logins (refresh token families), which
    /// rotation refused only because the user was disabled, are revoked here, in the
    /// same transaction, so that enabling cannot bring them back.
    pub async fn enable_user(&self, username: &str, now: UnixTime) -> Result<Enabled, StoreError> {
        on_pool!(self, pool => async {
            let mut tx = pool.begin().await?;
            if enable_user_in!(tx, username, now)?.is_none() {
                let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users WHERE username = $1)")
                    .bind(username)
                    .fetch_one(&mut *tx)
                    .await?;
                return Ok(if exists { Enabled::Already } else { Enabled::NoSuchUser });
            }
            tx.commit().await.map(|()| Enabled::Now)
        }
        .await)
        .map_err(db_error)
    }
}
