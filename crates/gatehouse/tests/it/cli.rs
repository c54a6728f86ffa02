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

/// The cells of a `list` table's rows (the header first), split at the columns
/// the header's names start at; asserts that every row is aligned to them.
pub fn table_rows(out: &CliOutput, header: &[&str]) -> Vec<Vec<String>> {
    assert!(out.status.success(), "{out:#?}");
    let mut lines = out.stdout.lines();
    let first = lines.next().unwrap_or_else(|| panic!("no header: {out:#?}"));
    let starts: Vec<usize> = header
        .iter()
        .map(|name| {
            first
                .find(name)
                .unwrap_or_else(|| panic!("header lacks {name}: {first:?}"))
        })
        .collect();
    assert!(starts.windows(2).all(|w| w[0] < w[1]), "header order: {first:?}");
    assert!(
        !out.stdout.contains('"') && !out.stdout.contains('\t'),
        "quotes or tabs: {out:#?}"
    );
    std::iter::once(first)
        .chain(lines)
        .map(|line| {
            let chars: Vec<char> = line.chars().collect();
            starts
                .iter()
                .enumerate()
                .map(|(at, &start)| {
                    let end = starts
                        .get(at + 1)
                        .copied()
                        .unwrap_or(chars.len())
                        .min(chars.len());
                    if at > 0 {
                        assert!(
                            start <= chars.len() && chars[start - 2..start] == [' ', ' '],
                            "column {} is not aligned in {line:?}:\n{}",
                            header[at],
                            out.stdout
                        );
                    }
                    chars[start.min(end)..end]
                        .iter()
                        .collect::<String>()
                        .trim_end()
                        .to_owned()
                })
                .collect()
        })
        .collect()
}

