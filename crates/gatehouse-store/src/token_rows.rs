//! How token rows are written, and how a refresh token is read with its login: shared
//! by [`crate::tokens`] (logins, introspection, revocation) and [`crate::rotation`].
//! Rows are read as facts; what they mean is core's to decide.

use gatehouse_core::tokens::{LoginState, LoginUser, RefreshState};
use gatehouse_core::{ClientId, Confirmation, Scope, StoreError};

use crate::error::corrupt;

/// Inserts a refresh token row; `$tx` is a transaction or connection.
macro_rules! insert_refresh {
    ($tx:expr, $row:expr) => {
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, family_id, client_id, issued_at, expires_at, used_at) \
             VALUES ($1, $2, $3, $4, $5, NULL)",
        )
        .bind(&$row.digest.0[..])
        .bind(&$row.family_id)
        .bind($row.client_id.as_str())
        .bind($row.issued_at)
        .bind($row.expires_at)
        .execute(&mut *$tx)
        .await
    };
}
pub(crate) use insert_refresh;

/// Inserts an opaque access token row, with what it is bound to.
macro_rules! insert_opaque {
    ($tx:expr, $row:expr) => {
        match $crate::token_rows::cnf_column($row.cnf.as_ref()) {
            Ok(cnf) => {
                sqlx::query(
                    "INSERT INTO opaque_access_tokens (token_hash, jti, family_id, client_id, subject, username, \
                     scope, audience, issued_at, expires_at, revoked_at, cnf) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL, $11)",
                )
                .bind(&$row.digest.0[..])
                .bind(&$row.jti)
                .bind($row.family_id.as_deref())
                .bind($row.client_id.as_str())
                .bind(&$row.subject)
                .bind($row.username.as_deref())
                .bind($row.scope.to_string())
                .bind(&$row.audience)
                .bind($row.issued_at)
                .bind($row.expires_at)
                .bind(cnf)
                .execute(&mut *$tx)
                .await
            }
            Err(err) => Err(err),
        }
    };
}
pub(crate) use insert_opaque;

/// The `cnf` column of an opaque access token: its confirmation as JSON (RFC 7800
/// §3.1's object, as introspection shows it), NULL for a token bound to nothing.
/// The error is sqlx's, as for any value that cannot be encoded, so that it joins
/// the statement's own.
pub(crate) fn cnf_column(cnf: Option<&Confirmation>) -> Result<Option<String>, sqlx::Error> {
    cnf.map(serde_json::to_string)
        .transpose()
        .map_err(|err| sqlx::Error::Encode(Box::new(err)))
}

/// An opaque access token's confirmation, from its `cnf` column.
pub(crate) fn cnf_from_column(column: Option<&str>) -> Result<Option<Confirmation>, StoreError> {
    column
        .map(serde_json::from_str)
        .transpose()
        .map_err(|err| corrupt("opaque token cnf", err))
}

/// The one query of a refresh token with its login and the login's user as they are
/// now (a [`RefreshStateRow`]), for the token whose digest is `$1`, with `$extra`
/// columns after those. The rotation's consuming step and the lookups of
/// introspection and revocation all read it.
macro_rules! select_refresh_state {
    ($($extra:expr),*) => {
        concat!(
            "SELECT r.client_id, r.issued_at, r.expires_at, r.used_at, f.revoked_at, f.family_id, f.scope, \
             f.user_id AS family_user, u.user_id, u.username, u.scope AS user_scope, u.disabled"
            $(, ", ", $extra)*,
            " FROM refresh_tokens r JOIN token_families f ON f.family_id = r.family_id \
             LEFT JOIN users u ON u.user_id = f.user_id WHERE r.token_hash = $1"
        )
    };
}
pub(crate) use select_refresh_state;

/// A row of [`select_refresh_state!`].
#[derive(sqlx::FromRow)]
pub(crate) struct RefreshStateRow {
    client_id: String,
    issued_at: i64,
    expires_at: i64,
    used_at: Option<i64>,
    revoked_at: Option<i64>,
    family_id: String,
    scope: String,
    family_user: Option<String>,
    user_id: Option<String>,
    username: Option<String>,
    user_scope: Option<String>,
    disabled: Option<bool>,
}

impl RefreshStateRow {
    /// The token as core reads it; `used` as the row says, or, for the rotation's
    /// consuming step, as it was before the step.
    pub(crate) fn into_state(self, used: bool) -> Result<RefreshState, StoreError> {
        let user = match (self.user_id, self.username, self.user_scope, self.disabled) {
            (Some(user_id), Some(username), Some(scope), Some(disabled)) => Some(LoginUser {
                user_id,
                username,
                scope: crate::users::user_scope_from_column(&scope)?,
                disabled,
            }),
            _ => None,
        };
        Ok(RefreshState {
            client_id: parse_client_id(&self.client_id)?,
            issued_at: self.issued_at,
            expires_at: self.expires_at,
            used,
            login_revoked_at: self.revoked_at,
            login: LoginState {
                family_id: self.family_id,
                scope: Scope::parse(&self.scope).map_err(|e| corrupt("login scope", e))?,
                had_user: self.family_user.is_some(),
                user,
            },
        })
    }

    /// Whether the row says the token was consumed.
    pub(crate) fn used(&self) -> bool {
        self.used_at.is_some()
    }
}

/// A stored client id.
pub(crate) fn parse_client_id(text: &str) -> Result<ClientId, StoreError> {
    ClientId::parse(text).ok_or_else(|| corrupt("client_id", text))
}
