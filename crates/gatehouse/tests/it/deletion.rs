//! A token lives no longer than its holder. Deleting a
//! client ends every token it holds, at once and on every node, and a client
//! re-created with the same id inherits none of them; a disabled or deleted user's
//! tokens are inactive as soon as the command returns. Introspection is asked by a
//! separate resource server (`--can-introspect`), as an API would ask it.

use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::api::{assert_refused, introspecting_guard_for, Api};
use crate::helpers::*;

/// Grant types and scope of the clients whose tokens are ended.
const GRANTS: [&str; 4] = [
    "--grant-types",
    "client_credentials,password,refresh_token",
    "--scope",
    "read",
];

/// `client create` of a client `id` with [`GRANTS`] and `extra`.
async fn create_client(db: &TestDb, id: &str, extra: &[&str]) -> TestClient {
    let mut args = vec!["--client-id", id];
    args.extend_from_slice(&GRANTS);
    args.extend_from_slice(extra);
    db.create_client(id, &args).await
}

/// The tokens `client` holds: a client_credentials access token, and the access
/// and refresh tokens of `user`'s login.
async fn tokens_of(server: &TestServer<'_>, client: &TestClient, user: &TestUser) -> [String; 3] {
    let machine = server.access_token(client).await;
    let login = server.login(client, user).await;
    [
        machine,
        json_str(&login, "access_token"),
        json_str(&login, "refresh_token"),
    ]
}

/// Asserts that `resource_server`, introspecting each of `tokens`, is told
/// `active` (at once: nothing here waits for a change to propagate).
async fn assert_all(
    server: &TestServer<'_>,
    resource_server: &TestClient,
    tokens: &[String],
    active: bool,
    what: &str,
) {
    for (i, token) in tokens.iter().enumerate() {
        assert_eq!(
            server.is_active(resource_server, token).await,
            active,
            "{what}: token {i} ({})",
            &token[..8.min(token.len())]
        );
    }
}

/// The value of a query for one integer, with the test's own connection.
async fn scalar(db: &TestDb, sql: &str) -> i64 {
    db.connect().await.scalar(sql, None).await
}

/// How many rows of the token tables still belong to `client_id`.
async fn stored_tokens(db: &TestDb, client_id: &str) -> [i64; 3] {
    let mut counts = [0; 3];
    for (count, table) in counts
        .iter_mut()
        .zip(["token_families", "refresh_tokens", "opaque_access_tokens"])
    {
        *count = scalar(
            db,
            &format!("SELECT COUNT(*) FROM {table} WHERE client_id = '{client_id}'"),
        )
        .await;
    }
    counts
}

/// The revocation mark of a `kind` (`client`, `user`) `id`, if any.
async fn mark(db: &TestDb, kind: &str, id: &str) -> Option<i64> {
    let where_ = format!("FROM revoked_subjects WHERE kind = '{kind}' AND id = '{id}'");
    if scalar(db, &format!("SELECT COUNT(*) {where_}")).await == 0 {
        return None;
    }
    Some(scalar(db, &format!("SELECT revoked_at {where_}")).await)
}

