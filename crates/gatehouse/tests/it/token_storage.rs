//! Passwords, refresh tokens and opaque access tokens are kept only as
//! digests (Argon2id for passwords): not in the database file, not in the
//! log (`docs/protocol.md`, Tokens).

use reqwest::StatusCode;

use crate::helpers::*;

const PASSWORD: &str = "Pa55word-that-must-stay-secret";
const WRONG_PASSWORD: &str = "Wrong-pa55word-also-secret";

/// What a user and two clients leave behind after a busy minute: every
/// secret, password and opaque token that must not be stored or logged.
struct Traces {
    names: Vec<String>,
    secrets: Vec<String>,
}

async fn busy_minute(server: &TestServer<'_>) -> Traces {
    let db = server.db();
    let jwt = db
        .create_client(
            "jwt-app",
            &[
                "--scope",
                "read",
                "--grant-types",
                "client_credentials,password,refresh_token",
            ],
        )
        .await;
    let opaque = db
        .create_client(
            "opaque-app",
            &[
                "--scope",
                "read",
                "--token-format",
                "opaque",
                "--grant-types",
                "client_credentials,password,refresh_token",
            ],
        )
        .await;
    let user = db.create_user("alice-in-the-file", PASSWORD, Some("read")).await;
    let mut secrets = vec![PASSWORD.to_string(), WRONG_PASSWORD.to_string()];

    for client in [&jwt, &opaque] {
        let mut refresh = eventually(PROPAGATION_DEADLINE, "alice logs in", || async {
            let reply = server.password_grant(client, &user.username, PASSWORD, &[]).await;
            match reply.status {
                StatusCode::OK => Ok(reply.refresh_token()),
                other => Err(format!("{other} {}", reply.body)),
            }
        })
        .await;
        secrets.push(refresh.clone());
        for _ in 0..3 {
            let reply = server.refresh_grant(client, &refresh, &[]).await;
            refresh = reply.refresh_token();
            secrets.extend([refresh.clone(), reply.access_token()]);
        }
        let opaque_or_jwt = server.access_token(client).await;
        server.introspection(client, &opaque_or_jwt).await;
        server.introspection(client, &refresh).await;
        secrets.push(opaque_or_jwt);
        let refused = server
            .password_grant(client, &user.username, WRONG_PASSWORD, &[])
            .await;
        refused.assert_token_error(StatusCode::BAD_REQUEST, "invalid_grant");
        assert!(!refused.body.contains(WRONG_PASSWORD), "{refused:?}");
    }
    // A revoked family and a revoked opaque token leave no clear text either.
    let reply = server
        .password_grant(&opaque, &user.username, PASSWORD, &[])
        .await;
    let (access, refresh) = (reply.access_token(), reply.refresh_token());
    server
        .revoke(Some(&opaque.basic()), &[("token", &refresh)])
        .await
        .assert_status(StatusCode::OK);
    secrets.extend([access, refresh]);

    Traces {
        names: vec![jwt.id.clone(), opaque.id.clone(), user.username.clone()],
        secrets,
    }
}

backend_tests! {
    /// The server's log holds no password and no token.
    async fn log_holds_no_password_and_no_token(backend) {
        let db = TestDb::new(backend).await;
        let server = db.start(&[]).await;
        let traces = busy_minute(&server).await;

        let log = server.stop_with("TERM").await.logs;
        assert_log_holds_none(&log, &traces.secrets);
    }
}

/// The SQLite file (and its WAL) holds the clients and the user, an Argon2id
/// hash, and neither a password nor any refresh or opaque access token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_file_holds_no_password_and_no_opaque_token() {
    let db = TestDb::new(Backend::Sqlite).await;
    let server = db.start(&[]).await;
    let traces = busy_minute(&server).await;

    let bytes = db.sqlite_bytes();
    for id in &traces.names {
        assert!(bytes_contain(&bytes, id), "{id} is not in the database file");
    }
    assert!(
        bytes_contain(&bytes, "$argon2id$"),
        "no Argon2id hash (PHC string) in the database file"
    );
    for secret in traces.secrets.iter().filter(|s| !s.contains('.')) {
        assert!(
            !bytes_contain(&bytes, secret_part(secret)),
            "{secret:?} is in the database file"
        );
    }
    // Again once the server has stopped and checkpointed.
    server.stop_with("TERM").await;
    let bytes = db.sqlite_bytes();
    for secret in traces.secrets.iter().filter(|s| !s.contains('.')) {
        assert!(
            !bytes_contain(&bytes, secret_part(secret)),
            "{secret:?} is in the database file after shutdown"
        );
    }
}
