//! The ceiling of gatehouse's client_credentials benchmark.
//!
//! A bare axum endpoint that does only what no token endpoint can skip: parse the
//! form body (and the Basic header, if any), sign an ES256 JWT with the same
//! crypto backend as gatehouse (aws-lc-rs), and answer the RFC 6749 JSON. No
//! client lookup, no secret check, no metrics, no logging. `bench/run.sh` runs
//! it beside the real server and prints gatehouse's throughput as a fraction of
//! this one's.
//!
//! So that both sign the same number of bytes, the JWT header and claims are
//! templates taken from a token the real server issued (`--header FILE`,
//! `--claims FILE`, both JSON); each request gets fresh `iat`, `exp` and a
//! random `jti` of the template's length.
//!
//! Usage: `gatehouse-bench-ceiling --listen 127.0.0.1:0 --header h.json --claims c.json`.
//! Logs `listening addr=IP:PORT` on stderr once bound.

use std::{sync::Arc, time::SystemTime};

use aws_lc_rs::{
    rand::{SecureRandom, SystemRandom},
    signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING},
};
use axum::body::Bytes;
use axum::{
    extract::State,
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::post,
    Router,
};
use base64::{
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
    Engine,
};
use serde::Serialize;
use serde_json::{Map, Value};

struct Signer {
    key: EcdsaKeyPair,
    rng: SystemRandom,
    /// base64url of the JOSE header, with the trailing '.'.
    encoded_header: String,
    claims: Template,
    jti_len: usize,
    ttl: u64,
}

/// The string claims of the template token (RFC 9068 §2.2), serialized per
/// request with fresh `iat`, `exp` and `jti`.
struct Template {
    iss: String,
    sub: String,
    aud: Value,
    client_id: String,
    scope: String,
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a Value,
    exp: u64,
    iat: u64,
    jti: &'a str,
    client_id: &'a str,
    scope: &'a str,
}

#[derive(Serialize)]
struct TokenResponse<'a> {
    access_token: &'a str,
    token_type: &'static str,
    expires_in: u64,
    scope: &'a str,
}

fn oauth_error(status: StatusCode, code: &str) -> Response {
    let body = format!(r#"{{"error":"{code}","error_description":"ceiling"}}"#);
    (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        body,
    )
        .into_response()
}

async fn token(State(signer): State<Arc<Signer>>, headers: HeaderMap, body: Bytes) -> Response {
    // Parse what a real endpoint must parse: the form, the grant type at most
    // once, and the client's identity from Basic or the body.
    let mut grant_type = None;
    let mut client_id = None;
    for (name, value) in form_urlencoded::parse(&body) {
        let slot = match name.as_ref() {
            "grant_type" => &mut grant_type,
            "client_id" => &mut client_id,
            _ => continue,
        };
        if slot.replace(value).is_some() {
            return oauth_error(StatusCode::BAD_REQUEST, "invalid_request");
        }
    }
    if grant_type.as_deref() != Some("client_credentials") {
        return oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type");
    }
    let basic_id = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b64| STANDARD.decode(b64).ok())
        .and_then(|raw| String::from_utf8(raw).ok())
        .and_then(|pair| pair.split_once(':').map(|(id, _)| id.to_owned()));
    if basic_id.is_none() && client_id.is_none() {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");
    }

    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    let mut jti_bytes = [0u8; 96];
    let jti_bytes = &mut jti_bytes[..(signer.jti_len.div_ceil(4) * 3).min(96)];
    if signer.rng.fill(jti_bytes).is_err() {
        return oauth_error(StatusCode::INTERNAL_SERVER_ERROR, "server_error");
    }
    let mut jti = URL_SAFE_NO_PAD.encode(&jti_bytes);
    jti.truncate(signer.jti_len);

    let t = &signer.claims;
    let claims = Claims {
        iss: &t.iss,
        sub: &t.sub,
        aud: &t.aud,
        exp: now + signer.ttl,
        iat: now,
        jti: &jti,
        client_id: &t.client_id,
        scope: &t.scope,
    };
    let payload = serde_json::to_vec(&claims).expect("claims serialize");

    let mut jwt = String::with_capacity(signer.encoded_header.len() + payload.len() * 4 / 3 + 100);
    jwt.push_str(&signer.encoded_header);
    URL_SAFE_NO_PAD.encode_string(&payload, &mut jwt);
    let signature = match signer.key.sign(&signer.rng, jwt.as_bytes()) {
        Ok(s) => s,
        Err(_) => return oauth_error(StatusCode::INTERNAL_SERVER_ERROR, "server_error"),
    };
    jwt.push('.');
    URL_SAFE_NO_PAD.encode_string(signature.as_ref(), &mut jwt);

    let body = serde_json::to_vec(&TokenResponse {
        access_token: &jwt,
        token_type: "Bearer",
        expires_in: signer.ttl,
        scope: &t.scope,
    })
    .expect("response serializes");
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("application/json")),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (header::PRAGMA, HeaderValue::from_static("no-cache")),
        ],
        body,
    )
        .into_response()
}