/// Whether `text` is a UTC time as the lists print it: `2026-12-01 02:10:00Z`.
pub fn is_list_time(text: &str) -> bool {
    let shape = "dddd-dd-dd dd:dd:ddZ";
    text.len() == shape.len()
        && text
            .chars()
            .zip(shape.chars())
            .all(|(c, s)| if s == 'd' { c.is_ascii_digit() } else { c == s })
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
            clients.iter().all(|c| c.get("client_secret").is_none()),
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

backend_tests! {
    /// `client update` changes only the flags given, prints the client as `show`
    /// does, and a running server follows the change.
    async fn client_update_changes_only_the_flags_given(backend) {
        let db = TestDb::new(backend).await;
        let client = db
            .create_client(
                "svc",
                &["--scope", "read", "--audience", "https://api.example", "--token-ttl", "60"],
            )
            .await;
        let server = db.start(&[]).await;
        server
            .client_credentials(&client, &[("scope", "write")])
            .await
            .assert_token_error(reqwest::StatusCode::BAD_REQUEST, "invalid_scope");

        let updated = db
            .cli_json(&["client", "update", &client.id, "--scope", "read write", "--refresh-token-ttl", "600"])
            .await;
        let mut expected = without_secret(&client.created);
        expected["scope"] = json!("read write");
        expected["refresh_token_ttl"] = json!(600);
        assert_eq!(updated, expected, "only the scope and the refresh lifetime change");
        assert_eq!(db.cli_json(&["client", "show", &client.id]).await, updated);
        eventually(PROPAGATION_DEADLINE, "the server grants the new scope", || async {
            let reply = server.client_credentials(&client, &[("scope", "write")]).await;
            (reply.status == reqwest::StatusCode::OK).then_some(()).ok_or(format!("{reply:?}"))
        })
        .await;

        let updated = db
            .cli_json(&[
                "client", "update", &client.id, "--clear-audience", "--token-ttl", "default",
                "--grant-types", "client_credentials,refresh_token", "--name", "renamed",
                "--can-introspect", "true",
            ])
            .await;
        expected["audience"] = Value::Null;
        expected["token_ttl"] = Value::Null;
        expected["grant_types"] = json!(["client_credentials", "refresh_token"]);
        expected["name"] = json!("renamed");
        expected["can_introspect"] = json!(true);
        assert_eq!(updated, expected);

        // Without --json, the `key: value` lines of `show`.
        let plain = db.cli(&["client", "update", &client.id, "--token-ttl", "90"]).await;
        assert!(plain.status.success(), "{plain:#?}");
        assert_eq!(plain.stdout, db.cli(&["client", "show", &client.id]).await.stdout);
        assert!(plain.stdout.contains("token_ttl: 90"), "{plain:#?}");

        for (what, args) in [
            ("no change", vec![]),
            ("a bad lifetime", vec!["--token-ttl", "0"]),
            ("a word for a lifetime", vec!["--token-ttl", "soon"]),
            ("an empty audience", vec!["--audience", ""]),
            ("two audiences", vec!["--audience", "x", "--clear-audience"]),
            ("an empty grant type list", vec!["--grant-types", ","]),
        ] {
            let mut argv = vec!["client", "update", client.id.as_str()];
            argv.extend(args);
            let out = db.cli(&argv).await;
            assert_eq!(out.code(), Some(2), "{what}: {out:#?}");
        }
        assert_missing_client(&db.cli(&["client", "update", "never-existed", "--name", "x"]).await);
        let shown = db.cli_json(&["client", "show", &client.id]).await;
        assert_eq!(shown["token_ttl"], 90, "a refused update changed the client: {shown}");
    }

    /// A grant type the server does not know is named along with the valid ones,
    /// which `--help` lists too.
    async fn grant_types_name_the_valid_values(backend) {
        let db = TestDb::new(backend).await;
        let valid = "client_credentials, password, refresh_token";
        let out = db.cli(&["client", "create", "--name", "x", "--grant-types", "client_credentials,passwd"]).await;
        assert_eq!(out.code(), Some(2), "{out:#?}");
        assert!(
            out.stderr.contains(&format!("unknown grant type \"passwd\"; valid: {valid}")),
            "{out:#?}"
        );
        let client = db.create_client("svc", &[]).await;
        let out = db.cli(&["client", "update", &client.id, "--grant-types", "implicit"]).await;
        assert_eq!(out.code(), Some(2), "{out:#?}");
        assert!(out.stderr.contains(&format!("; valid: {valid}")), "{out:#?}");
        for command in ["create", "update"] {
            let help = db.cli(&["client", command, "--help"]).await;
            assert!(help.stdout.contains(valid), "client {command} --help: {help:#?}");
        }
    }

    /// `client list` and `user list`: a header, aligned columns, no quotes,
    /// times in UTC, `-` for nothing; `--json` is the documented object.
    async fn lists_are_tables(backend) {
        let db = TestDb::new(backend).await;
        let first = db.create_client("first client", &["--client-id", "a-client", "--scope", "read write"]).await;
        db.create_client("second", &["--client-id", "b", "--grant-types", "password,refresh_token", "--token-format", "opaque"]).await;
        let out = db.cli(&["client", "list"]).await;
        let header = ["CLIENT_ID", "NAME", "GRANT_TYPES", "SCOPE", "TOKENS", "CREATED"];
        let rows = table_rows(&out, &header);
        assert_eq!(rows.len(), 3, "{out:#?}");
        assert_eq!(rows[1][..5], ["a-client", "first client", "client_credentials", "read write", "jwt"], "{out:#?}");
        assert_eq!(rows[2][..5], ["b", "second", "password,refresh_token", "-", "opaque"], "{out:#?}");
        assert!(rows[1..].iter().all(|row| is_list_time(&row[5])), "{out:#?}");
        assert!(!out.stdout.contains(&first.secret), "{out:#?}");
        assert_eq!(db.cli_json(&["client", "list"]).await["clients"].as_array().map(Vec::len), Some(2));

        db.create_user("alice", PASSWORD, Some("read")).await;
        db.create_user("bob", PASSWORD, None).await;
        db.cli_json(&["user", "disable", "bob"]).await;
        let out = db.cli(&["user", "list"]).await;
        let rows = table_rows(&out, &["USERNAME", "STATUS", "SCOPE", "CREATED"]);
        assert_eq!(rows.len(), 3, "{out:#?}");
        assert_eq!(rows[1][..3], ["alice", "enabled", "read"], "{out:#?}");
        assert_eq!(rows[2][..3], ["bob", "disabled", "-"], "{out:#?}");
        assert!(rows[1..].iter().all(|row| is_list_time(&row[3])), "{out:#?}");

        // An empty list is the header alone.
        let empty = TestDb::new(backend).await;
        let out = empty.cli(&["client", "list"]).await;
        assert_eq!(table_rows(&out, &header).len(), 1, "{out:#?}");
    }

    /// An admin command that creates a new SQLite file says so on stderr, with
    /// the full path (a command run in the wrong directory would otherwise work
    /// on a new, empty database); the next one does not. PostgreSQL: never.
    async fn a_new_database_is_announced(backend) {
        let db = TestDb::new(backend).await;
        let first = db.cli(&["client", "list", "--json"]).await;
        assert!(first.status.success(), "{first:#?}");
        let second = db.cli(&["client", "list", "--json"]).await;
        assert_eq!(second.stderr, "", "{second:#?}");
        let Some(path) = db.sqlite_path() else {
            assert_eq!(first.stderr, "", "{first:#?}");
            return;
        };
        assert_eq!(
            first.stderr,
            format!("gatehouse: created a new database at {}\n", path.display()),
            "{first:#?}"
        );

        // A relative URL is shown as the full path it resolved to.
        let mut cmd = db.command();
        cmd.args(["user", "list", "--database-url", "sqlite://elsewhere.db"]);
        let out = run_to_exit(cmd, None, PROCESS_DEADLINE).await.expect("gatehouse user list");
        let elsewhere = db.dir().join("elsewhere.db");
        assert!(out.status.success(), "{out:#?}");
        let canonical = elsewhere.canonicalize().expect("the new database exists");
        let named = out
            .stderr
            .strip_prefix("gatehouse: created a new database at ")
            .map(str::trim_end)
            .map(std::path::Path::new)
            .and_then(|p| p.canonicalize().ok());
        assert_eq!(named, Some(canonical), "{out:#?}");
    }

    /// `client create --format env` prints shell assignments that `eval` reads
    /// back exactly, quotes and all.
    async fn client_create_format_env(backend) {
        let db = TestDb::new(backend).await;
        let secret = "it's $HOME `x` \\ \" fine";
        let out = db
            .cli_with_stdin(
                &["client", "create", "--name", "shell", "--client-id", "id with 'quotes'", "--secret-stdin", "--format", "env"],
                Some(&format!("{secret}\n")),
            )
            .await;
        assert!(out.status.success(), "{out:#?}");
        assert_eq!(out.stdout.lines().count(), 2, "{out:#?}");
        let mut sh = tokio::process::Command::new("sh");
        sh.args(["-c", "eval \"$(cat)\" && printf '%s\\n%s' \"$CLIENT_ID\" \"$CLIENT_SECRET\""])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let read = run_to_exit(sh, Some(&out.stdout), PROCESS_DEADLINE).await.expect("sh");
        assert_eq!(read.stdout, format!("id with 'quotes'\n{secret}"), "{read:#?} from {out:#?}");

        let generated = db.cli(&["client", "create", "--name", "g", "--format", "env"]).await;
        let lines: Vec<&str> = generated.stdout.lines().collect();
        assert!(
            lines.len() == 2 && lines[0].starts_with("CLIENT_ID=") && lines[1].starts_with("CLIENT_SECRET="),
            "{generated:#?}"
        );
        let both = db.cli(&["client", "create", "--name", "h", "--format", "env", "--json"]).await;
        assert_eq!(both.code(), Some(2), "{both:#?}");
    }
}

/// `keys generate-master-key` prints a new 32-byte key, or writes it to a new file
/// of mode 0600 that it never replaces; the key works as `master_key_file`, and no
/// database is made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_generate_master_key() {
    use base64::Engine as _;
    use std::os::unix::fs::PermissionsExt as _;

    let db = TestDb::new(Backend::Sqlite).await;
    let decoded = |text: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(text.trim_end())
            .unwrap_or_else(|e| panic!("{text:?} is not base64: {e}"))
    };
    // It needs no settings: run with none.
    let generate = |args: &'static [&'static str]| {
        let mut cmd = db.command();
        cmd.args(["keys", "generate-master-key"]).args(args);
        run_to_exit(cmd, None, PROCESS_DEADLINE)
    };
    let one = generate(&[]).await.expect("gatehouse keys generate-master-key");
    let two = generate(&[]).await.expect("gatehouse keys generate-master-key");
    assert!(one.status.success() && one.stderr.is_empty(), "{one:#?}");
    assert_eq!(decoded(&one.stdout).len(), 32, "{one:#?}");
    assert_ne!(one.stdout, two.stdout, "two keys alike");

    let written = generate(&["--output", "master.key"])
        .await
        .expect("gatehouse keys generate-master-key --output");
    assert!(
        written.status.success() && written.stdout.is_empty(),
        "{written:#?}"
    );
    let path = db.dir().join("master.key");
    let metadata = std::fs::metadata(&path).expect("the key file");
    assert_eq!(metadata.permissions().mode() & 0o777, 0o600);
    let key = std::fs::read_to_string(&path).expect("read the key file");
    assert_eq!(decoded(&key).len(), 32, "{key:?}");

    let again = generate(&["--output", "master.key"])
        .await
        .expect("gatehouse keys generate-master-key --output");
    assert_eq!(again.code(), Some(1), "{again:#?}");
    assert_eq!(again.stderr_lines().len(), 1, "{again:#?}");
    assert!(again.stderr.contains("master.key"), "{again:#?}");
    assert_eq!(
        std::fs::read_to_string(&path).expect("read the key file"),
        key,
        "replaced"
    );
    assert!(!db.sqlite_path().expect("SQLite").exists(), "a database was made");

    let mut cmd = db.command();
    cmd.args(["keys", "rotate", "--json"])
        .args(db.connection_args())
        .env("GATEHOUSE_MASTER_KEY_FILE", &path);
    let rotated = run_to_exit(cmd, None, PROCESS_DEADLINE)
        .await
        .expect("gatehouse keys rotate")
        .json();
    assert_eq!(rotated["alg"], "ES256", "{rotated}");
    assert!(
        !db.dir().join("gatehouse.master.key").exists(),
        "the default key file was used"
    );
}
