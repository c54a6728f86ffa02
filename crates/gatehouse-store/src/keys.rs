//! [`KeyStore`] on SQL.

use async_trait::async_trait;
use gatehouse_core::store::{ChangeKind, KeyStore, StoredKey};
use gatehouse_core::{SigningAlg, StoreError, UnixTime};

use crate::error::{corrupt, db_error};
use crate::feed::record_change;
use crate::{on_pool, SqlStore};

#[derive(sqlx::FromRow)]
struct KeyRow {
    kid: String,
    alg: String,
    sealed_private_key: Vec<u8>,
    is_current: bool,
    created_at: i64,
    publish_until: Option<i64>,
}

impl KeyRow {
    fn into_key(self) -> Result<StoredKey, StoreError> {
        Ok(StoredKey {
            alg: self
                .alg
                .parse::<SigningAlg>()
                .map_err(|()| corrupt("signing key alg", &self.alg))?,
            kid: self.kid,
            sealed_private_key: self.sealed_private_key,
            is_current: self.is_current,
            created_at: self.created_at,
            publish_until: self.publish_until,
        })
    }
}

/// Inserts `$key` as the current key unless there is one (the partial unique index
/// `signing_keys_one_current`); evaluates to the number of rows inserted.
macro_rules! insert_current_key {
    ($tx:expr, $key:expr) => {
        sqlx::query(
            "INSERT INTO signing_keys (kid, alg, sealed_private_key, is_current, created_at, publish_until) \
             VALUES ($1, $2, $3, TRUE, $4, NULL) ON CONFLICT DO NOTHING",
        )
        .bind(&$key.kid)
        .bind($key.alg.as_str())
        .bind(&$key.sealed_private_key)
        .bind($key.created_at)
        .execute(&mut *$tx)
        .await
        .map(|done| done.rows_affected())
    };
}

#[async_trait]
impl KeyStore for SqlStore {
    async fn live_keys(&self, now: UnixTime) -> Result<Vec<StoredKey>, StoreError> {
        let rows: Vec<KeyRow> = on_pool!(self, pool => sqlx::query_as(
            "SELECT kid, alg, sealed_private_key, is_current, created_at, publish_until FROM signing_keys \
             WHERE is_current OR publish_until > $1 ORDER BY created_at DESC, kid",
        )
        .bind(now)
        .fetch_all(pool)
        .await)
        .map_err(db_error)?;
        rows.into_iter().map(KeyRow::into_key).collect()
    }

    async fn insert_first_key(&self, key: &StoredKey) -> Result<bool, StoreError> {
        on_pool!(self, pool => async {
            let mut tx = pool.begin().await?;
            let inserted = insert_current_key!(tx, key)? == 1;
            if inserted {
                record_change!(tx, ChangeKind::Keys, &key.kid, key.created_at)?;
            }
            tx.commit().await.map(|()| inserted)
        }
        .await)
        .map_err(db_error)
    }

    async fn rotate_key(&self, key: &StoredKey, retired_publish_until: UnixTime) -> Result<(), StoreError> {
        on_pool!(self, pool => async {
            let mut tx = pool.begin().await?;
            sqlx::query("UPDATE signing_keys SET is_current = FALSE, publish_until = $1 WHERE is_current")
                .bind(retired_publish_until)
                .execute(&mut *tx)
                .await?;
            insert_current_key!(tx, key)?;
            record_change!(tx, ChangeKind::Keys, &key.kid, key.created_at)?;
            tx.commit().await
        }
        .await)
        .map_err(db_error)
    }
}
