//! The admin CLI (`docs/protocol.md`, Commands) on a database with no server running:
//! every command's `--json` shape and exit status.

use serde_json::{json, Value};

use crate::helpers::*;

/// The members `client show --json` prints (the `create` object minus the secret).
const CLIENT_MEMBERS: [&str; 10] = [
    "client_id",
    "name",
    "scope",
    "grant_types",
    "audience",
    "token_ttl",
    "refresh_token_ttl",
    "token_format",
    "can_introspect",
    "created_at",
];

/// The `create --json` object without `client_secret`.
fn without_secret(created: &Value) -> Value {
    let mut shown = created.clone();
    shown.as_object_mut().expect("object").remove("client_secret");
    shown
}

fn assert_generated_secret(secret: &str) {
    // 256 bits in unpadded base64url are 43 characters.
    assert!(secret.len() >= 43, "secret {secret:?} is shorter than 256 bits");
    assert!(
        secret
            .chars()
            .all(|c| c.is_ascii_graphic() && c != '"' && c != '\\'),
        "secret {secret:?}"
    );
}

fn assert_missing_client(out: &CliOutput) {
    assert_eq!(out.code(), Some(1), "exit status for a missing client: {out:#?}");
    assert_eq!(out.stderr_lines().len(), 1, "one error line: {out:#?}");
}

