//! The token source against a stub token endpoint (a small axum app on
//! `127.0.0.1:0`) that answers what each test scripts and records what it
//! was sent: retries, refusals, cache keys, client authentication on the
//! wire (secrets, private_key_jwt assertions checked with jwt-simple, an
//! independent JOSE implementation), discovery. What only a real server can show
//! is in gatehouse's integration tests (`crates/gatehouse/tests/it/client_sdk.rs`,
//! `sdk_keys.rs`).

// Tests may unwrap: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as BASE64URL;
use base64::Engine as _;
use gatehouse_client::{
    ClientAuthMethod, ClientCredentials, Error, ErrorCode, ExposeSecret, OAuthClient, PrivateKey,
    RetryPolicy, SecretString, TokenEndpoint, TokenParams,
};
use jwt_simple::prelude::{
    ECDSAP256PublicKeyLike as _, ES256KeyPair, ES256PublicKey, Ed25519KeyPair, Ed25519PublicKey,
    EdDSAPublicKeyLike as _, JWTClaims, NoCustomClaims, PS256KeyPair, PS256PublicKey, RS256KeyPair,
    RS256PublicKey, RSAPublicKeyLike as _, Token, TokenMetadata, VerificationOptions,
};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::time::Instant;

/// One scripted answer.
struct Scripted {
    status: StatusCode,
    headers: Vec<(&'static str, String)>,
    body: Value,
}

fn answer(status: u16, body: Value) -> Scripted {
    Scripted {
        status: StatusCode::from_u16(status).unwrap(),
        headers: vec![("cache-control", "no-store".into())],
        body,
    }
}

/// One request the stub received.
#[derive(Clone, Debug)]
struct Seen {
    /// `/token` or `/revoke`.
    path: &'static str,
    at: Instant,
    authorization: Option<String>,
    form: HashMap<String, String>,
}

#[derive(Default)]
struct StubState {
    script: VecDeque<Scripted>,
    seen: Vec<Seen>,
    /// The issuer the metadata names (the stub's own URL unless a test lies).
    issuer: Option<String>,
}

/// A running stub token endpoint.
#[derive(Clone)]
struct Stub {
    url: String,
    state: Arc<Mutex<StubState>>,
}

impl Stub {
    async fn start() -> Stub {
        Stub::start_on(TcpListener::bind("127.0.0.1:0").await.unwrap()).await
    }

