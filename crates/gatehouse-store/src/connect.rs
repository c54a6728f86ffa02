//! Opening the database named by a URL, and migrating it.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use gatehouse_core::store::Store;
use gatehouse_core::StoreError;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::error::db_error;
use crate::replays::{self, ReplayWriters};
use crate::rotation::{self, RotationWriters};
use crate::{on_pool, sqlite_file};

/// The database engine behind a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite, one file.
    Sqlite,
    /// PostgreSQL, shared by any number of nodes.
    Postgres,
}

impl Backend {
    /// The backend a `database_url` names, by its scheme.
    pub fn from_url(url: &str) -> Option<Self> {
        if url.starts_with("sqlite:") {
            Some(Self::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Self::Postgres)
        } else {
            None
        }
    }
}

/// Pool settings.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    /// Most open connections.
    pub max_connections: u32,
    /// How long a query waits for a connection before the database counts as
    /// unavailable.
    pub acquire_timeout: Duration,
    /// PostgreSQL `statement_timeout`; SQLite's busy timeout.
    pub statement_timeout: Duration,
}

impl Default for PoolOptions {
    fn default() -> Self {
        Self {
            max_connections: 8,
            acquire_timeout: Duration::from_secs(3),
            statement_timeout: Duration::from_secs(5),
        }
    }
}

pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// The store, on SQLite or PostgreSQL.
pub struct SqlStore {
    pub(crate) pool: Pool,
    pub(crate) rotations: RotationWriters,
    pub(crate) replays: ReplayWriters,
}

impl std::fmt::Debug for SqlStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlStore")
            .field("backend", &self.backend())
            .finish()
    }
}

impl SqlStore {
    /// Opens the database at `url` (inside a Tokio runtime: it starts the writer
    /// tasks of [`crate::rotation`] and [`crate::replays`]). A SQLite file is created if missing, readable by
    /// its owner only (mode 0600, as are its `-wal` and `-shm` files), and put in WAL
    /// mode; with `synchronous = FULL` every commit is durable when it returns.
    /// The pool connects lazily, so a server starts even while PostgreSQL is down
    /// (its `/readyz` says so); [`SqlStore::migrate`] is the first real use.
    pub fn open(url: &str, options: &PoolOptions) -> Result<Self, StoreError> {
        let invalid = |e: sqlx::Error| StoreError::Other(format!("invalid database_url: {e}"));
        let pool = match Backend::from_url(url) {
            Some(Backend::Sqlite) => {
                let connect = SqliteConnectOptions::from_str(url).map_err(invalid)?;
                if let Some(path) = database_file(&connect) {
                    sqlite_file::make_private(&path)?;
                }
                let connect = connect
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Full)
                    .foreign_keys(true)
                    .busy_timeout(options.statement_timeout);
                Pool::Sqlite(
                    SqlitePoolOptions::new()
                        .max_connections(options.max_connections)
                        .acquire_timeout(options.acquire_timeout)
                        // An in-process SQLite connection cannot go stale the way a
                        // network one can: no ping before each use (a round trip to
                        // sqlx's worker thread, ~10 % of an introspection).
                        .test_before_acquire(false)
                        .connect_lazy_with(connect),
                )
            }
            Some(Backend::Postgres) => {
                let millis = options.statement_timeout.as_millis().to_string();
                let connect = PgConnectOptions::from_str(url)
                    .map_err(invalid)?
                    .options([("statement_timeout", millis.as_str())]);
                Pool::Postgres(
                    PgPoolOptions::new()
                        .max_connections(options.max_connections)
                        .acquire_timeout(options.acquire_timeout)
                        .connect_lazy_with(connect),
                )
            }
            None => {
                return Err(StoreError::Other(
                    "database_url must start with sqlite: or postgres://".into(),
                ))
            }
        };
        // On PostgreSQL, writers of each kind overlap their batches with each other's
        // commits; each holds a connection only while its batch runs.
        let (rotations, replays) = match &pool {
            Pool::Sqlite(pool) => (rotation::sqlite_writers(pool), replays::sqlite_writers(pool)),
            Pool::Postgres(pool) => {
                let writers = (options.max_connections as usize / 2).clamp(1, 4);
                (
                    rotation::postgres_writers(pool, writers),
                    replays::postgres_writers(pool, writers),
                )
            }
        };
        Ok(Self {
            pool,
            rotations,
            replays,
        })
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// Applies the pending migrations of this backend.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let result = match &self.pool {
            Pool::Sqlite(pool) => sqlx::migrate!("./migrations/sqlite").run(pool).await,
            // sqlx's `CREATE TABLE IF NOT EXISTS _sqlx_migrations` draws a NOTICE
            // ("already exists, skipping") at every start, which sqlx logs: the
            // migrating connection asks for warnings and errors only, and is closed
            // afterwards so that the setting goes with it.
            Pool::Postgres(pool) => {
                async {
                    let mut conn = pool.acquire().await?;
                    conn.close_on_drop();
                    sqlx::query("SET client_min_messages = warning")
                        .execute(&mut *conn)
                        .await?;
                    sqlx::migrate!("./migrations/postgres").run(&mut *conn).await
                }
                .await
            }
        };
        result.map_err(|e| match e {
            sqlx::migrate::MigrateError::Execute(err) => db_error(err),
            other => StoreError::Other(other.to_string()),
        })
    }

    /// Closes every connection.
    pub async fn close(&self) {
        on_pool!(self, pool => pool.close().await);
    }
}

/// The file a `sqlite:` database URL names; `None` for PostgreSQL, an in-memory
/// database or a `file:` URI.
pub fn sqlite_database_file(url: &str) -> Option<std::path::PathBuf> {
    if Backend::from_url(url) != Some(Backend::Sqlite) {
        return None;
    }
    database_file(&SqliteConnectOptions::from_str(url).ok()?)
}

/// The file behind SQLite connect options, or `None` for an in-memory database or a
/// `file:` URI (which SQLite resolves itself).
fn database_file(options: &SqliteConnectOptions) -> Option<std::path::PathBuf> {
    use sqlx::ConnectOptions as _;
    let in_memory = options
        .to_url_lossy()
        .query_pairs()
        .any(|(key, value)| key == "mode" && value == "memory");
    let path = options.get_filename();
    let unnamed = path.as_os_str().is_empty() || path.to_string_lossy().starts_with("file:");
    (!in_memory && !unnamed).then(|| path.to_path_buf())
}

#[async_trait]
impl Store for SqlStore {
    async fn ping(&self) -> Result<(), StoreError> {
        on_pool!(self, pool => sqlx::query("SELECT 1").execute(pool).await.map(|_| ())).map_err(db_error)
    }
}
