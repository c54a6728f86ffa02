//! POST /oauth/revoke (RFC 7009) and `gatehouse token revoke`: refresh tokens
//! take their family with them, access tokens (JWT or opaque) go alone,
//! holding a token is the right to give it up, and other clients' tokens are
//! left alone.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

const ALL_GRANTS: &str = "client_credentials,password,refresh_token";

/// A client `app` (every grant, plus `extra`) and a user `alice`.
async fn app_and_alice(db: &TestDb, extra: &[&str]) -> (TestClient, TestUser) {
    let mut args = vec!["--scope", "read write", "--grant-types", ALL_GRANTS];
    args.extend_from_slice(extra);
    let client = db.create_client("app", &args).await;
    let user = db.create_user("alice", PASSWORD, Some("read write")).await;
    (client, user)
}

fn tokens(body: &Value) -> (String, String) {
    (json_str(body, "access_token"), json_str(body, "refresh_token"))
}

/// A revocation that succeeded: 200, an empty body, the no-store headers.
fn assert_revoked(reply: &Reply) {
    reply.assert_status(StatusCode::OK).assert_no_store();
    assert!(reply.body.trim().is_empty(), "a body on success: {reply:?}");
}

async fn assert_refresh_refused(server: &TestServer<'_>, client: &TestClient, token: &str, what: &str) {
    let reply = server.refresh_grant(client, token, &[]).await;
    let problems = reply.error_problems(StatusCode::BAD_REQUEST, "invalid_grant", true);
    assert!(problems.is_empty(), "{what}: {}: {reply:?}", problems.join("; "));
}

