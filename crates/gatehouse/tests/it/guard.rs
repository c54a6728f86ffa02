//! gatehouse-guard in front of an axum API, against the real server: local
//! validation (signature, `typ`, `iss`, `aud`, `exp`, keys that rotate),
//! introspection (revocation seen within the cache TTL), scopes, and the RFC
//! 6750 answers (`docs/guard.md`).

use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as BASE64URL;
use base64::Engine as _;
use gatehouse_guard::Guard;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::api::{assert_refused, guard_for, introspecting_guard_for, Api};
use crate::helpers::*;
use crate::jose;

/// Replaces the signature of `token` with another one of the same length.
fn tamper_signature(token: &str) -> String {
    let (message, signature) = token.rsplit_once('.').expect("JWS");
    let mut bytes = BASE64URL.decode(signature).expect("base64url signature");
    bytes[0] ^= 0x01;
    format!("{message}.{}", BASE64URL.encode(bytes))
}

/// `token` with its claims changed by `edit`, its header and signature kept.
fn tamper_claims(token: &str, edit: impl FnOnce(&mut Value)) -> String {
    let mut parts = token.split('.');
    let (header, claims, signature) = (
        parts.next().expect("header"),
        parts.next().expect("claims"),
        parts.next().expect("signature"),
    );
    let mut claims: Value =
        serde_json::from_slice(&BASE64URL.decode(claims).expect("base64url")).expect("JSON");
    edit(&mut claims);
    let claims = BASE64URL.encode(claims.to_string());
    format!("{header}.{claims}.{signature}")
}

