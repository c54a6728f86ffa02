//! Secrets are shown once and kept only hashed: not in the database, not in
//! the CLI's later output, not in the log (`docs/protocol.md`, Tokens and Commands).

use std::os::unix::fs::PermissionsExt as _;

use reqwest::StatusCode;

use crate::helpers::*;

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

/// The SQLite database file and its WAL/shared-memory companions, as bytes.
fn sqlite_bytes(db: &TestDb) -> Vec<u8> {
    let path = db.sqlite_path().expect("SQLite");
    let mut bytes = std::fs::read(&path).expect("read the SQLite database");
    for suffix in ["-wal", "-shm", "-journal"] {
        let companion = format!("{}{suffix}", path.display());
        if let Ok(more) = std::fs::read(companion) {
            bytes.extend(more);
        }
    }
    bytes
}

/// Makes a generated and an imported secret, uses both, fails once with a wrong
/// secret, and returns the clients and tokens that must not leak.
async fn clients_in_use(server: &TestServer<'_>) -> (Vec<TestClient>, Vec<String>) {
    let db = server.db();
    let generated = db.create_client("generated", &["--scope", "read"]).await;
    let imported = db
        .import_client("imported", "Imported+Secret:with%odd/chars", &["--scope", "read"])
        .await;
    let mut tokens = Vec::new();
    for client in [&generated, &imported] {
        let token = eventually(PROPAGATION_DEADLINE, "the new clients get tokens", || async {
            let reply = server.client_credentials(client, &[]).await;
            match reply.status {
                StatusCode::OK => Ok(reply.access_token()),
                _ => Err(reply.body),
            }
        })
        .await;
        tokens.push(token);
        let reply = server
            .token_form(&client.post(), &[("grant_type", "client_credentials")])
            .await;
        tokens.push(reply.access_token());
    }
    let wrong = ClientAuth::basic(&generated.id, &format!("{}-wrong", generated.secret));
    let refused = server
        .token_form(&wrong, &[("grant_type", "client_credentials")])
        .await;
    refused.assert_basic_challenge();
    assert!(
        !refused.body.contains(&generated.secret),
        "the error echoes the secret: {refused:?}"
    );
    (vec![generated, imported], tokens)
}

backend_tests! {
    /// The server's log holds neither secrets nor tokens.
    async fn log_holds_no_secret_and_no_token(backend) {
        let db = TestDb::new(backend).await;
        let server = db.start(&[]).await;
        let (clients, tokens) = clients_in_use(&server).await;

        // Stop the server first, so that every line it wrote is here.
        let stopped = server.stop_with("TERM").await;
        let log = stopped.logs;
        assert!(log.contains("listening"), "the log was not captured:\n{log}");
        for client in &clients {
            assert!(
                !log.contains(&client.secret),
                "secret of {} in the log:\n{log}",
                client.id
            );
            let basic = basic_authorization(&client.id, &client.secret);
            let encoded = basic.trim_start_matches("Basic ");
            assert!(
                !log.contains(encoded),
                "Basic credentials of {} in the log:\n{log}",
                client.id
            );
        }
        for token in &tokens {
            assert!(
                !log.contains(token.as_str()),
                "an access token in the log:\n{log}"
            );
            let signature = token.rsplit('.').next().expect("JWS");
            assert!(!log.contains(signature), "a token signature in the log:\n{log}");
        }
    }

    /// `show` and `list` never print a secret, generated or imported.
    async fn show_and_list_never_print_a_secret(backend) {
        let db = TestDb::new(backend).await;
        let generated = db.create_client("generated", &[]).await;
        let imported = db.import_client("imported", "sixteen+chars:ok%", &[]).await;

        let mut outputs = vec![
            db.cli(&["client", "list", "--json"]).await,
            db.cli(&["client", "list"]).await,
        ];
        for client in [&generated, &imported] {
            outputs.push(db.cli(&["client", "show", &client.id, "--json"]).await);
            outputs.push(db.cli(&["client", "show", &client.id]).await);
        }
        for out in &outputs {
            assert!(out.status.success(), "{out:#?}");
            for client in [&generated, &imported] {
                assert!(!out.stdout.contains(&client.secret), "a secret printed: {out:#?}");
                assert!(!out.stderr.contains(&client.secret), "a secret printed: {out:#?}");
            }
        }
    }
}

/// The SQLite file (and its WAL) holds no secret in the clear after clients
/// were created, used and rotated; it does hold the client ids, so the test
/// reads the right file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_file_holds_no_secret() {
    let db = TestDb::new(Backend::Sqlite).await;
    let server = db.start(&[]).await;
    let (clients, _tokens) = clients_in_use(&server).await;
    let rotated = server
        .cli_json(&["client", "rotate-secret", &clients[0].id])
        .await["client_secret"]
        .as_str()
        .expect("client_secret")
        .to_string();

    let bytes = sqlite_bytes(&db);
    for client in &clients {
        assert!(
            contains(&bytes, &client.id),
            "client {} is not in the database file",
            client.id
        );
        assert!(
            !contains(&bytes, &client.secret),
            "the secret of {} is in the database file",
            client.id
        );
    }
    assert!(
        !contains(&bytes, &rotated),
        "a rotated secret is in the database file"
    );
}

/// Without `--master-key`, SQLite gets a key file beside the database, 0600.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn master_key_file_is_created_private() {
    let db = TestDb::new(Backend::Sqlite).await;
    let client = db.create_client("svc", &[]).await;
    let server = db.start(&[]).await;
    server.access_token(&client).await;

    let key_file = db.dir().join("gatehouse.master.key");
    let metadata = std::fs::metadata(&key_file).unwrap_or_else(|e| panic!("{} ({e})", key_file.display()));
    assert_eq!(
        metadata.permissions().mode() & 0o777,
        0o600,
        "mode of {}",
        key_file.display()
    );
    let key = std::fs::read(&key_file).expect("read key file");
    assert!(!key.is_empty(), "empty master key file");
    let bytes = sqlite_bytes(&db);
    let key_text = String::from_utf8_lossy(&key).trim().to_string();
    assert!(
        !contains(&bytes, &key_text),
        "the master key is in the database file"
    );
}