backend_tests! {
    /// `client create` with defaults, then with every option.
    async fn client_create_prints_the_documented_object(backend) {
        let db = TestDb::new(backend).await;

        let before = unix_now();
        let plain = db.create_client("plain", &[]).await;
        let created = &plain.created;
        assert!(!plain.id.is_empty(), "{created}");
        assert_generated_secret(&plain.secret);
        assert_eq!(created["name"], "plain", "{created}");
        assert_eq!(created["scope"], "", "{created}");
        assert_eq!(created["grant_types"], json!(["client_credentials"]), "{created}");
        assert_eq!(created["audience"], Value::Null, "{created}");
        assert_eq!(created["token_ttl"], Value::Null, "{created}");
        assert_eq!(created["refresh_token_ttl"], Value::Null, "{created}");
        assert_eq!(created["token_format"], "jwt", "{created}");
        assert_eq!(created["can_introspect"], false, "{created}");
        let created_at = created["created_at"].as_i64().expect("created_at is a number");
        assert!((before - 5..=unix_now() + 5).contains(&created_at), "{created}");

        let full = db
            .create_client(
                "full",
                &[
                    "--client-id",
                    "billing-service",
                    "--scope",
                    "read write",
                    "--grant-types",
                    "client_credentials,refresh_token",
                    "--audience",
                    "https://api.example",
                    "--token-ttl",
                    "120",
                    "--refresh-token-ttl",
                    "7200",
                    "--token-format",
                    "opaque",
                    "--can-introspect",
                ],
            )
            .await;
        let created = &full.created;
        assert_eq!(full.id, "billing-service");
        assert_generated_secret(&full.secret);
        assert_eq!(created["name"], "full", "{created}");
        assert_eq!(
            scope_set(created["scope"].as_str().expect("scope")),
            ["read", "write"]
        );
        let mut grants: Vec<&str> = created["grant_types"]
            .as_array()
            .expect("grant_types")
            .iter()
            .map(|g| g.as_str().expect("string"))
            .collect();
        grants.sort_unstable();
        assert_eq!(grants, ["client_credentials", "refresh_token"], "{created}");
        assert_eq!(created["audience"], "https://api.example", "{created}");
        assert_eq!(created["token_ttl"], 120, "{created}");
        assert_eq!(created["refresh_token_ttl"], 7200, "{created}");
        assert_eq!(created["token_format"], "opaque", "{created}");
        assert_eq!(created["can_introspect"], true, "{created}");

        assert_ne!(plain.secret, full.secret);
        assert_ne!(plain.id, full.id);
    }

    /// `list`, `show`, `rotate-secret` and `delete` round trip; the secret is
    /// printed only by `create` and `rotate-secret`.
    async fn client_list_show_rotate_delete(backend) {
        let db = TestDb::new(backend).await;
        let a = db.create_client("a", &["--scope", "read"]).await;
        let b = db
            .create_client("b", &["--client-id", "b-id", "--token-ttl", "60"])
            .await;

        let shown = db.cli_json(&["client", "show", &a.id]).await;
        assert_eq!(shown, without_secret(&a.created));
        let members: Vec<&str> = shown
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        for member in CLIENT_MEMBERS {
            assert!(members.contains(&member), "show lacks {member}: {shown}");
        }

        let listed = db.cli_json(&["client", "list"]).await;
        let clients = listed["clients"].as_array().expect("clients");
        assert_eq!(clients.len(), 2, "{listed}");
        for client in [&a, &b] {
            let entry = clients
                .iter()
                .find(|c| c["client_id"] == client.id.as_str())
                .unwrap_or_else(|| panic!("{} not listed: {listed}", client.id));
            assert_eq!(entry, &without_secret(&client.created));
        }
        let text = serde_json::to_string(&listed).expect("JSON");
        assert!(
            !text.contains(&a.secret) && !text.contains(&b.secret),
            "list shows a secret"
        );
        assert!(
            !text.contains("client_secret"),
            "list has a client_secret member: {listed}"
        );

        let rotated = db.cli_json(&["client", "rotate-secret", &a.id]).await;
        assert_eq!(rotated["client_id"], a.id.as_str(), "{rotated}");
        let new_secret = rotated["client_secret"].as_str().expect("client_secret");
        assert_generated_secret(new_secret);
        assert_ne!(new_secret, a.secret);

        let deleted = db.cli_json(&["client", "delete", &b.id]).await;
        assert_eq!(deleted, json!({"deleted": b.id}));
        let listed = db.cli_json(&["client", "list"]).await;
        let ids: Vec<&Value> = listed["clients"]
            .as_array()
            .expect("clients")
            .iter()
            .map(|c| &c["client_id"])
            .collect();
        assert_eq!(ids, [&json!(a.id)], "{listed}");

        assert_missing_client(&db.cli(&["client", "show", &b.id, "--json"]).await);
        assert_missing_client(&db.cli(&["client", "delete", &b.id, "--json"]).await);
        assert_missing_client(&db.cli(&["client", "rotate-secret", &b.id, "--json"]).await);
        assert_missing_client(&db.cli(&["client", "show", "never-existed"]).await);
    }

    /// Creating a client with an id that exists fails and leaves the first alone.
    async fn client_create_refuses_a_taken_id(backend) {
        let db = TestDb::new(backend).await;
        let first = db
            .create_client("first", &["--client-id", "taken", "--scope", "read"])
            .await;

        let out = db
            .cli(&[
                "client",
                "create",
                "--name",
                "second",
                "--client-id",
                "taken",
                "--json",
            ])
            .await;
        assert!(
            !out.status.success(),
            "a second client with the same id: {out:#?}"
        );
        let shown = db.cli_json(&["client", "show", "taken"]).await;
        assert_eq!(shown, without_secret(&first.created));
    }

    /// `--secret-stdin` imports a secret of at least 16 characters.
    async fn client_create_imports_a_secret(backend) {
        let db = TestDb::new(backend).await;

        let client = db.import_client("imported", "sixteen-chars-ok", &[]).await;
        let shown = db.cli_json(&["client", "show", &client.id]).await;
        assert_eq!(shown["name"], "imported", "{shown}");

        let short = db
            .cli_with_stdin(
                &["client", "create", "--name", "short", "--secret-stdin", "--json"],
                Some("fifteen-chars!!\n"),
            )
            .await;
        assert_eq!(short.code(), Some(2), "a 15-character secret: {short:#?}");
        assert!(
            !short.stderr.contains("fifteen-chars!!"),
            "the error echoes the secret"
        );
        let listed = db.cli_json(&["client", "list"]).await;
        assert_eq!(
            listed["clients"].as_array().expect("clients").len(),
            1,
            "{listed}"
        );

        let empty = db
            .cli_with_stdin(
                &["client", "create", "--name", "empty", "--secret-stdin"],
                Some("\n"),
            )
            .await;
        assert_eq!(empty.code(), Some(2), "an empty secret: {empty:#?}");
    }

    /// `migrate` (idempotent) and `keys rotate` without a server.
    async fn migrate_and_keys_rotate(backend) {
        let db = TestDb::new(backend).await;

        assert_eq!(db.cli_json(&["migrate"]).await, json!({"migrated": true}));
        assert_eq!(db.cli_json(&["migrate"]).await, json!({"migrated": true}));

        let first = db.cli_json(&["keys", "rotate"]).await;
        assert_eq!(first["alg"], "ES256", "{first}");
        let second = db.cli_json(&["keys", "rotate"]).await;
        assert!(first["kid"].as_str().is_some_and(|k| !k.is_empty()), "{first}");
        assert_ne!(first["kid"], second["kid"], "each rotation makes a new key");

        // A server started afterwards signs with the newest key.
        let client = db.create_client("svc", &[]).await;
        let server = db.start(&[]).await;
        let token = server.access_token(&client).await;
        assert_eq!(crate::jose::kid(&token), second["kid"].as_str().expect("kid"));
        let kids = crate::jose::kids(&server.jwks().await);
        assert!(
            kids.iter().any(|k| first["kid"] == k.as_str()),
            "older key unpublished: {kids:?}"
        );
    }
}
