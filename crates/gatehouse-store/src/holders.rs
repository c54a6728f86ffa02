//! Ending every token of one holder, a client or a user, at once, while the holder
//! stays (`revoke-tokens` of the admin API): one transaction raises the holder's
//! revocation mark, which ends its JWTs, and revokes its stored logins and opaque
//! access tokens, which rotation and introspection read without the mark.

use gatehouse_core::{ClientId, StoreError, UnixTime};

use crate::error::db_error;
use crate::tokens::raise_marks_sql;
use crate::users::REVOKE_USER_LOGINS;
use crate::{on_pool, SqlStore};

impl SqlStore {
    /// Ends every token the client `id` holds, its own and its users', issued up to
    /// `now`: its revocation mark rises to `now` (it never moves back) and its logins
    /// and opaque access tokens are revoked, in one transaction. Tokens issued after
    /// `now` live (marks have second precision: see [`raise_marks_sql!`]). `false`,
    /// with nothing written, when there is no such client. The client itself does not
    /// change, so the change feed records nothing.
    pub async fn revoke_client_tokens(&self, id: &ClientId, now: UnixTime) -> Result<bool, StoreError> {
        on_pool!(self, pool => async {
            let mut tx = pool.begin().await?;
            // The mark is written only for a client that exists, and names it if so.
            let marked: Option<String> = sqlx::query_scalar(raise_marks_sql!(
                "SELECT 'client', client_id, $2 FROM clients WHERE client_id = $1"
            ))
            .bind(id.as_str())
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
            if marked.is_none() {
                return Ok(false);
            }
            for sql in [
                "UPDATE token_families SET revoked_at = $1 WHERE client_id = $2 AND revoked_at IS NULL",
                "UPDATE opaque_access_tokens SET revoked_at = $1 WHERE client_id = $2 AND revoked_at IS NULL",
            ] {
                sqlx::query(sql).bind(now).bind(id.as_str()).execute(&mut *tx).await?;
            }
            tx.commit().await.map(|()| true)
        }
        .await)
        .map_err(db_error)
    }

    /// Ends every token of the user `username` issued up to `now`, through any client,
    /// as [`SqlStore::revoke_client_tokens`] does for a client; the user stays enabled.
    /// `false`, with nothing written, when there is no such user.
    pub async fn revoke_user_tokens(&self, username: &str, now: UnixTime) -> Result<bool, StoreError> {
        on_pool!(self, pool => async {
            let mut tx = pool.begin().await?;
            let user_id: Option<String> = sqlx::query_scalar(raise_marks_sql!(
                "SELECT 'user', user_id, $2 FROM users WHERE username = $1"
            ))
            .bind(username)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(user_id) = user_id else { return Ok(false) };
            // A user's opaque token names the user id in `subject`; a client's own
            // token names the client there, and has no username.
            for sql in [
                REVOKE_USER_LOGINS,
                "UPDATE opaque_access_tokens SET revoked_at = $1 \
                 WHERE subject = $2 AND username IS NOT NULL AND revoked_at IS NULL",
            ] {
                sqlx::query(sql).bind(now).bind(&user_id).execute(&mut *tx).await?;
            }
            tx.commit().await.map(|()| true)
        }
        .await)
        .map_err(db_error)
    }
}
