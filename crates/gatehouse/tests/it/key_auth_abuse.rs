//! Hostile `private_key_jwt` requests: malformed assertions (wrong shape, bad
//! base64, non-JSON, deep nesting, oversize), forbidden algorithms (`none`,
//! HS256 keyed with the public key), parameters that contradict each other,
//! keys that do not fit, and one assertion sent 200 times at once. Each gets a
//! precise `invalid_client` or `invalid_request` (or the documented 413 of a
//! body over 16 KiB), never a 500, and the server keeps working.

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as BASE64URL;
use base64::Engine as _;
use jwt_simple::algorithms::{HS256Key, MACLike as _};
use jwt_simple::claims::JWTClaims;
use reqwest::StatusCode;
use serde_json::{json, Map, Value};

use crate::helpers::*;
use crate::private_key_jwt::{
    assert_invalid_client, assert_token_for, claims, jwt_client, post_with_assertion, server_token,
    token_with, TestKey, ASSERTION_TYPE,
};

fn b64(bytes: impl AsRef<[u8]>) -> String {
    BASE64URL.encode(bytes)
}

/// `header.payload.signature` from JSON texts, the signature as given.
fn compact(header: &str, payload: &str, signature: &str) -> String {
    format!("{}.{}.{signature}", b64(header), b64(payload))
}

/// An HS256 JWS of `payload` keyed with `secret`: what an attacker makes of a
/// public key when a verifier lets the header pick the algorithm.
fn hs256(secret: &[u8], payload: &Value) -> String {
    let custom: Map<String, Value> = payload.as_object().expect("object").clone();
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
    HS256Key::from_bytes(secret).authenticate(claims).expect("HS256")
}

/// A case of contradicting parameters: its name, the parameters after
/// `grant_type`, an `Authorization` header, and what it must get.
type ParamCase = (&'static str, Vec<(&'static str, String)>, Option<String>, Expect);

/// What a case must get.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// 401 `invalid_client`.
    Client,
    /// 400 `invalid_request`.
    Request,
    /// 413: the body is over the documented 16 KiB.
    TooLarge,
}

fn check(reply: &Reply, expect: Expect, what: &str) {
    if let Some(problem) = problem(reply, expect, what) {
        panic!("{problem}");
    }
}

/// What is wrong with `reply` for a case expecting `expect`, if anything.
fn problem(reply: &Reply, expect: Expect, what: &str) -> Option<String> {
    let problems = match expect {
        Expect::Client => reply.error_problems(StatusCode::UNAUTHORIZED, "invalid_client", true),
        Expect::Request => reply.error_problems(StatusCode::BAD_REQUEST, "invalid_request", true),
        Expect::TooLarge if reply.status == StatusCode::PAYLOAD_TOO_LARGE => vec![],
        Expect::TooLarge => vec![format!("status {} (want 413)", reply.status)],
    };
    let body: String = reply.body.chars().take(300).collect();
    (!problems.is_empty()).then(|| format!("{what}: {}: {} {body}", problems.join("; "), reply.status))
}

/// `[[[…` `depth` times, closed or not: JSON as deep as a parser's recursion.
fn nested(depth: usize, closed: bool) -> String {
    let mut text = "[".repeat(depth);
    if closed {
        text.push_str(&"]".repeat(depth));
    }
    text
}

