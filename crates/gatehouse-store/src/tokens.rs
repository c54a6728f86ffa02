//! [`TokenStore`] on SQL: logins, opaque tokens, introspection, revocations, clean-up.
//! Rotation and its group commit are [`crate::rotation`]'s.

use async_trait::async_trait;
use gatehouse_core::store::{RotationDecision, TokenStore};
use gatehouse_core::tokens::{
    HolderState, JwtState, LoginRecord, NewFamily, NewOpaqueToken, NewRefreshToken, OpaqueView, RefreshView,
    Rotation, TokenDigest, UserHolder, LOGIN_GRACE_SECS,
};
use gatehouse_core::{Scope, StoreError, UnixTime};

use crate::error::{corrupt, db_error};
use crate::rotation::RotationJob;
use crate::token_rows::{
    cnf_from_column, insert_opaque, insert_refresh, parse_client_id, select_refresh_state, RefreshStateRow,
};
use crate::{on_pool, SqlStore};

/// The statement that raises the revocation mark of each `(kind, id, revoked_at)` row
/// that `$rows` (`VALUES …` or a `SELECT` with a `WHERE`, which SQLite needs before
/// `ON CONFLICT`) yields: every token of that holder issued at or before `revoked_at`
/// is dead (see [`HolderState`], and [`holder_columns!`] which reads it). A mark only
/// moves forward, whatever the clock of the process that writes it. `RETURNING id`
/// names each holder marked.
macro_rules! raise_marks_sql {
    ($rows:expr) => {
        concat!(
            "INSERT INTO revoked_subjects (kind, id, revoked_at) ",
            $rows,
            " ON CONFLICT (kind, id) DO UPDATE SET revoked_at = CASE \
             WHEN excluded.revoked_at > revoked_subjects.revoked_at THEN excluded.revoked_at \
             ELSE revoked_subjects.revoked_at END RETURNING id"
        )
    };
}
pub(crate) use raise_marks_sql;

/// Records, inside the transaction `$tx`, a revocation mark ([`raise_marks_sql!`]) for
/// the `$kind` (`"client"` or `"user"`) `$id` at `$at`. Marks end JWTs, which are not
/// stored; refresh token rotation does not read them (it is the hot path), so whoever
/// marks a subject whose logins must end revokes or deletes those too.
macro_rules! mark_subject_revoked {
    ($tx:expr, $kind:literal, $id:expr, $at:expr) => {
        sqlx::query($crate::tokens::raise_marks_sql!(concat!(
            "VALUES ('",
            $kind,
            "', $1, $2)"
        )))
        .bind($id)
        .bind($at)
        .execute(&mut *$tx)
        .await
    };
}
pub(crate) use mark_subject_revoked;

/// The columns of a [`HolderRow`], for a token of the client `$client` and the user
/// `$user` (SQL expressions; `$user` is NULL for a client's own token).
macro_rules! holder_columns {
    ($client:literal, $user:literal) => {
        concat!(
            "EXISTS (SELECT 1 FROM clients hc WHERE hc.client_id = ",
            $client,
            ") AS client_exists, \
             (SELECT hm.revoked_at FROM revoked_subjects hm WHERE hm.kind = 'client' AND hm.id = ",
            $client,
            ") AS client_revoked_at, (SELECT hu.disabled FROM users hu WHERE hu.user_id = ",
            $user,
            ") AS user_disabled, \
             (SELECT hm.revoked_at FROM revoked_subjects hm WHERE hm.kind = 'user' AND hm.id = ",
            $user,
            ") AS user_revoked_at"
        )
    };
}

/// A token's client and user as they are now ([`holder_columns!`]).
#[derive(sqlx::FromRow)]
struct HolderRow {
    client_exists: bool,
    client_revoked_at: Option<i64>,
    user_disabled: Option<bool>,
    user_revoked_at: Option<i64>,
}

impl HolderRow {
    fn into_state(self, user_token: bool) -> HolderState {
        HolderState {
            client_exists: self.client_exists,
            client_revoked_at: self.client_revoked_at,
            user: user_token.then_some(UserHolder {
                disabled: self.user_disabled,
                revoked_at: self.user_revoked_at,
            }),
        }
    }
}

/// A row of the refresh token query with its holders.
#[derive(sqlx::FromRow)]
struct RefreshRow {
    #[sqlx(flatten)]
    token: RefreshStateRow,
    #[sqlx(flatten)]
    holders: HolderRow,
}

