//! Access tokens are RFC 9068 JWTs that a resource server verifies with the
//! JWKS alone, here with jwt-simple, a JOSE implementation the server does not use.

use std::collections::HashSet;

use reqwest::StatusCode;

use crate::helpers::*;
use crate::jose;

const ISSUER: &str = "http://test.local";

backend_tests! {
    /// Header and claims of RFC 9068 section 2, and a signature that verifies.
    async fn access_token_is_an_rfc9068_jwt(backend) {
        let db = TestDb::new(backend).await;
        let client = db
            .create_client(
                "svc",
                &["--scope", "read write", "--audience", "https://api.example"],
            )
            .await;
        let server = db.start(&["--issuer", ISSUER]).await;

        let reply = server.client_credentials(&client, &[("scope", "read")]).await;
        let token = reply.access_token();
        let expires_in = reply.json()["expires_in"].as_i64().expect("expires_in");
        let jose::Decoded { header, claims } = jose::decode(&token);

        assert_eq!(header["typ"], "at+jwt", "{header}");
        assert_eq!(header["alg"], "ES256", "{header}");
        let jwks = server.jwks().await;
        let jwk = jose::find_key(&jwks, &jose::kid(&token));
        assert_eq!(jwk["kty"], "EC", "{jwk}");
        assert_eq!(jwk["alg"], "ES256", "{jwk}");
        assert_eq!(jwk["use"], "sig", "{jwk}");
        assert!(
            jwk.get("d").is_none(),
            "the JWKS must not publish private keys: {jwk}"
        );

        assert_eq!(claims["iss"], ISSUER, "{claims}");
        assert_eq!(claims["sub"], client.id.as_str(), "{claims}");
        assert_eq!(claims["client_id"], client.id.as_str(), "{claims}");
        assert_eq!(jose::audiences(&claims), ["https://api.example"], "{claims}");
        assert_eq!(claims["scope"], "read", "{claims}");
        let iat = claims["iat"].as_i64().expect("iat");
        let exp = claims["exp"].as_i64().expect("exp");
        assert_eq!(exp - iat, expires_in, "{claims}");
        assert!((iat - unix_now()).abs() <= 60, "iat {iat} is not now");
        assert!(claims["jti"].as_str().is_some_and(|j| !j.is_empty()), "{claims}");

        let verified = jose::verify(&token, &jwks, ISSUER, "https://api.example");
        assert_eq!(verified.subject.as_deref(), Some(client.id.as_str()));
        assert_eq!(verified.custom.client_id, client.id);

        // Each token has its own jti.
        let mut jtis = HashSet::new();
        for _ in 0..5 {
            let token = server.access_token(&client).await;
            let jti = jose::decode(&token).claims["jti"]
                .as_str()
                .expect("jti")
                .to_string();
            jtis.insert(jti);
        }
        assert_eq!(jtis.len(), 5, "jti repeats: {jtis:?}");
    }

    /// `aud` is the client's `--audience`, else `--default-audience`, else the issuer.
    async fn audience_falls_back_to_default_then_issuer(backend) {
        let db = TestDb::new(backend).await;
        let own = db
            .create_client("own", &["--audience", "https://own.example"])
            .await;
        let plain = db.create_client("plain", &[]).await;

        {
            let server = db
                .start(&[
                    "--issuer",
                    ISSUER,
                    "--default-audience",
                    "https://default.example",
                ])
                .await;
            let jwks = server.jwks().await;
            let token = server.access_token(&own).await;
            assert_eq!(
                jose::audiences(&jose::decode(&token).claims),
                ["https://own.example"]
            );
            jose::verify(&token, &jwks, ISSUER, "https://own.example");
            let token = server.access_token(&plain).await;
            assert_eq!(
                jose::audiences(&jose::decode(&token).claims),
                ["https://default.example"]
            );
            jose::verify(&token, &jwks, ISSUER, "https://default.example");
        }

        let server = db.start(&["--issuer", ISSUER]).await;
        let token = server.access_token(&plain).await;
        assert_eq!(jose::audiences(&jose::decode(&token).claims), [ISSUER]);
        jose::verify(&token, &server.jwks().await, ISSUER, ISSUER);
    }

    /// Without `--issuer`, tokens carry the issuer the metadata names.
    async fn default_issuer_matches_metadata(backend) {
        let db = TestDb::new(backend).await;
        let client = db.create_client("svc", &[]).await;
        let server = db.start(&[]).await;

        let issuer = server.issuer().await;
        assert!(issuer.starts_with("http://127.0.0.1:"), "default issuer {issuer}");
        let token = server.access_token(&client).await;
        jose::verify(&token, &server.jwks().await, &issuer, &issuer);
    }

    /// `keys rotate` on a running server: new tokens carry the new kid within
    /// 5 s, the JWKS keeps the old key, and old tokens still verify.
    async fn keys_rotate_reaches_the_running_server(backend) {
        let db = TestDb::new(backend).await;
        let client = db.create_client("svc", &[]).await;
        let server = db.start(&["--issuer", ISSUER]).await;

        let old_token = server.access_token(&client).await;
        let old_kid = jose::kid(&old_token);

        let rotated = server.cli_json(&["keys", "rotate"]).await;
        assert_eq!(rotated["alg"], "ES256", "{rotated}");
        let new_kid = rotated["kid"].as_str().expect("kid").to_string();
        assert_ne!(new_kid, old_kid);

        let new_token = eventually(PROPAGATION_DEADLINE, "tokens signed with the new key", || async {
            let token = server.access_token(&client).await;
            let kid = jose::kid(&token);
            if kid == new_kid {
                Ok(token)
            } else {
                Err(format!("kid {kid}"))
            }
        })
        .await;

        let jwks = server.jwks().await;
        let kids = jose::kids(&jwks);
        assert!(
            kids.contains(&old_kid) && kids.contains(&new_kid),
            "JWKS kids {kids:?}"
        );
        jose::verify(&old_token, &jwks, ISSUER, ISSUER);
        jose::verify(&new_token, &jwks, ISSUER, ISSUER);
    }
}

