//! [`UserStore`] on SQL.

use async_trait::async_trait;
use gatehouse_core::store::UserStore;
use gatehouse_core::user::{User, UserId};
use gatehouse_core::{Scope, SecretHash, StoreError, UnixTime};

use crate::error::{corrupt, db_error};
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
            scope: Scope::parse(&self.scope).map_err(|e| corrupt("user scope", e))?,
            id: UserId(self.user_id),
            username: self.username,
            disabled: self.disabled,
            created_at: self.created_at,
        })
    }
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
            .bind(user.scope.to_string())
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

    async fn delete_user(&self, username: &str) -> Result<bool, StoreError> {
        on_pool!(self, pool => sqlx::query("DELETE FROM users WHERE username = $1")
            .bind(username)
            .execute(pool)
            .await
            .map(|r| r.rows_affected() == 1))
        .map_err(db_error)
    }

    async fn disable_user(&self, username: &str, now: UnixTime) -> Result<bool, StoreError> {
        on_pool!(self, pool => sqlx::query("UPDATE users SET disabled = TRUE, updated_at = $1 WHERE username = $2")
            .bind(now)
            .bind(username)
            .execute(pool)
            .await
            .map(|r| r.rows_affected() == 1))
        .map_err(db_error)
    }
}