fn read_json_object(path: &str) -> Map<String, Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| fail(&format!("{path}: {e}")));
    match serde_json::from_str(&text) {
        Ok(Value::Object(map)) => map,
        _ => fail(&format!("{path}: not a JSON object")),
    }
}

fn fail(message: &str) -> ! {
    eprintln!("gatehouse-bench-ceiling: {message}");
    std::process::exit(2)
}

#[tokio::main]
async fn main() {
    let mut listen = "127.0.0.1:0".to_owned();
    let mut header_path = None;
    let mut claims_path = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .unwrap_or_else(|| fail(&format!("{flag} needs a value")));
        match flag.as_str() {
            "--listen" => listen = value,
            "--header" => header_path = Some(value),
            "--claims" => claims_path = Some(value),
            _ => fail(&format!("unknown argument {flag}")),
        }
    }
    let header = read_json_object(&header_path.unwrap_or_else(|| fail("--header FILE is required")));
    let claims = read_json_object(&claims_path.unwrap_or_else(|| fail("--claims FILE is required")));

    let ttl = match (claims.get("exp"), claims.get("iat")) {
        (Some(Value::Number(exp)), Some(Value::Number(iat))) => exp
            .as_u64()
            .unwrap_or(3600)
            .saturating_sub(iat.as_u64().unwrap_or(0)),
        _ => 3600,
    };
    let jti_len = claims.get("jti").and_then(Value::as_str).map_or(43, str::len);
    let text = |name: &str| {
        claims
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or_else(|| fail(&format!("the template claims have no string {name:?}")))
            .to_owned()
    };
    let template = Template {
        iss: text("iss"),
        sub: text("sub"),
        aud: claims
            .get("aud")
            .cloned()
            .unwrap_or_else(|| fail("the template claims have no aud")),
        client_id: text("client_id"),
        scope: text("scope"),
    };
    const KNOWN: [&str; 8] = ["iss", "sub", "aud", "exp", "iat", "jti", "client_id", "scope"];
    for name in claims.keys().filter(|k| !KNOWN.contains(&k.as_str())) {
        eprintln!("warning: template claim {name:?} is not reproduced: the tokens will differ in size");
    }
    let mut encoded_header = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).expect("header"));
    encoded_header.push('.');

    let signer = Arc::new(Signer {
        key: EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
            .unwrap_or_else(|_| fail("cannot generate a P-256 key")),
        rng: SystemRandom::new(),
        encoded_header,
        claims: template,
        jti_len,
        ttl,
    });

    let app = Router::new()
        .route("/oauth/token", post(token))
        .with_state(signer);
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .unwrap_or_else(|e| fail(&format!("cannot listen on {listen}: {e}")));
    let addr = listener.local_addr().expect("bound address");
    eprintln!("listening addr={addr}");
    axum::serve(listener, app)
        .await
        .unwrap_or_else(|e| fail(&format!("server error: {e}")));
}