/// Starts a server with `--signing-alg alg` and checks that its tokens, its
/// JWKS and its metadata agree and verify independently.
async fn signs_and_verifies_with(alg: &str, kty: &str) {
    let db = TestDb::new(Backend::Sqlite).await;
    let client = db.create_client("svc", &["--scope", "read"]).await;
    let server = db.start(&["--issuer", ISSUER, "--signing-alg", alg]).await;

    let token = server.access_token(&client).await;
    let header = jose::decode(&token).header;
    assert_eq!(header["alg"], alg, "{header}");
    assert_eq!(header["typ"], "at+jwt", "{header}");

    let jwks = server.jwks().await;
    let jwk = jose::find_key(&jwks, &jose::kid(&token));
    assert_eq!(jwk["alg"], alg, "{jwk}");
    assert_eq!(jwk["kty"], kty, "{jwk}");
    assert_eq!(jwk["use"], "sig", "{jwk}");
    for private in ["d", "p", "q", "dp", "dq", "qi"] {
        assert!(
            jwk.get(private).is_none(),
            "private member {private} published: {jwk}"
        );
    }
    let claims = jose::verify(&token, &jwks, ISSUER, ISSUER);
    assert_eq!(claims.custom.scope, "read");

    let metadata = server.get("/.well-known/oauth-authorization-server").await;
    metadata.assert_status(StatusCode::OK);
    assert!(
        crate::discovery::signing_algs(&metadata.json()).contains(&alg.to_string()),
        "metadata does not list {alg}: {}",
        metadata.body
    );

    // A token whose signature was tampered with does not verify.
    let signature_start = token.rfind('.').expect("compact JWS") + 1;
    let middle = signature_start + (token.len() - signature_start) / 2;
    let flipped = if token.as_bytes()[middle] == b'A' {
        "B"
    } else {
        "A"
    };
    let tampered = format!("{}{flipped}{}", &token[..middle], &token[middle + 1..]);
    assert!(
        jose::try_verify(&tampered, &jwks, ISSUER, ISSUER).is_err(),
        "a token with a tampered signature verified"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_alg_es256() {
    signs_and_verifies_with("ES256", "EC").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_alg_eddsa() {
    signs_and_verifies_with("EdDSA", "OKP").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_alg_rs256() {
    signs_and_verifies_with("RS256", "RSA").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_alg_ps256() {
    signs_and_verifies_with("PS256", "RSA").await;
}