backend_tests! {
    /// A valid token passes and its claims reach the handler; scopes are
    /// enforced per route; a user's token carries the username.
    async fn valid_tokens_and_scopes(backend) {
        let db = TestDb::new(backend).await;
        let client = db
            .create_client(
                "svc",
                &["--scope", "read orders", "--grant-types", "client_credentials,password,refresh_token"],
            )
            .await;
        let user = db.create_user("alice", PASSWORD, Some("read")).await;
        let server = db.start(&[]).await;
        let api = Api::start(guard_for(&server)).await;

        let read_only = server
            .client_credentials(&client, &[("scope", "read")])
            .await
            .access_token();
        let reply = api.get("/api/v3/cities", Some(&read_only)).await;
        reply.assert_status(StatusCode::OK);
        let body = reply.json();
        assert_eq!(body["sub"], client.id.as_str(), "{body}");
        assert_eq!(body["client_id"], client.id.as_str(), "{body}");
        assert_eq!(body["scope"], "read", "{body}");

        // Missing scope: 403 naming the scope needed (RFC 6750 section 3.1).
        let reply = api.get("/api/v3/orders", Some(&read_only)).await;
        assert_refused(&reply, StatusCode::FORBIDDEN, "insufficient_scope");
        let challenge = reply.header("www-authenticate").unwrap_or_default();
        assert!(challenge.ends_with(r#"scope="orders""#), "{challenge}");
        let reply = api.get("/api/v3/both", Some(&read_only)).await;
        assert_refused(&reply, StatusCode::FORBIDDEN, "insufficient_scope");
        assert!(
            reply.header("www-authenticate").unwrap_or_default().ends_with(r#"scope="read orders""#),
            "{reply:?}"
        );
        let both = server.access_token(&client).await;
        api.get("/api/v3/both", Some(&both)).await.assert_status(StatusCode::OK);
        api.get("/api/v3/any", Some(&read_only)).await.assert_status(StatusCode::OK);

        let login = server.login(&client, &user).await;
        let reply = api.get("/api/v3/cities", Some(&json_str(&login, "access_token"))).await;
        reply.assert_status(StatusCode::OK);
        assert_eq!(reply.json()["sub"], user.id.as_str());
        assert_eq!(reply.json()["username"], "alice");
        // A refresh token is no access token.
        let reply = api.get("/api/v3/any", Some(&json_str(&login, "refresh_token"))).await;
        assert_refused(&reply, StatusCode::UNAUTHORIZED, "invalid_token");
    }

    /// RFC 6750: no token, another scheme, malformed headers, a token in the
    /// query string; tampered, forged and foreign tokens.
    async fn bad_requests_and_bad_tokens(backend) {
        let db = TestDb::new(backend).await;
        let client = db.create_client("svc", &["--scope", "read"]).await;
        let elsewhere = db
            .create_client("elsewhere", &["--scope", "read", "--audience", "https://other.example"])
            .await;
        let server = db.start(&[]).await;
        let api = Api::start(guard_for(&server)).await;
        let token = server.access_token(&client).await;

        assert_refused(&api.get("/api/v3/cities", None).await, StatusCode::UNAUTHORIZED, "unauthorized");
        let basic = basic_authorization(&client.id, &client.secret);
        let reply = api.get_with_header("/api/v3/cities", &[&basic]).await;
        assert_refused(&reply, StatusCode::UNAUTHORIZED, "unauthorized");
        for header in ["Bearer", "Bearer ", "Bearer a b", "Bearer \"quoted\""] {
            let reply = api.get_with_header("/api/v3/cities", &[header]).await;
            assert_refused(&reply, StatusCode::BAD_REQUEST, "invalid_request");
        }
        let bearer = format!("Bearer {token}");
        let reply = api.get_with_header("/api/v3/cities", &[&bearer, &bearer]).await;
        assert_refused(&reply, StatusCode::BAD_REQUEST, "invalid_request");
        let reply = api
            .get(&format!("/api/v3/cities?access_token={token}"), None)
            .await;
        assert_refused(&reply, StatusCode::BAD_REQUEST, "invalid_request");
        let reply = api
            .get(&format!("/api/v3/cities?access_token={token}"), Some(&token))
            .await;
        assert_refused(&reply, StatusCode::BAD_REQUEST, "invalid_request");

        // The genuine token passes first, so that the refusals below are the
        // tampering's doing.
        api.get("/api/v3/cities", Some(&token)).await.assert_status(StatusCode::OK);
        let forged = [
            ("tampered signature", tamper_signature(&token)),
            ("widened scope", tamper_claims(&token, |c| c["scope"] = json!("read orders admin"))),
            ("extended expiry", tamper_claims(&token, |c| c["exp"] = json!(unix_now() + 86_400 * 365))),
            ("not a JWT", "not-a-jwt".to_string()),
            ("wrong audience", server.access_token(&elsewhere).await),
        ];
        for (what, forged) in forged {
            let reply = api.get("/api/v3/cities", Some(&forged)).await;
            let problems = reply.error_problems(StatusCode::UNAUTHORIZED, "invalid_token", false);
            assert!(problems.is_empty(), "{what}: {}: {reply:?}", problems.join("; "));
        }

        // Algorithm confusion: the same claims "signed" with HMAC over the public
        // key, and with alg none.
        let kid = jose::kid(&token);
        let claims = token.split('.').nth(1).expect("claims");
        let jwk = jose::find_key(&server.jwks().await, &kid).clone();
        for alg in ["HS256", "none"] {
            let header = BASE64URL.encode(json!({"alg": alg, "typ": "at+jwt", "kid": kid}).to_string());
            let message = format!("{header}.{claims}");
            let signature = if alg == "none" {
                String::new()
            } else {
                use jwt_simple::prelude::MACLike as _;
                let key = jwt_simple::prelude::HS256Key::from_bytes(jwk.to_string().as_bytes());
                BASE64URL.encode(key.authentication_tag(message.as_bytes()))
            };
            let reply = api.get("/api/v3/cities", Some(&format!("{message}.{signature}"))).await;
            let problems = reply.error_problems(StatusCode::UNAUTHORIZED, "invalid_token", false);
            assert!(problems.is_empty(), "alg {alg}: {}: {reply:?}", problems.join("; "));
        }
        // typ other than at+jwt (an ID token, say) is refused (RFC 9068 section 4),
        // checked before any key is looked up.
        let header = BASE64URL.encode(json!({"alg": "ES256", "typ": "JWT", "kid": kid}).to_string());
        let signature = token.rsplit('.').next().expect("signature");
        let reply = api.get("/api/v3/cities", Some(&format!("{header}.{claims}.{signature}"))).await;
        assert_refused(&reply, StatusCode::UNAUTHORIZED, "invalid_token");
    }

    /// Tokens expire at their `exp`, cached or not.
    async fn expired_tokens_are_refused(backend) {
        let db = TestDb::new(backend).await;
        let client = db.create_client("short", &["--scope", "read", "--token-ttl", "1"]).await;
        let server = db.start(&[]).await;
        let api = Api::start(guard_for(&server).leeway(Duration::ZERO)).await;
        let token = server.access_token(&client).await;
        let exp = jose::decode(&token).claims["exp"].as_i64().expect("exp");
        // Verified once, so the refusal below comes from the cache's expiry check.
        api.get("/api/v3/cities", Some(&token)).await.assert_status(StatusCode::OK);
        let reply = eventually(Duration::from_secs(5), "the token expires", || async {
            let reply = api.get("/api/v3/cities", Some(&token)).await;
            match reply.status {
                StatusCode::OK => Err("still accepted".to_string()),
                _ => Ok(reply),
            }
        })
        .await;
        assert_refused(&reply, StatusCode::UNAUTHORIZED, "invalid_token");
        assert!(unix_now() >= exp, "refused before its exp");
        assert!(reply.body.contains("expired"), "{reply:?}");
        // A fresh guard, which never saw it, refuses it too.
        let fresh = Api::start(guard_for(&server).leeway(Duration::ZERO)).await;
        assert_refused(&fresh.get("/api/v3/cities", Some(&token)).await, StatusCode::UNAUTHORIZED, "invalid_token");
    }

    /// A token minted under another issuer name, with the same keys, is refused.
    async fn wrong_issuer_is_refused(backend) {
        let db = TestDb::new(backend).await;
        let client = db.create_client("svc", &["--scope", "read"]).await;
        let foreign = {
            let server = db.start(&["--issuer", "https://other-issuer.example"]).await;
            let token = server.access_token(&client).await;
            server.stop_with("TERM").await;
            token
        };
        let server = db.start(&[]).await;
        let api = Api::start(guard_for(&server)).await;
        let own = server.access_token(&client).await;
        assert_eq!(jose::kid(&own), jose::kid(&foreign), "same signing key");
        api.get("/api/v3/cities", Some(&own)).await.assert_status(StatusCode::OK);
        let reply = api.get("/api/v3/cities", Some(&foreign)).await;
        assert_refused(&reply, StatusCode::UNAUTHORIZED, "invalid_token");
        assert!(reply.body.contains("issuer"), "{reply:?}");
    }

    /// After `keys rotate`, tokens with the new kid are accepted: the guard
    /// fetches the JWKS again. Bogus kids cannot make it fetch more than once
    /// per refetch interval.
    async fn keys_rotate_and_unknown_kids(backend) {
        let db = TestDb::new(backend).await;
        let client = db.create_client("svc", &["--scope", "read"]).await;
        let server = db.start(&[]).await;
        let interval = Duration::from_secs(2);
        let api = Api::start(guard_for(&server).jwks_refetch_interval(interval)).await;
        let old = server.access_token(&client).await;
        api.get("/api/v3/cities", Some(&old)).await.assert_status(StatusCode::OK);

        let rotated = server.cli_json(&["keys", "rotate"]).await;
        let new_kid = json_str(&rotated, "kid");
        let new = eventually(PROPAGATION_DEADLINE, "a token with the new kid", || async {
            let token = server.access_token(&client).await;
            if jose::kid(&token) == new_kid { Ok(token) } else { Err(jose::kid(&token)) }
        })
        .await;
        let reply = api.get("/api/v3/cities", Some(&new)).await;
        reply.assert_status(StatusCode::OK);
        api.get("/api/v3/cities", Some(&old)).await.assert_status(StatusCode::OK);

        // 40 tokens with unknown kids over about two refetch intervals.
        let jwks_fetches = || server.metric("gatehouse_http_requests_total", &[r#"endpoint="/oauth/jwks""#]);
        let before = jwks_fetches().await;
        let started = Instant::now();
        let bogus: Vec<_> = (0..40)
            .map(|i| {
                let header = BASE64URL.encode(json!({"alg": "ES256", "typ": "at+jwt", "kid": format!("bogus-{i}")}).to_string());
                let (_, rest) = new.split_once('.').expect("JWS");
                format!("{header}.{rest}")
            })
            .collect();
        let replies = futures::future::join_all(bogus.iter().map(|t| api.get("/api/v3/cities", Some(t)))).await;
        for reply in &replies {
            assert_refused(reply, StatusCode::UNAUTHORIZED, "invalid_token");
        }
        let elapsed = started.elapsed();
        let fetched = jwks_fetches().await - before;
        let allowed = 1.0 + (elapsed.as_secs_f64() / interval.as_secs_f64()).ceil();
        assert!(
            fetched >= 1.0 && fetched <= allowed,
            "{fetched} JWKS fetches for 40 bogus kids in {elapsed:?} (at most {allowed})"
        );
        // Known tokens are served from the cache meanwhile.
        api.get("/api/v3/cities", Some(&new)).await.assert_status(StatusCode::OK);
    }

    /// Introspection mode: valid and opaque tokens pass; a revocation is seen
    /// within the cache TTL; refresh tokens and foreign audiences are refused.
    async fn introspection_sees_revocations(backend) {
        let db = TestDb::new(backend).await;
        let client = db.create_client("svc", &["--scope", "read"]).await;
        let opaque = db
            .create_client("opaque", &["--scope", "read orders", "--token-format", "opaque"])
            .await;
        let resource_server = db.create_client("api", &["--can-introspect"]).await;
        let server = db.start(&[]).await;
        let ttl = Duration::from_secs(1);
        let api = Api::start(introspecting_guard_for(&server, &resource_server, ttl)).await;

        let token = server.access_token(&client).await;
        api.get("/api/v3/cities", Some(&token)).await.assert_status(StatusCode::OK);
        let opaque_token = server.access_token(&opaque).await;
        let reply = api.get("/api/v3/orders", Some(&opaque_token)).await;
        reply.assert_status(StatusCode::OK);
        assert_eq!(reply.json()["client_id"], opaque.id.as_str());

        for revoked in [&token, &opaque_token] {
            server
                .revoke(None, &[("token", revoked.as_str())])
                .await
                .assert_status(StatusCode::OK);
            let revoked_at = Instant::now();
            let reply = eventually(Duration::from_secs(5), "the revocation is seen", || async {
                let reply = api.get("/api/v3/any", Some(revoked)).await;
                match reply.status {
                    StatusCode::OK => Err("still accepted".to_string()),
                    _ => Ok(reply),
                }
            })
            .await;
            assert_refused(&reply, StatusCode::UNAUTHORIZED, "invalid_token");
            assert!(
                revoked_at.elapsed() <= ttl + Duration::from_millis(500),
                "revocation seen after {:?} (cache TTL {ttl:?})",
                revoked_at.elapsed()
            );
        }

        // Wrong credentials for the guard itself: 503, not the caller's fault.
        let misconfigured = Api::start(guard_for(&server).introspect(&resource_server.id, "wrong-secret")).await;
        let fresh = server.access_token(&client).await;
        let reply = misconfigured.get("/api/v3/cities", Some(&fresh)).await;
        let problems = reply.error_problems(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable", false);
        assert!(problems.is_empty(), "{}: {reply:?}", problems.join("; "));
    }
}

/// An issuer that cannot be reached: 503, never 401 (the token may be fine).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_issuer_is_503() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let dead = format!("http://{}", listener.local_addr().expect("addr"));
    drop(listener);
    let api = Api::start(Guard::builder(&dead)).await;
    let token = format!(
        "{}.{}.{}",
        BASE64URL.encode(json!({"alg": "ES256", "typ": "at+jwt", "kid": "k"}).to_string()),
        BASE64URL.encode(json!({"sub": "s"}).to_string()),
        BASE64URL.encode([0u8; 64])
    );
    let reply = api.get("/api/v3/cities", Some(&token)).await;
    let problems = reply.error_problems(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable", false);
    assert!(problems.is_empty(), "{}: {reply:?}", problems.join("; "));
}
