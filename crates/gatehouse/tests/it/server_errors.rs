//! A request the server cannot serve because its database fails: the client gets
//! the OAuth JSON error (500 `server_error`, or 503 `temporarily_unavailable` when
//! the database is unreachable) and nothing of the cause; the log gets the cause,
//! once, with the request id the answer names in `x-request-id`.

use std::time::Duration;

use reqwest::StatusCode;

use crate::helpers::*;

/// How long the log line of a failure may take to reach the test (the server
/// writes its log from a background thread).
const LOG_DEADLINE: Duration = Duration::from_secs(10);

/// Renames `table` under the running server: every statement that names it fails.
async fn break_table(db: &TestDb, table: &str) {
    let sql = format!("ALTER TABLE {table} RENAME TO {table}_gone");
    let done = match db.connect().await {
        DbConn::Sqlite(mut conn) => sqlx::query(&sql).execute(&mut conn).await.map(drop),
        DbConn::Postgres(mut conn) => sqlx::query(&sql).execute(&mut conn).await.map(drop),
    };
    done.unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// Asserts that `reply` is the OAuth error `status`/`code` with no trace of the
/// cause, and that the server logged the cause (holding `cause`) once, at `level`,
/// with the request id of the answer.
async fn assert_failure_logged(
    server: &TestServer<'_>,
    what: &str,
    reply: &Reply,
    (status, code, level): (StatusCode, &str, &str),
    cause: &str,
) {
    let problems = reply.error_problems(status, code, true);
    assert!(problems.is_empty(), "{what}: {}: {reply:?}", problems.join("; "));
    for leak in [cause, "table", "relation", "no such", "sqlx"] {
        assert!(
            !reply.body.contains(leak),
            "{what}: the answer names {leak:?}: {reply:?}"
        );
    }
    let id = reply
        .header("x-request-id")
        .unwrap_or_else(|| panic!("{what}: no x-request-id: {reply:?}"))
        .to_owned();
    let needle = format!("request_id={id} ");
    let line = eventually(
        LOG_DEADLINE,
        &format!("{what}: the failure is logged"),
        || async {
            let log = server.logs();
            let lines: Vec<&str> = log.lines().filter(|l| l.contains(&needle)).collect();
            match lines[..] {
                [line] => Ok(line.to_owned()),
                _ => Err(format!("{} lines with {needle:?} in\n{log}", lines.len())),
            }
        },
    )
    .await;
    for part in [
        level,
        "request failed",
        cause,
        &format!("status={}", status.as_u16()),
    ] {
        assert!(
            line.contains(part),
            "{what}: {part:?} is not in the log line {line:?}"
        );
    }
}

backend_tests! {
    /// The tables the three endpoints read go away under the server (a broken
    /// migration, say): each answers 500 `server_error`, and the log says which
    /// table, with the request id.
    async fn a_broken_database_is_a_500_whose_cause_is_logged(backend) {
        let db = TestDb::new(backend).await;
        let (app, alice) = db.refresh_app().await;
        let server = db.start(&[]).await;
        // The login also puts the client in the server's cache: authenticating it
        // needs no database from here on.
        let refresh_token = json_str(&server.login(&app, &alice).await, "refresh_token");
        break_table(&db, "users").await;
        break_table(&db, "refresh_tokens").await;
        let failed = (StatusCode::INTERNAL_SERVER_ERROR, "server_error", "ERROR");

        let reply = server
            .password_grant(&app, &alice.username, &alice.password, &[])
            .await;
        assert_failure_logged(&server, "token", &reply, failed, "users").await;

        let reply = server.revoke(None, &[("token", &refresh_token)]).await;
        assert_failure_logged(&server, "revoke", &reply, failed, "refresh_tokens").await;

        let reply = server.introspect(Some(&app.basic()), &refresh_token).await;
        assert_failure_logged(&server, "introspect", &reply, failed, "refresh_tokens").await;

        // A short printable id the caller sends is the one logged and answered.
        let reply = Reply::from(
            server
                .http()
                .post(server.url("/oauth/introspect"))
                .basic_auth(&app.id, Some(&app.secret))
                .header("x-request-id", "edge-42")
                .form(&[("token", refresh_token.as_str())])
                .send()
                .await,
        )
        .await;
        assert_eq!(reply.header("x-request-id"), Some("edge-42"), "{reply:?}");
        assert_failure_logged(&server, "introspect with an id", &reply, failed, "refresh_tokens").await;

        let log = server.logs();
        assert!(!log.contains("panicked"), "the server panicked:\n{log}");
        assert_log_holds_none(&log, &[refresh_token, alice.password.clone(), app.secret.clone()]);
    }
}

/// PostgreSQL gone under the server: 503 `temporarily_unavailable` from all three
/// endpoints, each logged as a warning with its cause and request id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_database_is_a_503_whose_cause_is_logged() {
    if Backend::Postgres.skipped() {
        return;
    }
    let db = TestDb::new(Backend::Postgres).await;
    let (app, alice) = db.refresh_app().await;
    let server = db.start(&[]).await;
    let refresh_token = json_str(&server.login(&app, &alice).await, "refresh_token");
    db.drop_database_now().await;
    let unavailable = (StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable", "WARN");

    let reply = server
        .password_grant(&app, &alice.username, &alice.password, &[])
        .await;
    assert_failure_logged(&server, "token", &reply, unavailable, "database unavailable").await;

    let reply = server.revoke(None, &[("token", &refresh_token)]).await;
    assert_failure_logged(&server, "revoke", &reply, unavailable, "database unavailable").await;

    let reply = server.introspect(Some(&app.basic()), &refresh_token).await;
    assert_failure_logged(&server, "introspect", &reply, unavailable, "database unavailable").await;
}
