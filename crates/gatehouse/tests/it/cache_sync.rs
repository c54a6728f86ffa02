//! Admin commands take effect on running servers within
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

    /// `rotate-secret --grace`: both secrets work until the grace period ends,
    /// then only the new one; `show` reports the end of the grace period; a
    /// rotation without `--grace` ends it at once. The server runs on a clock the
    /// test moves to the end of the grace period.
    async fn rotation_with_grace_keeps_the_old_secret_for_a_while(backend) {
        let db = TestDb::new(backend).await;
        let client = db.create_client("fleet", &[]).await;
        let imported = db.import_client("imported", "an-imported-secret-0123", &[]).await;
        let clock = stopped_clock();
        let server = db.start_on(&clock, &[]).await;
        server.access_token(&client).await;
        server.access_token(&imported).await;

        let grace = 3;
        let rotated = server
            .cli_json(&["client", "rotate-secret", &client.id, "--grace", &grace.to_string()])
            .await;
        let renewed = TestClient {
            secret: json_str(&rotated, "client_secret"),
            ..client.clone()
        };
        let expires_at = rotated["previous_secret_expires_at"].as_i64().expect("previous_secret_expires_at");
        assert!((expires_at - unix_now() - grace).abs() <= 1, "{rotated}");
        let shown = db.cli_json(&["client", "show", &client.id]).await;
        assert_eq!(shown["previous_secret_expires_at"], expires_at, "{shown}");
        assert!(!shown.to_string().contains(&client.secret), "show prints a secret: {shown}");
        let mut conn = db.connect().await;
        assert_eq!(
            conn.scalar("SELECT COUNT(*) FROM clients WHERE previous_secret_hash IS NOT NULL", None).await,
            1
        );

        // Both work inside the grace period (the new one once the change arrives),
        // to its last second.
        until_token(&server, &renewed, "the new secret works").await;
        server.access_token(&client).await;
        clock.set(expires_at - 1);
        server.access_token(&client).await;
        // Then the old one is refused, not before the grace period is over.
        clock.set(expires_at);
        server
            .client_credentials(&client, &[])
            .await
            .assert_token_error(StatusCode::UNAUTHORIZED, "invalid_client");
        server.access_token(&renewed).await;

        // An imported (Argon2id) secret rolls over the same way, and a second
        // rotation without --grace ends the first one's grace period at once.
        let rotated = server
            .cli_json(&["client", "rotate-secret", &imported.id, "--grace", "600"])
            .await;
        let second = TestClient {
            secret: json_str(&rotated, "client_secret"),
            ..imported.clone()
        };
        until_token(&server, &second, "the imported client's new secret works").await;
        server.access_token(&imported).await;
        let rotated = server.cli_json(&["client", "rotate-secret", &imported.id]).await;
        assert!(rotated["previous_secret_expires_at"].is_null(), "{rotated}");
        until_refused(&server, &imported.basic(), "the first secret stops at once").await;
        until_refused(&server, &second.basic(), "the second one too").await;

        let out = db.cli(&["client", "rotate-secret", &client.id, "--grace", "-5"]).await;
        assert_eq!(out.code(), Some(2), "{out:#?}");
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
