//! POST /oauth/token with `grant_type=refresh_token` (RFC 6749 section 6):
//! rotation, reuse detection (RFC 9700 section 4.14.2), the binding to one
//! client, scope narrowing, lifetimes, and users who lose their access.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;
use crate::jose;

const USER_GRANTS: &str = "password,refresh_token";

/// A client `app` with the password and refresh_token grants (plus `extra`)
/// and a user `alice`, both allowed `read write`.
async fn app_and_alice(db: &TestDb, extra: &[&str]) -> (TestClient, TestUser) {
    let mut args = vec!["--scope", "read write", "--grant-types", USER_GRANTS];
    args.extend_from_slice(extra);
    let client = db.create_client("app", &args).await;
    let user = db.create_user("alice", PASSWORD, Some("read write")).await;
    (client, user)
}

/// The access and refresh token of a successful token response.
fn tokens(body: &Value) -> (String, String) {
    let refresh = json_str(body, "refresh_token");
    assert_token_form(&refresh, "ghr_");
    (json_str(body, "access_token"), refresh)
}

/// Asserts a 400 `invalid_grant` for refreshing with `token`.
async fn assert_refused(server: &TestServer<'_>, client: &TestClient, token: &str, what: &str) {
    let reply = server.refresh_grant(client, token, &[]).await;
    let problems = reply.error_problems(StatusCode::BAD_REQUEST, "invalid_grant", true);
    assert!(problems.is_empty(), "{what}: {}: {reply:?}", problems.join("; "));
}

