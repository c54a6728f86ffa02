//! The cache's rules on tokio's paused clock with a fake key source, the URI rules,
//! and the HTTP fetcher's refusals that need no network.

use std::sync::atomic::{AtomicUsize, Ordering};

use gatehouse_core::{AuthMethod, AuthSettings, ClientId, GrantTypes, Scope, SecretHash, TokenFormat};

use super::*;

const ED_X: &str = "InW4ZAjGz1DgqiCylZ1Q6Zt_ObXfmvDOC71YBo2bR14";

/// A JWK Set of one Ed25519 key with `kid`.
fn jwks(kid: &str) -> String {
    format!(r#"{{"keys":[{{"kty":"OKP","crv":"Ed25519","x":"{ED_X}","kid":"{kid}"}}]}}"#)
}

fn client(id: &str, jwks: Option<String>, jwks_uri: Option<&str>) -> Client {
    Client {
        id: ClientId::parse(id).unwrap(),
        name: id.into(),
        secret_hash: SecretHash::Sha256([0; 32]),
        previous_secret: None,
        scope: Scope::default(),
        grant_types: GrantTypes::parse("client_credentials").unwrap(),
        audience: None,
        access_token_ttl: None,
        refresh_token_ttl: None,
        token_format: TokenFormat::Jwt,
        can_introspect: false,
        auth: AuthSettings {
            method: AuthMethod::PrivateKeyJwt,
            jwks,
            jwks_uri: jwks_uri.map(str::to_owned),
            ..Default::default()
        },
        registered: false,
        created_at: 0,
    }
}

fn uri_client(id: &str) -> Client {
    client(id, None, Some("https://keys.example/jwks"))
}

/// Answers with the JWK Set of `kid` (or fails), after `delay`, counting calls.
struct FakeSource {
    calls: AtomicUsize,
    delay: Duration,
    answer: Mutex<Result<String, u16>>,
}

impl FakeSource {
    fn new(answer: Result<String, u16>, delay: Duration) -> Arc<Self> {
        Arc::new(Self {
            calls: AtomicUsize::new(0),
            delay,
            answer: Mutex::new(answer),
        })
    }

    fn answer(&self, answer: Result<String, u16>) {
        *self.answer.lock().unwrap() = answer;
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl KeySource for FakeSource {
    async fn fetch(&self, _uri: &str) -> Result<ClientKeySet, FetchError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(self.delay).await;
        let answer = self.answer.lock().unwrap().clone();
        match answer {
            Ok(text) => ClientKeySet::parse(&text).map_err(FetchError::Invalid),
            Err(status) => Err(FetchError::Status(status)),
        }
    }
}

fn keys_with(source: &Arc<FakeSource>) -> FetchedClientKeys {
    FetchedClientKeys::with_source(source.clone())
}

fn kid(keys: &ClientKeySet) -> &str {
    keys.keys[0].kid.as_deref().unwrap()
}

async fn advance(by: Duration) {
    tokio::time::advance(by).await;
}

fn description(err: OAuthError) -> String {
    assert_eq!(err.code(), "invalid_client");
    err.description().to_owned()
}

#[tokio::test(start_paused = true)]
async fn inline_keys_are_parsed_once_per_text() {
    let keys = keys_with(&FakeSource::new(Err(500), Duration::ZERO));
    let a = client("a", Some(jwks("one")), None);
    let first = keys.client_keys(&a, None).await.unwrap();
    let again = keys.client_keys(&a, None).await.unwrap();
    assert!(Arc::ptr_eq(&first, &again));
    let changed = client("a", Some(jwks("two")), None);
    assert_eq!(kid(&keys.client_keys(&changed, None).await.unwrap()), "two");
}

#[tokio::test(start_paused = true)]
async fn unusable_inline_keys_and_no_keys_are_invalid_client() {
    let keys = keys_with(&FakeSource::new(Err(500), Duration::ZERO));
    let broken = client("a", Some("{}".into()), None);
    for _ in 0..2 {
        let err = keys.client_keys(&broken, None).await.unwrap_err();
        assert_eq!(description(err), "The client's registered keys cannot be used.");
    }
    let err = keys
        .client_keys(&client("b", None, None), None)
        .await
        .unwrap_err();
    assert_eq!(description(err), "The client has no registered keys.");
}

#[tokio::test(start_paused = true)]
async fn fetched_keys_are_fresh_for_five_minutes() {
    let source = FakeSource::new(Ok(jwks("one")), Duration::ZERO);
    let keys = keys_with(&source);
    let a = uri_client("a");
    assert_eq!(kid(&keys.client_keys(&a, None).await.unwrap()), "one");
    source.answer(Ok(jwks("two")));
    advance(FRESH_FOR - Duration::from_secs(1)).await;
    assert_eq!(kid(&keys.client_keys(&a, None).await.unwrap()), "one");
    assert_eq!(source.calls(), 1);
    advance(Duration::from_secs(1)).await;
    assert_eq!(kid(&keys.client_keys(&a, None).await.unwrap()), "two");
    assert_eq!(source.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn each_client_and_uri_has_its_own_copy() {
    let source = FakeSource::new(Ok(jwks("one")), Duration::ZERO);
    let keys = keys_with(&source);
    keys.client_keys(&uri_client("a"), None).await.unwrap();
    keys.client_keys(&uri_client("b"), None).await.unwrap();
    let moved = client("a", None, Some("https://elsewhere.example/jwks"));
    keys.client_keys(&moved, None).await.unwrap();
    assert_eq!(source.calls(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_failed_refresh_serves_the_last_copy_for_an_hour() {
    let source = FakeSource::new(Ok(jwks("one")), Duration::ZERO);
    let keys = keys_with(&source);
    let a = uri_client("a");
    keys.client_keys(&a, None).await.unwrap();
    source.answer(Err(500));
    advance(FRESH_FOR).await;
    assert_eq!(kid(&keys.client_keys(&a, None).await.unwrap()), "one");
    assert_eq!(source.calls(), 2);
    advance(STALE_FOR - FRESH_FOR - Duration::from_secs(1)).await;
    assert_eq!(kid(&keys.client_keys(&a, None).await.unwrap()), "one");
    advance(Duration::from_secs(1)).await;
    let err = keys.client_keys(&a, None).await.unwrap_err();
    assert_eq!(description(err), "The client's jwks_uri did not answer 200 OK.");
}

#[tokio::test(start_paused = true)]
async fn a_failure_is_not_retried_for_ten_seconds() {
    let source = FakeSource::new(Err(503), Duration::ZERO);
    let keys = keys_with(&source);
    let a = uri_client("a");
    for _ in 0..3 {
        let err = keys.client_keys(&a, None).await.unwrap_err();
        assert_eq!(description(err), "The client's jwks_uri did not answer 200 OK.");
    }
    assert_eq!(source.calls(), 1);
    source.answer(Ok(jwks("one")));
    advance(RETRY_INTERVAL).await;
    assert_eq!(kid(&keys.client_keys(&a, None).await.unwrap()), "one");
    assert_eq!(source.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn an_unknown_kid_fetches_again_at_most_once_a_minute() {
    let source = FakeSource::new(Ok(jwks("one")), Duration::ZERO);
    let keys = keys_with(&source);
    let a = uri_client("a");
    keys.client_keys(&a, None).await.unwrap();
    // A key the client just added is fetched at once, however recent the last fetch.
    source.answer(Ok(jwks("two")));
    assert_eq!(kid(&keys.client_keys(&a, Some("two")).await.unwrap()), "two");
    assert_eq!(source.calls(), 2);
    // A kid the client does not publish: one fetch, then the copy as it is.
    assert_eq!(kid(&keys.client_keys(&a, Some("three")).await.unwrap()), "two");
    assert_eq!(source.calls(), 2, "within a minute of the last fetch");
    advance(UNKNOWN_KID_INTERVAL - Duration::from_secs(1)).await;
    keys.client_keys(&a, Some("three")).await.unwrap();
    assert_eq!(source.calls(), 2);
    advance(Duration::from_secs(1)).await;
    keys.client_keys(&a, Some("three")).await.unwrap();
    assert_eq!(source.calls(), 3);
    // A kid that is there is answered from the copy.
    keys.client_keys(&a, Some("two")).await.unwrap();
    assert_eq!(source.calls(), 3);
}

#[tokio::test(start_paused = true)]
async fn concurrent_askers_share_one_fetch() {
    let source = FakeSource::new(Ok(jwks("one")), Duration::from_secs(2));
    let keys = Arc::new(keys_with(&source));
    let asks = (0..50).map(|i| {
        let keys = keys.clone();
        tokio::spawn(async move {
            let unknown = format!("k{i}");
            let kid = (i % 2 == 0).then_some(unknown.as_str());
            keys.client_keys(&uri_client("a"), kid).await.map(|k| kid_of(&k))
        })
    });
    for ask in futures::future::join_all(asks).await {
        assert_eq!(ask.unwrap().unwrap(), "one");
    }
    assert_eq!(source.calls(), 1);
}

fn kid_of(keys: &ClientKeySet) -> String {
    kid(keys).to_owned()
}

/// Lets the spawned asks run until `count` fetches have started.
async fn started(source: &FakeSource, count: usize) {
    for _ in 0..1000 {
        if source.calls() >= count {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("only {} fetches started", source.calls());
}

#[tokio::test(start_paused = true)]
async fn at_most_sixteen_fetches_at_once() {
    let source = FakeSource::new(Ok(jwks("one")), Duration::from_secs(3));
    let keys = Arc::new(keys_with(&source));
    let slow: Vec<_> = (0..MAX_CONCURRENT_FETCHES)
        .map(|i| {
            let keys = keys.clone();
            tokio::spawn(async move {
                keys.client_keys(&uri_client(&format!("c{i}")), None)
                    .await
                    .is_ok()
            })
        })
        .collect();
    started(&source, MAX_CONCURRENT_FETCHES).await;
    let err = keys
        .client_keys(&uri_client("one-too-many"), None)
        .await
        .unwrap_err();
    assert_eq!(description(err), "The client's keys cannot be fetched right now.");
    for fetch in slow {
        assert!(fetch.await.unwrap());
    }
    // Busy is not a failed attempt: the next ask fetches.
    keys.client_keys(&uri_client("one-too-many"), None).await.unwrap();
    assert_eq!(source.calls(), MAX_CONCURRENT_FETCHES + 1);
}

#[tokio::test(start_paused = true)]
async fn busy_with_a_copy_serves_the_copy() {
    let source = FakeSource::new(Ok(jwks("one")), Duration::from_secs(3));
    let keys = Arc::new(keys_with(&source));
    keys.client_keys(&uri_client("a"), None).await.unwrap();
    let slow: Vec<_> = (0..MAX_CONCURRENT_FETCHES)
        .map(|i| {
            let keys = keys.clone();
            tokio::spawn(async move {
                keys.client_keys(&uri_client(&format!("c{i}")), None)
                    .await
                    .is_ok()
            })
        })
        .collect();
    started(&source, MAX_CONCURRENT_FETCHES + 1).await;
    // Fresh copy, unknown kid, no slot: the copy as it is.
    assert_eq!(
        kid(&keys.client_keys(&uri_client("a"), Some("new")).await.unwrap()),
        "one"
    );
    for fetch in slow {
        assert!(fetch.await.unwrap());
    }
}

#[test]
fn jwks_uri_rules() {
    assert_eq!(
        check_jwks_uri("https://keys.example/jwks?v=1", false)
            .unwrap()
            .as_str(),
        "https://keys.example/jwks?v=1"
    );
    assert!(check_jwks_uri("http://127.0.0.1:8080/jwks", true).is_ok());
    assert!(check_jwks_uri("https://8.8.8.8/jwks", false).is_ok());
    let refused = |uri: &str, insecure: bool| check_jwks_uri(uri, insecure).unwrap_err();
    assert_eq!(refused("/jwks", false), "jwks_uri must be an absolute URL.");
    assert_eq!(
        refused("keys.example/jwks", true),
        "jwks_uri must be an absolute URL."
    );
    assert_eq!(
        refused("http://keys.example/jwks", false),
        "jwks_uri must use https."
    );
    assert_eq!(
        refused("ftp://keys.example/jwks", true),
        "jwks_uri must be an https URL."
    );
    assert_eq!(
        refused("file:///etc/passwd", true),
        "jwks_uri must be an https URL."
    );
    assert_eq!(
        refused("https://user:pw@keys.example/jwks", false),
        "jwks_uri must not contain a user name or password."
    );
    assert_eq!(
        refused("https://user@keys.example/jwks", false),
        "jwks_uri must not contain a user name or password."
    );
    assert_eq!(
        refused("https://keys.example/jwks#k", false),
        "jwks_uri must not have a fragment."
    );
    assert_eq!(
        refused("https://127.0.0.1/jwks", false),
        "jwks_uri must name a public host."
    );
    assert_eq!(
        refused("https://[::1]/jwks", false),
        "jwks_uri must name a public host."
    );
    assert_eq!(
        refused("https://10.1.2.3/jwks", false),
        "jwks_uri must name a public host."
    );
    let long = format!("https://keys.example/{}", "a".repeat(MAX_URI_LEN));
    assert_eq!(refused(&long, false), "jwks_uri is longer than 2048 characters.");
}

#[tokio::test]
async fn the_fetcher_refuses_what_is_not_public_before_connecting() {
    // A listener that counts connections: none may reach it.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    let accepting = tokio::spawn(async move {
        while listener.accept().await.is_ok() {
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });
    let source = HttpSource::new(false).unwrap();
    for uri in [
        format!("https://127.0.0.1:{port}/jwks"),
        format!("https://localhost:{port}/jwks"),
    ] {
        let err = source.fetch(&uri).await.unwrap_err();
        assert!(matches!(err, FetchError::NotPublic), "{uri}: {err}");
        assert_eq!(
            err.description(),
            "The client's jwks_uri does not name a public host."
        );
    }
    let err = source
        .fetch(&format!("http://127.0.0.1:{port}/jwks"))
        .await
        .unwrap_err();
    assert_eq!(err.description(), "The client's jwks_uri is not allowed.");
    assert_eq!(accepted.load(Ordering::SeqCst), 0);
    accepting.abort();
}