    async fn start_on(listener: TcpListener) -> Stub {
        let url = format!("http://{}", listener.local_addr().unwrap());
        let stub = Stub {
            url,
            state: Arc::default(),
        };
        let app = Router::new()
            .route("/token", post(token))
            .route("/revoke", post(revoke))
            .route("/.well-known/oauth-authorization-server", get(metadata))
            .with_state(stub.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        stub
    }

    fn script(&self, answers: impl IntoIterator<Item = Scripted>) {
        self.state.lock().unwrap().script.extend(answers);
    }

    fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    fn client(&self, retry: RetryPolicy) -> OAuthClient {
        self.client_with(
            ClientCredentials::new("app", SecretString::from("app-secret")),
            retry,
        )
    }

    fn client_with(&self, credentials: ClientCredentials, retry: RetryPolicy) -> OAuthClient {
        OAuthClient::builder(
            TokenEndpoint::url(&format!("{}/token", self.url)).unwrap(),
            credentials,
        )
        .retry(retry)
        .build()
        .unwrap()
    }
}

/// Answers with the next scripted answer, or issues a token that names the
/// scope and audience it was asked for (`t<n>.<scope>.<audience>`).
async fn token(
    State(stub): State<Stub>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let mut state = stub.state.lock().unwrap();
    state.seen.push(Seen {
        path: "/token",
        at: Instant::now(),
        authorization: headers
            .get("authorization")
            .map(|value| value.to_str().unwrap().to_string()),
        form: form.clone(),
    });
    let scripted = state.script.pop_front().unwrap_or_else(|| {
        let scope = form.get("scope").cloned().unwrap_or_default();
        let audience = form.get("audience").cloned().unwrap_or_default();
        let token = format!("t{}.{}.{}", state.seen.len(), scope.replace(' ', "+"), audience);
        answer(
            200,
            json!({"access_token": token, "token_type": "Bearer", "expires_in": 3600, "scope": scope}),
        )
    });
    let mut response = (scripted.status, Json(scripted.body)).into_response();
    for (name, value) in scripted.headers {
        response.headers_mut().insert(name, value.parse().unwrap());
    }
    response
}

/// Records a revocation request and answers 200 (RFC 7009 §2.2).
async fn revoke(
    State(stub): State<Stub>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> StatusCode {
    stub.state.lock().unwrap().seen.push(Seen {
        path: "/revoke",
        at: Instant::now(),
        authorization: headers
            .get("authorization")
            .map(|value| value.to_str().unwrap().to_string()),
        form,
    });
    StatusCode::OK
}

async fn metadata(State(stub): State<Stub>) -> Json<Value> {
    let issuer = stub
        .state
        .lock()
        .unwrap()
        .issuer
        .clone()
        .unwrap_or(stub.url.clone());
    Json(json!({
        "issuer": issuer,
        "token_endpoint": format!("{}/token", stub.url),
        "revocation_endpoint": format!("{}/revoke", stub.url),
    }))
}

/// A patient policy with short steps, for tests that should not take long.
fn quick_retries(attempts: u32) -> RetryPolicy {
    RetryPolicy::default()
        .max_attempts(attempts)
        .initial_backoff(Duration::from_millis(20))
        .max_total_wait(Duration::from_secs(10))
}

#[tokio::test]
async fn transient_failures_are_retried_honouring_retry_after() {
    let stub = Stub::start().await;
    stub.script([
        answer(
            503,
            json!({"error": "temporarily_unavailable", "error_description": "database"}),
        ),
        Scripted {
            headers: vec![("retry-after", "1".into())],
            ..answer(429, json!({"error": "slow_down"}))
        },
    ]);
    let source = stub
        .client(RetryPolicy::default())
        .token_source(TokenParams::new());

    let started = Instant::now();
    let token = source.token().await.expect("success on the third attempt");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert!(token.secret().expose_secret().starts_with("t3."), "{token:?}");
    let seen = stub.seen();
    assert_eq!(seen.len(), 3);
    assert!(
        seen[2].at - seen[1].at >= Duration::from_secs(1),
        "the retry came {:?} after the 429 asked for 1 s",
        seen[2].at - seen[1].at
    );
}

#[tokio::test]
async fn retry_after_as_an_http_date_is_honoured() {
    let stub = Stub::start().await;
    let in_two_seconds = httpdate_in(Duration::from_secs(2));
    stub.script([Scripted {
        headers: vec![("retry-after", in_two_seconds)],
        ..answer(429, json!({"error": "slow_down"}))
    }]);
    let source = stub
        .client(RetryPolicy::default())
        .token_source(TokenParams::new());
    source.token().await.expect("success on the second attempt");
    let seen = stub.seen();
    assert_eq!(seen.len(), 2);
    // Whole seconds on the wire: "in 2 s" is at least 1 s away.
    assert!(
        seen[1].at - seen[0].at >= Duration::from_secs(1),
        "{:?}",
        seen[1].at - seen[0].at
    );
}

/// An HTTP-date `delay` from now (wall-clock time, by definition).
#[allow(clippy::disallowed_methods)]
fn httpdate_in(delay: Duration) -> String {
    httpdate::fmt_http_date(std::time::SystemTime::now() + delay)
}

#[tokio::test]
async fn an_oauth_error_is_not_retried_and_comes_back_typed() {
    let stub = Stub::start().await;
    stub.script([answer(
        400,
        json!({"error": "invalid_client", "error_description": "client authentication failed"}),
    )]);
    let source = stub
        .client(RetryPolicy::default())
        .token_source(TokenParams::new());

    let error = source.token().await.expect_err("refused");
    let Error::OAuth(refusal) = &error else {
        panic!("not an OAuth error: {error:?}");
    };
    assert_eq!(refusal.status(), StatusCode::BAD_REQUEST);
    assert_eq!(refusal.error(), &ErrorCode::InvalidClient);
    assert_eq!(refusal.error_description(), Some("client authentication failed"));
    assert!(!error.is_transient());
    assert_eq!(stub.seen().len(), 1, "an OAuth error is final");
    assert!(!error.to_string().contains("app-secret"), "{error}");
}

#[tokio::test]
async fn retries_stop_at_the_attempt_limit() {
    let stub = Stub::start().await;
    stub.script((0..10).map(|_| answer(503, json!({"error": "temporarily_unavailable"}))));
    let source = stub.client(quick_retries(3)).token_source(TokenParams::new());

    let error = source.token().await.expect_err("still unavailable");
    match &error {
        Error::Status {
            status, oauth_error, ..
        } => {
            assert_eq!(*status, StatusCode::SERVICE_UNAVAILABLE);
            let code = oauth_error.as_ref().map(|e| e.error().as_str());
            assert_eq!(code, Some("temporarily_unavailable"));
        }
        other => panic!("{other:?}"),
    }
    assert!(error.is_transient());
    assert_eq!(stub.seen().len(), 3);
}

#[tokio::test]
async fn a_retry_after_beyond_the_wait_cap_ends_the_retries_at_once() {
    let stub = Stub::start().await;
    stub.script([Scripted {
        headers: vec![("retry-after", "60".into())],
        ..answer(429, json!({"error": "slow_down"}))
    }]);
    let policy = RetryPolicy::default().max_total_wait(Duration::from_secs(5));
    let source = stub.client(policy).token_source(TokenParams::new());

    let started = Instant::now();
    let error = source.token().await.expect_err("not worth waiting for");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(
        matches!(
            error,
            Error::Status { status: StatusCode::TOO_MANY_REQUESTS, retry_after: Some(wait), .. }
                if wait == Duration::from_secs(60)
        ),
        "{error:?}"
    );
    assert_eq!(stub.seen().len(), 1);
}

#[tokio::test]
async fn connection_failures_are_retried_until_the_server_is_up() {
    // A free port, closed again: connections are refused until the stub binds it.
    let port = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client = OAuthClient::builder(
        TokenEndpoint::url(&format!("http://127.0.0.1:{port}/token")).unwrap(),
        ClientCredentials::new("app", SecretString::from("app-secret")),
    )
    .retry(
        RetryPolicy::default()
            .max_attempts(50)
            .initial_backoff(Duration::from_millis(50))
            .max_backoff(Duration::from_millis(100)),
    )
    .build()
    .unwrap();
    let source = client.token_source(TokenParams::new());
    let pending = tokio::spawn(async move { source.token().await });
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(!pending.is_finished(), "gave up while the server was down");
    let stub = Stub::start_on(TcpListener::bind(("127.0.0.1", port)).await.unwrap()).await;
    pending.await.unwrap().expect("a token once the server is up");
    assert_eq!(stub.seen().len(), 1);

    // With no server at all, the error says so, and says nothing secret.
    let nowhere = Stub {
        url: format!(
            "http://127.0.0.1:{}",
            TcpListener::bind("127.0.0.1:0")
                .await
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        ),
        state: Arc::default(),
    };
    let error = nowhere
        .client(quick_retries(2))
        .token_source(TokenParams::new())
        .token()
        .await
        .expect_err("down");
    assert!(matches!(error, Error::Transport(_)), "{error:?}");
    assert!(!format!("{error} {error:?}").contains("app-secret"));
}

#[tokio::test]
async fn tokens_are_cached_per_scope_and_audience() {
    let stub = Stub::start().await;
    let client = stub.client(RetryPolicy::default());
    let source = client.token_source(TokenParams::new().scope("a"));

    let a = source.token().await.unwrap();
    let b = source.token_for(&TokenParams::new().scope("b")).await.unwrap();
    assert_ne!(a, b);
    assert_eq!(a.scope(), Some("a"));
    assert_eq!(b.scope(), Some("b"));
    assert!(
        b.secret().expose_secret().contains(".b."),
        "scope B's request asked for b: {b:?}"
    );
    assert_eq!(source.token().await.unwrap(), a, "scope A is still A's token");
    assert_eq!(source.token_for(&TokenParams::new().scope("b")).await.unwrap(), b);

    // Order and repeats do not matter; a wider set is another token.
    let ab = source.token_for(&TokenParams::new().scope("b a")).await.unwrap();
    assert_eq!(
        source
            .token_for(&TokenParams::new().scope("a b a"))
            .await
            .unwrap(),
        ab
    );
    assert!(ab != a && ab != b);

    // The audience separates too, and goes out as a form parameter.
    let api1 = TokenParams::new().scope("a").audience("https://api-1.example");
    let api2 = TokenParams::new().scope("a").audience("https://api-2.example");
    let one = source.token_for(&api1).await.unwrap();
    let two = source.token_for(&api2).await.unwrap();
    assert!(one != two && one != a);
    assert_eq!(source.token_for(&api1).await.unwrap(), one);

    // Another source of the same client shares the cache.
    assert_eq!(
        client
            .token_source(TokenParams::new().scope("b"))
            .token()
            .await
            .unwrap(),
        b
    );

    let asked: Vec<(Option<String>, Option<String>)> = stub
        .seen()
        .iter()
        .map(|seen| {
            (
                seen.form.get("scope").cloned(),
                seen.form.get("audience").cloned(),
            )
        })
        .collect();
    let some = |s: &str| Some(s.to_string());
    assert_eq!(
        asked,
        [
            (some("a"), None),
            (some("b"), None),
            (some("a b"), None),
            (some("a"), some("https://api-1.example")),
            (some("a"), some("https://api-2.example")),
        ],
        "one request per distinct scope and audience"
    );
}

#[tokio::test]
async fn client_authentication_on_the_wire() {
    let stub = Stub::start().await;
    // RFC 6749 §2.3.1: form-encode, then Basic.
    let basic = ClientCredentials::new("my:app", SecretString::from("p@ss word%é"));
    stub.client_with(basic, RetryPolicy::none())
        .token_source(TokenParams::new())
        .token()
        .await
        .unwrap();
    let post = ClientCredentials::new("my:app", SecretString::from("p@ss word%é"))
        .auth_method(ClientAuthMethod::ClientSecretPost);
    stub.client_with(post, RetryPolicy::none())
        .token_source(TokenParams::new())
        .token()
        .await
        .unwrap();

    let seen = stub.seen();
    let authorization = seen[0].authorization.as_deref().expect("Basic");
    let encoded = authorization.strip_prefix("Basic ").expect("Basic");
    assert_eq!(base64_decode(encoded), "my%3Aapp:p%40ss+word%25%C3%A9");
    assert_eq!(
        seen[0].form.get("grant_type").map(String::as_str),
        Some("client_credentials")
    );
    assert!(!seen[0].form.contains_key("client_secret"));

    assert_eq!(seen[1].authorization, None);
    assert_eq!(seen[1].form.get("client_id").map(String::as_str), Some("my:app"));
    assert_eq!(
        seen[1].form.get("client_secret").map(String::as_str),
        Some("p@ss word%é")
    );
}

/// Standard base64, decoded (enough for one header in one test).
fn base64_decode(text: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits = 0u32;
    let mut count = 0;
    let mut bytes = Vec::new();
    for c in text.bytes().filter(|&c| c != b'=') {
        let value = ALPHABET.iter().position(|&a| a == c).expect("base64") as u32;
        bits = (bits << 6) | value;
        count += 6;
        if count >= 8 {
            count -= 8;
            bytes.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    String::from_utf8(bytes).unwrap()
}

#[tokio::test]
async fn the_token_endpoint_is_discovered_from_the_issuer() {
    let stub = Stub::start().await;
    let client = OAuthClient::builder(
        TokenEndpoint::discover(&stub.url).unwrap(),
        ClientCredentials::new("app", SecretString::from("app-secret")),
    )
    .build()
    .unwrap();
    client
        .token_source(TokenParams::new())
        .token()
        .await
        .expect("token via metadata");
    assert_eq!(stub.seen().len(), 1);

    // RFC 8414 §3.3: metadata naming another issuer is refused.
    let liar = Stub::start().await;
    liar.state.lock().unwrap().issuer = Some("https://evil.example".into());
    let client = OAuthClient::builder(
        TokenEndpoint::discover(&liar.url).unwrap(),
        ClientCredentials::new("app", SecretString::from("app-secret")),
    )
    .build()
    .unwrap();
    let error = client
        .token_source(TokenParams::new())
        .token()
        .await
        .expect_err("mix-up");
    assert!(
        matches!(&error, Error::Discovery(text) if text.contains("evil.example")),
        "{error:?}"
    );
    assert!(liar.seen().is_empty(), "no credentials were sent");
}

#[tokio::test]
async fn plain_http_elsewhere_than_loopback_is_refused_up_front() {
    let built = OAuthClient::builder(
        TokenEndpoint::url("http://auth.example/token").unwrap(),
        ClientCredentials::new("app", SecretString::from("app-secret")),
    )
    .build();
    assert!(matches!(built, Err(Error::Config(_))), "{built:?}");
}

/// The public half of a key the SDK signs with, as jwt-simple verifies with it.
enum Verifier {
    Es256(ES256PublicKey),
    EdDsa(Ed25519PublicKey),
    Rs256(RS256PublicKey),
    Ps256(PS256PublicKey),
}

impl Verifier {
    /// Verifies `assertion`'s signature and its `iss`, `sub` and `aud`, and returns
    /// its claims and its header.
    fn verify(
        &self,
        assertion: &str,
        client_id: &str,
        audience: &str,
    ) -> (JWTClaims<NoCustomClaims>, TokenMetadata) {
        let options = VerificationOptions {
            allowed_issuers: Some(HashSet::from([client_id.to_string()])),
            required_subject: Some(client_id.to_string()),
            allowed_audiences: Some(HashSet::from([audience.to_string()])),
            time_tolerance: Some(jwt_simple::prelude::Duration::from_secs(5)),
            ..VerificationOptions::default()
        };
        let claims = match self {
            Verifier::Es256(key) => key.verify_token::<NoCustomClaims>(assertion, Some(options)),
            Verifier::EdDsa(key) => key.verify_token::<NoCustomClaims>(assertion, Some(options)),
            Verifier::Rs256(key) => key.verify_token::<NoCustomClaims>(assertion, Some(options)),
            Verifier::Ps256(key) => key.verify_token::<NoCustomClaims>(assertion, Some(options)),
        }
        .unwrap_or_else(|e| panic!("the assertion does not verify: {e}"));
        (claims, Token::decode_metadata(assertion).unwrap())
    }
}

/// A new key of each kind the SDK signs with: the PEM the SDK reads (as
/// jwt-simple writes it: PKCS#8, PKCS#1 for RSA), and the verifier.
fn keys() -> Vec<(&'static str, PrivateKey, Verifier)> {
    let es = ES256KeyPair::generate();
    let ed = Ed25519KeyPair::generate();
    let rsa = RS256KeyPair::generate(2048).unwrap();
    let rsa_pem = rsa.to_pem().unwrap();
    let ps = PS256KeyPair::from_pem(&rsa_pem).unwrap();
    vec![
        (
            "ES256",
            PrivateKey::from_pem(&es.to_pem().unwrap()).unwrap().kid("ec-1"),
            Verifier::Es256(es.public_key()),
        ),
        (
            "EdDSA",
            PrivateKey::from_pem(&ed.to_pem()).unwrap(),
            Verifier::EdDsa(ed.public_key()),
        ),
        (
            "RS256",
            PrivateKey::from_pem(&rsa_pem).unwrap().kid("rsa-1"),
            Verifier::Rs256(rsa.public_key()),
        ),
        (
            "PS256",
            PrivateKey::from_pem(&rsa_pem).unwrap().rsa_pss().unwrap(),
            Verifier::Ps256(ps.public_key()),
        ),
    ]
}

/// Seconds since the epoch, as the assertion's times are.
#[allow(clippy::disallowed_methods)]
fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn private_key_jwt_sends_a_fresh_signed_assertion_with_each_request() {
    for (alg, key, verifier) in keys() {
        let stub = Stub::start().await;
        let token_url = format!("{}/token", stub.url);
        // The first attempt fails transiently: its retry must not reuse the assertion.
        stub.script([answer(503, json!({"error": "temporarily_unavailable"}))]);
        let kid = key.key_id().map(str::to_string);
        let credentials = ClientCredentials::private_key_jwt("reports", key);
        assert_eq!(credentials.method_name(), "private_key_jwt");
        let debug = format!("{credentials:?}");
        assert!(debug.contains("[redacted]") && debug.contains(alg), "{debug}");
        let client = stub.client_with(credentials, quick_retries(2));
        let source = client.token_source(TokenParams::new().scope("read"));
        source.token().await.expect("a token on the retry");
        source
            .token_for(&TokenParams::new().scope("write"))
            .await
            .expect("a second token");

        let seen = stub.seen();
        assert_eq!(seen.len(), 3, "{alg}");
        let mut jtis = HashSet::new();
        for request in &seen {
            assert_eq!(request.authorization, None, "{alg}: no Basic beside an assertion");
            assert!(!request.form.contains_key("client_secret"), "{alg}");
            assert_eq!(request.form["client_id"], "reports", "{alg}");
            assert_eq!(
                request.form["client_assertion_type"],
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
            );
            assert_eq!(request.form["grant_type"], "client_credentials");
            let (claims, header) = verifier.verify(&request.form["client_assertion"], "reports", &token_url);
            assert_eq!(header.algorithm(), alg);
            assert_eq!(header.key_id(), kid.as_deref(), "{alg}");
            assert_eq!(header.signature_type(), Some("JWT"));
            let issued = claims.issued_at.expect("iat").as_secs();
            let expires = claims.expires_at.expect("exp").as_secs();
            assert!(issued.abs_diff(unix_now()) <= 5, "{alg}: iat {issued}");
            assert_eq!(expires - issued, 60, "{alg}");
            let jti = claims.jwt_id.expect("jti");
            assert_eq!(
                BASE64URL.decode(&jti).expect("base64url jti").len(),
                16,
                "{alg}: {jti}"
            );
            jtis.insert(jti);
        }
        assert_eq!(
            jtis.len(),
            3,
            "{alg}: every request, retries included, has its own jti"
        );
    }
}

#[tokio::test]
async fn revocation_requests_carry_an_assertion_for_the_revocation_endpoint() {
    let stub = Stub::start().await;
    let (_, key, verifier) = keys().swap_remove(0);
    let client = OAuthClient::builder(
        TokenEndpoint::discover(&stub.url).unwrap(),
        ClientCredentials::private_key_jwt("reports", key),
    )
    .build()
    .unwrap();
    stub.script([answer(
        200,
        json!({"access_token": "a1", "token_type": "Bearer", "expires_in": 3600, "refresh_token": "r1"}),
    )]);
    let session = client.session(TokenParams::new());
    session
        .login("alice", SecretString::from("alice-password"))
        .await
        .unwrap();
    session.logout().await.unwrap();

    let seen = stub.seen();
    let paths: Vec<&str> = seen.iter().map(|request| request.path).collect();
    assert_eq!(paths, ["/token", "/revoke"]);
    let revocation = &seen[1];
    assert_eq!(revocation.form["token"], "r1");
    assert_eq!(revocation.form["token_type_hint"], "refresh_token");
    let (claims, _) = verifier.verify(
        &revocation.form["client_assertion"],
        "reports",
        &format!("{}/revoke", stub.url),
    );
    assert!(claims.jwt_id.is_some());
}

#[tokio::test]
async fn tls_client_auth_sends_the_client_id_alone() {
    let stub = Stub::start().await;
    let credentials =
        ClientCredentials::tls_client_auth("edge-device").auth_method(ClientAuthMethod::ClientSecretPost);
    stub.client_with(credentials, RetryPolicy::none())
        .token_source(TokenParams::new())
        .token()
        .await
        .unwrap();
    let seen = stub.seen();
    assert_eq!(seen[0].authorization, None);
    let mut names: Vec<&str> = seen[0].form.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(names, ["client_id", "grant_type"]);
    assert_eq!(seen[0].form["client_id"], "edge-device");
}

#[tokio::test]
async fn a_client_certificate_is_checked_when_the_client_is_built() {
    let endpoint = || TokenEndpoint::url("https://as.example/token").unwrap();
    let credentials = || ClientCredentials::tls_client_auth("edge-device");
    let certified = rcgen::generate_simple_self_signed(vec!["edge-device".to_string()]).unwrap();
    let (chain, key) = (certified.cert.pem(), certified.signing_key.serialize_pem());

    OAuthClient::builder(endpoint(), credentials())
        .client_certificate_pem(&chain, &key)
        .build()
        .expect("a usable certificate and key");

    let no_key = OAuthClient::builder(endpoint(), credentials())
        .client_certificate_pem(&chain, "")
        .build();
    assert!(matches!(&no_key, Err(Error::Config(_))), "{no_key:?}");
    let no_chain = OAuthClient::builder(endpoint(), credentials())
        .client_certificate_pem("", &key)
        .build();
    assert!(matches!(&no_chain, Err(Error::Config(_))), "{no_chain:?}");
    let error = format!("{no_chain:?}");
    assert!(
        !error.contains("PRIVATE KEY"),
        "the key stays out of errors: {error}"
    );

    let with_own_client = OAuthClient::builder(endpoint(), credentials())
        .http_client(reqwest::Client::new())
        .client_certificate_pem(&chain, &key)
        .build();
    assert!(
        matches!(&with_own_client, Err(Error::Config(text)) if text.contains("identity")),
        "{with_own_client:?}"
    );
}