/// Keeps refreshing (rotating on every 200) until the token is refused, for
/// 5 s at most: admin changes reach a running server within 5 seconds.
async fn until_refresh_refused(server: &TestServer<'_>, client: &TestClient, token: &str, what: &str) {
    let start = Instant::now();
    let mut token = token.to_string();
    loop {
        let reply = server.refresh_grant(client, &token, &[]).await;
        if reply.status == StatusCode::OK {
            token = reply.refresh_token();
            assert!(
                start.elapsed() < PROPAGATION_DEADLINE,
                "{what}: still refreshing after {PROPAGATION_DEADLINE:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        reply.assert_token_error(StatusCode::BAD_REQUEST, "invalid_grant");
        return;
    }
}

/// Login, two refreshes, then the first refresh token again: refused, and
/// with it the whole family, access tokens included; another login of the
/// same user is untouched.
async fn reuse_revokes_the_family(backend: Backend, client_extra: &[&str], access_prefix: &str) {
    let db = TestDb::new(backend).await;
    let (client, user) = app_and_alice(&db, client_extra).await;
    let server = db.start(&[]).await;

    let (access0, refresh0) = tokens(&server.login(&client, &user).await);
    let (access1, refresh1) = tokens(&server.refresh(&client, &refresh0).await);
    let (access2, refresh2) = tokens(&server.refresh(&client, &refresh1).await);
    let (other_access, other_refresh) = tokens(&server.login(&client, &user).await);
    for access in [&access0, &access1, &access2] {
        assert!(access.starts_with(access_prefix), "{access}");
        assert!(server.is_active(&client, access).await, "before reuse: {access}");
    }
    assert!(server.is_active(&client, &refresh2).await);

    assert_refused(&server, &client, &refresh0, "a rotated-out refresh token").await;
    assert_refused(&server, &client, &refresh2, "the newest token of a reused family").await;
    assert_refused(&server, &client, &refresh1, "a middle token of a reused family").await;
    for (what, token) in [
        ("the login's access token", &access0),
        ("the first refresh's access token", &access1),
        ("the newest access token", &access2),
        ("the newest refresh token", &refresh2),
    ] {
        assert!(
            !server.is_active(&client, token).await,
            "after reuse, {what} of the family is still active"
        );
    }

    // Another login of the same user is another family.
    assert!(server.is_active(&client, &other_access).await);
    server.refresh(&client, &other_refresh).await;
}

backend_tests! {
    /// Every refresh rotates: a new refresh token and a new access token for
    /// the same user and login (`sid`), and the old refresh token is dead.
    async fn refresh_rotates_the_refresh_token(backend) {
        let db = TestDb::new(backend).await;
        let (client, user) = app_and_alice(&db, &[]).await;
        let server = db.start(&[]).await;

        let login = server.login(&client, &user).await;
        let (access, mut refresh) = tokens(&login);
        let sid = json_str(&jose::decode(&access).claims, "sid");
        let mut seen = vec![access, refresh.clone()];
        for _ in 0..3 {
            let reply = server.refresh_grant(&client, &refresh, &[]).await;
            let next = reply.refresh_token();
            let body = reply.json();
            assert_eq!(body["token_type"], "Bearer", "{body}");
            assert_eq!(body["expires_in"], 3600, "{body}");
            assert_eq!(scope_set(&json_str(&body, "scope")), ["read", "write"], "{body}");
            let access = json_str(&body, "access_token");
            let claims = jose::decode(&access).claims;
            assert_eq!(claims["sub"], user.id.as_str(), "{claims}");
            assert_eq!(claims["client_id"], client.id.as_str(), "{claims}");
            assert_eq!(
                claims["sid"],
                sid.as_str(),
                "a refresh stays in the login's family: {claims}"
            );
            for old in &seen {
                assert!(old != &next && old != &access, "a token was issued twice");
            }
            seen.extend([access, next.clone()]);
            refresh = next;
        }
        // client_secret_post and a JSON body work too.
        let reply = server
            .token_json(
                &client.post(),
                &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
            )
            .await;
        let newest = reply.refresh_token();

        assert_refused(&server, &client, &refresh, "the refresh token just rotated out").await;
        assert_refused(&server, &client, &newest, "the newest token after a reuse").await;
    }

    /// Reuse of a rotated refresh token revokes the family (JWT access tokens).
    async fn reuse_revokes_the_family_with_jwts(backend) {
        reuse_revokes_the_family(backend, &[], "ey").await;
    }

    /// Reuse of a rotated refresh token revokes the family (opaque access tokens).
    async fn reuse_revokes_the_family_with_opaque_tokens(backend) {
        reuse_revokes_the_family(backend, &["--token-format", "opaque"], "gho_").await;
    }

    /// A refresh token works only for its client: another client is refused
    /// (`invalid_grant`, or `unauthorized_client` without the grant) and the
    /// token keeps working for its own.
    async fn refresh_token_belongs_to_its_client(backend) {
        let db = TestDb::new(backend).await;
        let (client, user) = app_and_alice(&db, &[]).await;
        let thief = db
            .create_client("thief", &["--scope", "read write", "--grant-types", USER_GRANTS])
            .await;
        let no_grant = db
            .create_client(
                "no-grant",
                &["--scope", "read write", "--grant-types", "password"],
            )
            .await;
        let server = db.start(&[]).await;

        let (_, refresh) = tokens(&server.login(&client, &user).await);
        let reply = server.refresh_grant(&no_grant, &refresh, &[]).await;
        reply.assert_token_error(StatusCode::BAD_REQUEST, "unauthorized_client");
        let reply = server.refresh_grant(&no_grant, "garbage", &[]).await;
        reply.assert_token_error(StatusCode::BAD_REQUEST, "unauthorized_client");
        assert_refused(&server, &thief, &refresh, "another client's refresh token").await;

        let (access, refresh) = tokens(&server.refresh(&client, &refresh).await);
        assert_eq!(jose::decode(&access).claims["client_id"], client.id.as_str());
        server.refresh(&client, &refresh).await;
    }

    /// `scope` may narrow a refresh, and a later refresh without it gets the
    /// original scope back; wider than the login granted is `invalid_scope`,
    /// and the refused request does not use the token up.
    async fn refresh_scope_may_narrow_but_never_widen(backend) {
        let db = TestDb::new(backend).await;
        let client = db
            .create_client(
                "app",
                &["--scope", "read write admin", "--grant-types", USER_GRANTS],
            )
            .await;
        db.create_user("alice", PASSWORD, Some("read write admin")).await;
        let server = db.start(&[]).await;

        let reply = server
            .password_grant(&client, "alice", PASSWORD, &[("scope", "read write")])
            .await;
        let refresh = reply.refresh_token();

        let reply = server
            .refresh_grant(&client, &refresh, &[("scope", "read")])
            .await;
        let refresh = reply.refresh_token();
        let body = reply.json();
        assert_eq!(body["scope"], "read", "{body}");
        assert_eq!(
            jose::decode(&json_str(&body, "access_token")).claims["scope"],
            "read"
        );

        let reply = server.refresh_grant(&client, &refresh, &[]).await;
        let refresh = reply.refresh_token();
        let body = reply.json();
        assert_eq!(
            scope_set(&json_str(&body, "scope")),
            ["read", "write"],
            "the full grant is back: {body}"
        );

        for wider in ["admin", "read write admin", "read unknown"] {
            let reply = server.refresh_grant(&client, &refresh, &[("scope", wider)]).await;
            let problems = reply.error_problems(StatusCode::BAD_REQUEST, "invalid_scope", true);
            assert!(
                problems.is_empty(),
                "scope {wider:?}: {}: {reply:?}",
                problems.join("; ")
            );
        }
        let body = server.refresh(&client, &refresh).await;
        assert_eq!(scope_set(&json_str(&body, "scope")), ["read", "write"], "{body}");
    }

    /// Anything that is not a live refresh token of this client is
    /// `invalid_grant`; a missing one is `invalid_request`.
    async fn unknown_refresh_tokens_are_invalid_grant(backend) {
        let db = TestDb::new(backend).await;
        let (client, user) = app_and_alice(&db, &[]).await;
        let server = db.start(&[]).await;
        let (access, refresh) = tokens(&server.login(&client, &user).await);

        let random = random_token("ghr_");
        // The first character after the prefix carries 6 bits of the token.
        let mut altered = refresh.clone().into_bytes();
        altered[4] = if altered[4] == b'A' { b'B' } else { b'A' };
        let altered = String::from_utf8(altered).expect("ASCII");
        for (what, token) in [
            ("garbage", "garbage"),
            ("an unknown ghr_ token", random.as_str()),
            ("an altered refresh token", altered.as_str()),
            ("an access token", access.as_str()),
        ] {
            assert_refused(&server, &client, token, what).await;
        }
        let reply = server
            .token_form(&client.basic(), &[("grant_type", "refresh_token")])
            .await;
        reply.assert_token_error(StatusCode::BAD_REQUEST, "invalid_request");
        // None of that was a reuse of the real token.
        server.refresh(&client, &refresh).await;
    }

    /// A refresh token dies at the end of the client's `--refresh-token-ttl`,
    /// not before (the server runs on a clock the test moves).
    async fn expired_refresh_token_is_refused(backend) {
        let db = TestDb::new(backend).await;
        let (client, user) = app_and_alice(&db, &["--refresh-token-ttl", "2"]).await;
        let clock = stopped_clock();
        let server = db.start_on(&clock, &[]).await;

        let (_, refresh) = tokens(&server.login(&client, &user).await);
        let introspected = server.introspection(&client, &refresh).await;
        assert_eq!(introspected["active"], true, "{introspected}");
        let exp = introspected["exp"]
            .as_i64()
            .unwrap_or_else(|| panic!("no exp: {introspected}"));
        let iat = introspected["iat"]
            .as_i64()
            .unwrap_or_else(|| panic!("no iat: {introspected}"));
        assert_eq!(exp - iat, 2, "{introspected}");
        clock.advance(1);
        let (_, refresh) = tokens(&server.refresh(&client, &refresh).await);
        let introspected = server.introspection(&client, &refresh).await;
        let exp = introspected["exp"]
            .as_i64()
            .unwrap_or_else(|| panic!("no exp: {introspected}"));
        assert_eq!(exp, iat + 3, "a rotation gets the full lifetime: {introspected}");

        // Usable for its last second…
        clock.advance(1);
        assert!(server.is_active(&client, &refresh).await, "a refresh token at exp - 1");
        // …and not at exp.
        clock.advance(1);
        assert_refused(&server, &client, &refresh, "an expired refresh token").await;
        assert!(
            !server.is_active(&client, &refresh).await,
            "an expired refresh token is active"
        );
    }

    /// Refresh lifetime: 30 days by default, `--refresh-token-ttl` or
    /// `GATEHOUSE_REFRESH_TOKEN_TTL` globally, and a client's own setting first.
    async fn refresh_token_lifetimes(backend) {
        let db = TestDb::new(backend).await;
        let (client, user) = app_and_alice(&db, &[]).await;
        let own = db
            .create_client(
                "own",
                &[
                    "--scope",
                    "read",
                    "--grant-types",
                    USER_GRANTS,
                    "--refresh-token-ttl",
                    "60",
                ],
            )
            .await;

        async fn lifetime(server: &TestServer<'_>, client: &TestClient, user: &TestUser) -> i64 {
            let (_, refresh) = tokens(&server.login(client, user).await);
            let body = server.introspection(client, &refresh).await;
            assert_eq!(body["active"], true, "{body}");
            assert_eq!(body["token_type"], "refresh_token", "{body}");
            body["exp"].as_i64().expect("exp") - body["iat"].as_i64().expect("iat")
        }

        for (settings, env, default_ttl) in [
            (vec![], None, 2_592_000),
            (vec!["--refresh-token-ttl", "7200"], None, 7200),
            (vec![], Some("900"), 900),
        ] {
            let mut builder = db.server().args(&settings);
            if let Some(ttl) = env {
                builder = builder.env("GATEHOUSE_REFRESH_TOKEN_TTL", ttl);
            }
            let server = builder.start().await;
            assert_eq!(
                lifetime(&server, &client, &user).await,
                default_ttl,
                "{settings:?} {env:?}"
            );
            assert_eq!(lifetime(&server, &own, &user).await, 60, "{settings:?} {env:?}");
            server.stop_with("TERM").await;
        }
    }

    /// A user disabled or deleted after logging in can no longer refresh;
    /// other users can.
    async fn disabled_or_deleted_user_cannot_refresh(backend) {
        let db = TestDb::new(backend).await;
        let (client, alice) = app_and_alice(&db, &[]).await;
        let bob = db.create_user("bob", PASSWORD, Some("read")).await;
        let carol = db.create_user("carol", PASSWORD, Some("read")).await;
        let server = db.start(&[]).await;

        let (_, alice_refresh) = tokens(&server.login(&client, &alice).await);
        let (_, bob_refresh) = tokens(&server.login(&client, &bob).await);
        let (_, carol_refresh) = tokens(&server.login(&client, &carol).await);
        let (_, alice_refresh) = tokens(&server.refresh(&client, &alice_refresh).await);
        let (_, bob_refresh) = tokens(&server.refresh(&client, &bob_refresh).await);

        server.cli_json(&["user", "disable", "alice"]).await;
        until_refresh_refused(&server, &client, &alice_refresh, "a disabled user refreshes").await;
        server.cli_json(&["user", "delete", "bob"]).await;
        until_refresh_refused(&server, &client, &bob_refresh, "a deleted user refreshes").await;

        let (_, carol_refresh) = tokens(&server.refresh(&client, &carol_refresh).await);
        server.refresh(&client, &carol_refresh).await;
    }
}
