//! From sqlx errors to [`StoreError`]: what the server answers 503 for, and what not.

use gatehouse_core::StoreError;

/// PostgreSQL SQLSTATEs that mean "the database is not there right now".
fn postgres_unavailable(code: &str) -> bool {
    code.starts_with("08") // connection exception
        || code.starts_with("53") // insufficient resources (too many connections, ...)
        || matches!(code, "57P01" | "57P02" | "57P03" | "57014" | "3D000")
}

/// SQLite result codes for a database busy or locked beyond the busy timeout.
fn sqlite_unavailable(code: &str) -> bool {
    matches!(code, "5" | "6" | "261" | "262" | "517")
}

/// PostgreSQL's deadlock_detected and serialization_failure: the transaction lost
/// to another and may simply run again.
fn postgres_contention(code: &str) -> bool {
    matches!(code, "40P01" | "40001")
}

fn is_unique_violation(code: &str) -> bool {
    matches!(code, "23505" | "2067" | "1555")
}

/// Classifies a sqlx error. The text is for the log only.
pub(crate) fn db_error(err: sqlx::Error) -> StoreError {
    let text = err.to_string();
    match &err {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => StoreError::Unavailable(text),
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            if is_unique_violation(&code) {
                StoreError::Conflict(text)
            } else if postgres_contention(&code) {
                StoreError::Contention(text)
            } else if postgres_unavailable(&code) || sqlite_unavailable(&code) {
                StoreError::Unavailable(text)
            } else {
                StoreError::Other(text)
            }
        }
        _ => StoreError::Other(text),
    }
}

/// A stored value that does not parse.
pub(crate) fn corrupt(what: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Other(format!("corrupt {what} in the database: {detail}"))
}
