//! A user created without `--scope` is
//! limited by the client alone (`--scope` is optional); a scope refusal names what
//! limited it, the user or the client; an empty granted scope is never echoed
//! as `"scope": ""`.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;

/// A 400 `invalid_scope` whose description is `description`.
fn assert_scope_refused(reply: &Reply, description: &str) {
    reply.assert_token_error(StatusCode::BAD_REQUEST, "invalid_scope");
    assert_eq!(reply.json()["error_description"], description, "{reply:?}");
}

/// No `scope` member in a JSON body, and nowhere the text `"scope":""`.
fn assert_no_empty_scope(reply: &Reply) {
    assert!(reply.json().get("scope").is_none(), "{reply:?}");
    assert!(
        !reply.body.replace(' ', "").contains(r#""scope":"""#),
        "{reply:?}"
    );
}

backend_tests! {
    /// A user created without `--scope` is shown with scope null, stored as
    /// users created that way always were (so they are unrestricted now too),
    /// and logs in with all of the client's scope, or any part of it.
    async fn a_user_without_a_scope_gets_the_clients(backend) {
        let db = TestDb::new(backend).await;
        let app = db
            .create_client("app", &["--scope", "read write", "--grant-types", "password,refresh_token"])
            .await;
        let bob = db.create_user("bob", PASSWORD, None).await;
        assert_eq!(bob.created["scope"], Value::Null, "{}", bob.created);
        let listed = db.cli_json(&["user", "list"]).await;
        assert_eq!(listed["users"][0], bob.created, "{listed}");
        let mut conn = db.connect().await;
        assert_eq!(conn.scalar("SELECT COUNT(*) FROM users WHERE scope = ''", None).await, 1);

        let server = db.start(&[]).await;
        let login = server.login(&app, &bob).await;
        assert_eq!(scope_set(&json_str(&login, "scope")), ["read", "write"], "{login}");
        let reply = server.password_grant(&app, "bob", PASSWORD, &[("scope", "read")]).await;
        reply.access_token();
        assert_eq!(reply.json()["scope"], "read", "{reply:?}");
        let refreshed = server.refresh(&app, &reply.refresh_token()).await;
        assert_eq!(refreshed["scope"], "read", "{refreshed}");
        let full = server.refresh(&app, &json_str(&login, "refresh_token")).await;
        assert_eq!(scope_set(&json_str(&full, "scope")), ["read", "write"], "{full}");

        // Beyond the client: the client is named.
        let reply = server.password_grant(&app, "bob", PASSWORD, &[("scope", "read admin")]).await;
        assert_scope_refused(&reply, "The requested scope exceeds what this client may have: admin.");
    }

    /// A refusal says whose scope was exceeded: the user's, the client's, or both.
    async fn a_scope_refusal_names_the_user_or_the_client(backend) {
        let db = TestDb::new(backend).await;
        let app = db
            .create_client("app", &["--scope", "read write", "--grant-types", "password,refresh_token"])
            .await;
        db.create_user("carol", PASSWORD, Some("read orders")).await;
        let server = db.start(&[]).await;

        let login = server.password_grant(&app, "carol", PASSWORD, &[]).await;
        login.access_token();
        assert_eq!(login.json()["scope"], "read", "the scope both allow: {login:?}");
        let reply = server.password_grant(&app, "carol", PASSWORD, &[("scope", "read write")]).await;
        assert_scope_refused(&reply, "The requested scope exceeds what this user may have: write.");
        let reply = server.password_grant(&app, "carol", PASSWORD, &[("scope", "orders")]).await;
        assert_scope_refused(&reply, "The requested scope exceeds what this client may have: orders.");
        let reply = server.password_grant(&app, "carol", PASSWORD, &[("scope", "admin")]).await;
        assert_scope_refused(
            &reply,
            "The requested scope exceeds what this client and this user may have: admin.",
        );
        // client_credentials has no user to name.
        let machine = db.create_client("machine", &["--scope", "read"]).await;
        let reply = server.client_credentials(&machine, &[("scope", "read write")]).await;
        assert_scope_refused(&reply, "The requested scope exceeds what this client may have: write.");
        // A refresh may not go beyond its login.
        let narrow = server.password_grant(&app, "carol", PASSWORD, &[]).await.refresh_token();
        let reply = server.refresh_grant(&app, &narrow, &[("scope", "read write")]).await;
        assert_scope_refused(&reply, "The requested scope exceeds the scope originally granted: write.");
    }

    /// An empty grant (a client with no scope) leaves `scope` out of the token
    /// response (optional in RFC 6749 section 5.1) and of introspection.
    async fn an_empty_granted_scope_is_never_echoed(backend) {
        let db = TestDb::new(backend).await;
        let bare = db
            .create_client("bare", &["--grant-types", "client_credentials,password,refresh_token"])
            .await;
        let user = db.create_user("bob", PASSWORD, None).await;
        let resource_server = db.create_client("api", &["--can-introspect"]).await;
        let server = db.start(&[]).await;

        let reply = server.client_credentials(&bare, &[]).await;
        let machine_token = reply.access_token();
        assert_no_empty_scope(&reply);
        let reply = server.password_grant(&bare, &user.username, PASSWORD, &[]).await;
        let user_token = reply.access_token();
        assert_no_empty_scope(&reply);
        let reply = server.refresh_grant(&bare, &reply.refresh_token(), &[]).await;
        reply.access_token();
        assert_no_empty_scope(&reply);
        for token in [&machine_token, &user_token] {
            let reply = server.introspect(Some(&resource_server.basic()), token).await;
            reply.assert_status(StatusCode::OK);
            assert_eq!(reply.json()["active"], true, "{reply:?}");
            assert_no_empty_scope(&reply);
        }
        // An explicit empty --scope is refused rather than read as "unrestricted".
        let out = db
            .cli_with_stdin(
                &["user", "create", "--username", "eve", "--password-stdin", "--scope", " ", "--json"],
                Some(&format!("{PASSWORD}\n")),
            )
            .await;
        assert_eq!(out.code(), Some(2), "{out:#?}");
        assert!(out.stderr.contains("--scope: name at least one scope, or leave the scope out"), "{out:#?}");
    }
}