backend_tests! {
    /// Malformed and forbidden assertions at the token endpoint, each with
    /// its precise error; then a good assertion still works.
    async fn malformed_assertions_are_refused_precisely(backend) {
        let db = TestDb::new(backend).await;
        let key = TestKey::generate("ES256", Some("k1"));
        let id = jwt_client(&db, "svc", &[&key], &[]).await;
        let rsa = TestKey::generate("RS256", Some("r1"));
        let rsa_id = jwt_client(&db, "rsa", &[&rsa], &[]).await;
        let secret_client = db.create_client("secret", &[]).await;
        let server = db.start(&[]).await;
        let issuer = server.issuer().await;
        let good = || claims(&id, &issuer);
        let good_payload = good().to_string();
        let es_header = r#"{"alg":"ES256","typ":"JWT","kid":"k1"}"#;
        let valid = key.sign(&good());
        let valid_signature = valid.rsplit('.').next().expect("signature").to_string();
        let signed_with = |payload: Value| key.sign(&payload);

        let mut big = good();
        big["padding"] = json!("x".repeat(9000));
        let mut huge = good();
        huge["padding"] = json!("x".repeat(20_000));
        let mut deep = good();
        deep["deep"] = json!("");
        let deep_text = deep.to_string().replace(r#""deep":"""#, &format!(r#""deep":{}"#, nested(2000, true)));
        let deep_huge = deep.to_string().replace(r#""deep":"""#, &format!(r#""deep":{}"#, nested(10_000, true)));
        let deep_open = deep.to_string().replace(r#""deep":"""#, &format!(r#""deep":{}"#, nested(10_000, false)));

        let cases: Vec<(&str, String, Expect)> = vec![
            ("one part", "abc".into(), Expect::Client),
            ("two parts", format!("{}.{}", b64(es_header), b64(&good_payload)), Expect::Client),
            ("four parts", format!("{valid}.{valid_signature}"), Expect::Client),
            ("empty signature", format!("{}.", valid.rsplit_once('.').expect("dot").0), Expect::Client),
            ("dots only", "..".into(), Expect::Client),
            ("bad base64 header", format!("!!!.{}.{valid_signature}", b64(&good_payload)), Expect::Client),
            ("bad base64 payload", format!("{}.%%%.{valid_signature}", b64(es_header)), Expect::Client),
            ("bad base64 signature", format!("{}.***", valid.rsplit_once('.').expect("dot").0), Expect::Client),
            ("padded base64 header", format!("{}==.{}.{valid_signature}", b64(es_header), b64(&good_payload)), Expect::Client),
            ("non-JSON header", compact("not json", &good_payload, &valid_signature), Expect::Client),
            ("header a JSON array", compact("[]", &good_payload, &valid_signature), Expect::Client),
            ("header without alg", compact(r#"{"typ":"JWT"}"#, &good_payload, &valid_signature), Expect::Client),
            ("non-JSON payload", compact(es_header, "nope", &valid_signature), Expect::Client),
            ("payload a JSON string", compact(es_header, r#""sub""#, &valid_signature), Expect::Client),
            ("payload not UTF-8", format!("{}.{}.{valid_signature}", b64(es_header), b64([0xffu8, 0xfe, 0x7b])), Expect::Client),
            ("alg none", compact(r#"{"alg":"none","typ":"JWT"}"#, &good_payload, ""), Expect::Client),
            ("alg none with a signature", compact(r#"{"alg":"none"}"#, &good_payload, &valid_signature), Expect::Client),
            ("alg NONE", compact(r#"{"alg":"NONE"}"#, &good_payload, ""), Expect::Client),
            ("alg HS256 keyed with the public key PEM", hs256(key.public_pem().as_bytes(), &good()), Expect::Client),
            ("alg HS256 keyed with the JWK", hs256(key.jwk().to_string().as_bytes(), &good()), Expect::Client),
            ("alg HS256 keyed with the RSA public key PEM", hs256(rsa.public_pem().as_bytes(), &claims(&rsa_id, &issuer)), Expect::Client),
            ("alg ES384", compact(r#"{"alg":"ES384","kid":"k1"}"#, &good_payload, &valid_signature), Expect::Client),
            ("alg RS256 on an ES256 signature", compact(r#"{"alg":"RS256","kid":"k1"}"#, &good_payload, &valid_signature), Expect::Client),
            ("alg a number", compact(r#"{"alg":256,"kid":"k1"}"#, &good_payload, &valid_signature), Expect::Client),
            ("crit header", compact(r#"{"alg":"ES256","kid":"k1","crit":["exp"]}"#, &good_payload, &valid_signature), Expect::Client),
            ("a valid signature over another payload", format!("{}.{}.{valid_signature}", b64(es_header), b64(good().to_string())), Expect::Client),
            ("unknown kid", TestKey::generate("ES256", Some("nobody")).sign(&good()), Expect::Client),
            ("kid a number", compact(r#"{"alg":"ES256","kid":1}"#, &good_payload, &valid_signature), Expect::Client),
            ("RSA key registered, ES256 assertion with its kid", TestKey::generate("ES256", Some("r1")).sign(&claims(&rsa_id, &issuer)), Expect::Client),
            ("RSA key registered, ES256 assertion without kid", TestKey::generate("ES256", None).sign(&claims(&rsa_id, &issuer)), Expect::Client),
            ("RSA key registered, EdDSA assertion", TestKey::generate("EdDSA", None).sign(&claims(&rsa_id, &issuer)), Expect::Client),
            ("sub a number", signed_with({ let mut c = good(); c["sub"] = json!(42); c }), Expect::Client),
            ("sub null", signed_with({ let mut c = good(); c["sub"] = Value::Null; c }), Expect::Client),
            ("no sub", signed_with({ let mut c = good(); c.as_object_mut().expect("object").remove("sub"); c }), Expect::Client),
            ("sub of no client", signed_with({ let mut c = good(); c["sub"] = json!("no-such-client"); c["iss"] = json!("no-such-client"); c }), Expect::Client),
            ("sub with a NUL", signed_with({ let mut c = good(); c["sub"] = json!("svc\u{0}x"); c["iss"] = c["sub"].clone(); c }), Expect::Client),
            ("sub of 5000 characters", signed_with({ let mut c = good(); c["sub"] = json!("s".repeat(5000)); c["iss"] = c["sub"].clone(); c }), Expect::Client),
            ("sub of a secret client", signed_with({ let mut c = good(); c["sub"] = json!(secret_client.id); c["iss"] = c["sub"].clone(); c }), Expect::Client),
            ("aud an object", signed_with({ let mut c = good(); c["aud"] = json!({"url": issuer}); c }), Expect::Client),
            ("exp a float with a fraction", signed_with({ let mut c = good(); c["exp"] = json!(unix_now() as f64 + 60.5); c }), Expect::Client),
            ("payload with a deep value (2000 levels, under 8 KiB)", compact(es_header, &deep_text, &valid_signature), Expect::Client),
            ("header nested 2000 levels", compact(&format!(r#"{{"alg":"ES256","x":{}}}"#, nested(2000, true)), &good_payload, &valid_signature), Expect::Client),
            ("payload nested 10 000 levels, unclosed (between 8 and 16 KiB)", compact(es_header, &deep_open, &valid_signature), Expect::Client),
            ("assertion over 8 KiB, properly signed", signed_with(big), Expect::Client),
            ("assertion of 20 KB", signed_with(huge), Expect::TooLarge),
            ("payload nested 10 000 levels, closed (over 16 KiB)", compact(es_header, &deep_huge, &valid_signature), Expect::TooLarge),
        ];
        let mut problems = Vec::new();
        for (what, assertion, expect) in &cases {
            let reply = token_with(&server, "/oauth/token", assertion).await;
            problems.extend(problem(&reply, *expect, what));
            // The same at the revocation endpoint: a bad assertion is not "no client authentication".
            if matches!(expect, Expect::Client) {
                let reply = post_with_assertion(&server, "/oauth/revoke", assertion, &[("token", "x")]).await;
                problems.extend(problem(&reply, *expect, &format!("{what}, at /oauth/revoke")));
            }
        }

        // Parameters that contradict each other.
        let grant = ("grant_type", "client_credentials");
        let fresh = || key.sign(&good());
        let a = fresh();
        let param_cases: Vec<ParamCase> = vec![
            ("another client_assertion_type", vec![("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:saml2-bearer".into()), ("client_assertion", fresh())], None, Expect::Client),
            // RFC 6749 §3.1: a parameter without a value is as if omitted.
            ("an empty client_assertion_type", vec![("client_assertion_type", String::new()), ("client_assertion", fresh())], None, Expect::Request),
            ("an empty client_assertion", vec![("client_assertion_type", ASSERTION_TYPE.into()), ("client_assertion", String::new())], None, Expect::Request),
            ("the assertion type in upper case", vec![("client_assertion_type", ASSERTION_TYPE.to_uppercase()), ("client_assertion", fresh())], None, Expect::Client),
            ("client_assertion_type without client_assertion", vec![("client_assertion_type", ASSERTION_TYPE.into())], None, Expect::Request),
            ("client_assertion without client_assertion_type", vec![("client_assertion", fresh())], None, Expect::Request),
            ("client_assertion twice", vec![("client_assertion_type", ASSERTION_TYPE.into()), ("client_assertion", a.clone()), ("client_assertion", a.clone())], None, Expect::Request),
            ("client_assertion_type twice", vec![("client_assertion_type", ASSERTION_TYPE.into()), ("client_assertion_type", ASSERTION_TYPE.into()), ("client_assertion", fresh())], None, Expect::Request),
            ("an assertion and Basic", vec![("client_assertion_type", ASSERTION_TYPE.into()), ("client_assertion", fresh())], Some(basic_authorization(&secret_client.id, &secret_client.secret)), Expect::Request),
            ("an assertion and Basic of the same client", vec![("client_assertion_type", ASSERTION_TYPE.into()), ("client_assertion", fresh())], Some(basic_authorization(&id, "whatever-secret")), Expect::Request),
            ("an assertion and client_secret", vec![("client_assertion_type", ASSERTION_TYPE.into()), ("client_assertion", fresh()), ("client_id", id.clone()), ("client_secret", "whatever-secret".into())], None, Expect::Request),
            ("an assertion and client_secret without client_id", vec![("client_assertion_type", ASSERTION_TYPE.into()), ("client_assertion", fresh()), ("client_secret", "whatever-secret".into())], None, Expect::Request),
        ];
        for (what, params, authorization, expect) in param_cases {
            let mut pairs = vec![(grant.0.to_string(), grant.1.to_string())];
            pairs.extend(params.into_iter().map(|(k, v)| (k.to_string(), v)));
            let reply = server.post_raw("/oauth/token", Some(FORM), authorization.as_deref(), form_body(&pairs)).await;
            problems.extend(problem(&reply, expect, what));
        }
        assert!(problems.is_empty(), "{} cases answered otherwise:\n{}", problems.len(), problems.join("\n"));

        // JSON bodies carry the same parameters (docs/protocol.md); an assertion
        // that is not a string is a bad request body.
        let body = json!({"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE, "client_assertion": fresh()});
        let reply = server.post_raw("/oauth/token", Some(JSON), None, body.to_string()).await;
        assert_token_for(&reply, &id, "an assertion in a JSON body");
        let body = json!({"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE, "client_assertion": {"a": 1}});
        let reply = server.post_raw("/oauth/token", Some(JSON), None, body.to_string()).await;
        check(&reply, Expect::Request, "an assertion that is a JSON object");

        // Two `sub` members: whichever the server reads, it never issues a
        // token to another client than the one whose key signed.
        let duplicate = format!(
            r#"{{"iss":"{id}","sub":"{other}","sub":"{id}","aud":"{issuer}","exp":{exp},"jti":"{jti}"}}"#,
            other = rsa_id,
            exp = unix_now() + 60,
            jti = random_token(""),
        );
        let signed_template = key.sign(&json!({}));
        let (head, _) = signed_template.split_once('.').expect("dot");
        let forged = format!("{head}.{}.{valid_signature}", b64(&duplicate));
        check(&token_with(&server, "/oauth/token", &forged).await, Expect::Client, "two sub members, a signature of other claims");

        // Of all the assertions above only the one in a JSON body was taken, and
        // only it left a replay record: nothing unauthenticated writes one.
        assert_eq!(db.connect().await.count("used_jtis").await, 1, "replay records of refused assertions");

        // Still working, and nothing above was a 500.
        let token = server_token(&server, &key, &id).await;
        assert!(!token.is_empty());
        assert_eq!(server.metric("gatehouse_http_requests_total", &["status=\"500\""]).await, 0.0, "a 500 was answered");
    }

    /// The same assertion 200 times at once: exactly one token; every other
    /// answer is `invalid_client`.
    async fn two_hundred_concurrent_uses_of_one_assertion_get_one_token(backend) {
        let db = TestDb::new(backend).await;
        let key = TestKey::generate("ES256", Some("k1"));
        let id = jwt_client(&db, "svc", &[&key], &[]).await;
        // 200 connections from one address: past the default cap of 64 per address.
        let server = db.start(&["--max-connections-per-address", "0"]).await;
        let issuer = server.issuer().await;

        for round in 0..2 {
            let assertion = key.sign(&claims(&id, &issuer));
            let barrier = Arc::new(tokio::sync::Barrier::new(200));
            let body = form_body(&[
                ("grant_type", "client_credentials"),
                ("client_assertion_type", ASSERTION_TYPE),
                ("client_assertion", assertion.as_str()),
            ]);
            let tasks: Vec<_> = (0..200)
                .map(|_| {
                    let request = server.http().post(server.url("/oauth/token")).header("content-type", FORM).body(body.clone());
                    let barrier = barrier.clone();
                    tokio::spawn(async move {
                        barrier.wait().await;
                        Reply::from(request.send().await).await
                    })
                })
                .collect();
            let mut ok = 0;
            for task in tasks {
                let reply = task.await.expect("task");
                if reply.status == StatusCode::OK {
                    ok += 1;
                } else {
                    assert_invalid_client(&reply, &format!("round {round}: a replay that lost"));
                }
            }
            assert_eq!(ok, 1, "round {round}: {ok} of 200 concurrent uses of one assertion got a token");
        }
    }
}