backend_tests! {
    /// `client delete`: the client's JWTs, opaque access tokens and refresh tokens
    /// introspect inactive at once, its stored tokens are gone, and a revocation mark
    /// stands for its JWTs. Re-created with the same id (`--client-id`), it gets none
    /// of them: the old refresh tokens are `invalid_grant`, the old access tokens stay
    /// inactive; its own new tokens work. Another client's tokens are untouched.
    async fn deleting_a_client_ends_its_tokens(backend) {
        let db = TestDb::new(backend).await;
        let jwt = create_client(&db, "jwt-app", &[]).await;
        let opaque = create_client(&db, "opaque-app", &["--token-format", "opaque"]).await;
        let bystander = create_client(&db, "bystander", &[]).await;
        let resource_server = db.create_client("rs", &["--can-introspect"]).await;
        let alice = db.create_user("alice", PASSWORD, Some("read")).await;
        let server = db.start(&[]).await;

        let jwt_tokens = tokens_of(&server, &jwt, &alice).await;
        let opaque_tokens = tokens_of(&server, &opaque, &alice).await;
        assert!(opaque_tokens[0].starts_with("gho_") && jwt_tokens[0].matches('.').count() == 2);
        let bystander_tokens = tokens_of(&server, &bystander, &alice).await;
        for tokens in [&jwt_tokens, &opaque_tokens, &bystander_tokens] {
            assert_all(&server, &resource_server, tokens, true, "before the deletion").await;
        }
        assert_ne!(stored_tokens(&db, "opaque-app").await, [0; 3]);

        let before = unix_now();
        for client in [&jwt, &opaque] {
            let deleted = db.cli_json(&["client", "delete", &client.id]).await;
            assert_eq!(deleted["deleted"], client.id.as_str());
        }
        let after = unix_now();
        assert_all(&server, &resource_server, &jwt_tokens, false, "JWT client deleted").await;
        assert_all(&server, &resource_server, &opaque_tokens, false, "opaque client deleted").await;
        assert_all(&server, &resource_server, &bystander_tokens, true, "another client").await;
        for client in [&jwt, &opaque] {
            assert_eq!(stored_tokens(&db, &client.id).await, [0; 3], "{}'s rows", client.id);
            let mark = mark(&db, "client", &client.id).await;
            assert!(
                mark.is_some_and(|at| (before..=after).contains(&at)),
                "{}: mark {mark:?}, deleted in {before}..={after}",
                client.id
            );
        }
        assert_ne!(stored_tokens(&db, "bystander").await, [0; 3]);

        // The same ids again, with new secrets.
        for (old, old_tokens) in [(&jwt, &jwt_tokens), (&opaque, &opaque_tokens)] {
            let extra: &[&str] = if old.id == "opaque-app" { &["--token-format", "opaque"] } else { &[] };
            let new = create_client(&db, &old.id, extra).await;
            // The server follows the re-creation within 5 s; tokens issued in the second
            // of the deletion are inactive (the documented price of `>=`).
            eventually(PROPAGATION_DEADLINE, "the re-created client's own token works", || async {
                let reply = server.client_credentials(&new, &[]).await;
                if reply.status != StatusCode::OK {
                    return Err(format!("{} {}", reply.status, reply.body));
                }
                match server.is_active(&resource_server, &reply.access_token()).await {
                    true => Ok(()),
                    false => Err("its new token is inactive".into()),
                }
            })
            .await;
            server
                .refresh_grant(&new, &old_tokens[2], &[])
                .await
                .assert_token_error(StatusCode::BAD_REQUEST, "invalid_grant");
            assert_all(&server, &resource_server, old_tokens, false, "after the re-creation").await;
            assert_eq!(
                stored_tokens(&db, &new.id).await[1],
                0,
                "{}: no refresh token was stored for the old one",
                new.id
            );
        }
    }

    /// `user disable` and `user delete`: every token of the user introspects
    /// inactive at once, whether JWT or opaque, from a login (with `sid`, or a family)
    /// or from a client without refresh tokens (neither); their refresh tokens are
    /// `invalid_grant`. Another user's tokens, and the client's own, stay active. Each
    /// user's id carries a revocation mark.
    async fn disabling_or_deleting_a_user_ends_their_tokens(backend) {
        let db = TestDb::new(backend).await;
        let jwt = create_client(&db, "jwt-app", &[]).await;
        let opaque = create_client(&db, "opaque-app", &["--token-format", "opaque"]).await;
        let password_only = ["--grant-types", "password", "--scope", "read"];
        let jwt_plain = db.create_client("jwt-plain", &password_only).await;
        let opaque_plain = db
            .create_client("opaque-plain", &[&password_only[..], &["--token-format", "opaque"]].concat())
            .await;
        let resource_server = db.create_client("rs", &["--can-introspect"]).await;
        let alice = db.create_user("alice", PASSWORD, Some("read")).await;
        let bob = db.create_user("bob", PASSWORD, Some("read")).await;
        let carol = db.create_user("carol", PASSWORD, Some("read")).await;
        let server = db.start(&[]).await;

        // Per user: access and refresh tokens of two logins, and the access tokens of
        // two clients that issue no refresh token; the clients' own tokens apart.
        let mut held = Vec::new();
        let mut machine = Vec::new();
        for user in [&alice, &bob, &carol] {
            let mut tokens = Vec::new();
            for client in [&jwt, &opaque] {
                let [own, access, refresh] = tokens_of(&server, client, user).await;
                machine.push(own);
                tokens.extend([access, refresh]);
            }
            for client in [&jwt_plain, &opaque_plain] {
                let login = server.login(client, user).await;
                assert!(login.get("refresh_token").is_none(), "{login}");
                tokens.push(json_str(&login, "access_token"));
            }
            assert_all(&server, &resource_server, &tokens, true, &user.username).await;
            held.push(tokens);
        }

        let before = unix_now();
        db.cli_json(&["user", "disable", "alice"]).await;
        db.cli_json(&["user", "delete", "bob"]).await;
        let after = unix_now();
        assert_all(&server, &resource_server, &held[0], false, "alice, disabled").await;
        assert_all(&server, &resource_server, &held[1], false, "bob, deleted").await;
        assert_all(&server, &resource_server, &held[2], true, "carol").await;
        assert_all(&server, &resource_server, &machine, true, "the clients' own tokens").await;
        for tokens in &held[..2] {
            for (client, refresh) in [(&jwt, &tokens[1]), (&opaque, &tokens[3])] {
                server
                    .refresh_grant(client, refresh, &[])
                    .await
                    .assert_token_error(StatusCode::BAD_REQUEST, "invalid_grant");
            }
        }

        for user in [&alice, &bob] {
            let mark = mark(&db, "user", &user.id).await;
            assert!(
                mark.is_some_and(|at| (before..=after).contains(&at)),
                "{}: mark {mark:?}, ended in {before}..={after}",
                user.username
            );
        }
        assert_eq!(mark(&db, "user", &carol.id).await, None);
        assert_eq!(
            scalar(&db, &format!("SELECT COUNT(*) FROM users WHERE user_id = '{}' AND disabled", alice.id)).await,
            1
        );
        assert_eq!(scalar(&db, &format!("SELECT COUNT(*) FROM users WHERE user_id = '{}'", bob.id)).await, 0);
    }

    /// A guard that validates by introspection refuses a deleted client's token
    /// within its cache TTL: it asks the same introspection.
    async fn an_introspecting_guard_refuses_a_deleted_client_s_token(backend) {
        let db = TestDb::new(backend).await;
        let client = db.create_client("svc", &["--scope", "read"]).await;
        let resource_server = db.create_client("api", &["--can-introspect"]).await;
        let server = db.start(&[]).await;
        let ttl = Duration::from_secs(1);
        let api = Api::start(introspecting_guard_for(&server, &resource_server, ttl)).await;
        let token = server.access_token(&client).await;
        api.get("/api/v3/cities", Some(&token)).await.assert_status(StatusCode::OK);

        db.cli_json(&["client", "delete", &client.id]).await;
        let deleted_at = Instant::now();
        let reply = eventually(PROPAGATION_DEADLINE, "the guard refuses the token", || async {
            let reply = api.get("/api/v3/cities", Some(&token)).await;
            match reply.status {
                StatusCode::OK => Err("still accepted".to_string()),
                _ => Ok(reply),
            }
        })
        .await;
        assert_refused(&reply, StatusCode::UNAUTHORIZED, "invalid_token");
        assert!(
            deleted_at.elapsed() <= ttl + Duration::from_millis(500),
            "refused after {:?} (cache TTL {ttl:?})",
            deleted_at.elapsed()
        );
    }
}

