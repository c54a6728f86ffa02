//! What a newcomer meets first, beyond the admin commands: a JSON body sent without
//! its content type is answered with the fix, and a PostgreSQL server starts without
//! a notice about its migration table.

use reqwest::StatusCode;

use crate::helpers::*;

/// A JSON body labelled as a form (what `curl -d` does), as text, or not at all is
/// refused at the token, revocation and introspection endpoints with a description
/// that names the header to send; labelled `application/json` it works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_body_without_its_content_type_gets_a_hint() {
    let db = TestDb::new(Backend::Sqlite).await;
    let client = db.create_client("svc", &["--can-introspect"]).await;
    let server = db.start(&[]).await;
    let token = server.access_token(&client).await;
    let authorization = basic_authorization(&client.id, &client.secret);
    let bodies = [
        (
            "/oauth/token",
            r#"{"grant_type": "client_credentials"}"#.to_owned(),
        ),
        ("/oauth/revoke", format!(r#"{{"token": "{token}"}}"#)),
        ("/oauth/introspect", format!(r#"{{"token": "{token}"}}"#)),
    ];
    for (path, body) in &bodies {
        for content_type in [
            Some("application/x-www-form-urlencoded"),
            Some("text/plain"),
            None,
        ] {
            let reply = server
                .post_raw(path, content_type, Some(&authorization), format!("\n  {body}"))
                .await;
            let problems = reply.error_problems(StatusCode::BAD_REQUEST, "invalid_request", true);
            assert!(
                problems.is_empty(),
                "{path} as {content_type:?}: {problems:?} {reply:?}"
            );
            let description = json_str(&reply.json(), "error_description");
            assert!(
                description.contains("Content-Type: application/json"),
                "{path} as {content_type:?}: {description:?}"
            );
        }
    }
    // The token is still active: the refused revocations did nothing.
    assert!(server.is_active(&client, &token).await);
    for (path, body) in &bodies {
        let reply = server
            .post_raw(path, Some("application/json"), Some(&authorization), body.clone())
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{path}: {reply:?}");
    }
}

/// sqlx creates its migration table with `CREATE TABLE IF NOT EXISTS`, which
/// PostgreSQL answers with a NOTICE at every start once the table exists; the
/// server's log holds none of it, while its own lines are there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_start_logs_no_migration_notice() {
    if Backend::Postgres.skipped() {
        return;
    }
    let db = TestDb::new(Backend::Postgres).await;
    db.cli_json(&["migrate"]).await;
    let server = db.start(&[]).await;
    let client = db.create_client("svc", &[]).await;
    server.access_token(&client).await;
    let logs = server.logs();
    assert!(!logs.is_empty(), "the server logged nothing");
    assert!(
        !logs.contains("_sqlx_migrations") && !logs.contains("already exists"),
        "{logs}"
    );
}
