//! `gatehouse user create|list|delete|disable` (`docs/protocol.md`, Commands) on a
//! database with no server running: every command's `--json` shape and exit
//! status, and no password in any output.

use serde_json::{json, Value};

use crate::helpers::*;

/// The members of a user object, as `create` and `list` print it.
const USER_MEMBERS: [&str; 5] = ["user_id", "username", "scope", "disabled", "created_at"];

fn assert_missing_user(out: &CliOutput) {
    assert_eq!(out.code(), Some(1), "exit status for a missing user: {out:#?}");
    assert_eq!(out.stderr_lines().len(), 1, "one error line: {out:#?}");
}

/// The users `user list --json` prints.
async fn listed(db: &TestDb) -> Vec<Value> {
    let out = db.cli(&["user", "list", "--json"]).await;
    let text = out.stdout.clone();
    assert!(
        !text.contains(PASSWORD) && !text.contains("$argon2") && !text.contains("password"),
        "user list shows a password or its hash: {out:#?}"
    );
    out.json()["users"]
        .as_array()
        .unwrap_or_else(|| panic!("no users array: {out:#?}"))
        .clone()
}

fn usernames(users: &[Value]) -> Vec<&str> {
    let mut names: Vec<&str> = users
        .iter()
        .map(|u| u["username"].as_str().expect("username"))
        .collect();
    names.sort_unstable();
    names
}

