//! `private_key_jwt` (docs/protocol.md; RFC 7523 §2.2, RFC 7521 §4.2) as a client
//! sees it: assertions built and signed by jwt-simple, a JOSE library
//! independent of the server's, for each of ES256, EdDSA, RS256 and PS256, on
//! the token, revocation and introspection endpoints and their `[[routes]]`;
//! the audiences, lifetimes and claims the server takes and refuses; a `jti`
//! accepted once (on one node and across two on one PostgreSQL); methods that
//! do not cross; nothing of an assertion in the log; replay records swept
//! after they expire; and Authlib, a third-party client, getting a token.
//!
//! The key and assertion helpers here are shared with `key_auth_abuse.rs` and
//! `mtls.rs`.

use std::collections::HashSet;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as BASE64URL;
use base64::Engine as _;
use gatehouse_core::Clock as _;
use jwt_simple::algorithms::{
    ECDSAP256KeyPairLike as _, ECDSAP256PublicKeyLike as _, ES256KeyPair, Ed25519KeyPair,
    EdDSAKeyPairLike as _, PS256KeyPair, RS256KeyPair, RSAKeyPairLike as _,
};
use jwt_simple::claims::JWTClaims;
use reqwest::StatusCode;
use serde_json::{json, Map, Value};

use crate::helpers::*;
use crate::jose;

/// `client_assertion_type` of a JWT assertion (RFC 7523 §2.2).
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The algorithms docs/protocol.md names for assertions.
pub const ALGORITHMS: [&str; 4] = ["ES256", "EdDSA", "RS256", "PS256"];

/// A client's key pair, of one of the four algorithms, with an optional `kid`.
pub enum TestKey {
    Es256(ES256KeyPair, Option<String>),
    EdDsa(Ed25519KeyPair, Option<String>),
    Rs256(RS256KeyPair, Option<String>),
    Ps256(PS256KeyPair, Option<String>),
}

impl TestKey {
    /// A fresh key for `alg` (RSA keys are 2048 bits), with `kid` if given.
    pub fn generate(alg: &str, kid: Option<&str>) -> TestKey {
        let kid = kid.map(str::to_string);
        match alg {
            "ES256" => TestKey::Es256(ES256KeyPair::generate(), None).with_kid(kid),
            "EdDSA" => TestKey::EdDsa(Ed25519KeyPair::generate(), None).with_kid(kid),
            "RS256" => TestKey::Rs256(RS256KeyPair::generate(2048).expect("RSA key"), None).with_kid(kid),
            "PS256" => TestKey::Ps256(PS256KeyPair::generate(2048).expect("RSA key"), None).with_kid(kid),
            other => panic!("no test key for {other}"),
        }
    }

    /// The same key material under `kid` (none: no `kid` in the JWK or the header).
    pub fn with_kid(self, kid: Option<String>) -> TestKey {
        let rekey = |kid: &Option<String>| kid.clone().unwrap_or_default();
        match self {
            TestKey::Es256(pair, _) => {
                let mut pair = ES256KeyPair::from_bytes(&pair.to_bytes()).expect("same key");
                if kid.is_some() {
                    pair = pair.with_key_id(&rekey(&kid));
                }
                TestKey::Es256(pair, kid)
            }
            TestKey::EdDsa(pair, _) => {
                let mut pair = Ed25519KeyPair::from_bytes(&pair.to_bytes()).expect("same key");
                if kid.is_some() {
                    pair = pair.with_key_id(&rekey(&kid));
                }
                TestKey::EdDsa(pair, kid)
            }
            TestKey::Rs256(pair, _) => {
                let mut pair = RS256KeyPair::from_der(&pair.to_der().expect("DER")).expect("same key");
                if kid.is_some() {
                    pair = pair.with_key_id(&rekey(&kid));
                }
                TestKey::Rs256(pair, kid)
            }
            TestKey::Ps256(pair, _) => {
                let mut pair = PS256KeyPair::from_der(&pair.to_der().expect("DER")).expect("same key");
                if kid.is_some() {
                    pair = pair.with_key_id(&rekey(&kid));
                }
                TestKey::Ps256(pair, kid)
            }
        }
    }

    /// The same RSA key material for the other RSA algorithm (RS256 ⇄ PS256).
    pub fn other_rsa_algorithm(&self) -> TestKey {
        match self {
            TestKey::Rs256(pair, kid) => TestKey::Ps256(
                PS256KeyPair::from_der(&pair.to_der().expect("DER")).expect("same key"),
                None,
            )
            .with_kid(kid.clone()),
            TestKey::Ps256(pair, kid) => TestKey::Rs256(
                RS256KeyPair::from_der(&pair.to_der().expect("DER")).expect("same key"),
                None,
            )
            .with_kid(kid.clone()),
            _ => panic!("not an RSA key"),
        }
    }

    pub fn alg(&self) -> &'static str {
        match self {
            TestKey::Es256(..) => "ES256",
            TestKey::EdDsa(..) => "EdDSA",
            TestKey::Rs256(..) => "RS256",
            TestKey::Ps256(..) => "PS256",
        }
    }

    fn kid(&self) -> &Option<String> {
        match self {
            TestKey::Es256(_, kid)
            | TestKey::EdDsa(_, kid)
            | TestKey::Rs256(_, kid)
            | TestKey::Ps256(_, kid) => kid,
        }
    }

    /// The public JWK (RFC 7517): `kty`, the key's members, `alg`, `use`, `kid`.
    pub fn jwk(&self) -> Value {
        let b64 = |bytes: &[u8]| BASE64URL.encode(bytes);
        let mut jwk = match self {
            TestKey::Es256(pair, _) => {
                let point = pair.public_key().public_key().to_bytes_uncompressed();
                assert_eq!(point.len(), 65, "uncompressed P-256 point");
                json!({"kty": "EC", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..])})
            }
            TestKey::EdDsa(pair, _) => {
                json!({"kty": "OKP", "crv": "Ed25519", "x": b64(&pair.public_key().to_bytes())})
            }
            TestKey::Rs256(pair, _) => {
                let c = pair.public_key().to_components();
                json!({"kty": "RSA", "n": b64(&c.n), "e": b64(&c.e)})
            }
            TestKey::Ps256(pair, _) => {
                let c = pair.public_key().to_components();
                json!({"kty": "RSA", "n": b64(&c.n), "e": b64(&c.e)})
            }
        };
        jwk["alg"] = json!(self.alg());
        jwk["use"] = json!("sig");
        if let Some(kid) = self.kid() {
            jwk["kid"] = json!(kid);
        }
        jwk
    }

    /// Signs `payload` (any JSON object, as it is) into a compact JWS with this
    /// key's algorithm and `kid`.
    pub fn sign(&self, payload: &Value) -> String {
        let custom: Map<String, Value> = payload.as_object().expect("a JSON object payload").clone();
        let claims = JWTClaims {
            issued_at: None,
            expires_at: None,
            invalid_before: None,
            issuer: None,
            subject: None,
            audiences: None,
            jwt_id: None,
            nonce: None,
            custom,
        };
        match self {
            TestKey::Es256(pair, _) => pair.sign(claims),
            TestKey::EdDsa(pair, _) => pair.sign(claims),
            TestKey::Rs256(pair, _) => pair.sign(claims),
            TestKey::Ps256(pair, _) => pair.sign(claims),
        }
        .expect("sign the assertion")
    }

    /// The private key as PEM (PKCS#8), for a client library to load.
    pub fn private_pem(&self) -> String {
        match self {
            TestKey::Es256(pair, _) => pair.to_pem().expect("PEM"),
            // ed25519-compact's own PEM is not the PKCS#8 that other libraries read; its DER is.
            TestKey::EdDsa(pair, _) => pem("PRIVATE KEY", &pair.to_der()),
            TestKey::Rs256(pair, _) => pair.to_pem().expect("PEM"),
            TestKey::Ps256(pair, _) => pair.to_pem().expect("PEM"),
        }
    }

    /// The public key as PEM (SPKI): what an attacker knows.
    pub fn public_pem(&self) -> String {
        match self {
            TestKey::Es256(pair, _) => pair.public_key().to_pem().expect("PEM"),
            TestKey::EdDsa(pair, _) => pair.public_key().to_pem(),
            TestKey::Rs256(pair, _) => pair.public_key().to_pem().expect("PEM"),
            TestKey::Ps256(pair, _) => pair.public_key().to_pem().expect("PEM"),
        }
    }
}