backend_tests! {
    /// Revoking a refresh token (client_secret_basic) kills it, every access
    /// token of its login, and nothing of another login.
    async fn revoking_a_refresh_token_revokes_its_family(backend) {
        let db = TestDb::new(backend).await;
        let (client, user) = app_and_alice(&db, &[]).await;
        let server = db.start(&[]).await;

        let (access0, refresh0) = tokens(&server.login(&client, &user).await);
        let (access1, refresh1) = tokens(&server.refresh(&client, &refresh0).await);
        let (other_access, other_refresh) = tokens(&server.login(&client, &user).await);

        let reply = server
            .revoke(Some(&client.basic()), &[("token", &refresh1)])
            .await;
        assert_revoked(&reply);
        assert_refresh_refused(&server, &client, &refresh1, "a revoked refresh token").await;
        for (what, token) in [
            ("the login's", &access0),
            ("the refresh's", &access1),
            ("the refresh", &refresh1),
        ] {
            assert!(
                !server.is_active(&client, token).await,
                "{what} token is still active"
            );
        }
        assert!(
            server.is_active(&client, &other_access).await,
            "another login was revoked"
        );
        server.refresh(&client, &other_refresh).await;
    }

    /// Without client authentication the presented token itself is revoked:
    /// a JWT access token, then a refresh token with its family.
    async fn the_holder_of_a_token_may_revoke_it(backend) {
        let db = TestDb::new(backend).await;
        let (client, user) = app_and_alice(&db, &[]).await;
        let server = db.start(&[]).await;

        let (access, _) = tokens(&server.login(&client, &user).await);
        assert_revoked(&server.revoke(None, &[("token", &access)]).await);
        assert!(
            !server.is_active(&client, &access).await,
            "a revoked JWT is active"
        );

        let (access, refresh) = tokens(&server.login(&client, &user).await);
        assert_revoked(&server.revoke(None, &[("token", &refresh)]).await);
        assert_refresh_refused(&server, &client, &refresh, "a revoked refresh token").await;
        assert!(
            !server.is_active(&client, &access).await,
            "the family's access token is active"
        );

        let service = server.access_token(&client).await;
        assert_revoked(&server.revoke(None, &[("token", &service)]).await);
        assert!(
            !server.is_active(&client, &service).await,
            "a revoked client_credentials JWT is active"
        );

        // RFC 7009 §2.1: a client that cannot authenticate sends its client_id;
        // without a certificate that authenticates nobody, and the holder revokes.
        let service = server.access_token(&client).await;
        let named = [("token", service.as_str()), ("client_id", client.id.as_str())];
        assert_revoked(&server.revoke(None, &named).await);
        assert!(
            !server.is_active(&client, &service).await,
            "a JWT revoked with a bare client_id is active"
        );
    }

    /// Revoking an access token (JWT or opaque) revokes that token only; a
    /// JSON body, client_secret_post and any `token_type_hint` work.
    async fn revoking_an_access_token_revokes_that_token(backend) {
        let db = TestDb::new(backend).await;
        let (client, user) = app_and_alice(&db, &[]).await;
        let opaque = db
            .create_client("opaque", &["--scope", "read", "--token-format", "opaque"])
            .await;
        let server = db.start(&[]).await;

        let first = server.access_token(&client).await;
        let second = server.access_token(&client).await;
        let reply = server
            .post_raw(
                "/oauth/revoke",
                Some(JSON),
                None,
                json!({
                    "token": first,
                    "token_type_hint": "access_token",
                    "client_id": client.id,
                    "client_secret": client.secret,
                })
                .to_string(),
            )
            .await;
        assert_revoked(&reply);
        assert!(
            !server.is_active(&client, &first).await,
            "a revoked JWT is active"
        );
        assert!(
            server.is_active(&client, &second).await,
            "another JWT was revoked"
        );

        let first = server.access_token(&opaque).await;
        let second = server.access_token(&opaque).await;
        assert_token_form(&first, "gho_");
        let reply = server
            .revoke(
                Some(&opaque.post()),
                &[("token", &first), ("token_type_hint", "refresh_token")],
            )
            .await;
        assert_revoked(&reply);
        assert!(
            !server.is_active(&opaque, &first).await,
            "a revoked opaque token is active"
        );
        assert!(
            server.is_active(&opaque, &second).await,
            "another opaque token was revoked"
        );

        // A hint that is wrong, or unknown, is only a hint.
        let (_, refresh) = tokens(&server.login(&client, &user).await);
        let reply = server
            .revoke(
                Some(&client.basic()),
                &[("token", &refresh), ("token_type_hint", "access_token")],
            )
            .await;
        assert_revoked(&reply);
        assert_refresh_refused(&server, &client, &refresh, "revoked with a wrong hint").await;
        let (access, _) = tokens(&server.login(&client, &user).await);
        let reply = server
            .revoke(
                Some(&client.basic()),
                &[("token", &access), ("token_type_hint", "something_else")],
            )
            .await;
        assert_revoked(&reply);
        assert!(
            !server.is_active(&client, &access).await,
            "revoked with an unknown hint"
        );
    }

    /// An authenticated client cannot revoke another client's token: 400
    /// `unauthorized_client`, and the token keeps working.
    async fn another_clients_token_is_left_alone(backend) {
        let db = TestDb::new(backend).await;
        let (client, user) = app_and_alice(&db, &[]).await;
        let other = db.create_client("other", &["--scope", "read"]).await;
        let server = db.start(&[]).await;

        let (access, refresh) = tokens(&server.login(&client, &user).await);
        let service = server.access_token(&client).await;
        for token in [&refresh, &access, &service] {
            let reply = server.revoke(Some(&other.basic()), &[("token", token)]).await;
            reply.assert_token_error(StatusCode::BAD_REQUEST, "unauthorized_client");
        }
        assert!(
            server.is_active(&client, &access).await,
            "the access token was revoked"
        );
        assert!(
            server.is_active(&client, &service).await,
            "the service token was revoked"
        );
        server.refresh(&client, &refresh).await;
    }

    /// Bad client credentials are 401 `invalid_client` and revoke nothing; no
    /// `token` is `invalid_request`; an unknown token is a 200.
    async fn revoke_errors_and_unknown_tokens(backend) {
        let db = TestDb::new(backend).await;
        let (client, user) = app_and_alice(&db, &[]).await;
        let server = db.start(&[]).await;
        let (access, refresh) = tokens(&server.login(&client, &user).await);

        let wrong_secret = format!("{}-wrong", client.secret);
        for auth in [
            ClientAuth::basic(&client.id, &wrong_secret),
            ClientAuth::Post(client.id.clone(), wrong_secret.clone()),
            ClientAuth::basic("no-such-client", &client.secret),
        ] {
            for token in [&refresh, &access] {
                let reply = server.revoke(Some(&auth), &[("token", token)]).await;
                reply.assert_token_error(StatusCode::UNAUTHORIZED, "invalid_client");
            }
        }
        assert!(
            server.is_active(&client, &access).await,
            "revoked with a wrong secret"
        );
        let (_, refresh) = tokens(&server.refresh(&client, &refresh).await);

        for auth in [Some(client.basic()), None] {
            let reply = server
                .revoke(auth.as_ref(), &[("token_type_hint", "refresh_token")])
                .await;
            reply.assert_token_error(StatusCode::BAD_REQUEST, "invalid_request");
            for token in [random_token("ghr_"), random_token("gho_"), "garbage".to_string()] {
                assert_revoked(&server.revoke(auth.as_ref(), &[("token", &token)]).await);
            }
        }
        server.refresh(&client, &refresh).await;
    }

    /// `gatehouse token revoke TOKEN` revokes refresh tokens (with their
    /// family), JWTs and opaque tokens on the database a server runs on, and
    /// says `revoked: false` (status 0) for a token it does not know.
    async fn token_revoke_command(backend) {
        let db = TestDb::new(backend).await;
        let (client, user) = app_and_alice(&db, &[]).await;
        let opaque = db
            .create_client("opaque", &["--scope", "read", "--token-format", "opaque"])
            .await;
        let server = db.start(&[]).await;

        let (family_access, refresh) = tokens(&server.login(&client, &user).await);
        let service = server.access_token(&client).await;
        let opaque_token = server.access_token(&opaque).await;
        let untouched = server.access_token(&client).await;

        for token in [&refresh, &service, &opaque_token] {
            let out = db.cli(&["token", "revoke", token, "--json"]).await;
            assert_eq!(out.json(), json!({"revoked": true}), "{out:#?}");
            assert!(
                !out.stdout.contains(token.as_str()) && !out.stderr.contains(token.as_str()),
                "the command prints the token: {out:#?}"
            );
        }
        for token in [
            random_token("ghr_"),
            random_token("gho_"),
            "not-a-token".to_string(),
        ] {
            let out = db.cli(&["token", "revoke", &token, "--json"]).await;
            assert_eq!(out.code(), Some(0), "{out:#?}");
            assert_eq!(out.json(), json!({"revoked": false}), "{out:#?}");
        }

        eventually(
            PROPAGATION_DEADLINE,
            "the running server sees the revocations",
            || async {
                let mut active = Vec::new();
                for (what, client, token) in [
                    ("the family's access token", &client, &family_access),
                    ("the refresh token", &client, &refresh),
                    ("the client_credentials JWT", &client, &service),
                    ("the opaque token", &opaque, &opaque_token),
                ] {
                    if server.is_active(client, token).await {
                        active.push(what);
                    }
                }
                if active.is_empty() {
                    Ok(())
                } else {
                    Err(format!("still active: {active:?}"))
                }
            },
        )
        .await;
        assert_refresh_refused(&server, &client, &refresh, "a refresh token revoked by the CLI").await;
        assert!(
            server.is_active(&client, &untouched).await,
            "another token was revoked"
        );
    }
}
