//! POST /oauth/token with `grant_type=client_credentials` (RFC 6749 section
//! 4.4): both body formats, both client authentication methods, scope and
//! lifetime.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;
use crate::jose;

/// Checks a successful client_credentials response (RFC 6749 section 5.1)
/// and returns its body.
fn assert_token_response(reply: &Reply, expires_in: u64, scope: &str) -> Value {
    reply.access_token();
    let body = reply.json();
    assert_eq!(body["token_type"], "Bearer", "{body}");
    assert_eq!(body["expires_in"], expires_in, "{body}");
    assert_eq!(
        scope_set(
            body["scope"]
                .as_str()
                .unwrap_or_else(|| panic!("no scope: {body}"))
        ),
        scope_set(scope),
        "{body}"
    );
    assert!(
        body.get("refresh_token").is_none(),
        "client_credentials must not issue a refresh token (RFC 6749 section 4.4.3): {body}"
    );
    body
}

backend_tests! {
    /// Form body, client_secret_basic, no scope: the client's full set, 3600 s.
    async fn form_body_with_basic_auth_grants_the_full_scope(backend) {
        let db = TestDb::new(backend).await;
        let client = db.create_client("svc", &["--scope", "read write"]).await;
        let server = db.start(&[]).await;

        let reply = server
            .token_form(&client.basic(), &[("grant_type", "client_credentials")])
            .await;
        assert_token_response(&reply, 3600, "read write");
    }

    /// Form body, client_secret_post, a scope subset: only the subset is granted.
    async fn form_body_with_post_auth_grants_the_requested_subset(backend) {
        let db = TestDb::new(backend).await;
        let client = db.create_client("svc", &["--scope", "read write admin"]).await;
        let server = db.start(&[]).await;

        let reply = server
            .token_form(
                &client.post(),
                &[("grant_type", "client_credentials"), ("scope", "write read")],
            )
            .await;
        assert_token_response(&reply, 3600, "read write");
        let claims = jose::decode(&reply.access_token()).claims;
        assert_eq!(scope_set(claims["scope"].as_str().unwrap()), ["read", "write"]);
    }

    /// A JSON object body works like a form, with either authentication.
    async fn json_body_with_post_and_basic_auth(backend) {
        let db = TestDb::new(backend).await;
        let client = db.create_client("svc", &["--scope", "read write"]).await;
        let server = db.start(&[]).await;

        let reply = server
            .token_json(
                &client.post(),
                &[("grant_type", "client_credentials"), ("scope", "read")],
            )
            .await;
        assert_token_response(&reply, 3600, "read");

        let reply = server
            .token_json(&client.basic(), &[("grant_type", "client_credentials")])
            .await;
        assert_token_response(&reply, 3600, "read write");
    }

    /// RFC 6749 section 2.3.1: Basic carries the form-encoded id and secret, so
    /// an id with `:`, space and `%` and a secret with `+`, `:` and `%` work.
    async fn basic_auth_form_decodes_id_and_secret(backend) {
        let db = TestDb::new(backend).await;
        let secret = "imp+orted:secret%with space";
        let client = db
            .import_client("odd", secret, &["--client-id", "svc:a b%", "--scope", "read"])
            .await;
        assert_eq!(client.id, "svc:a b%");
        let server = db.start(&[]).await;

        let reply = server
            .token_form(&client.basic(), &[("grant_type", "client_credentials")])
            .await;
        assert_token_response(&reply, 3600, "read");
        let claims = jose::decode(&reply.access_token()).claims;
        assert_eq!(claims["client_id"], "svc:a b%");
        assert_eq!(claims["sub"], "svc:a b%");

        let reply = server
            .token_form(&client.post(), &[("grant_type", "client_credentials")])
            .await;
        assert_token_response(&reply, 3600, "read");
    }

    /// Media types with parameters (`; charset=UTF-8`, as many HTTP libraries
    /// send them) are the same media types.
    async fn content_type_parameters_are_accepted(backend) {
        let db = TestDb::new(backend).await;
        let client = db.create_client("svc", &["--scope", "read"]).await;
        let server = db.start(&[]).await;
        let basic = basic_authorization(&client.id, &client.secret);

        for (content_type, body) in [
            (
                "application/x-www-form-urlencoded; charset=UTF-8",
                "grant_type=client_credentials",
            ),
            (
                "application/json; charset=utf-8",
                r#"{"grant_type":"client_credentials"}"#,
            ),
        ] {
            let reply = server
                .post_raw("/oauth/token", Some(content_type), Some(&basic), body)
                .await;
            assert_token_response(&reply, 3600, "read");
        }
    }

    /// `--token-ttl` of a client sets its `expires_in` and the JWT lifetime.
    async fn per_client_token_ttl(backend) {
        let db = TestDb::new(backend).await;
        let client = db.create_client("short", &["--token-ttl", "120"]).await;
        let server = db.start(&[]).await;

        let reply = server.client_credentials(&client, &[]).await;
        assert_eq!(reply.json()["expires_in"], 120, "{reply:?}");
        let claims = jose::decode(&reply.access_token()).claims;
        assert_eq!(
            claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
            120
        );
    }

    /// `--access-token-ttl` sets the default; a client's own TTL still wins.
    async fn global_access_token_ttl_and_client_override(backend) {
        let db = TestDb::new(backend).await;
        let plain = db.create_client("plain", &[]).await;
        let own = db.create_client("own", &["--token-ttl", "60"]).await;
        let server = db.start(&["--access-token-ttl", "900"]).await;

        let reply = server.client_credentials(&plain, &[]).await;
        assert_eq!(reply.json()["expires_in"], 900, "{reply:?}");
        let reply = server.client_credentials(&own, &[]).await;
        assert_eq!(reply.json()["expires_in"], 60, "{reply:?}");
    }

    /// Fifty requests at once all get tokens, each its own.
    async fn fifty_concurrent_requests_all_succeed(backend) {
        let db = TestDb::new(backend).await;
        let client = db.create_client("busy", &["--scope", "read"]).await;
        let server = db.start(&[]).await;

        let replies =
            futures::future::join_all((0..50).map(|_| server.client_credentials(&client, &[]))).await;
        let mut tokens = std::collections::HashSet::new();
        for reply in &replies {
            reply.assert_status(StatusCode::OK);
            tokens.insert(reply.access_token());
        }
        assert_eq!(tokens.len(), 50, "every token is distinct");
    }
}
