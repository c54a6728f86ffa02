//! POST /oauth/introspect (RFC 7662): what a resource server learns about a
//! token, who may ask, and that anything not active is exactly
//! `{"active": false}`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as BASE64URL;
use base64::Engine as _;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::jose;

const ISSUER: &str = "http://test.local";
const AUDIENCE: &str = "https://api.example";

/// `app` (every grant, an audience), the resource server `rs`
/// (`--can-introspect`), an ordinary `other` client, and the user `alice`.
struct Cast {
    app: TestClient,
    rs: TestClient,
    other: TestClient,
    alice: TestUser,
}

async fn cast(db: &TestDb) -> Cast {
    let app = db
        .create_client(
            "app",
            &[
                "--scope",
                "read write",
                "--grant-types",
                "client_credentials,password,refresh_token",
                "--audience",
                AUDIENCE,
            ],
        )
        .await;
    let rs = db.create_client("rs", &["--can-introspect"]).await;
    let other = db.create_client("other", &["--scope", "read write"]).await;
    let alice = db.create_user("alice", PASSWORD, Some("read write")).await;
    Cast {
        app,
        rs,
        other,
        alice,
    }
}

/// `aud` as a sorted list, whether a string or an array.
fn audiences(object: &Value) -> Vec<String> {
    let mut auds = jose::audiences(object);
    auds.sort_unstable();
    auds
}

/// Asserts that an active introspection of the JWT `token` repeats its claims.
fn assert_describes_jwt(body: &Value, token: &str) {
    let claims = jose::decode(token).claims;
    assert_eq!(body["active"], true, "{body}");
    assert_eq!(body["token_type"], "Bearer", "{body}");
    for member in ["client_id", "exp", "iat", "sub", "iss", "jti"] {
        assert!(!body[member].is_null(), "no {member}: {body}");
        assert_eq!(
            body[member], claims[member],
            "{member}: {body} vs the JWT's {claims}"
        );
    }
    assert_eq!(
        scope_set(&json_str(body, "scope")),
        scope_set(&json_str(&claims, "scope")),
        "{body}"
    );
    assert_eq!(audiences(body), audiences(&claims), "{body}");
}

/// The JWT `token` with its payload replaced by `claims`, signature kept.
fn with_claims(token: &str, claims: &Value) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let payload = BASE64URL.encode(claims.to_string());
    format!("{}.{payload}.{}", parts[0], parts[2])
}

