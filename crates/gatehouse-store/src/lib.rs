//! The sqlx implementations of gatehouse's storage traits, for SQLite and PostgreSQL.
//!
//! The backend is chosen from the URL scheme at start-up. The two backends share one
//! body of SQL (positional `$n` parameters, `RETURNING`, `ON CONFLICT`, integer Unix
//! times): [`on_pool!`] expands each query once per backend, so there is one place to
//! read and fix a query, and each expansion is fully typed for its driver. Migrations
//! live in one folder per backend, because DDL types differ.
#![warn(missing_docs)]
// Tests may unwrap: a panic there is a failed test (the workspace lint is for the rest).
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod client_ids;
mod clients;
mod connect;
mod error;
mod feed;
mod group_commit;
mod holders;
mod keys;
mod replays;
mod rotation;
mod sqlite_file;
mod token_rows;
mod tokens;
mod users;

pub use clients::ClientChanges;
pub use connect::{sqlite_database_file, Backend, PoolOptions, SqlStore};
pub use feed::{ChangeListener, Wake};
pub use users::{Enabled, UserChanges};

/// Runs `$body` with `$pool` bound to the concrete pool of the store's backend.
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.pool {
            $crate::connect::Pool::Sqlite($pool) => $body,
            $crate::connect::Pool::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_pool;