/// `der` as a PEM block labelled `label` (RFC 7468).
fn pem(label: &str, der: &[u8]) -> String {
    use base64::engine::general_purpose::STANDARD;
    let text = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in text.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// A JWK Set of `keys`.
pub fn jwks(keys: &[&TestKey]) -> Value {
    json!({"keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>()})
}

/// `client create --name NAME --auth-method METHOD --jwks-file FILE [extra] --json`
/// with `jwks` written to a file of the test's directory; the new client's id.
/// A client without a secret method is shown no secret.
pub async fn key_client(db: &TestDb, name: &str, method: &str, jwks: &Value, extra: &[&str]) -> String {
    let path = db.dir().join(format!("{name}.jwks.json"));
    std::fs::write(&path, serde_json::to_string_pretty(jwks).expect("JSON")).expect("write the JWK Set");
    let path = path.to_str().expect("UTF-8 path").to_string();
    let mut args = vec![
        "client",
        "create",
        "--name",
        name,
        "--auth-method",
        method,
        "--jwks-file",
        &path,
    ];
    args.extend_from_slice(extra);
    let created = db.cli_json(&args).await;
    assert!(
        created.get("client_secret").is_none_or(Value::is_null),
        "a {method} client was shown a secret: {created}"
    );
    json_str(&created, "client_id")
}

/// [`key_client`] for `private_key_jwt`.
pub async fn jwt_client(db: &TestDb, name: &str, keys: &[&TestKey], extra: &[&str]) -> String {
    key_client(db, name, "private_key_jwt", &jwks(keys), extra).await
}

/// `{issuer}{path}`, the issuer's trailing `/` trimmed.
pub fn endpoint_url(issuer: &str, path: &str) -> String {
    format!("{}{path}", issuer.trim_end_matches('/'))
}

/// The claims of a good assertion of `client_id` for `aud`: `iss` = `sub`,
/// `iat` now, `exp` in 60 s, a fresh random `jti`.
pub fn claims(client_id: &str, aud: &str) -> Value {
    let now = unix_now();
    json!({
        "iss": client_id,
        "sub": client_id,
        "aud": aud,
        "iat": now,
        "exp": now + 60,
        "jti": random_token(""),
    })
}

/// The two parameters of `private_key_jwt`.
pub fn assertion_params(assertion: &str) -> [(&'static str, &str); 2] {
    [
        ("client_assertion_type", ASSERTION_TYPE),
        ("client_assertion", assertion),
    ]
}

/// POSTs `params` and `assertion` as a form to `path`, with no other client authentication.
pub async fn post_with_assertion(
    server: &TestServer<'_>,
    path: &str,
    assertion: &str,
    params: &[(&str, &str)],
) -> Reply {
    let mut all = params.to_vec();
    all.extend(assertion_params(assertion));
    server.post_form(path, None, &all).await
}

/// `grant_type=client_credentials` at `path` with `assertion`.
pub async fn token_with(server: &TestServer<'_>, path: &str, assertion: &str) -> Reply {
    post_with_assertion(server, path, assertion, &[("grant_type", "client_credentials")]).await
}

/// Asserts `reply` is `status` with OAuth error `code`, the no-store headers and
/// a JSON body; `what` names the case.
pub fn assert_oauth_error(reply: &Reply, status: StatusCode, code: &str, what: &str) {
    let problems = reply.error_problems(status, code, true);
    assert!(problems.is_empty(), "{what}: {}: {reply:?}", problems.join("; "));
}

/// 401 `invalid_client` (RFC 7521 §4.2.1: an assertion that is not valid).
pub fn assert_invalid_client(reply: &Reply, what: &str) {
    assert_oauth_error(reply, StatusCode::UNAUTHORIZED, "invalid_client", what);
}

/// A 200 with an access token whose `client_id` is `client_id`; the token.
pub fn assert_token_for(reply: &Reply, client_id: &str, what: &str) -> String {
    assert_eq!(reply.status, StatusCode::OK, "{what}: {reply:?}");
    let token = reply.access_token();
    let claims = jose::decode(&token).claims;
    assert_eq!(
        claims["client_id"], client_id,
        "{what}: token of another client: {claims}"
    );
    token
}

/// The routes of the tests here: each standard endpoint at one more path.
const ROUTES: &str = r#"
[[routes]]
path = "/connect/token"
endpoint = "token"

[[routes]]
path = "/connect/revocation"
endpoint = "revoke"

[[routes]]
path = "/connect/introspect"
endpoint = "introspect"
"#;

/// A server with [`ROUTES`] and `args`.
async fn start_with_routes<'a>(db: &'a TestDb, args: &[&str]) -> TestServer<'a> {
    let path = db.dir().join("routes.toml");
    std::fs::write(&path, ROUTES).expect("write the routes");
    let mut all = vec!["--config", path.to_str().expect("UTF-8 path")];
    all.extend_from_slice(args);
    db.start(&all).await
}

/// What `client_id`, authenticating with `key` at `path`, learns of `token`.
async fn introspect_with(
    server: &TestServer<'_>,
    key: &TestKey,
    client_id: &str,
    path: &str,
    token: &str,
) -> Value {
    let issuer = server.issuer().await;
    let assertion = key.sign(&claims(client_id, &endpoint_url(&issuer, path)));
    let reply = post_with_assertion(server, path, &assertion, &[("token", token)]).await;
    reply
        .assert_status(StatusCode::OK)
        .assert_json_content_type()
        .assert_no_store();
    reply.json()
}

backend_tests! {
    /// Each algorithm's client gets tokens at the token endpoint and its route,
    /// introspects them and revokes them at the standard paths and the routes,
    /// each time with a fresh assertion for the URL it is sent to.
    async fn every_algorithm_on_every_endpoint(backend) {
        let db = TestDb::new(backend).await;
        let mut clients = Vec::new();
        for alg in ALGORITHMS {
            let key = TestKey::generate(alg, Some(&format!("{alg}-1")));
            let id = jwt_client(&db, &format!("svc-{alg}"), &[&key], &["--scope", "read"]).await;
            clients.push((key, id));
        }
        let server = start_with_routes(&db, &[]).await;
        let issuer = server.issuer().await;
        let url = |path: &str| endpoint_url(&issuer, path);

        for (key, id) in &clients {
            let alg = key.alg();
            let reply = token_with(&server, "/oauth/token", &key.sign(&claims(id, &url("/oauth/token")))).await;
            let first = assert_token_for(&reply, id, &format!("{alg} at /oauth/token"));
            assert_eq!(reply.json()["scope"], "read", "{alg}: the client's scope is granted");
            let reply = token_with(&server, "/connect/token", &key.sign(&claims(id, &url("/connect/token")))).await;
            let second = assert_token_for(&reply, id, &format!("{alg} at the /connect/token route"));

            for (path, token) in [("/oauth/introspect", &first), ("/connect/introspect", &second)] {
                let body = introspect_with(&server, key, id, path, token).await;
                assert_eq!(body["active"], true, "{alg} at {path}: {body}");
                assert_eq!(body["client_id"], id.as_str(), "{alg} at {path}: {body}");
            }

            for (path, token) in [("/oauth/revoke", &first), ("/connect/revocation", &second)] {
                let assertion = key.sign(&claims(id, &url(path)));
                let reply = post_with_assertion(&server, path, &assertion, &[("token", token)]).await;
                assert_eq!(reply.status, StatusCode::OK, "{alg}: revoke at {path}: {reply:?}");
                let body = introspect_with(&server, key, id, "/oauth/introspect", token).await;
                assert_eq!(body, json!({"active": false}), "{alg}: revoked at {path}, still active");
            }
        }
    }

    /// The audiences taken: the issuer, the URL the request is sent to, and the
    /// token endpoint's URL anywhere (as a string or in an array); anything else
    /// is refused.
    async fn audiences(backend) {
        let db = TestDb::new(backend).await;
        let key = TestKey::generate("ES256", Some("k1"));
        let id = jwt_client(&db, "svc", &[&key], &[]).await;
        let server = start_with_routes(&db, &[]).await;
        let issuer = server.issuer().await;
        let url = |path: &str| endpoint_url(&issuer, path);
        let token = server_token(&server, &key, &id).await;

        // (endpoint path, aud, accepted)
        let token_url = url("/oauth/token");
        let cases: Vec<(&str, Value, bool)> = vec![
            ("/oauth/token", json!(issuer), true),
            ("/oauth/token", json!(token_url), true),
            ("/oauth/token", json!(["https://elsewhere.example", issuer]), true),
            ("/oauth/token", json!([token_url]), true),
            ("/oauth/token", json!(url("/oauth/introspect")), false),
            ("/oauth/token", json!(url("/connect/token")), false),
            ("/oauth/token", json!("https://elsewhere.example/oauth/token"), false),
            ("/oauth/token", json!(token_url.replacen("http://", "https://", 1)), false),
            ("/oauth/token", json!(format!("{token_url}/")), false),
            ("/oauth/token", json!(format!("{token_url}?x=1")), false),
            ("/oauth/token", json!(token_url.to_uppercase()), false),
            ("/oauth/token", json!(["https://elsewhere.example"]), false),
            ("/oauth/token", json!([]), false),
            ("/oauth/token", json!(""), false),
            ("/oauth/token", Value::Null, false),
            ("/connect/token", json!(url("/connect/token")), true),
            ("/connect/token", json!(token_url), true),
            ("/connect/token", json!(issuer), true),
            ("/connect/token", json!(url("/connect/revocation")), false),
            ("/oauth/introspect", json!(url("/oauth/introspect")), true),
            ("/oauth/introspect", json!(token_url), true),
            ("/oauth/introspect", json!(issuer), true),
            ("/oauth/introspect", json!(url("/oauth/revoke")), false),
            ("/connect/introspect", json!(url("/connect/introspect")), true),
            ("/connect/introspect", json!(token_url), true),
            ("/connect/introspect", json!(url("/oauth/revoke")), false),
            ("/oauth/revoke", json!(url("/oauth/revoke")), true),
            ("/oauth/revoke", json!(token_url), true),
            ("/oauth/revoke", json!(issuer), true),
            ("/oauth/revoke", json!(url("/oauth/introspect")), false),
            ("/connect/revocation", json!(url("/connect/revocation")), true),
            ("/connect/revocation", json!(url("/oauth/introspect")), false),
        ];
        for (path, aud, accepted) in cases {
            let mut payload = claims(&id, "");
            if aud.is_null() {
                payload.as_object_mut().expect("object").remove("aud");
            } else {
                payload["aud"] = aud.clone();
            }
            let assertion = key.sign(&payload);
            let what = format!("aud {aud} at {path}");
            // The revocation endpoint gets an unknown token: 200 means authenticated.
            let reply = match path {
                "/oauth/token" | "/connect/token" => token_with(&server, path, &assertion).await,
                "/oauth/introspect" | "/connect/introspect" => {
                    post_with_assertion(&server, path, &assertion, &[("token", &token)]).await
                }
                _ => post_with_assertion(&server, path, &assertion, &[("token", &random_token("gho_"))]).await,
            };
            if accepted {
                assert_eq!(reply.status, StatusCode::OK, "{what} is refused: {reply:?}");
                if path.contains("introspect") {
                    assert_eq!(reply.json()["active"], true, "{what}: {reply:?}");
                }
            } else {
                assert_invalid_client(&reply, &what);
            }
        }
    }

    /// `exp` at most 60 minutes ahead and not past, `jti` present, `iss` = `sub`
    /// = the client, `nbf`/`iat` not in the future: each claim rule on its own.
    async fn claims_are_checked(backend) {
        let db = TestDb::new(backend).await;
        let key = TestKey::generate("EdDSA", Some("k1"));
        let id = jwt_client(&db, "svc", &[&key], &[]).await;
        let other_key = TestKey::generate("EdDSA", Some("k1"));
        let other = jwt_client(&db, "other", &[&other_key], &[]).await;
        let server = db.start(&[]).await;
        let issuer = server.issuer().await;
        let now = unix_now();

        type Edit = Box<dyn Fn(&mut Value)>;
        fn edit(f: impl Fn(&mut Value) + 'static) -> Edit {
            Box::new(f)
        }
        let cases: Vec<(&str, Edit, bool)> = vec![
            ("exp 60 minutes ahead", edit(move |c: &mut Value| c["exp"] = json!(now + 3600)), true),
            ("exp 59 minutes ahead, no iat", edit(move |c: &mut Value| {
                c["exp"] = json!(now + 3540);
                c.as_object_mut().expect("object").remove("iat");
            }), true),
            ("jti of 256 characters", edit(|c: &mut Value| c["jti"] = json!("j".repeat(256))), true),
            ("aud as the one-element array of the issuer", edit({
                let issuer = issuer.clone();
                move |c: &mut Value| c["aud"] = json!([issuer])
            }), true),
            ("exp 70 minutes ahead", edit(move |c: &mut Value| c["exp"] = json!(now + 4200)), false),
            ("exp 2 hours ahead", edit(move |c: &mut Value| c["exp"] = json!(now + 7200)), false),
            ("exp a year ahead", edit(move |c: &mut Value| c["exp"] = json!(now + 365 * 86400)), false),
            ("exp 5 minutes past", edit(move |c: &mut Value| c["exp"] = json!(now - 300)), false),
            ("exp at 0", edit(|c: &mut Value| c["exp"] = json!(0)), false),
            ("exp negative", edit(|c: &mut Value| c["exp"] = json!(-1)), false),
            ("exp far beyond i64", edit(|c: &mut Value| c["exp"] = json!(1e300)), false),
            ("exp as a string", edit(move |c: &mut Value| c["exp"] = json!((now + 60).to_string())), false),
            ("no exp", edit(|c: &mut Value| { c.as_object_mut().expect("object").remove("exp"); }), false),
            ("no jti", edit(|c: &mut Value| { c.as_object_mut().expect("object").remove("jti"); }), false),
            ("empty jti", edit(|c: &mut Value| c["jti"] = json!("")), false),
            ("jti of 257 characters", edit(|c: &mut Value| c["jti"] = json!("j".repeat(257))), false),
            ("jti a number", edit(|c: &mut Value| c["jti"] = json!(12345)), false),
            ("iss another client", edit({
                let other = other.clone();
                move |c: &mut Value| c["iss"] = json!(other)
            }), false),
            ("iss the issuer", edit({
                let issuer = issuer.clone();
                move |c: &mut Value| c["iss"] = json!(issuer)
            }), false),
            ("no iss", edit(|c: &mut Value| { c.as_object_mut().expect("object").remove("iss"); }), false),
            ("iss and sub another client's (signed with this key)", edit({
                let other = other.clone();
                move |c: &mut Value| { c["iss"] = json!(other); c["sub"] = json!(other); }
            }), false),
            ("exp 10 s past, within the 30 s skew", edit(move |c: &mut Value| c["exp"] = json!(now - 10)), true),
            ("nbf 10 s ahead, within the skew", edit(move |c: &mut Value| c["nbf"] = json!(now + 10)), true),
            ("iat 10 s ahead, within the skew", edit(move |c: &mut Value| c["iat"] = json!(now + 10)), true),
            ("exp 60 minutes and 10 s ahead, within the skew", edit(move |c: &mut Value| c["exp"] = json!(now + 3610)), true),
            ("nbf 10 minutes ahead", edit(move |c: &mut Value| c["nbf"] = json!(now + 600)), false),
            ("iat 10 minutes ahead", edit(move |c: &mut Value| c["iat"] = json!(now + 600)), false),
        ];
        for (what, change, accepted) in cases {
            let mut payload = claims(&id, &endpoint_url(&issuer, "/oauth/token"));
            change(&mut payload);
            let reply = token_with(&server, "/oauth/token", &key.sign(&payload)).await;
            if accepted {
                assert_token_for(&reply, &id, what);
            } else {
                assert_invalid_client(&reply, what);
            }
        }
        // The other client's key is its own.
        let reply = token_with(&server, "/oauth/token", &other_key.sign(&claims(&other, &issuer))).await;
        assert_token_for(&reply, &other, "the other client with its own key");
    }

    /// An assertion is accepted once: the same text again, the same `jti` in a
    /// new assertion, and the same `jti` at another endpoint are refused; a
    /// forged assertion does not use up the `jti` it carries.
    async fn a_jti_is_accepted_once(backend) {
        let db = TestDb::new(backend).await;
        let key = TestKey::generate("ES256", Some("k1"));
        let id = jwt_client(&db, "svc", &[&key], &[]).await;
        let server = db.start(&[]).await;
        let issuer = server.issuer().await;

        let payload = claims(&id, &issuer);
        let assertion = key.sign(&payload);
        assert_token_for(&token_with(&server, "/oauth/token", &assertion).await, &id, "first use");
        assert_invalid_client(&token_with(&server, "/oauth/token", &assertion).await, "the same assertion again");

        let mut again = payload.clone();
        again["exp"] = json!(unix_now() + 120);
        again["iat"] = json!(unix_now() - 1);
        assert_invalid_client(
            &token_with(&server, "/oauth/token", &key.sign(&again)).await,
            "the same jti in a new assertion",
        );
        let token = server_token(&server, &key, &id).await;
        let reply = post_with_assertion(&server, "/oauth/introspect", &key.sign(&again), &[("token", &token)]).await;
        assert_invalid_client(&reply, "the same jti at the introspection endpoint");

        // A forged assertion (right kid, wrong key) is refused before its jti is recorded.
        let forger = TestKey::generate("ES256", Some("k1"));
        let fresh = claims(&id, &issuer);
        assert_invalid_client(&token_with(&server, "/oauth/token", &forger.sign(&fresh)).await, "a forged assertion");
        assert_token_for(
            &token_with(&server, "/oauth/token", &key.sign(&fresh)).await,
            &id,
            "the genuine assertion with the forged one's jti",
        );
    }

    /// `client_id` in the body beside an assertion is optional and must name
    /// the assertion's client.
    async fn body_client_id_must_match(backend) {
        let db = TestDb::new(backend).await;
        let key = TestKey::generate("PS256", None);
        let id = jwt_client(&db, "svc", &[&key], &[]).await;
        let secret_client = db.create_client("secret", &[]).await;
        let server = db.start(&[]).await;
        let issuer = server.issuer().await;

        let grant = [("grant_type", "client_credentials")];
        let with_id = |client_id: &str| {
            let mut params = grant.to_vec();
            params.push(("client_id", client_id));
            params.into_iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>()
        };
        let send = |params: Vec<(String, String)>, assertion: String| {
            let server = &server;
            async move {
                let pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                post_with_assertion(server, "/oauth/token", &assertion, &pairs).await
            }
        };
        let reply = send(with_id(&id), key.sign(&claims(&id, &issuer))).await;
        assert_token_for(&reply, &id, "body client_id matching the assertion");
        let reply = send(with_id(&secret_client.id), key.sign(&claims(&id, &issuer))).await;
        assert_invalid_client(&reply, "body client_id of another client");
        let reply = send(with_id("no-such-client"), key.sign(&claims(&id, &issuer))).await;
        assert_invalid_client(&reply, "body client_id of no client");
        let reply = send(with_id(&id.to_uppercase()), key.sign(&claims(&id, &issuer))).await;
        if id.to_uppercase() != id {
            assert_invalid_client(&reply, "body client_id differing in case");
        }
    }

    /// A key client has no secret to use, and a secret client has no keys: the
    /// methods do not cross.
    async fn methods_do_not_cross(backend) {
        let db = TestDb::new(backend).await;
        let key = TestKey::generate("RS256", Some("k1"));
        let id = jwt_client(&db, "keyed", &[&key], &[]).await;
        let secret_client = db.create_client("secret", &[]).await;
        let server = db.start(&[]).await;
        let issuer = server.issuer().await;
        let grant = [("grant_type", "client_credentials")];

        let guessed = random_token("");
        for (what, auth) in [
            ("Basic with a secret", ClientAuth::basic(&id, &guessed)),
            ("client_secret_post", ClientAuth::Post(id.clone(), guessed.clone())),
            ("Basic with an empty secret", ClientAuth::basic(&id, "")),
        ] {
            let reply = server.token_form(&auth, &grant).await;
            assert_invalid_client(&reply, &format!("the private_key_jwt client with {what}"));
        }
        let reply = server
            .post_form("/oauth/token", None, &[("grant_type", "client_credentials"), ("client_id", id.as_str())])
            .await;
        assert_invalid_client(&reply, "the private_key_jwt client with its client_id alone");

        // The secret client with an assertion of a key it never registered.
        let stranger = TestKey::generate("RS256", Some("k1"));
        let reply = token_with(&server, "/oauth/token", &stranger.sign(&claims(&secret_client.id, &issuer))).await;
        assert_invalid_client(&reply, "a secret client with an assertion");
        let reply = server
            .post_form(
                "/oauth/token",
                None,
                &[("grant_type", "client_credentials"), ("client_id", secret_client.id.as_str())],
            )
            .await;
        assert_invalid_client(&reply, "a secret client with its client_id alone");

        // Each refusal reads as that of a client that does not exist: nothing
        // tells an attacker which method a client uses.
        let unknown = server.token_form(&ClientAuth::basic("no-such-client", &guessed), &grant).await;
        let key_with_basic = server.token_form(&ClientAuth::basic(&id, &guessed), &grant).await;
        assert_eq!(key_with_basic.body, unknown.body, "a key client with Basic vs an unknown client");
        assert_eq!(key_with_basic.header("www-authenticate"), unknown.header("www-authenticate"));
        let unknown = token_with(&server, "/oauth/token", &stranger.sign(&claims("no-such-client", &issuer))).await;
        let secret_with_assertion =
            token_with(&server, "/oauth/token", &stranger.sign(&claims(&secret_client.id, &issuer))).await;
        assert_eq!(secret_with_assertion.status, unknown.status);
        assert_eq!(secret_with_assertion.body, unknown.body, "a secret client with an assertion vs an unknown client");

        // Both still work their own way.
        server.access_token(&secret_client).await;
        let reply = server.token_form(&secret_client.post(), &grant).await;
        assert_token_for(&reply, &secret_client.id, "client_secret_post");
        assert_token_for(&token_with(&server, "/oauth/token", &key.sign(&claims(&id, &issuer))).await, &id, "private_key_jwt");
    }

    /// With several keys: a `kid` picks its key; without one, any key of the
    /// right type verifies; a `kid` on another key's signature is refused.
    async fn kid_selects_the_key(backend) {
        let db = TestDb::new(backend).await;
        let ec = TestKey::generate("ES256", Some("ec"));
        let ed = TestKey::generate("EdDSA", Some("ed"));
        let rsa = TestKey::generate("RS256", Some("rsa"));
        let id = jwt_client(&db, "svc", &[&ec, &ed, &rsa], &[]).await;
        let server = db.start(&[]).await;
        let issuer = server.issuer().await;

        for key in [&ec, &ed, &rsa] {
            let reply = token_with(&server, "/oauth/token", &key.sign(&claims(&id, &issuer))).await;
            assert_token_for(&reply, &id, &format!("kid {:?}", key.kid()));
        }
        for (key, what) in [(&ec, "ES256"), (&ed, "EdDSA"), (&rsa, "RS256")] {
            let unnamed = match key {
                TestKey::Es256(pair, _) => TestKey::Es256(ES256KeyPair::from_bytes(&pair.to_bytes()).expect("key"), None),
                TestKey::EdDsa(pair, _) => TestKey::EdDsa(Ed25519KeyPair::from_bytes(&pair.to_bytes()).expect("key"), None),
                TestKey::Rs256(pair, _) => TestKey::Rs256(RS256KeyPair::from_der(&pair.to_der().expect("DER")).expect("key"), None),
                TestKey::Ps256(..) => unreachable!(),
            };
            let reply = token_with(&server, "/oauth/token", &unnamed.sign(&claims(&id, &issuer))).await;
            assert_token_for(&reply, &id, &format!("{what} without a kid"));
        }
        // The EdDSA signature under the ES256 key's kid, and RS256 under the EdDSA kid.
        let misnamed = TestKey::EdDsa(Ed25519KeyPair::from_bytes(&match &ed {
            TestKey::EdDsa(pair, _) => pair.to_bytes(),
            _ => unreachable!(),
        }).expect("key"), None).with_kid(Some("ec".into()));
        assert_invalid_client(&token_with(&server, "/oauth/token", &misnamed.sign(&claims(&id, &issuer))).await, "an EdDSA signature under an EC key's kid");
        let misnamed = rsa.other_rsa_algorithm().with_kid(Some("ed".into()));
        assert_invalid_client(&token_with(&server, "/oauth/token", &misnamed.sign(&claims(&id, &issuer))).await, "a PS256 signature under an Ed25519 key's kid");
        // The RSA key registered for RS256 only.
        let ps = rsa.other_rsa_algorithm();
        assert_invalid_client(&token_with(&server, "/oauth/token", &ps.sign(&claims(&id, &issuer))).await, "PS256 with a key registered with alg RS256");
    }

    /// No assertion, nor its signature or payload, is written to the log, at
    /// debug level, whether it was accepted or refused.
    async fn the_assertion_never_reaches_the_log(backend) {
        let db = TestDb::new(backend).await;
        let key = TestKey::generate("ES256", Some("k1"));
        let id = jwt_client(&db, "svc", &[&key], &[]).await;
        let routes = db.dir().join("get-route.toml");
        std::fs::write(&routes, "[[routes]]\npath = \"/api/login\"\nendpoint = \"token\"\nmethods = [\"GET\"]\n")
            .expect("write the route");
        let server = db
            .server()
            .env("GATEHOUSE_LOG", "debug")
            .args(&["--config", routes.to_str().expect("UTF-8")])
            .start()
            .await;
        let issuer = server.issuer().await;
        let mut assertions = Vec::new();

        let good = key.sign(&claims(&id, &issuer));
        let token = assert_token_for(&token_with(&server, "/oauth/token", &good).await, &id, "good");
        assert_invalid_client(&token_with(&server, "/oauth/token", &good).await, "replayed");
        assertions.push(good);
        let wrong_aud = key.sign(&claims(&id, "https://elsewhere.example"));
        assert_invalid_client(&token_with(&server, "/oauth/token", &wrong_aud).await, "wrong aud");
        assertions.push(wrong_aud);
        let forged = TestKey::generate("ES256", Some("k1")).sign(&claims(&id, &issuer));
        assert_invalid_client(&token_with(&server, "/oauth/token", &forged).await, "forged");
        assertions.push(forged);
        let unknown = TestKey::generate("ES256", None).sign(&claims("no-such-client", &issuer));
        assert_invalid_client(&token_with(&server, "/oauth/token", &unknown).await, "unknown client");
        assertions.push(unknown);
        let introspection = key.sign(&claims(&id, &issuer));
        post_with_assertion(&server, "/oauth/introspect", &introspection, &[("token", &token)])
            .await
            .assert_status(StatusCode::OK);
        assertions.push(introspection);
        let mut bad_type = vec![("grant_type", "client_credentials")];
        let odd = key.sign(&claims(&id, &issuer));
        bad_type.extend([("client_assertion_type", "urn:example:other"), ("client_assertion", odd.as_str())]);
        assert_invalid_client(&server.post_form("/oauth/token", None, &bad_type).await, "other assertion type");
        assertions.push(odd);
        // In a URL: refused at the standard path, read by a GET route.
        for (path, expected) in [("/oauth/token", StatusCode::BAD_REQUEST), ("/api/login", StatusCode::OK)] {
            let in_url = key.sign(&claims(&id, &issuer));
            let query = form_body(&[
                ("grant_type", "client_credentials"),
                ("client_assertion_type", ASSERTION_TYPE),
                ("client_assertion", in_url.as_str()),
            ]);
            let reply = if expected == StatusCode::OK {
                server.get(&format!("{path}?{query}")).await
            } else {
                server.post_raw(&format!("{path}?{query}"), Some(FORM), None, "").await
            };
            assert_eq!(reply.status, expected, "an assertion in the URL of {path}: {reply:?}");
            assertions.push(in_url);
        }

        let log = server.stop_with("TERM").await.logs;
        assert_log_holds_none(&log, &assertions);
        for assertion in &assertions {
            let payload = assertion.split('.').nth(1).expect("payload");
            assert!(!log.contains(assertion.as_str()), "an assertion is in the log:\n{log}");
            assert!(!log.contains(payload), "an assertion's payload is in the log:\n{log}");
        }
    }

    /// The replay record of an assertion lives until its `exp` (plus leeway)
    /// has passed, then the sweep deletes it; a record still in force stays.
    async fn replay_records_are_swept_after_expiry(backend) {
        let db = TestDb::new(backend).await;
        let key = TestKey::generate("ES256", Some("k1"));
        let id = jwt_client(&db, "svc", &[&key], &[]).await;
        let clock = stopped_clock();
        let now = clock.now();
        let server = db.server().env("GATEHOUSE_CLEANUP_INTERVAL", "1").start_on(clock.clone()).await;
        let issuer = server.issuer().await;

        let mut short = claims(&id, &issuer);
        short["iat"] = json!(now);
        short["exp"] = json!(now + 60);
        let mut long = claims(&id, &issuer);
        long["iat"] = json!(now);
        long["exp"] = json!(now + 3000);
        let long_assertion = key.sign(&long);
        for assertion in [key.sign(&short), long_assertion.clone()] {
            assert_token_for(&token_with(&server, "/oauth/token", &assertion).await, &id, "first use");
        }
        let mut conn = db.connect().await;
        assert_eq!(conn.count("used_jtis").await, 2, "one replay record per assertion");

        // Past the short one's exp and leeway, not the long one's.
        clock.advance(300);
        eventually(Duration::from_secs(10), "the expired replay record is swept", || async {
            let left = db.connect().await.count("used_jtis").await;
            if left == 1 { Ok(()) } else { Err(format!("{left} records")) }
        })
        .await;
        assert_invalid_client(
            &token_with(&server, "/oauth/token", &long_assertion).await,
            "an assertion whose record is still in force, again",
        );
        assert_eq!(db.connect().await.count("used_jtis").await, 1, "the refused replay wrote a record");
        server.stop().await;
    }

    /// An ES256 signature (r, s) has a twin (r, n − s) that is just as valid
    /// (RFC 7518 §3.4 asks for no particular one, and OpenSSL-based clients
    /// send either): an assertion is accepted in either form, and once
    /// accepted in one, its twin is a replay.
    async fn es256_assertions_are_taken_with_either_s_once(backend) {
        let db = TestDb::new(backend).await;
        let key = TestKey::generate("ES256", Some("k1"));
        let id = jwt_client(&db, "svc", &[&key], &[]).await;
        let server = db.start(&[]).await;
        let issuer = server.issuer().await;
        for round in 0..4 {
            let assertion = key.sign(&claims(&id, &issuer));
            let twin = ecdsa_twin(&assertion);
            let reply = token_with(&server, "/oauth/token", &twin).await;
            assert_token_for(&reply, &id, &format!("round {round}: the (r, n - s) twin of an assertion"));
            assert_invalid_client(&token_with(&server, "/oauth/token", &assertion).await, &format!("round {round}: the other twin after one was taken"));
        }
    }

    /// A client takes the endpoint URLs from the metadata (RFC 8414) and uses
    /// each as the `aud` of the assertions it sends there: with the default
    /// issuer, and with an issuer that has a path (a server behind a proxy).
    async fn the_metadatas_endpoint_urls_are_audiences(backend) {
        let db = TestDb::new(backend).await;
        let key = TestKey::generate("EdDSA", Some("e1"));
        let id = jwt_client(&db, "svc", &[&key], &[]).await;
        for args in [vec![], vec!["--issuer", "https://auth.example.com/tenant-a"]] {
            let server = db.start(&args).await;
            let metadata = server.get("/.well-known/oauth-authorization-server").await.json();
            let url = |member: &str| json_str(&metadata, member);
            let reply = token_with(&server, "/oauth/token", &key.sign(&claims(&id, &url("token_endpoint")))).await;
            let token = assert_token_for(&reply, &id, &format!("{args:?}: aud = token_endpoint"));
            let reply = post_with_assertion(
                &server,
                "/oauth/introspect",
                &key.sign(&claims(&id, &url("introspection_endpoint"))),
                &[("token", &token)],
            )
            .await;
            assert_eq!(reply.status, StatusCode::OK, "{args:?}: aud = introspection_endpoint: {reply:?}");
            assert_eq!(reply.json()["active"], true, "{args:?}");
            let reply = post_with_assertion(
                &server,
                "/oauth/revoke",
                &key.sign(&claims(&id, &url("revocation_endpoint"))),
                &[("token", &token)],
            )
            .await;
            assert_eq!(reply.status, StatusCode::OK, "{args:?}: aud = revocation_endpoint: {reply:?}");
            let reply = token_with(&server, "/oauth/token", &key.sign(&claims(&id, &url("issuer")))).await;
            assert_token_for(&reply, &id, &format!("{args:?}: aud = issuer"));
        }
    }

    /// A key client uses every grant it has with assertions: a password login,
    /// then refreshes. A refresh without the client's authentication is
    /// refused and does not spend the refresh token.
    async fn a_key_client_logs_users_in_and_refreshes(backend) {
        let db = TestDb::new(backend).await;
        let key = TestKey::generate("RS256", Some("r1"));
        let id = jwt_client(&db, "app", &[&key], &["--scope", "read", "--grant-types", "password,refresh_token"]).await;
        db.create_user("alice", PASSWORD, Some("read")).await;
        let server = db.start(&[]).await;
        let issuer = server.issuer().await;

        let login = [("grant_type", "password"), ("username", "alice"), ("password", PASSWORD)];
        let reply = post_with_assertion(&server, "/oauth/token", &key.sign(&claims(&id, &issuer)), &login).await;
        assert_token_for(&reply, &id, "a password login with an assertion");
        let refresh = reply.refresh_token();
        let params = [("grant_type", "refresh_token"), ("refresh_token", refresh.as_str())];
        let reply = post_with_assertion(&server, "/oauth/token", &key.sign(&claims(&id, &issuer)), &params).await;
        assert_token_for(&reply, &id, "a refresh with an assertion");
        let refresh = reply.refresh_token();

        let params = [("grant_type", "refresh_token"), ("refresh_token", refresh.as_str()), ("client_id", id.as_str())];
        let reply = server.post_form("/oauth/token", None, &params).await;
        assert_invalid_client(&reply, "a refresh with the client_id alone");
        let params = [("grant_type", "refresh_token"), ("refresh_token", refresh.as_str())];
        let forged = TestKey::generate("RS256", Some("r1")).sign(&claims(&id, &issuer));
        assert_invalid_client(&post_with_assertion(&server, "/oauth/token", &forged, &params).await, "a refresh with a forged assertion");
        let reply = post_with_assertion(&server, "/oauth/token", &key.sign(&claims(&id, &issuer)), &params).await;
        assert_token_for(&reply, &id, "the refresh token, not spent by the refused attempts");
    }

    /// A replay record outlives the server: after a restart on the same
    /// database the assertion is still refused.
    async fn replay_records_survive_a_restart(backend) {
        let db = TestDb::new(backend).await;
        let key = TestKey::generate("ES256", Some("k1"));
        let id = jwt_client(&db, "svc", &[&key], &[]).await;
        let issuer = "http://gatehouse.test";
        let server = db.start(&["--issuer", issuer]).await;
        let assertion = key.sign(&claims(&id, issuer));
        assert_token_for(&token_with(&server, "/oauth/token", &assertion).await, &id, "first use");
        let stopped = server.stop_with("TERM").await;
        assert!(stopped.status.success(), "{stopped:?}");
        let server = db.start(&["--issuer", issuer]).await;
        assert_invalid_client(&token_with(&server, "/oauth/token", &assertion).await, "the assertion after a restart");
    }

    /// With client authentication only the client's own tokens are revoked
    /// (docs/protocol.md), and a client introspects only its own: an assertion of
    /// one key client does neither to another's token (the answer of
    /// revoke.rs for secret clients: 400 unauthorized_client).
    async fn a_key_client_revokes_only_its_own_tokens(backend) {
        let db = TestDb::new(backend).await;
        let a_key = TestKey::generate("EdDSA", None);
        let a = jwt_client(&db, "a", &[&a_key], &[]).await;
        let b_key = TestKey::generate("EdDSA", None);
        let b = jwt_client(&db, "b", &[&b_key], &[]).await;
        let server = db.start(&[]).await;
        let issuer = server.issuer().await;

        let token = server_token(&server, &b_key, &b).await;
        let reply = post_with_assertion(&server, "/oauth/revoke", &a_key.sign(&claims(&a, &issuer)), &[("token", &token)]).await;
        assert_oauth_error(&reply, StatusCode::BAD_REQUEST, "unauthorized_client", "a revoking b's token");
        let body = introspect_with(&server, &b_key, &b, "/oauth/introspect", &token).await;
        assert_eq!(body["active"], true, "another client's assertion revoked b's token: {body}");
        let body = introspect_with(&server, &a_key, &a, "/oauth/introspect", &token).await;
        assert_eq!(body, json!({"active": false}), "a learns of b's token");
    }

    /// `client update --jwks-file` replaces the keys, and running servers
    /// follow within 5 s (docs/protocol.md, Commands): the new key works, the old one stops.
    /// Moved onto a secret method, the client has no secret until
    /// `rotate-secret`, and its assertions stop.
    async fn key_changes_reach_a_running_server(backend) {
        let db = TestDb::new(backend).await;
        let old = TestKey::generate("ES256", Some("old"));
        let id = jwt_client(&db, "svc", &[&old], &[]).await;
        let server = db.start(&[]).await;
        let issuer = server.issuer().await;
        let reply = token_with(&server, "/oauth/token", &old.sign(&claims(&id, &issuer))).await;
        assert_token_for(&reply, &id, "the first key");

        let new = TestKey::generate("EdDSA", Some("new"));
        let path = db.dir().join("new.jwks.json");
        std::fs::write(&path, jwks(&[&new]).to_string()).expect("write the JWK Set");
        db.cli_json(&["client", "update", &id, "--jwks-file", path.to_str().expect("UTF-8")]).await;
        eventually(PROPAGATION_DEADLINE, "the new key is taken", || async {
            let reply = token_with(&server, "/oauth/token", &new.sign(&claims(&id, &issuer))).await;
            if reply.status == StatusCode::OK { Ok(()) } else { Err(reply.body) }
        })
        .await;
        let reply = token_with(&server, "/oauth/token", &old.sign(&claims(&id, &issuer))).await;
        assert_invalid_client(&reply, "the replaced key");

        db.cli_json(&["client", "update", &id, "--auth-method", "client_secret_basic"]).await;
        let guessed = ClientAuth::basic(&id, &random_token(""));
        eventually(PROPAGATION_DEADLINE, "assertions stop", || async {
            let reply = token_with(&server, "/oauth/token", &new.sign(&claims(&id, &issuer))).await;
            if reply.status == StatusCode::UNAUTHORIZED { Ok(()) } else { Err(reply.body) }
        })
        .await;
        assert_invalid_client(&server.token_form(&guessed, &[("grant_type", "client_credentials")]).await, "a guessed secret");
        let rotated = db.cli_json(&["client", "rotate-secret", &id]).await;
        let client = TestClient { id: id.clone(), secret: json_str(&rotated, "client_secret"), created: rotated };
        eventually(PROPAGATION_DEADLINE, "the new secret is taken", || async {
            let reply = server.client_credentials(&client, &[]).await;
            if reply.status == StatusCode::OK { Ok(()) } else { Err(reply.body) }
        })
        .await;
    }

    /// A client registered through RFC 7591 with `private_key_jwt` and a
    /// `jwks` is handed no secret and authenticates with its key.
    async fn a_registered_client_authenticates_with_its_key(backend) {
        let db = TestDb::new(backend).await;
        let key = TestKey::generate("PS256", Some("p1"));
        let server = db.start(&["--registration", "open"]).await;
        let issuer = server.issuer().await;
        let metadata = json!({
            "client_name": "registered",
            "grant_types": ["client_credentials"],
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": jwks(&[&key]),
        });
        let reply = server.post_raw("/oauth/register", Some(JSON), None, metadata.to_string()).await;
        reply.assert_status(StatusCode::CREATED);
        let created = reply.json();
        assert!(created.get("client_secret").is_none_or(Value::is_null), "a key client was handed a secret: {created}");
        assert_eq!(created["token_endpoint_auth_method"], "private_key_jwt", "{created}");
        let id = json_str(&created, "client_id");
        let reply = token_with(&server, "/oauth/token", &key.sign(&claims(&id, &issuer))).await;
        assert_token_for(&reply, &id, "a registered private_key_jwt client");
        let reply = server.token_form(&ClientAuth::basic(&id, ""), &[("grant_type", "client_credentials")]).await;
        assert_invalid_client(&reply, "the registered key client with Basic");
    }
}

/// The order n of the P-256 group, big-endian (SEC 2 §2.4.2).
const P256_ORDER: [u8; 32] = [
    0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xBC,
    0xE6, 0xFA, 0xAD, 0xA7, 0x17, 0x9E, 0x84, 0xF3, 0xB9, 0xCA, 0xC2, 0xFC, 0x63, 0x25, 0x51,
];

/// An ES256 JWS with its signature (r, s) rewritten to (r, n − s).
fn ecdsa_twin(jws: &str) -> String {
    let (message, signature) = jws.rsplit_once('.').expect("JWS");
    let mut bytes = BASE64URL.decode(signature).expect("base64url signature");
    assert_eq!(bytes.len(), 64, "r and s, 32 bytes each");
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let mut d = i16::from(P256_ORDER[i]) - i16::from(bytes[32 + i]) - borrow;
        borrow = i16::from(d < 0);
        if d < 0 {
            d += 256;
        }
        bytes[32 + i] = d as u8;
    }
    assert_eq!(borrow, 0, "s < n");
    format!("{message}.{}", BASE64URL.encode(bytes))
}

/// A client_credentials token of the key client `id`, by an assertion for the issuer.
pub async fn server_token(server: &TestServer<'_>, key: &TestKey, id: &str) -> String {
    let issuer = server.issuer().await;
    let reply = token_with(server, "/oauth/token", &key.sign(&claims(id, &issuer))).await;
    assert_token_for(&reply, id, "a token to work with")
}

/// Two nodes on one PostgreSQL database with one issuer: an assertion accepted
/// at one is refused at the other, in turn and when both get it at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jti_is_accepted_once_across_nodes() {
    if Backend::Postgres.skipped() {
        return;
    }
    let db = TestDb::new(Backend::Postgres).await;
    let key = TestKey::generate("ES256", Some("k1"));
    let id = jwt_client(&db, "svc", &[&key], &[]).await;
    let issuer = "http://gatehouse.test";
    let args = ["--issuer", issuer];
    let (a, b) = tokio::join!(db.start(&args), db.start(&args));

    let assertion = key.sign(&claims(&id, issuer));
    assert_token_for(
        &token_with(&a, "/oauth/token", &assertion).await,
        &id,
        "first use, node A",
    );
    assert_invalid_client(
        &token_with(&b, "/oauth/token", &assertion).await,
        "the same assertion at node B",
    );

    for round in 0..10 {
        let assertion = key.sign(&claims(&id, &endpoint_url(issuer, "/oauth/token")));
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(4));
        let mut tasks = Vec::new();
        for node in [&a, &b, &a, &b] {
            let request = node
                .http()
                .post(node.url("/oauth/token"))
                .header("content-type", FORM)
                .body(form_body(&[
                    ("grant_type", "client_credentials"),
                    ("client_assertion_type", ASSERTION_TYPE),
                    ("client_assertion", assertion.as_str()),
                ]));
            let barrier = barrier.clone();
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                Reply::from(request.send().await).await
            }));
        }
        let mut ok = 0;
        for task in tasks {
            let reply = task.await.expect("task");
            if reply.status == StatusCode::OK {
                ok += 1;
            } else {
                assert_invalid_client(&reply, &format!("round {round}: a losing replay"));
            }
        }
        assert_eq!(
            ok, 1,
            "round {round}: {ok} of 4 concurrent uses on two nodes succeeded"
        );
    }
}

