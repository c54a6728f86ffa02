//! Clients created with `--token-format opaque` get random `gho_` access
//! tokens, which only introspection can check (`docs/protocol.md`, Tokens).

use std::collections::HashSet;

use reqwest::StatusCode;

use crate::helpers::*;

const ISSUER: &str = "http://test.local";

backend_tests! {
    /// client_credentials for an opaque client: a `gho_` token of 256 bits,
    /// new each time, which introspection describes.
    async fn opaque_client_credentials_tokens(backend) {
        let db = TestDb::new(backend).await;
        let client = db
            .create_client(
                "opaque",
                &[
                    "--scope",
                    "read write",
                    "--token-format",
                    "opaque",
                    "--audience",
                    "https://api.example",
                ],
            )
            .await;
        let server = db.start(&["--issuer", ISSUER]).await;

        let reply = server.client_credentials(&client, &[("scope", "read")]).await;
        let token = reply.access_token();
        assert_token_form(&token, "gho_");
        let body = reply.json();
        assert_eq!(body["token_type"], "Bearer", "{body}");
        assert_eq!(body["expires_in"], 3600, "{body}");
        assert_eq!(body["scope"], "read", "{body}");
        assert!(body.get("refresh_token").is_none(), "{body}");

        let before = unix_now();
        let body = server.introspection(&client, &token).await;
        assert_eq!(body["active"], true, "{body}");
        assert_eq!(body["token_type"], "Bearer", "{body}");
        assert_eq!(body["client_id"], client.id.as_str(), "{body}");
        assert_eq!(body["sub"], client.id.as_str(), "{body}");
        assert_eq!(body["scope"], "read", "{body}");
        assert_eq!(body["iss"], ISSUER, "{body}");
        assert_eq!(crate::jose::audiences(&body), ["https://api.example"], "{body}");
        assert!(body["jti"].as_str().is_some_and(|j| !j.is_empty()), "{body}");
        assert!(body.get("username").is_none(), "{body}");
        let iat = body["iat"].as_i64().unwrap_or_else(|| panic!("no iat: {body}"));
        let exp = body["exp"].as_i64().unwrap_or_else(|| panic!("no exp: {body}"));
        assert!(
            (before - 60..=unix_now() + 5).contains(&iat),
            "iat is not now: {body}"
        );
        assert_eq!(exp - iat, 3600, "{body}");

        let mut seen = HashSet::from([token]);
        for _ in 0..10 {
            let token = server.access_token(&client).await;
            assert_token_form(&token, "gho_");
            assert!(seen.insert(token), "an opaque token repeats");
        }
    }

    /// Users of an opaque client get opaque access tokens from the password
    /// and refresh_token grants, introspected with their username.
    async fn opaque_tokens_for_users(backend) {
        let db = TestDb::new(backend).await;
        let client = db
            .create_client(
                "opaque",
                &[
                    "--scope",
                    "read",
                    "--token-format",
                    "opaque",
                    "--grant-types",
                    "password,refresh_token",
                ],
            )
            .await;
        let user = db.create_user("alice", PASSWORD, Some("read")).await;
        let server = db.start(&[]).await;

        let reply = server.password_grant(&client, "alice", PASSWORD, &[]).await;
        let refresh = reply.refresh_token();
        let access = reply.access_token();
        let reply = server.refresh_grant(&client, &refresh, &[]).await;
        reply.refresh_token();
        let refreshed = reply.access_token();
        for token in [&access, &refreshed] {
            assert_token_form(token, "gho_");
            let body = server.introspection(&client, token).await;
            assert_eq!(body["active"], true, "{body}");
            assert_eq!(body["username"], "alice", "{body}");
            assert_eq!(body["sub"], user.id.as_str(), "{body}");
            assert_eq!(body["client_id"], client.id.as_str(), "{body}");
            assert_eq!(body["token_type"], "Bearer", "{body}");
        }
        assert_ne!(access, refreshed);
    }

    /// An opaque token is inactive after its client's `--token-ttl`.
    async fn opaque_token_expires(backend) {
        let db = TestDb::new(backend).await;
        let client = db
            .create_client("opaque", &["--token-format", "opaque", "--token-ttl", "2"])
            .await;
        let clock = stopped_clock();
        let server = db.start_on(&clock, &[]).await;

        let reply = server.client_credentials(&client, &[]).await;
        assert_eq!(reply.json()["expires_in"], 2, "{reply:?}");
        let token = reply.access_token();
        assert!(server.is_active(&client, &token).await, "a fresh opaque token");
        clock.advance(1);
        assert!(server.is_active(&client, &token).await, "an opaque token a second before its exp");
        clock.advance(1);
        assert!(!server.is_active(&client, &token).await, "an opaque token at its exp");
        // A token that never was is no different.
        let reply = server
            .introspect(Some(&client.basic()), &random_token("gho_"))
            .await;
        reply.assert_status(StatusCode::OK);
        assert_eq!(reply.json(), serde_json::json!({"active": false}));
    }
}
