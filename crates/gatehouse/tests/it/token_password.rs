//! POST /oauth/token with `grant_type=password` (RFC 6749 section 4.3): the
//! user's token, its scope, who may use the grant, and failures that do not
//! tell an attacker which usernames exist.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;
use crate::jose;

const ISSUER: &str = "http://test.local";

/// The `error_description` of a 400 `invalid_grant` (after checking the rest).
fn invalid_grant_description(reply: &Reply) -> String {
    reply.assert_token_error(StatusCode::BAD_REQUEST, "invalid_grant");
    json_str(&reply.json(), "error_description")
}

/// A successful password grant's body, checked against RFC 6749 section 5.1.
fn assert_user_token_response(reply: &Reply, scope: &str) -> Value {
    reply.access_token();
    let body = reply.json();
    assert_eq!(body["token_type"], "Bearer", "{body}");
    assert_eq!(body["expires_in"], 3600, "{body}");
    assert_eq!(scope_set(&json_str(&body, "scope")), scope_set(scope), "{body}");
    body
}

/// Polls (5 s at most) until logging in as `user` is refused, and returns
/// that reply: admin changes reach a running server within 5 seconds.
async fn until_login_refused(server: &TestServer<'_>, client: &TestClient, user: &TestUser) -> Reply {
    let what = format!("{} can no longer log in", user.username);
    eventually(PROPAGATION_DEADLINE, &what, || async {
        let reply = server
            .password_grant(client, &user.username, &user.password, &[])
            .await;
        match reply.status {
            StatusCode::BAD_REQUEST => Ok(reply),
            other => Err(format!("{other} {}", reply.body)),
        }
    })
    .await
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort_unstable();
    samples[samples.len() / 2]
}