/// The metadata names private_key_jwt for all three endpoints and the four
/// assertion algorithms.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_lists_private_key_jwt() {
    let db = TestDb::new(Backend::Sqlite).await;
    let server = db.start(&[]).await;
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
    ] {
        let metadata = server.get(path).await.json();
        for endpoint in ["token", "revocation", "introspection"] {
            let methods = &metadata[format!("{endpoint}_endpoint_auth_methods_supported")];
            let methods: HashSet<&str> = methods
                .as_array()
                .unwrap_or_else(|| panic!("{path}: no {endpoint} methods: {metadata}"))
                .iter()
                .map(|m| m.as_str().expect("string"))
                .collect();
            for method in ["client_secret_basic", "client_secret_post", "private_key_jwt"] {
                assert!(
                    methods.contains(method),
                    "{path}: {endpoint} lacks {method}: {methods:?}"
                );
            }
            let algs = &metadata[format!("{endpoint}_endpoint_auth_signing_alg_values_supported")];
            let algs: HashSet<&str> = algs
                .as_array()
                .unwrap_or_else(|| panic!("{path}: no {endpoint} signing algs: {metadata}"))
                .iter()
                .map(|m| m.as_str().expect("string"))
                .collect();
            assert_eq!(algs, HashSet::from(ALGORITHMS), "{path}: {endpoint}");
            assert!(!algs.contains("none") && !algs.contains("HS256"));
        }
    }
}