backend_tests! {
    /// A client_credentials JWT, introspected by its client: active, with the
    /// members of RFC 7662 section 2.2 matching the JWT, and no username.
    async fn introspects_a_client_credentials_jwt(backend) {
        let db = TestDb::new(backend).await;
        let Cast { app, .. } = cast(&db).await;
        let server = db.start(&["--issuer", ISSUER]).await;

        let token = server.access_token(&app).await;
        let reply = server.introspect(Some(&app.basic()), &token).await;
        reply
            .assert_status(StatusCode::OK)
            .assert_json_content_type()
            .assert_no_store();
        let body = reply.json();
        assert_describes_jwt(&body, &token);
        assert_eq!(body["client_id"], app.id.as_str(), "{body}");
        assert_eq!(body["sub"], app.id.as_str(), "{body}");
        assert_eq!(body["iss"], ISSUER, "{body}");
        assert_eq!(audiences(&body), [AUDIENCE], "{body}");
        assert!(
            body.get("username").is_none(),
            "a client token has no username: {body}"
        );

        let body = server
            .post_form("/oauth/introspect", Some(&app.post()), &[("token", &token)])
            .await
            .json();
        assert_eq!(body["active"], true, "client_secret_post: {body}");
    }

    /// A user's access token carries the username and the user's id; a refresh
    /// token is introspected as `token_type: refresh_token`.
    async fn introspects_user_tokens(backend) {
        let db = TestDb::new(backend).await;
        let Cast { app, alice, .. } = cast(&db).await;
        let server = db.start(&["--issuer", ISSUER]).await;

        let login = server.login(&app, &alice).await;
        let access = json_str(&login, "access_token");
        let body = server.introspection(&app, &access).await;
        assert_describes_jwt(&body, &access);
        assert_eq!(body["username"], "alice", "{body}");
        assert_eq!(body["sub"], alice.id.as_str(), "{body}");

        let before = unix_now();
        let refresh = json_str(&login, "refresh_token");
        let body = server.introspection(&app, &refresh).await;
        assert_eq!(body["active"], true, "{body}");
        assert_eq!(body["token_type"], "refresh_token", "{body}");
        assert_eq!(body["client_id"], app.id.as_str(), "{body}");
        assert_eq!(body["username"], "alice", "{body}");
        assert_eq!(body["sub"], alice.id.as_str(), "{body}");
        assert_eq!(body["iss"], ISSUER, "{body}");
        assert_eq!(scope_set(&json_str(&body, "scope")), ["read", "write"], "{body}");
        let iat = body["iat"].as_i64().unwrap_or_else(|| panic!("no iat: {body}"));
        let exp = body["exp"].as_i64().unwrap_or_else(|| panic!("no exp: {body}"));
        assert!(
            (before - 60..=unix_now() + 5).contains(&iat),
            "iat is not now: {body}"
        );
        assert_eq!(exp - iat, 2_592_000, "the default refresh lifetime: {body}");
        // Introspection does not use the refresh token up.
        server.refresh(&app, &refresh).await;
    }

    /// A client sees its own tokens; a `--can-introspect` client sees every
    /// token as its owner does; any other client is told `{"active": false}`,
    /// which changes nothing for the token.
    async fn who_may_introspect(backend) {
        let db = TestDb::new(backend).await;
        let Cast {
            app,
            rs,
            other,
            alice,
        } = cast(&db).await;
        let server = db.start(&[]).await;

        let login = server.login(&app, &alice).await;
        let tokens = [
            server.access_token(&app).await,
            json_str(&login, "access_token"),
            json_str(&login, "refresh_token"),
        ];
        for token in &tokens {
            let own = server.introspection(&app, token).await;
            assert_eq!(own["active"], true, "{own}");
            assert_eq!(
                server.introspection(&rs, token).await,
                own,
                "the resource server's view"
            );
            assert!(
                !server.is_active(&other, token).await,
                "another client sees a token"
            );
            let reply = server
                .post_form("/oauth/introspect", Some(&other.post()), &[("token", token)])
                .await;
            assert_eq!(reply.json(), json!({"active": false}), "{reply:?}");
        }
        // The resource server sees other's tokens too; app does not.
        let others = server.access_token(&other).await;
        assert!(server.is_active(&rs, &others).await);
        assert!(!server.is_active(&app, &others).await);
        server.refresh(&app, &tokens[2]).await;
    }

    /// Without client authentication, or with bad credentials: 401
    /// `invalid_client`, with the no-store headers.
    async fn introspection_requires_client_authentication(backend) {
        let db = TestDb::new(backend).await;
        let Cast { app, .. } = cast(&db).await;
        let server = db.start(&[]).await;
        let token = server.access_token(&app).await;

        let wrong = format!("{}-wrong", app.secret);
        for (what, auth) in [
            ("no authentication", None),
            ("a wrong secret (Basic)", Some(ClientAuth::basic(&app.id, &wrong))),
            (
                "a wrong secret (post)",
                Some(ClientAuth::Post(app.id.clone(), wrong.clone())),
            ),
            (
                "an unknown client",
                Some(ClientAuth::basic("nobody", &app.secret)),
            ),
        ] {
            let reply = server.introspect(auth.as_ref(), &token).await;
            let problems = reply.error_problems(StatusCode::UNAUTHORIZED, "invalid_client", true);
            assert!(problems.is_empty(), "{what}: {}: {reply:?}", problems.join("; "));
            assert!(!reply.body.contains("\"active\""), "{what}: {reply:?}");
        }
    }

    /// Garbage, unknown, tampered, revoked, rotated and expired tokens are all
    /// exactly `{"active": false}`, to the owner and to a resource server.
    async fn inactive_tokens_are_exactly_active_false(backend) {
        let db = TestDb::new(backend).await;
        let Cast { app, rs, alice, .. } = cast(&db).await;
        let short = db.create_client("short", &["--token-ttl", "2"]).await;
        let clock = stopped_clock();
        let server = db.start_on(&clock, &[]).await;

        let token = server.access_token(&app).await;
        let mut claims = jose::decode(&token).claims;
        claims["scope"] = json!("read write admin");
        let tampered = with_claims(&token, &claims);
        let mut claims = jose::decode(&token).claims;
        claims["exp"] = json!(claims["exp"].as_i64().expect("exp") + 3600);
        let prolonged = with_claims(&token, &claims);
        let mut bad_signature = token.clone().into_bytes();
        let at = token.rfind('.').expect("JWS") + 2;
        bad_signature[at] = if bad_signature[at] == b'A' { b'B' } else { b'A' };
        let bad_signature = String::from_utf8(bad_signature).expect("ASCII");
        let parts: Vec<&str> = token.split('.').collect();
        let unsigned = format!(
            "{}.{}.",
            BASE64URL.encode(r#"{"alg":"none","typ":"at+jwt"}"#),
            parts[1]
        );

        let revoked = server.access_token(&app).await;
        server
            .revoke(Some(&app.basic()), &[("token", &revoked)])
            .await
            .assert_status(StatusCode::OK);
        let rotated = json_str(&server.login(&app, &alice).await, "refresh_token");
        server.refresh(&app, &rotated).await;

        let expiring = server.access_token(&short).await;
        assert!(
            server.is_active(&short, &expiring).await,
            "a fresh 2-second token"
        );

        for (what, token) in [
            ("garbage", "garbage"),
            ("an unknown refresh token", random_token("ghr_").as_str()),
            ("an unknown opaque token", random_token("gho_").as_str()),
            ("a JWT with a changed scope", tampered.as_str()),
            ("a JWT with a changed exp", prolonged.as_str()),
            ("a JWT with a changed signature", bad_signature.as_str()),
            ("an unsigned JWT (alg none)", unsigned.as_str()),
            ("a revoked JWT", revoked.as_str()),
            ("a rotated refresh token", rotated.as_str()),
        ] {
            for client in [&app, &rs] {
                assert!(
                    !server.is_active(client, token).await,
                    "{what} is active to {}",
                    client.id
                );
            }
        }
        assert!(server.is_active(&app, &token).await, "the untampered JWT");

        // The server's clock moves to the token's exp: no waiting.
        clock.advance(2);
        assert!(!server.is_active(&short, &expiring).await, "a token at its exp is active");
        assert!(
            !server.is_active(&rs, &expiring).await,
            "an expired token is active"
        );
    }

    /// `token_type_hint` is only a hint: a wrong or unknown one changes nothing.
    async fn token_type_hint_is_only_a_hint(backend) {
        let db = TestDb::new(backend).await;
        let Cast { app, alice, .. } = cast(&db).await;
        let server = db.start(&[]).await;

        let login = server.login(&app, &alice).await;
        for (token, token_type) in [
            (json_str(&login, "access_token"), "Bearer"),
            (json_str(&login, "refresh_token"), "refresh_token"),
        ] {
            for hint in ["access_token", "refresh_token", "something_else"] {
                let reply = server
                    .post_form(
                        "/oauth/introspect",
                        Some(&app.basic()),
                        &[("token", &token), ("token_type_hint", hint)],
                    )
                    .await;
                reply.assert_status(StatusCode::OK).assert_no_store();
                let body = reply.json();
                assert_eq!(body["active"], true, "hint {hint}: {body}");
                assert_eq!(body["token_type"], token_type, "hint {hint}: {body}");
            }
        }
    }
}
