//! Structured JSON logs with an audit event for every token
//! issued, refused, refreshed and revoked (client id, grant, outcome,
//! address), and, after a full workload (every grant, failures, revocations,
//! introspection, a query-string route), no secret, password, token or token
//! signature anywhere in the log.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;

/// The audit events of a JSON log: every line parsed, those of target
/// `gatehouse::audit` kept.
fn audit_events(log: &str) -> Vec<Value> {
    log.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            serde_json::from_str::<Value>(line)
                .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"))
        })
        .filter(|event| event["target"] == "gatehouse::audit")
        .collect()
}

fn find<'a>(events: &'a [Value], event: &str, pairs: &[(&str, &str)]) -> &'a Value {
    events
        .iter()
        .find(|e| e["event"] == event && pairs.iter().all(|(k, v)| e[*k] == *v))
        .unwrap_or_else(|| panic!("no {event} event with {pairs:?} among {events:#?}"))
}

backend_tests! {
    async fn a_full_workload_leaves_audit_events_and_no_secret(backend) {
        let db = TestDb::new(backend).await;
        let (app, user) = db.refresh_app().await;
        let machine = db.create_client("machine", &["--scope", "read"]).await;
        let opaque = db.create_client("opaque", &["--token-format", "opaque"]).await;
        let resource_server = db.create_client("api", &["--can-introspect"]).await;
        let routes = db.dir().join("routes.toml");
        std::fs::write(
            &routes,
            "[[routes]]\npath = \"/api/v3/login\"\nendpoint = \"token\"\nmethods = [\"GET\"]\nrefresh_on_client_credentials = true\n",
        )
        .expect("write routes");
        let server = db
            .start(&["--log-format", "json", "--config", routes.to_str().expect("UTF-8")])
            .await;
        let mut secrets = vec![
            app.secret.clone(),
            machine.secret.clone(),
            opaque.secret.clone(),
            resource_server.secret.clone(),
            user.password.clone(),
            "wrong-password-123".to_string(),
            "not-the-secret-at-all".to_string(),
        ];

        // Every grant.
        let access = server.access_token(&machine).await;
        let opaque_access = server.access_token(&opaque).await;
        let login = server.login(&app, &user).await;
        let refreshed = server.refresh(&app, &json_str(&login, "refresh_token")).await;
        secrets.extend([access.clone(), opaque_access.clone()]);
        secrets.extend(["access_token", "refresh_token"].map(|k| json_str(&login, k)));
        secrets.extend(["access_token", "refresh_token"].map(|k| json_str(&refreshed, k)));

        // Failures: a wrong secret, a wrong password, a reused refresh token.
        server
            .client_credentials(&TestClient { secret: "not-the-secret-at-all".into(), ..machine.clone() }, &[])
            .await
            .assert_basic_challenge();
        server
            .password_grant(&app, &user.username, "wrong-password-123", &[])
            .await
            .assert_token_error(StatusCode::BAD_REQUEST, "invalid_grant");
        server
            .refresh_grant(&app, &json_str(&login, "refresh_token"), &[])
            .await
            .assert_token_error(StatusCode::BAD_REQUEST, "invalid_grant");

        // A query-string route, all credentials in the URL.
        let reply = server
            .get(&format!(
                "/api/v3/login?{}",
                form_body(&[("client_id", app.id.as_str()), ("client_secret", app.secret.as_str()), ("grant_type", "password"), ("username", user.username.as_str()), ("password", user.password.as_str())])
            ))
            .await;
        secrets.extend([reply.access_token(), reply.refresh_token()]);

        // Introspection and revocation.
        assert!(server.is_active(&resource_server, &access).await);
        assert!(server.is_active(&resource_server, &opaque_access).await);
        server.revoke(Some(&machine.basic()), &[("token", access.as_str())]).await.assert_status(StatusCode::OK);
        server.revoke(None, &[("token", opaque_access.as_str())]).await.assert_status(StatusCode::OK);

        let log = server.stop_with("TERM").await.logs;
        assert_log_holds_none(&log, &secrets);
        for secret in &secrets {
            // Basic credentials as sent on the wire.
            assert!(!log.contains(basic_authorization("x", secret).trim_start_matches("Basic ")), "Basic credentials in the log");
        }

        let events = audit_events(&log);
        let issued = find(&events, "token_issued", &[("client_id", &machine.id), ("grant", "client_credentials")]);
        assert_eq!(issued["address"], "127.0.0.1", "{issued}");
        assert_eq!(issued["scope"], "read", "{issued}");
        find(&events, "token_issued", &[("client_id", &app.id), ("grant", "password")]);
        find(&events, "token_refreshed", &[("client_id", &app.id), ("grant", "refresh_token")]);
        find(&events, "token_refused", &[("client_id", &machine.id), ("error", "invalid_client")]);
        find(&events, "token_refused", &[("client_id", &app.id), ("grant", "password"), ("error", "invalid_grant")]);
        find(&events, "token_refused", &[("client_id", &app.id), ("grant", "refresh_token"), ("error", "invalid_grant")]);
        let revoked = find(&events, "token_revoked", &[("client_id", &machine.id)]);
        assert_eq!(revoked["address"], "127.0.0.1", "{revoked}");
        assert_eq!(revoked["found"], true, "{revoked}");
        find(&events, "token_revoked", &[("client_id", "")]);
        for event in &events {
            assert!(event["timestamp"].is_string() && event["level"].is_string(), "{event}");
            assert!(event["address"].is_string(), "every audit event names the address: {event}");
        }
        // The query-string warning is structured too, and names parameters only.
        let warning = log
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|e| e["level"] == "WARN" && e["route"] == "/api/v3/login")
            .unwrap_or_else(|| panic!("no query-string warning in {log}"));
        assert_eq!(warning["parameters"], "grant_type,client_id,client_secret,username,password", "{warning}");
    }
}
