//! CONTRACT section 3: admin commands take effect on running servers within
//! 5 seconds, although the server keeps clients cached in memory.

use reqwest::StatusCode;

use crate::helpers::*;

/// Polls until `client` gets a token (`Ok`) from `server`.
async fn until_token(server: &TestServer<'_>, client: &TestClient, what: &str) -> String {
    eventually(PROPAGATION_DEADLINE, what, || async {
        let reply = server.client_credentials(client, &[]).await;
        if reply.status == StatusCode::OK {
            Ok(reply.access_token())
        } else {
            Err(format!("{} {}", reply.status, reply.body))
        }
    })
    .await
}

/// Polls until `auth` is refused with 401 invalid_client, and checks that reply.
async fn until_refused(server: &TestServer<'_>, auth: &ClientAuth, what: &str) {
    let reply = eventually(PROPAGATION_DEADLINE, what, || async {
        let reply = server
            .token_form(auth, &[("grant_type", "client_credentials")])
            .await;
        if reply.status == StatusCode::UNAUTHORIZED {
            Ok(reply)
        } else {
            Err(format!("{} {}", reply.status, reply.body))
        }
    })
    .await;
    reply.assert_token_error(StatusCode::UNAUTHORIZED, "invalid_client");
}

backend_tests! {
    /// A client created while the server runs can get tokens.
    async fn client_created_after_start_works(backend) {
        let db = TestDb::new(backend).await;
        let server = db.start(&[]).await;

        let client = server.db().create_client("late", &["--scope", "read"]).await;
        until_token(&server, &client, "a client created after start gets a token").await;
    }

    /// A deleted client, cached by earlier use, is refused.
    async fn deleted_client_is_refused(backend) {
        let db = TestDb::new(backend).await;
        let client = db.create_client("doomed", &[]).await;
        let other = db.create_client("other", &[]).await;
        let server = db.start(&[]).await;
        server.access_token(&client).await;
        server.access_token(&other).await;

        server.cli_json(&["client", "delete", &client.id]).await;
        until_refused(&server, &client.basic(), "a deleted client is refused").await;
        until_refused(&server, &client.post(), "a deleted client is refused (body auth)").await;
        // Others are untouched.
        server.access_token(&other).await;
    }

    /// After `rotate-secret` the old secret fails and the new one works.
    async fn rotated_secret_replaces_the_old_one(backend) {
        let db = TestDb::new(backend).await;
        let client = db.create_client("svc", &[]).await;
        let server = db.start(&[]).await;
        server.access_token(&client).await;

        let rotated = server.cli_json(&["client", "rotate-secret", &client.id]).await;
        let renewed = TestClient {
            secret: rotated["client_secret"]
                .as_str()
                .expect("client_secret")
                .to_string(),
            ..client.clone()
        };
        until_refused(&server, &client.basic(), "the old secret is refused").await;
        until_token(&server, &renewed, "the new secret works").await;
        // And the old one stays refused.
        server
            .client_credentials(&client, &[])
            .await
            .assert_basic_challenge();
    }

    /// The same for an imported secret, which a server may remember after a
    /// successful (Argon2) verification: rotation must forget it.
    async fn rotated_imported_secret_is_forgotten(backend) {
        let db = TestDb::new(backend).await;
        let client = db.import_client("imported", "an-imported-secret-0123", &[]).await;
        let server = db.start(&[]).await;
        server.access_token(&client).await;
        server.access_token(&client).await;

        server.cli_json(&["client", "rotate-secret", &client.id]).await;
        until_refused(
            &server,
            &client.basic(),
            "the imported secret is refused after rotation",
        )
        .await;
    }
}