backend_tests! {
    /// `user create --json` prints the user: a 32-hex-digit id, the name, the
    /// scope, `disabled: false` and the creation time; never the password.
    async fn user_create_prints_the_documented_object(backend) {
        let db = TestDb::new(backend).await;

        let before = unix_now();
        let alice = db.create_user("alice", PASSWORD, Some("read write")).await;
        let created = &alice.created;
        let mut members: Vec<&str> = created
            .as_object()
            .unwrap_or_else(|| panic!("not an object: {created}"))
            .keys()
            .map(String::as_str)
            .collect();
        members.sort_unstable();
        let mut expected = USER_MEMBERS.to_vec();
        expected.sort_unstable();
        assert_eq!(members, expected, "{created}");
        assert!(
            alice.id.len() == 32 && alice.id.bytes().all(|b| b.is_ascii_hexdigit()),
            "user_id {:?} is not 32 hex digits",
            alice.id
        );
        assert_eq!(created["username"], "alice", "{created}");
        assert_eq!(
            scope_set(&json_str(created, "scope")),
            ["read", "write"],
            "{created}"
        );
        assert_eq!(created["disabled"], false, "{created}");
        let created_at = created["created_at"].as_i64().expect("created_at is a number");
        assert!((before - 5..=unix_now() + 5).contains(&created_at), "{created}");

        let bob = db.create_user("bob", PASSWORD, None).await;
        assert_eq!(bob.created["scope"], Value::Null, "no --scope: limited by the client alone: {}", bob.created);
        assert_ne!(alice.id, bob.id, "each user has its own id");
    }

    /// `list` shows what `create` printed; `disable` and `delete` print what
    /// they did and change the list; a missing user is exit status 1.
    async fn user_list_disable_delete(backend) {
        let db = TestDb::new(backend).await;
        let alice = db.create_user("alice", PASSWORD, Some("read")).await;
        let bob = db.create_user("bob", PASSWORD, None).await;

        let users = listed(&db).await;
        assert_eq!(usernames(&users), ["alice", "bob"]);
        for user in [&alice, &bob] {
            let entry = users
                .iter()
                .find(|u| u["username"] == user.username.as_str())
                .expect("listed");
            assert_eq!(entry, &user.created, "list and create disagree");
        }

        let disabled = db.cli_json(&["user", "disable", "alice"]).await;
        assert_eq!(disabled, json!({"disabled": "alice"}));
        let users = listed(&db).await;
        let entry = users
            .iter()
            .find(|u| u["username"] == "alice")
            .expect("alice listed");
        let mut expected = alice.created.clone();
        expected["disabled"] = json!(true);
        assert_eq!(entry, &expected, "only `disabled` changes");

        let deleted = db.cli_json(&["user", "delete", "bob"]).await;
        assert_eq!(deleted, json!({"deleted": "bob"}));
        assert_eq!(usernames(&listed(&db).await), ["alice"]);

        assert_missing_user(&db.cli(&["user", "delete", "bob", "--json"]).await);
        assert_missing_user(&db.cli(&["user", "disable", "bob", "--json"]).await);
        assert_missing_user(&db.cli(&["user", "delete", "never-existed"]).await);

        let out = db.cli(&["user", "list"]).await;
        assert!(out.status.success(), "{out:#?}");
        assert!(out.stdout.contains("alice"), "plain `user list`: {out:#?}");
        assert!(!out.stdout.contains(PASSWORD), "{out:#?}");
    }

    /// A taken username is exit status 1 and leaves the first user alone; a
    /// password under 8 characters (after the one trailing newline) is a usage
    /// error that does not echo it; exactly 8 characters is enough.
    async fn user_create_refuses_a_taken_name_and_a_short_password(backend) {
        let db = TestDb::new(backend).await;
        let alice = db.create_user("alice", PASSWORD, Some("read")).await;

        let taken = db
            .cli_with_stdin(
                &[
                    "user",
                    "create",
                    "--username",
                    "alice",
                    "--password-stdin",
                    "--json",
                ],
                Some("another-password\n"),
            )
            .await;
        assert_eq!(taken.code(), Some(1), "a second alice: {taken:#?}");
        assert_eq!(listed(&db).await, std::slice::from_ref(&alice.created));

        for (what, stdin) in [
            ("7 characters", "seven77\n"),
            ("7 characters and a newline stripped", "abcdefg\n"),
            ("an empty password", "\n"),
        ] {
            let out = db
                .cli_with_stdin(
                    &[
                        "user",
                        "create",
                        "--username",
                        "short",
                        "--password-stdin",
                        "--json",
                    ],
                    Some(stdin),
                )
                .await;
            assert_eq!(out.code(), Some(2), "{what}: {out:#?}");
            let secret = stdin.trim_end_matches('\n');
            if !secret.is_empty() {
                assert!(
                    !out.stderr.contains(secret) && !out.stdout.contains(secret),
                    "{what}: the error echoes the password: {out:#?}"
                );
            }
        }

        let no_stdin = db
            .cli(&["user", "create", "--username", "nopass", "--json"])
            .await;
        assert_eq!(no_stdin.code(), Some(2), "no --password-stdin: {no_stdin:#?}");

        db.create_user("eight", "12345678", None).await;
        assert_eq!(usernames(&listed(&db).await), ["alice", "eight"]);
    }
}