/// The Authlib script beside these tests.
const AUTHLIB_SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/python/authlib_private_key_jwt.py"
);

/// Authlib's `PrivateKeyJWT` (RFC 7523 client authentication of a widely used
/// Python library) gets a client_credentials token, introspects it and revokes
/// it, with a key of each algorithm. Skipped (said on stdout) when
/// `GATEHOUSE_TEST_PYTHON` does not name a Python with Authlib; `.ci/run` sets it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authlib_private_key_jwt() {
    let Some(python) = std::env::var("GATEHOUSE_TEST_PYTHON")
        .ok()
        .filter(|p| !p.trim().is_empty())
    else {
        println!("skipped: GATEHOUSE_TEST_PYTHON is not set (a Python with authlib, requests and cryptography; .ci/run makes one)");
        return;
    };
    let db = TestDb::new(Backend::Sqlite).await;
    let mut clients = Vec::new();
    for alg in ALGORITHMS {
        let key = TestKey::generate(alg, None);
        let id = jwt_client(
            &db,
            &format!("authlib-{alg}"),
            &[&key],
            &["--scope", "read write"],
        )
        .await;
        let key_path = db.dir().join(format!("authlib-{alg}.pem"));
        std::fs::write(&key_path, key.private_pem()).expect("write the private key");
        clients.push((alg, id, key_path));
    }
    let server = db.start(&[]).await;
    let issuer = server.issuer().await;
    let jwks = server.jwks().await;

    for (alg, id, key_path) in &clients {
        let mut cmd = tokio::process::Command::new(&python);
        cmd.arg(AUTHLIB_SCRIPT)
            .args([
                "--issuer",
                &issuer,
                "--client-id",
                id,
                "--alg",
                alg,
                "--scope",
                "read",
            ])
            .arg("--key")
            .arg(key_path)
            // Authlib refuses plain HTTP unless told it is a test.
            .env("AUTHLIB_INSECURE_TRANSPORT", "1")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        let out = run_to_exit(cmd, None, Duration::from_secs(60))
            .await
            .unwrap_or_else(|e| panic!("{alg}: the Authlib script: {e}"));
        assert!(
            out.status.success(),
            "{alg}: the Authlib script failed: {out:#?}\nserver log:\n{}",
            server.logs()
        );
        let result: Value = serde_json::from_str(out.stdout.trim())
            .unwrap_or_else(|e| panic!("{alg}: the script's output is not JSON ({e}): {out:#?}"));

        let token = result["token"]["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("{alg}: no access token: {result}"));
        assert_eq!(result["token"]["token_type"], "Bearer", "{alg}: {result}");
        assert_eq!(result["token"]["scope"], "read", "{alg}: {result}");
        let verified = jose::verify(token, &jwks, &issuer, &issuer);
        assert_eq!(verified.custom.client_id, *id, "{alg}");
        assert_eq!(result["introspection"]["active"], true, "{alg}: {result}");
        assert_eq!(
            result["introspection"]["client_id"],
            id.as_str(),
            "{alg}: {result}"
        );
        assert_eq!(result["revocation_status"], 200, "{alg}: {result}");
        assert_eq!(
            result["after_revocation"],
            json!({"active": false}),
            "{alg}: {result}"
        );
        let audiences: Vec<&str> = result["assertion_audiences"]
            .as_array()
            .unwrap_or_else(|| panic!("{alg}: {result}"))
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert!(
            !audiences.is_empty(),
            "{alg}: the script saw no assertion: {result}"
        );
    }
    let log = server.stop_with("TERM").await.logs;
    assert!(log.contains("listening"));
}