backend_tests! {
    /// The password grant issues an RFC 9068 JWT whose `sub` is the user's id;
    /// without the refresh_token grant, no refresh token. Absent a scope, the
    /// client's and the user's scopes meet.
    async fn password_grant_issues_a_user_token(backend) {
        let db = TestDb::new(backend).await;
        let client = db
            .create_client(
                "app",
                &["--scope", "read write admin", "--grant-types", "password"],
            )
            .await;
        let user = db.create_user("alice", PASSWORD, Some("read write email")).await;
        let server = db.start(&["--issuer", ISSUER]).await;

        let reply = server.password_grant(&client, "alice", PASSWORD, &[]).await;
        let body = assert_user_token_response(&reply, "read write");
        assert!(
            body.get("refresh_token").is_none(),
            "a refresh token for a client without the refresh_token grant: {body}"
        );
        let token = reply.access_token();
        let jose::Decoded { header, claims } = jose::decode(&token);
        assert_eq!(header["typ"], "at+jwt", "{header}");
        assert_eq!(claims["sub"], user.id.as_str(), "{claims}");
        assert_eq!(claims["client_id"], client.id.as_str(), "{claims}");
        assert_eq!(
            scope_set(&json_str(&claims, "scope")),
            ["read", "write"],
            "{claims}"
        );
        let verified = jose::verify(&token, &server.jwks().await, ISSUER, ISSUER);
        assert_eq!(verified.subject.as_deref(), Some(user.id.as_str()));

        // client_secret_post, a JSON body and a scope subset work too.
        let reply = server
            .token_json(
                &client.post(),
                &[
                    ("grant_type", "password"),
                    ("username", "alice"),
                    ("password", PASSWORD),
                    ("scope", "write"),
                ],
            )
            .await;
        assert_user_token_response(&reply, "write");
        let claims = jose::decode(&reply.access_token()).claims;
        assert_eq!(claims["scope"], "write", "{claims}");
        assert_eq!(claims["sub"], user.id.as_str(), "{claims}");
    }

    /// A requested scope must lie within both the client's and the user's.
    async fn password_grant_scope_is_within_client_and_user(backend) {
        let db = TestDb::new(backend).await;
        let client = db
            .create_client(
                "app",
                &["--scope", "read write admin", "--grant-types", "password"],
            )
            .await;
        db.create_user("alice", PASSWORD, Some("read write email")).await;
        let server = db.start(&[]).await;

        let reply = server
            .password_grant(&client, "alice", PASSWORD, &[("scope", "write read")])
            .await;
        assert_user_token_response(&reply, "read write");
        for scope in ["admin", "email", "read admin", "read email", "unknown"] {
            let reply = server
                .password_grant(&client, "alice", PASSWORD, &[("scope", scope)])
                .await;
            let problems = reply.error_problems(StatusCode::BAD_REQUEST, "invalid_scope", true);
            assert!(
                problems.is_empty(),
                "scope {scope:?}: {}: {reply:?}",
                problems.join("; ")
            );
        }
    }

    /// A refresh token comes with the password grant only when the client also
    /// holds the refresh_token grant (and then a `sid` names the login's
    /// family), and never with client_credentials.
    async fn refresh_token_only_with_the_refresh_token_grant(backend) {
        let db = TestDb::new(backend).await;
        let with = db
            .create_client(
                "with",
                &[
                    "--scope",
                    "read",
                    "--grant-types",
                    "client_credentials,password,refresh_token",
                ],
            )
            .await;
        let without = db
            .create_client(
                "without",
                &["--scope", "read", "--grant-types", "client_credentials,password"],
            )
            .await;
        let user = db.create_user("alice", PASSWORD, Some("read")).await;
        let server = db.start(&[]).await;

        // Each login with a refresh token starts a family, named by `sid`.
        let mut sids = Vec::new();
        for _ in 0..2 {
            let reply = server.password_grant(&with, "alice", PASSWORD, &[]).await;
            reply.refresh_token();
            let claims = jose::decode(&reply.access_token()).claims;
            assert_eq!(claims["sub"], user.id.as_str(), "{claims}");
            sids.push(json_str(&claims, "sid"));
        }
        assert!(!sids[0].is_empty() && sids[0] != sids[1], "sids {sids:?}");
        let body = server.login(&without, &user).await;
        assert!(body.get("refresh_token").is_none(), "{body}");
        for client in [&with, &without] {
            let body = server.client_credentials(client, &[]).await.json();
            assert!(body.get("refresh_token").is_none(), "client_credentials: {body}");
        }
    }

    /// A client without the password grant is `unauthorized_client`, even
    /// with the right password.
    async fn client_without_the_password_grant_is_unauthorized(backend) {
        let db = TestDb::new(backend).await;
        let plain = db.create_client("plain", &["--scope", "read"]).await;
        let refresh_only = db
            .create_client(
                "refresh-only",
                &["--scope", "read", "--grant-types", "refresh_token"],
            )
            .await;
        db.create_user("alice", PASSWORD, Some("read")).await;
        let server = db.start(&[]).await;

        for client in [&plain, &refresh_only] {
            let reply = server.password_grant(client, "alice", PASSWORD, &[]).await;
            reply.assert_token_error(StatusCode::BAD_REQUEST, "unauthorized_client");
            assert!(!reply.body.contains(PASSWORD), "{reply:?}");
        }
    }

    /// A wrong password, an unknown user, a disabled user and a deleted user
    /// all get the same `invalid_grant` with the same description, whether
    /// the change was made before the server started or while it runs.
    async fn failed_logins_are_indistinguishable(backend) {
        let db = TestDb::new(backend).await;
        let client = db
            .create_client("app", &["--scope", "read", "--grant-types", "password"])
            .await;
        let alice = db.create_user("alice", PASSWORD, Some("read")).await;
        db.create_user("carol", PASSWORD, Some("read")).await;
        db.create_user("dave", PASSWORD, Some("read")).await;
        let erin = db.create_user("erin", PASSWORD, Some("read")).await;
        let frank = db.create_user("frank", PASSWORD, Some("read")).await;
        db.cli_json(&["user", "disable", "carol"]).await;
        db.cli_json(&["user", "delete", "dave"]).await;
        let server = db.start(&[]).await;
        // Erin and Frank log in (and may be cached) before they are changed.
        server.login(&client, &erin).await;
        server.login(&client, &frank).await;

        let mut seen = Vec::new();
        for (what, username, password) in [
            ("a wrong password", "alice", "not the password"),
            (
                "a wrong password for a disabled user",
                "carol",
                "not the password",
            ),
            ("an unknown user", "mallory", PASSWORD),
            ("a disabled user", "carol", PASSWORD),
            ("a deleted user", "dave", PASSWORD),
        ] {
            let reply = server.password_grant(&client, username, password, &[]).await;
            let description = invalid_grant_description(&reply);
            assert!(
                !reply.body.contains(password),
                "{what}: the error echoes the password"
            );
            seen.push((what, description));
        }
        server.cli_json(&["user", "disable", "erin"]).await;
        let reply = until_login_refused(&server, &client, &erin).await;
        seen.push((
            "a user disabled while the server runs",
            invalid_grant_description(&reply),
        ));
        server.cli_json(&["user", "delete", "frank"]).await;
        let reply = until_login_refused(&server, &client, &frank).await;
        seen.push((
            "a user deleted while the server runs",
            invalid_grant_description(&reply),
        ));

        let (first, description) = &seen[0];
        for (what, other) in &seen[1..] {
            assert_eq!(other, description, "{what} and {first} are told apart");
        }
        // The one who was never touched still logs in.
        server.login(&client, &alice).await;
    }

    /// Missing `username` or `password` is `invalid_request` (RFC 6749 section 4.3.2).
    async fn missing_username_or_password_is_invalid_request(backend) {
        let db = TestDb::new(backend).await;
        let client = db
            .create_client("app", &["--scope", "read", "--grant-types", "password"])
            .await;
        db.create_user("alice", PASSWORD, Some("read")).await;
        let server = db.start(&[]).await;

        for params in [
            vec![("grant_type", "password"), ("password", PASSWORD)],
            vec![("grant_type", "password"), ("username", "alice")],
        ] {
            let reply = server.token_form(&client.basic(), &params).await;
            reply.assert_token_error(StatusCode::BAD_REQUEST, "invalid_request");
        }
    }

    /// The password is stdin minus one trailing newline, nothing else removed;
    /// a user created while the server runs can log in.
    async fn password_from_stdin_is_taken_verbatim(backend) {
        let db = TestDb::new(backend).await;
        let client = db
            .create_client("app", &["--scope", "read", "--grant-types", "password"])
            .await;
        let server = db.start(&[]).await;

        let password = "  pass word \u{2713} with spaces  ";
        let user = db.create_user("zoë", password, Some("read")).await;
        let token = eventually(PROPAGATION_DEADLINE, "a new user logs in", || async {
            let reply = server.password_grant(&client, "zoë", password, &[]).await;
            match reply.status {
                StatusCode::OK => Ok(reply.access_token()),
                other => Err(format!("{other} {}", reply.body)),
            }
        })
        .await;
        assert_eq!(jose::decode(&token).claims["sub"], user.id.as_str());
        let with_newline = format!("{password}\n");
        for wrong in [password.trim(), with_newline.as_str()] {
            let reply = server.password_grant(&client, "zoë", wrong, &[]).await;
            reply.assert_token_error(StatusCode::BAD_REQUEST, "invalid_grant");
        }
    }

    /// An unknown user costs the server as much as a wrong password (a dummy
    /// hash is verified), so response times do not reveal who exists.
    async fn unknown_user_takes_as_long_as_a_wrong_password(backend) {
        let db = TestDb::new(backend).await;
        let client = db
            .create_client("app", &["--scope", "read", "--grant-types", "password"])
            .await;
        db.create_user("alice", PASSWORD, Some("read")).await;
        // Sixteen wrong passwords in a row: the guessing brake is off for this one.
        let server = db.start(&["--login-lockout-threshold", "0"]).await;

        let time = |username: &'static str| {
            let server = &server;
            let client = &client;
            async move {
                let start = Instant::now();
                let reply = server
                    .password_grant(client, username, "wrong password", &[])
                    .await;
                let elapsed = start.elapsed();
                reply.assert_token_error(StatusCode::BAD_REQUEST, "invalid_grant");
                elapsed
            }
        };
        // Warm up (connections, caches), then interleave the two kinds.
        time("alice").await;
        time("mallory").await;
        let (mut known, mut unknown) = (Vec::new(), Vec::new());
        for _ in 0..7 {
            known.push(time("alice").await);
            unknown.push(time("mallory").await);
        }
        let (known, unknown) = (median(known), median(unknown));
        assert!(
            unknown * 3 >= known,
            "an unknown user is answered in {unknown:?}, a wrong password in {known:?}: \
             the difference tells which usernames exist"
        );
    }
}
