//! PostgreSQL going away under a running server: 503 `temporarily_unavailable`
//! promptly, never a hang or a panic (`docs/operations.md`, failure behaviour).

use std::time::Duration;

use reqwest::StatusCode;

use crate::helpers::*;

/// How long a request may take while the database is gone.
const OUTAGE_ANSWER_DEADLINE: Duration = Duration::from_secs(10);

/// A fresh PostgreSQL database, a server on it, a client that has been used
/// (so may be cached) and one that has not; then the database is dropped.
async fn outage<'a>(db: &'a TestDb) -> (TestServer<'a>, TestClient, TestClient) {
    let used = db.create_client("used", &[]).await;
    let unused = db.create_client("unused", &[]).await;
    let server = db.start(&[]).await;
    server.access_token(&used).await;
    server.get("/readyz").await.assert_status(StatusCode::OK);

    db.drop_database_now().await;
    (server, used, unused)
}

async fn within_deadline<T>(what: &str, work: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(OUTAGE_ANSWER_DEADLINE, work)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within {OUTAGE_ANSWER_DEADLINE:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_outage_answers_503_promptly() {
    if Backend::Postgres.skipped() {
        return;
    }
    let db = TestDb::new(Backend::Postgres).await;
    let (server, _used, unused) = outage(&db).await;

    let reply = within_deadline(
        "a token request for an uncached client",
        server.client_credentials(&unused, &[]),
    )
    .await;
    reply.assert_token_error(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable");

    within_deadline(
        "/readyz",
        eventually(OUTAGE_ANSWER_DEADLINE, "/readyz reports the outage", || async {
            let reply = server.get("/readyz").await;
            match reply.status {
                StatusCode::SERVICE_UNAVAILABLE => Ok(()),
                other => Err(format!("{other} {}", reply.body)),
            }
        }),
    )
    .await;
    within_deadline("/healthz", server.get("/healthz"))
        .await
        .assert_status(StatusCode::OK);

    let log = server.logs();
    assert!(!log.contains("panicked"), "the server panicked:\n{log}");
}

/// A client seen recently is served from memory, so it keeps
/// getting tokens while the database is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_client_is_served_during_outage() {
    if Backend::Postgres.skipped() {
        return;
    }
    let db = TestDb::new(Backend::Postgres).await;
    let (server, used, _unused) = outage(&db).await;

    let reply = within_deadline(
        "a token request for a cached client",
        server.client_credentials(&used, &[]),
    )
    .await;
    reply.access_token();
}