backend_tests! {
    /// `user update` changes the password or the scope, only what is given, and
    /// prints the user as `create` does.
    async fn user_update_changes_only_what_is_given(backend) {
        let db = TestDb::new(backend).await;
        let (app, alice) = db.refresh_app().await;
        let server = db.start(&[]).await;
        server.login(&app, &alice).await;

        let new_password = "a-new-password";
        let out = db
            .cli_with_stdin(&["user", "update", "alice", "--password-stdin", "--json"], Some(&format!("{new_password}\n")))
            .await;
        assert_eq!(out.json(), alice.created, "a new password changes nothing shown");
        assert!(!out.stdout.contains(new_password) && !out.stderr.contains(new_password), "{out:#?}");
        server
            .password_grant(&app, "alice", PASSWORD, &[])
            .await
            .assert_token_error(reqwest::StatusCode::BAD_REQUEST, "invalid_grant");
        server.password_grant(&app, "alice", new_password, &[]).await.access_token();

        let updated = db.cli_json(&["user", "update", "alice", "--scope", "read write"]).await;
        let mut expected = alice.created.clone();
        expected["scope"] = json!("read write");
        assert_eq!(updated, expected);
        let updated = db.cli_json(&["user", "update", "alice", "--clear-scope"]).await;
        expected["scope"] = Value::Null;
        assert_eq!(updated, expected);
        assert_eq!(listed(&db).await, [expected]);

        for (what, args) in [
            ("no change", vec![]),
            ("an empty scope", vec!["--scope", ""]),
            ("a scope and none", vec!["--scope", "read", "--clear-scope"]),
        ] {
            let mut argv = vec!["user", "update", "alice"];
            argv.extend(args);
            assert_eq!(db.cli(&argv).await.code(), Some(2), "{what}");
        }
        let short = db
            .cli_with_stdin(&["user", "update", "alice", "--password-stdin"], Some("short\n"))
            .await;
        assert_eq!(short.code(), Some(2), "{short:#?}");
        server.password_grant(&app, "alice", new_password, &[]).await.access_token();
        assert_missing_user(&db.cli(&["user", "update", "nobody", "--clear-scope"]).await);
    }

    /// `user enable` undoes `user disable` for new logins only: the tokens and
    /// logins the user held before the disable stay dead, the revocation mark
    /// stays, and enabling an enabled user changes nothing.
    async fn user_enable_does_not_bring_back_old_tokens(backend) {
        let db = TestDb::new(backend).await;
        let (app, alice) = db.refresh_app().await;
        let rs = db.create_client("rs", &["--can-introspect"]).await;
        let server = db.start(&[]).await;
        let before = server.login(&app, &alice).await;
        let (old_access, old_refresh) = (json_str(&before, "access_token"), json_str(&before, "refresh_token"));

        assert_eq!(db.cli_json(&["user", "disable", "alice"]).await, json!({"disabled": "alice"}));
        let enabled = db.cli(&["user", "enable", "alice", "--json"]).await;
        assert_eq!(enabled.json(), json!({"enabled": "alice"}));
        assert_eq!(enabled.stderr, "", "{enabled:#?}");
        assert_eq!(listed(&db).await[0]["disabled"], false);

        server
            .refresh_grant(&app, &old_refresh, &[])
            .await
            .assert_token_error(reqwest::StatusCode::BAD_REQUEST, "invalid_grant");
        assert!(!server.is_active(&rs, &old_access).await, "an access token from before the disable");
        let mut conn = db.connect().await;
        let mark = conn
            .scalar(&format!("SELECT revoked_at FROM revoked_subjects WHERE kind = 'user' AND id = '{}'", alice.id), None)
            .await;
        let live_logins = conn
            .scalar(&format!("SELECT COUNT(*) FROM token_families WHERE user_id = '{}' AND revoked_at IS NULL", alice.id), None)
            .await;
        assert_eq!(live_logins, 0, "a login from before the disable is live");

        // A mark ends the tokens of its own second too: log in after it.
        eventually(PROPAGATION_DEADLINE, "the clock passes the disable's second", || async {
            (unix_now() > mark).then_some(()).ok_or(format!("now {} mark {mark}", unix_now()))
        })
        .await;
        let after = server.login(&app, &alice).await;
        assert!(server.is_active(&rs, &json_str(&after, "access_token")).await);
        server.refresh(&app, &json_str(&after, "refresh_token")).await;

        // Enabling again: the same answer, a note on stderr, the login untouched.
        let again = db.cli(&["user", "enable", "alice", "--json"]).await;
        assert_eq!(again.json(), json!({"enabled": "alice"}));
        assert!(again.stderr.contains("enabled already"), "{again:#?}");
        let live_logins = conn
            .scalar(&format!("SELECT COUNT(*) FROM token_families WHERE user_id = '{}' AND revoked_at IS NULL", alice.id), None)
            .await;
        assert_eq!(live_logins, 1, "enabling an enabled user ended a login");
        assert_missing_user(&db.cli(&["user", "enable", "nobody"]).await);
    }
}
