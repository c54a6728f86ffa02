//! [`TokenStore`] on SQL: logins, refresh token rotation, opaque tokens, revocations.

use async_trait::async_trait;
use gatehouse_core::store::{RotationDecision, TokenStore};
use gatehouse_core::tokens::{
    HolderState, JwtState, LoginState, LoginUser, NewFamily, NewOpaqueToken, NewRefreshToken, OpaqueView,
    RefreshView, RotationOutcome, RotationWrites, TokenDigest, UserHolder,
};
use gatehouse_core::{ClientId, Scope, StoreError, UnixTime};

use crate::batch::RotationJob;
use crate::error::{corrupt, db_error};
use crate::{on_pool, SqlStore};

/// How long past its first refresh token's expiry a login with no refresh token left is
/// kept, so that the access tokens issued from it (whose `sid` names it) still
/// introspect as active. Refresh tokens themselves go when they expire.
const FAMILY_GRACE_SECS: i64 = 86_400;

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

/// Inserts an opaque access token row.
macro_rules! insert_opaque {
    ($tx:expr, $row:expr) => {
        sqlx::query(
            "INSERT INTO opaque_access_tokens (token_hash, jti, family_id, client_id, subject, username, scope, \
             audience, issued_at, expires_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL)",
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
        .execute(&mut *$tx)
        .await
    };
}
pub(crate) use insert_opaque;

/// Records, inside the transaction `$tx`, a revocation mark: every token of the
/// `$kind` (`"client"` or `"user"`) `$id` issued at or before `$at` is dead (see
/// [`HolderState`], and [`holder_columns!`] which reads it). A mark only moves
/// forward, whatever the clock of the process that writes it. Marks end JWTs, which
/// are not stored; refresh token rotation does not read them (it is the hot path), so
/// whoever marks a subject whose logins must end revokes or deletes those too.
macro_rules! mark_subject_revoked {
    ($tx:expr, $kind:literal, $id:expr, $at:expr) => {
        sqlx::query(concat!(
            "INSERT INTO revoked_subjects (kind, id, revoked_at) VALUES ('",
            $kind,
            "', $1, $2) ON CONFLICT (kind, id) DO UPDATE SET revoked_at = CASE \
             WHEN excluded.revoked_at > revoked_subjects.revoked_at THEN excluded.revoked_at \
             ELSE revoked_subjects.revoked_at END"
        ))
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

/// A login joined with its user as they are now.
#[derive(sqlx::FromRow)]
pub(crate) struct LoginRow {
    pub(crate) family_id: String,
    scope: String,
    family_user: Option<String>,
    user_id: Option<String>,
    username: Option<String>,
    user_scope: Option<String>,
    disabled: Option<bool>,
}

/// A refresh token of one client, with its login and user as they are now.
pub(crate) const ROTATION_SELECT: &str = "SELECT r.client_id, r.issued_at, r.expires_at, r.used_at, f.revoked_at, \
     f.family_id, f.scope, f.user_id AS family_user, u.user_id, u.username, u.scope AS user_scope, u.disabled \
     FROM refresh_tokens r JOIN token_families f ON f.family_id = r.family_id \
     LEFT JOIN users u ON u.user_id = f.user_id WHERE r.token_hash = $1 AND r.client_id = $2";

impl LoginRow {
    pub(crate) fn into_login(self) -> Result<LoginState, StoreError> {
        let user = match (self.user_id, self.username, self.user_scope, self.disabled) {
            (Some(user_id), Some(username), Some(scope), Some(disabled)) => Some(LoginUser {
                user_id,
                username,
                scope: crate::users::user_scope_from_column(&scope)?,
                disabled,
            }),
            _ => None,
        };
        Ok(LoginState {
            family_id: self.family_id,
            scope: Scope::parse(&self.scope).map_err(|e| corrupt("login scope", e))?,
            had_user: self.family_user.is_some(),
            user,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct RotationRow {
    pub(crate) client_id: String,
    pub(crate) issued_at: i64,
    pub(crate) expires_at: i64,
    pub(crate) used_at: Option<i64>,
    pub(crate) revoked_at: Option<i64>,
    #[sqlx(flatten)]
    pub(crate) login: LoginRow,
}

#[derive(sqlx::FromRow)]
struct RefreshRow {
    #[sqlx(flatten)]
    token: RotationRow,
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
    revoked: bool,
    #[sqlx(flatten)]
    holders: HolderRow,
}

#[derive(sqlx::FromRow)]
struct JwtRow {
    jti_revoked: bool,
    login_live: bool,
    #[sqlx(flatten)]
    holders: HolderRow,
}

fn client_id(text: &str) -> Result<ClientId, StoreError> {
    ClientId::parse(text).ok_or_else(|| corrupt("client_id", text))
}

/// How a rotation ended.
pub(crate) type Rotation = RotationOutcome<(LoginState, RotationWrites)>;

/// One rotation inside an open transaction `$tx`, in three statements: read the token
/// with its login, let the core decide, then consume it with a conditional UPDATE and
/// store the successor. Nothing is written before the decision, so a refusal needs no
/// rollback. The UPDATE's `used_at IS NULL` condition settles races: a writer that read
/// the token as unused but finds it consumed lost to another, which is a second use
/// of the token (reuse). Evaluates to `Result<Rotation, StoreError>`; an error leaves
/// the transaction unusable, and the batch is rolled back whole.
macro_rules! rotate_in_tx {
    ($tx:ident, $job:expr, $postgres:expr) => {
        async {
            let job = $job;
            let row: Option<crate::tokens::RotationRow> = sqlx::query_as(crate::tokens::ROTATION_SELECT)
                .bind(&job.presented.0[..])
                .bind(job.client.as_str())
                .fetch_optional(&mut *$tx)
                .await
                .map_err(crate::error::db_error)?;
            let Some(row) = row else {
                return Ok::<_, gatehouse_core::StoreError>(gatehouse_core::tokens::RotationOutcome::Invalid);
            };
            let family_id = row.login.family_id.clone();
            if row.used_at.is_none() {
                if row.revoked_at.is_some() || row.expires_at <= job.now {
                    return Ok(gatehouse_core::tokens::RotationOutcome::Invalid);
                }
                let login = row.login.into_login()?;
                let writes = match (job.decide)(&login) {
                    Ok(writes) => writes,
                    Err(refusal) => return Ok(gatehouse_core::tokens::RotationOutcome::Refused(refusal)),
                };
                let consumed = if $postgres {
                    // PostgreSQL: consume and store the successor in one round trip.
                    sqlx::query(
                        "WITH consumed AS (UPDATE refresh_tokens SET used_at = $1 \
                         WHERE token_hash = $2 AND used_at IS NULL RETURNING family_id) \
                         INSERT INTO refresh_tokens (token_hash, family_id, client_id, issued_at, expires_at, used_at) \
                         SELECT $3, family_id, $4, $5, $6, NULL FROM consumed",
                    )
                    .bind(job.now)
                    .bind(&job.presented.0[..])
                    .bind(&writes.refresh.digest.0[..])
                    .bind(writes.refresh.client_id.as_str())
                    .bind(writes.refresh.issued_at)
                    .bind(writes.refresh.expires_at)
                    .execute(&mut *$tx)
                    .await
                    .map_err(crate::error::db_error)?
                    .rows_affected()
                        == 1
                } else {
                    let consumed = sqlx::query(
                        "UPDATE refresh_tokens SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL",
                    )
                    .bind(job.now)
                    .bind(&job.presented.0[..])
                    .execute(&mut *$tx)
                    .await
                    .map_err(crate::error::db_error)?
                    .rows_affected()
                        == 1;
                    if consumed {
                        crate::tokens::insert_refresh!($tx, writes.refresh).map_err(crate::error::db_error)?;
                    }
                    consumed
                };
                if consumed {
                    if let Some(opaque) = &writes.opaque {
                        crate::tokens::insert_opaque!($tx, opaque).map_err(crate::error::db_error)?;
                    }
                    return Ok(gatehouse_core::tokens::RotationOutcome::Rotated((login, writes)));
                }
                // Consumed by another writer since we read it: this is a second use.
            }
            // RFC 9700 §4.14.2: a rotated-out token came back. Someone holds a copy;
            // end the login for everyone.
            sqlx::query(
                "UPDATE token_families SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL",
            )
            .bind(job.now)
            .bind(&family_id)
            .execute(&mut *$tx)
            .await
            .map_err(crate::error::db_error)?;
            Ok(gatehouse_core::tokens::RotationOutcome::Reused)
        }
        .await
    };
}
pub(crate) use rotate_in_tx;

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
        client: &ClientId,
        now: UnixTime,
        decide: RotationDecision,
    ) -> Result<Rotation, StoreError> {
        self.rotations
            .submit(RotationJob {
                presented: *presented,
                client: client.clone(),
                now,
                decide,
            })
            .await
    }

    async fn find_refresh(&self, digest: &TokenDigest) -> Result<Option<RefreshView>, StoreError> {
        let sql = concat!(
            "SELECT r.client_id, r.issued_at, r.expires_at, r.used_at, f.revoked_at, f.family_id, f.scope, \
             f.user_id AS family_user, u.user_id, u.username, u.scope AS user_scope, u.disabled, ",
            holder_columns!("r.client_id", "f.user_id"),
            " FROM refresh_tokens r JOIN token_families f ON f.family_id = r.family_id \
             LEFT JOIN users u ON u.user_id = f.user_id WHERE r.token_hash = $1"
        );
        let row: Option<RefreshRow> =
            on_pool!(self, pool => sqlx::query_as(sql).bind(&digest.0[..]).fetch_optional(pool).await)
                .map_err(db_error)?;
        let Some(RefreshRow { token: row, holders }) = row else {
            return Ok(None);
        };
        let login = row.login.into_login()?;
        Ok(Some(RefreshView {
            client_id: client_id(&row.client_id)?,
            issued_at: row.issued_at,
            expires_at: row.expires_at,
            usable: row.used_at.is_none() && row.revoked_at.is_none(),
            holders: holders.into_state(login.had_user),
            family_id: login.family_id,
            scope: login.scope,
            user: login.user,
        }))
    }

    async fn find_opaque(&self, digest: &TokenDigest) -> Result<Option<OpaqueView>, StoreError> {
        let sql = concat!(
            "SELECT o.token_hash, o.jti, o.family_id, o.client_id, o.subject, o.username, o.scope, o.audience, \
             o.issued_at, o.expires_at, \
             (o.revoked_at IS NOT NULL OR (o.family_id IS NOT NULL AND (f.family_id IS NULL OR f.revoked_at IS NOT NULL))) AS revoked, ",
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
            token: NewOpaqueToken {
                digest: TokenDigest(digest),
                jti: row.jti,
                family_id: row.family_id,
                client_id: client_id(&row.client_id)?,
                subject: row.subject,
                username: row.username,
                scope: Scope::parse(&row.scope).map_err(|e| corrupt("opaque token scope", e))?,
                audience: row.audience,
                issued_at: row.issued_at,
                expires_at: row.expires_at,
            },
            revoked: row.revoked,
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
             EXISTS (SELECT 1 FROM token_families WHERE family_id = $2 AND revoked_at IS NULL) AS login_live, ",
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
            login_live: row.login_live,
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
                "DELETE FROM token_families WHERE family_id IN \
              (SELECT family_id FROM token_families WHERE expires_at < $1 LIMIT $2)",
                now - FAMILY_GRACE_SECS,
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