/// Two nodes on one PostgreSQL: a client deleted and a user disabled with the CLI
/// are inactive on both nodes at once (introspection reads the database, no cache).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_sees_the_deletion_at_once() {
    if Backend::Postgres.skipped() {
        return;
    }
    let db = TestDb::new(Backend::Postgres).await;
    let doomed = create_client(&db, "doomed", &[]).await;
    let kept = create_client(&db, "kept", &["--token-format", "opaque"]).await;
    let resource_server = db.create_client("rs", &["--can-introspect"]).await;
    let alice = db.create_user("alice", PASSWORD, Some("read")).await;
    let bob = db.create_user("bob", PASSWORD, Some("read")).await;
    let (a, b) = tokio::join!(db.start(&[]), db.start(&[]));

    let doomed_tokens = tokens_of(&a, &doomed, &alice).await;
    let bob_tokens = tokens_of(&b, &kept, &bob).await;
    for node in [&a, &b] {
        assert_all(node, &resource_server, &doomed_tokens, true, "before").await;
        assert_all(node, &resource_server, &bob_tokens, true, "before").await;
    }
    db.cli_json(&["client", "delete", &doomed.id]).await;
    db.cli_json(&["user", "disable", "bob"]).await;
    for (i, node) in [&a, &b].into_iter().enumerate() {
        assert_all(
            node,
            &resource_server,
            &doomed_tokens,
            false,
            &format!("node {i}: the client's"),
        )
        .await;
        // The client's own token stays; bob's access and refresh tokens end.
        assert_all(
            node,
            &resource_server,
            &bob_tokens[..1],
            true,
            &format!("node {i}"),
        )
        .await;
        assert_all(
            node,
            &resource_server,
            &bob_tokens[1..],
            false,
            &format!("node {i}: bob's"),
        )
        .await;
    }
}