#[derive(sqlx::FromRow)]
struct OpaqueRow {
    token_hash: Vec<u8>,
    jti: String,
    family_id: Option<String>,
    client_id: String,
    subject: String,
    username: Option<String>,
    scope: String,
    audience: String,
    issued_at: i64,
    expires_at: i64,
    revoked_at: Option<i64>,
    cnf: Option<String>,
    login_stored: bool,
    login_revoked_at: Option<i64>,
    #[sqlx(flatten)]
    holders: HolderRow,
}

#[derive(sqlx::FromRow)]
struct JwtRow {
    jti_revoked: bool,
    login_stored: bool,
    login_revoked_at: Option<i64>,
    #[sqlx(flatten)]
    holders: HolderRow,
}

/// A login as read: whether its row exists, and its `revoked_at`.
fn login_record(stored: bool, revoked_at: Option<i64>) -> LoginRecord {
    match (stored, revoked_at) {
        (false, _) => LoginRecord::Missing,
        (true, None) => LoginRecord::Live,
        (true, Some(at)) => LoginRecord::Revoked(at),
    }
}

#[async_trait]
impl TokenStore for SqlStore {
    async fn start_login(
        &self,
        family: &NewFamily,
        refresh: &NewRefreshToken,
        opaque: Option<&NewOpaqueToken>,
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => async {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO token_families (family_id, client_id, user_id, scope, created_at, expires_at, revoked_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, NULL)",
            )
            .bind(&family.family_id)
            .bind(family.client_id.as_str())
            .bind(family.user_id.as_deref())
            .bind(family.scope.to_string())
            .bind(family.created_at)
            .bind(refresh.expires_at)
            .execute(&mut *tx)
            .await?;
            insert_refresh!(tx, refresh)?;
            if let Some(row) = opaque {
                insert_opaque!(tx, row)?;
            }
            tx.commit().await
        }
        .await)
        .map_err(db_error)
    }

    async fn insert_opaque(&self, token: &NewOpaqueToken) -> Result<(), StoreError> {
        on_pool!(self, pool => async {
            let mut conn = pool.acquire().await?;
            insert_opaque!(conn, token).map(|_| ())
        }
        .await)
        .map_err(db_error)
    }

    async fn rotate_refresh_token(
        &self,
        presented: &TokenDigest,
        now: UnixTime,
        decide: RotationDecision,
    ) -> Result<Rotation, StoreError> {
        self.rotations
            .submit(RotationJob {
                presented: *presented,
                now,
                decide,
            })
            .await
    }

    async fn find_refresh(&self, digest: &TokenDigest) -> Result<Option<RefreshView>, StoreError> {
        let sql = select_refresh_state!(holder_columns!("r.client_id", "f.user_id"));
        let row: Option<RefreshRow> =
            on_pool!(self, pool => sqlx::query_as(sql).bind(&digest.0[..]).fetch_optional(pool).await)
                .map_err(db_error)?;
        let Some(RefreshRow { token, holders }) = row else {
            return Ok(None);
        };
        let used = token.used();
        let token = token.into_state(used)?;
        Ok(Some(RefreshView {
            holders: holders.into_state(token.login.had_user),
            token,
        }))
    }

    async fn find_opaque(&self, digest: &TokenDigest) -> Result<Option<OpaqueView>, StoreError> {
        let sql = concat!(
            "SELECT o.token_hash, o.jti, o.family_id, o.client_id, o.subject, o.username, o.scope, o.audience, \
             o.issued_at, o.expires_at, o.revoked_at, o.cnf, f.family_id IS NOT NULL AS login_stored, \
             f.revoked_at AS login_revoked_at, ",
            // A user's token names the user in `subject`; a client's names the client.
            holder_columns!("o.client_id", "CASE WHEN o.username IS NULL THEN NULL ELSE o.subject END"),
            " FROM opaque_access_tokens o LEFT JOIN token_families f ON f.family_id = o.family_id \
             WHERE o.token_hash = $1"
        );
        let row: Option<OpaqueRow> =
            on_pool!(self, pool => sqlx::query_as(sql).bind(&digest.0[..]).fetch_optional(pool).await)
                .map_err(db_error)?;
        let Some(row) = row else { return Ok(None) };
        let digest: [u8; 32] = row
            .token_hash
            .try_into()
            .map_err(|_| corrupt("opaque token digest", "not 32 bytes"))?;
        let user_token = row.username.is_some();
        Ok(Some(OpaqueView {
            holders: row.holders.into_state(user_token),
            revoked_at: row.revoked_at,
            login: row
                .family_id
                .is_some()
                .then(|| login_record(row.login_stored, row.login_revoked_at)),
            token: NewOpaqueToken {
                digest: TokenDigest(digest),
                jti: row.jti,
                family_id: row.family_id,
                client_id: parse_client_id(&row.client_id)?,
                subject: row.subject,
                username: row.username,
                scope: Scope::parse(&row.scope).map_err(|e| corrupt("opaque token scope", e))?,
                audience: row.audience,
                issued_at: row.issued_at,
                expires_at: row.expires_at,
                cnf: cnf_from_column(row.cnf.as_deref())?,
            },
        }))
    }

    async fn jwt_state(
        &self,
        jti: &str,
        sid: Option<&str>,
        client_id: &str,
        user_id: Option<&str>,
    ) -> Result<JwtState, StoreError> {
        let sql = concat!(
            "SELECT EXISTS (SELECT 1 FROM revoked_jtis WHERE jti = $1) AS jti_revoked, \
             EXISTS (SELECT 1 FROM token_families WHERE family_id = $2) AS login_stored, \
             (SELECT revoked_at FROM token_families WHERE family_id = $2) AS login_revoked_at, ",
            holder_columns!("$3", "$4")
        );
        let row: JwtRow = on_pool!(self, pool => sqlx::query_as(sql)
            .bind(jti)
            .bind(sid)
            .bind(client_id)
            .bind(user_id)
            .fetch_one(pool)
            .await)
        .map_err(db_error)?;
        Ok(JwtState {
            jti_revoked: row.jti_revoked,
            login: login_record(row.login_stored, row.login_revoked_at),
            holders: row.holders.into_state(user_id.is_some()),
        })
    }

    async fn revoke_family(&self, family_id: &str, now: UnixTime) -> Result<bool, StoreError> {
        on_pool!(self, pool => sqlx::query(
            "UPDATE token_families SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(family_id)
        .execute(pool)
        .await
        .map(|r| r.rows_affected() == 1))
        .map_err(db_error)
    }

    async fn revoke_opaque(&self, digest: &TokenDigest, now: UnixTime) -> Result<bool, StoreError> {
        on_pool!(self, pool => sqlx::query(
            "UPDATE opaque_access_tokens SET revoked_at = $1 WHERE token_hash = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(&digest.0[..])
        .execute(pool)
        .await
        .map(|r| r.rows_affected() == 1))
        .map_err(db_error)
    }

    async fn revoke_jti(&self, jti: &str, expires_at: UnixTime) -> Result<bool, StoreError> {
        on_pool!(self, pool => sqlx::query(
            "INSERT INTO revoked_jtis (jti, expires_at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(jti)
        .bind(expires_at)
        .execute(pool)
        .await
        .map(|r| r.rows_affected() == 1))
        .map_err(db_error)
    }

    async fn purge_expired(&self, now: UnixTime, batch: i64) -> Result<u64, StoreError> {
        // Small batches, one statement each: never a long lock on a busy table.
        // Revocation marks (`revoked_subjects`) stay: one row per deleted client or
        // disabled or deleted user, and a mark must outlive every token it ends, whose
        // lifetimes the store does not know.
        let statements = [
            (
                "DELETE FROM refresh_tokens WHERE token_hash IN \
              (SELECT token_hash FROM refresh_tokens WHERE expires_at < $1 LIMIT $2)",
                now,
            ),
            (
                "DELETE FROM opaque_access_tokens WHERE token_hash IN \
              (SELECT token_hash FROM opaque_access_tokens WHERE expires_at < $1 LIMIT $2)",
                now,
            ),
            (
                "DELETE FROM revoked_jtis WHERE jti IN \
              (SELECT jti FROM revoked_jtis WHERE expires_at < $1 LIMIT $2)",
                now,
            ),
            (
                "DELETE FROM used_jtis WHERE digest IN \
              (SELECT digest FROM used_jtis WHERE expires_at < $1 LIMIT $2)",
                now,
            ),
            (
                "DELETE FROM token_families WHERE family_id IN \
              (SELECT family_id FROM token_families WHERE expires_at < $1 LIMIT $2)",
                now - LOGIN_GRACE_SECS,
            ),
        ];
        let mut deleted = 0;
        for (sql, before) in statements {
            deleted += on_pool!(self, pool => sqlx::query(sql)
                .bind(before)
                .bind(batch)
                .execute(pool)
                .await
                .map(|r| r.rows_affected()))
            .map_err(db_error)?;
        }
        Ok(deleted)
    }
}
