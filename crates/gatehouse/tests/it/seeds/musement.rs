//! Seed 003, the Musement API: all three grants over `GET /api/v3/login` with
//! every parameter in the query string, the same five fields in every answer,
//! and a refresh that replaces the refresh token each time.

use reqwest::StatusCode;
use serde_json::Value;

use super::*;

const PATH: &str = "/api/v3/login";

/// `GET /api/v3/login?…` with `pairs` in the query, in the seed's order.
async fn login(server: &TestServer<'_>, pairs: &[(&str, &str)]) -> Reply {
    server.get(&format!("{PATH}?{}", query(pairs))).await
}

/// The seed's answer: the documented token, with `scope` and a `refresh_token`.
async fn assert_login_answer(server: &TestServer<'_>, reply: &Reply) -> (Value, String) {
    let body = assert_documented_token(server, reply).await;
    assert!(body["scope"].is_string(), "scope: {body}");
    (body, reply.refresh_token())
}

backend_tests! {
    /// Lines 9-69 of the seed, in order, and the log after.
    async fn every_documented_request(backend) {
        let db = TestDb::new(backend).await;
        let client = db
            .create_client(
                "partner",
                &["--scope", "read orders", "--grant-types", "client_credentials,password,refresh_token"],
            )
            .await;
        let user = db.create_user("customer@example.com", PASSWORD, Some("read")).await;
        let server = start_example(&db, "musement").await;
        let mut secrets = vec![client.secret.clone(), user.password.clone()];
        let (id, secret) = (client.id.as_str(), client.secret.as_str());

        // Lines 15-17: client credentials.
        let reply = login(&server, &[("client_id", id), ("client_secret", secret), ("grant_type", "client_credentials")]).await;
        let (body, machine_refresh) = assert_login_answer(&server, &reply).await;
        assert_eq!(scope_set(&json_str(&body, "scope")), ["orders", "read"]);
        let claims = crate::jose::decode(&json_str(&body, "access_token")).claims;
        assert_eq!(claims["sub"], id, "not connected to a customer: {claims}");
        secrets.extend([json_str(&body, "access_token"), machine_refresh.clone()]);

        // Lines 51-57: the token in the Authorization header of every API call.
        assert_api_accepts(&server, "/api/v3/cities", &json_str(&body, "access_token")).await;

        // Lines 29-31: a customer's password.
        let reply = login(&server, &[
                    ("client_id", id),
                    ("client_secret", secret),
                    ("grant_type", "password"),
                    ("username", &user.username),
                    ("password", &user.password),
                ]).await;
        let (body, mut refresh_token) = assert_login_answer(&server, &reply).await;
        assert_eq!(body["scope"], "read");
        let claims = crate::jose::decode(&json_str(&body, "access_token")).claims;
        assert_eq!(claims["sub"], user.id.as_str(), "{claims}");
        assert_eq!(claims["username"], user.username.as_str(), "{claims}");
        secrets.extend([json_str(&body, "access_token"), refresh_token.clone()]);

        // Lines 63-69: each refresh answers a new access_token and a new
        // refresh_token, which replaces the old one.
        let mut spent = Vec::new();
        for _ in 0..3 {
            let reply = login(&server, &[
                        ("client_id", id),
                        ("client_secret", secret),
                        ("refresh_token", &refresh_token),
                        ("grant_type", "refresh_token"),
                    ]).await;
            let (body, next) = assert_login_answer(&server, &reply).await;
            assert_eq!(body["scope"], "read");
            assert_ne!(next, refresh_token);
            secrets.extend([json_str(&body, "access_token"), next.clone()]);
            spent.push(std::mem::replace(&mut refresh_token, next));
        }
        let mut db_conn = db.connect().await;
        assert_eq!(
            db_conn.scalar("SELECT COUNT(*) FROM refresh_tokens WHERE used_at IS NOT NULL", None).await,
            3,
            "each refresh consumed the token it spent"
        );
        // The machine's refresh token refreshes too, for the client itself.
        let reply = login(&server, &[
                    ("client_id", id),
                    ("client_secret", secret),
                    ("refresh_token", &machine_refresh),
                    ("grant_type", "refresh_token"),
                ]).await;
        let (body, next) = assert_login_answer(&server, &reply).await;
        assert_eq!(crate::jose::decode(&json_str(&body, "access_token")).claims["sub"], id);
        secrets.extend([json_str(&body, "access_token"), next]);

        // A replaced refresh token is refused, and ends the login (RFC 9700
        // section 4.14.2): the newest one stops working too.
        for token in [&spent[0], &refresh_token] {
            let pairs = [
                ("client_id", id),
                ("client_secret", secret),
                ("refresh_token", token.as_str()),
                ("grant_type", "refresh_token"),
            ];
            login(&server, &pairs)
                .await
                .assert_token_error(StatusCode::BAD_REQUEST, "invalid_grant");
        }

        // Errors are OAuth errors on the route too.
        let reply = login(&server, &[("client_id", id), ("client_secret", "WRONG"), ("grant_type", "client_credentials")]).await;
        reply.assert_token_error(StatusCode::UNAUTHORIZED, "invalid_client");
        secrets.push("WRONG-PASSWORD".into());
        let reply = login(&server, &[
                    ("client_id", id),
                    ("client_secret", secret),
                    ("grant_type", "password"),
                    ("username", &user.username),
                    ("password", "WRONG-PASSWORD"),
                ]).await;
        reply.assert_token_error(StatusCode::BAD_REQUEST, "invalid_grant");

        // Every query-string request was logged as a warning naming the route
        // and the parameter names; no value of any of them is in the log.
        let log = server.stop_with("TERM").await.logs;
        let warnings: Vec<&str> = log
            .lines()
            .filter(|line| line.contains("WARN") && line.contains("query string"))
            .collect();
        assert_eq!(warnings.len(), 10, "one warning per request:\n{log}");
        assert!(
            warnings.iter().all(|w| w.contains("route=/api/v3/login")),
            "{warnings:#?}"
        );
        assert!(
            warnings
                .iter()
                .any(|w| w.contains("parameters=grant_type,client_id,client_secret,username,password")),
            "{warnings:#?}"
        );
        assert_log_holds_none(&log, &secrets);
    }
}
