//! The store conformance suite (`gatehouse_core::store::conformance`) on both SQL
//! backends: `sqlite::…` on a SQLite file in a temporary directory, `postgres::…` on a
//! fresh database of the PostgreSQL server named by `GATEHOUSE_TEST_DATABASE_URL`,
//! created for the test and dropped after (skipped, and saying so, without it). Core's
//! own tests run the same suite on the in-memory store. The SQL store's own methods,
//! beyond the traits, are tested here too, on the same databases ([`store_api`]).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::ops::Deref;

use gatehouse_store::{PoolOptions, SqlStore};

#[macro_use]
mod store_api;

/// Names the PostgreSQL server the PostgreSQL cases run on.
const PG_URL_VAR: &str = "GATEHOUSE_TEST_DATABASE_URL";

/// A migrated store on a database of its own, which goes when this is dropped.
struct TestStore {
    store: SqlStore,
    _dir: Option<tempfile::TempDir>,
    postgres: Option<PgDatabase>,
}

impl Deref for TestStore {
    type Target = SqlStore;

    fn deref(&self) -> &SqlStore {
        &self.store
    }
}

impl Drop for TestStore {
    fn drop(&mut self) {
        if let Some(db) = self.postgres.take() {
            // Drop cannot await: the database goes on a runtime of its own, after the
            // store's connections (closed with the pool: `WITH (FORCE)` ends them).
            let dropped = std::thread::spawn(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime")
                    .block_on(db.drop_database())
            })
            .join();
            if let Ok(Err(e)) = dropped {
                eprintln!("could not drop a test database: {e}");
            }
        }
    }
}

async fn migrated(url: &str) -> SqlStore {
    let store = SqlStore::open(url, &PoolOptions::default()).expect("open the store");
    store.migrate().await.expect("migrate");
    store
}

/// A PostgreSQL database made for one test.
struct PgDatabase {
    admin_url: String,
    name: String,
}

impl PgDatabase {
    async fn create(admin_url: &str) -> (PgDatabase, String) {
        use sqlx::Connection as _;
        let name = format!("gh_conformance_{:016x}", random_u64());
        let mut conn = sqlx::PgConnection::connect(admin_url)
            .await
            .unwrap_or_else(|e| panic!("connect to {PG_URL_VAR}: {e}"));
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("CREATE DATABASE");
        conn.close().await.ok();
        // The URL's path names the database: replace it, keep the query.
        let (base, query) = admin_url
            .split_once('?')
            .map_or((admin_url, None), |(b, q)| (b, Some(q)));
        let authority_end = base.find("://").map_or(0, |i| i + 3);
        let path_start = base[authority_end..]
            .find('/')
            .map_or(base.len(), |i| authority_end + i);
        let mut url = format!("{}/{name}", &base[..path_start]);
        if let Some(query) = query {
            url = format!("{url}?{query}");
        }
        let db = PgDatabase {
            admin_url: admin_url.to_owned(),
            name,
        };
        (db, url)
    }

    async fn drop_database(self) -> Result<(), sqlx::Error> {
        use sqlx::Connection as _;
        let mut conn = sqlx::PgConnection::connect(&self.admin_url).await?;
        sqlx::query(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name))
            .execute(&mut conn)
            .await?;
        conn.close().await
    }
}

/// 64 bits from the operating system's random source, for database names.
fn random_u64() -> u64 {
    use std::io::Read as _;
    let mut bytes = [0; 8];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .expect("read /dev/urandom");
    u64::from_le_bytes(bytes)
}

mod sqlite {
    use super::*;

    async fn open() -> Option<TestStore> {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = format!("sqlite://{}", dir.path().join("gatehouse.db").display());
        Some(TestStore {
            store: migrated(&url).await,
            _dir: Some(dir),
            postgres: None,
        })
    }

    gatehouse_core::store_conformance_tests!(open);
    store_api_tests!(open);
}

mod postgres {
    use super::*;

    async fn open() -> Option<TestStore> {
        let Some(admin_url) = std::env::var(PG_URL_VAR)
            .ok()
            .filter(|url| !url.trim().is_empty())
        else {
            println!("skipped: {PG_URL_VAR} is not set");
            return None;
        };
        let (db, url) = PgDatabase::create(&admin_url).await;
        Some(TestStore {
            store: migrated(&url).await,
            _dir: None,
            postgres: Some(db),
        })
    }

    gatehouse_core::store_conformance_tests!(open);
    store_api_tests!(open);
}
