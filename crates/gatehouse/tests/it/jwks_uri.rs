//! `private_key_jwt` clients whose keys are at a `jwks_uri` (docs/security.md): the keys
//! fetched once and cached, fetched again for an unknown `kid` at most once a minute
//! however many requests ask at once, and every way a key host can misbehave (a
//! huge, slow or non-JSON body, a redirect, an error) answered with a precise
//! `invalid_client` within the fetch's 5 s, never a 500 or a hang, and never with
//! what the host said. The key host is a small HTTP server in the test, on
//! `127.0.0.1`, that counts the requests it gets; the gatehouse server runs with
//! `allow_insecure_jwks_uri = true` to reach it, except where that rule is the test.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gatehouse::jwks_fetch::FetchedClientKeys;
use gatehouse_core::{
    AuthMethod, AuthSettings, Client, ClientId, ClientKeys as _, GrantTypes, Scope, SecretHash, TokenFormat,
};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::helpers::*;
use crate::private_key_jwt::{assert_invalid_client, assert_token_for, claims, jwks, token_with, TestKey};

/// A request is answered within the fetch's 5 s and some margin.
const ANSWER_DEADLINE: Duration = Duration::from_secs(7);

/// What the key host's error bodies say: it must reach neither the client nor the log.
const BODY_MARKER: &str = "key-host-internal-detail";

/// How the key host answers a path.
#[derive(Clone)]
enum Canned {
    /// 200 with this JWK Set.
    Jwks(String),
    /// 200 with 1 MB, announced in Content-Length or not (read to the end of the
    /// connection).
    Huge { declared: bool },
    /// 200 with a Content-Length, the first bytes at once and the rest after 10 s.
    Slow,
    /// 302 to another path of the host.
    Redirect,
    /// 200 with an HTML page.
    NotJson,
    /// 500 with a body naming internal details.
    Error,
}

/// A small HTTP/1.1 server for clients' keys: one request per connection, answers
/// by path, counts requests per path.
struct KeyHost {
    addr: SocketAddr,
    paths: Arc<Mutex<HashMap<String, Canned>>>,
    requests: Arc<Mutex<HashMap<String, usize>>>,
    connections: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl KeyHost {
    async fn start() -> KeyHost {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the key host");
        let addr = listener.local_addr().expect("key host address");
        let paths: Arc<Mutex<HashMap<String, Canned>>> = Arc::default();
        let requests: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        let connections = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn({
            let (paths, requests, connections) = (paths.clone(), requests.clone(), connections.clone());
            async move {
                while let Ok((stream, _)) = listener.accept().await {
                    connections.fetch_add(1, Ordering::SeqCst);
                    tokio::spawn(answer(stream, paths.clone(), requests.clone()));
                }
            }
        });
        KeyHost {
            addr,
            paths,
            requests,
            connections,
            task,
        }
    }

    /// Serves `canned` at `path`; the URL.
    fn serve(&self, path: &str, canned: Canned) -> String {
        self.paths.lock().unwrap().insert(path.to_string(), canned);
        format!("http://{}{path}", self.addr)
    }

    fn requests(&self, path: &str) -> usize {
        self.requests.lock().unwrap().get(path).copied().unwrap_or(0)
    }
}

impl Drop for KeyHost {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(
    mut stream: TcpStream,
    paths: Arc<Mutex<HashMap<String, Canned>>>,
    requests: Arc<Mutex<HashMap<String, usize>>>,
) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !bytes_contain(&head, "\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        if head.len() > 16 * 1024 {
            return;
        }
    }
    let head = String::from_utf8_lossy(&head);
    let path = head.split(' ').nth(1).unwrap_or("").to_string();
    *requests.lock().unwrap().entry(path.clone()).or_default() += 1;
    let canned = paths.lock().unwrap().get(&path).cloned();
    let _ = match canned {
        Some(Canned::Jwks(body)) => write_response(&mut stream, "200 OK", "application/json", &body).await,
        Some(Canned::Huge { declared }) => {
            let length = if declared {
                "Content-Length: 1048576\r\n"
            } else {
                ""
            };
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{length}Connection: close\r\n\r\n"
            );
            let chunk = [b' '; 16 * 1024];
            let mut result = stream.write_all(head.as_bytes()).await;
            let mut sent = 0;
            while result.is_ok() && sent < 1024 * 1024 {
                result = stream.write_all(&chunk).await;
                sent += chunk.len();
            }
            result
        }
        Some(Canned::Slow) => {
            let body = r#"{"keys": []}"#;
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{}",
                body.len(),
                &body[..2]
            );
            let first = stream.write_all(head.as_bytes()).await;
            tokio::time::sleep(Duration::from_secs(10)).await;
            first.and(stream.write_all(&body.as_bytes()[2..]).await)
        }
        Some(Canned::Redirect) => {
            let head =
                "HTTP/1.1 302 Found\r\nLocation: /jwks\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
            stream.write_all(head.as_bytes()).await
        }
        Some(Canned::NotJson) => {
            let body = format!("<html><body>{BODY_MARKER}</body></html>");
            write_response(&mut stream, "200 OK", "text/html", &body).await
        }
        Some(Canned::Error) | None => {
            let body = format!("{{\"error\": \"{BODY_MARKER}\"}}");
            write_response(
                &mut stream,
                "500 Internal Server Error",
                "application/json",
                &body,
            )
            .await
        }
    };
    let _ = stream.shutdown().await;
}

async fn write_response(
    stream: &mut TcpStream,
    status: &str,
    content_type: &str,
    body: &str,
) -> std::io::Result<()> {
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await
}

/// `client create --auth-method private_key_jwt --jwks-uri URI`, with
/// `GATEHOUSE_ALLOW_INSECURE_JWKS_URI=true` (the admin commands take settings from
/// the environment); the client's id.
async fn uri_client(db: &TestDb, name: &str, uri: &str) -> String {
    let mut cmd = db.command();
    cmd.args([
        "client",
        "create",
        "--name",
        name,
        "--auth-method",
        "private_key_jwt",
        "--jwks-uri",
        uri,
        "--json",
    ])
    .args(db.connection_args())
    .env("GATEHOUSE_ALLOW_INSECURE_JWKS_URI", "true");
    let created = run_to_exit(cmd, None, PROCESS_DEADLINE)
        .await
        .expect("client create")
        .json();
    assert_eq!(created["jwks_uri"], uri, "{created}");
    json_str(&created, "client_id")
}

/// A token request of client `id` with an assertion signed by `key`.
async fn token_by(server: &TestServer<'_>, key: &TestKey, id: &str) -> Reply {
    let issuer = server.issuer().await;
    token_with(server, "/oauth/token", &key.sign(&claims(id, &issuer))).await
}

fn description(reply: &Reply) -> String {
    let body: Value = reply.json();
    body["error_description"].as_str().unwrap_or_default().to_string()
}

backend_tests! {
    async fn keys_are_fetched_once_and_cached(backend) {
        let db = TestDb::new(backend).await;
        let host = KeyHost::start().await;
        let key = TestKey::generate("ES256", Some("k1"));
        let uri = host.serve("/jwks", Canned::Jwks(jwks(&[&key]).to_string()));
        let id = uri_client(&db, "svc", &uri).await;
        let server = db.start(&["--allow-insecure-jwks-uri"]).await;

        assert_token_for(&token_by(&server, &key, &id).await, &id, "keys from the jwks_uri");
        assert_eq!(host.requests("/jwks"), 1);
        assert_token_for(&token_by(&server, &key, &id).await, &id, "a second assertion");
        assert_token_for(&token_by(&server, &key, &id).await, &id, "a third assertion");
        assert_eq!(host.requests("/jwks"), 1, "the keys were fetched again within 5 minutes");
    }

    async fn an_unknown_kid_fetches_again_once(backend) {
        let db = TestDb::new(backend).await;
        let host = KeyHost::start().await;
        let old = TestKey::generate("ES256", Some("old"));
        let new = TestKey::generate("EdDSA", Some("new"));
        let uri = host.serve("/jwks", Canned::Jwks(jwks(&[&old]).to_string()));
        let id = uri_client(&db, "svc", &uri).await;
        let server = db.start(&["--allow-insecure-jwks-uri"]).await;
        assert_token_for(&token_by(&server, &old, &id).await, &id, "the first key");

        // The client adds a key and uses it at once.
        host.serve("/jwks", Canned::Jwks(jwks(&[&old, &new]).to_string()));
        assert_token_for(&token_by(&server, &new, &id).await, &id, "a key added after the first fetch");
        assert_eq!(host.requests("/jwks"), 2, "one fetch for the new kid");

        // A kid the client does not publish, within the minute: no fetch.
        let stranger = TestKey::generate("ES256", Some("never-published"));
        let reply = token_by(&server, &stranger, &id).await;
        assert_invalid_client(&reply, "a kid the client does not publish");
        assert_eq!(host.requests("/jwks"), 2, "fetched again within a minute");
    }

    async fn concurrent_unknown_kids_fetch_once(backend) {
        let db = TestDb::new(backend).await;
        let host = KeyHost::start().await;
        let key = TestKey::generate("ES256", Some("k1"));
        let uri = host.serve("/jwks", Canned::Jwks(jwks(&[&key]).to_string()));
        let id = uri_client(&db, "svc", &uri).await;
        // 100 requests on fresh connections from one address within a moment: more
        // than the per-address connection cap lets in while the first round's close.
        let server = db
            .start(&["--allow-insecure-jwks-uri", "--max-connections-per-address", "0"])
            .await;
        assert_token_for(&token_by(&server, &key, &id).await, &id, "the published key");
        assert_eq!(host.requests("/jwks"), 1);

        let strangers: Vec<TestKey> = (0..50).map(|i| TestKey::generate("ES256", Some(&format!("x{i}")))).collect();
        for round in 0..2 {
            let replies = futures::future::join_all(strangers.iter().map(|k| token_by(&server, k, &id))).await;
            for reply in &replies {
                assert_invalid_client(reply, "an assertion with a kid the client does not publish");
            }
            assert_eq!(host.requests("/jwks"), 2, "round {round}: one fetch for 50 unknown kids in a minute");
        }
        // The published key still works, from the cache.
        assert_token_for(&token_by(&server, &key, &id).await, &id, "the published key after them");
        assert_eq!(host.requests("/jwks"), 2);
    }

    async fn a_misbehaving_key_host_is_a_precise_invalid_client(backend) {
        let db = TestDb::new(backend).await;
        let host = KeyHost::start().await;
        let key = TestKey::generate("ES256", Some("k1"));
        let cases = [
            ("/huge", Canned::Huge { declared: false }, "The client's JWK Set is larger than 64 KiB."),
            ("/huge-declared", Canned::Huge { declared: true }, "The client's JWK Set is larger than 64 KiB."),
            ("/slow", Canned::Slow, "The client's jwks_uri did not answer in time."),
            ("/redirect", Canned::Redirect, "The client's jwks_uri answered with a redirect, which is not followed."),
            ("/not-json", Canned::NotJson, "The client's jwks_uri did not return a usable JWK Set."),
            ("/error", Canned::Error, "The client's jwks_uri did not answer 200 OK."),
        ];
        let mut clients = Vec::new();
        for (path, canned, _) in &cases {
            let uri = host.serve(path, canned.clone());
            clients.push(uri_client(&db, &path[1..], &uri).await);
        }
        host.serve("/jwks", Canned::Jwks(jwks(&[&key]).to_string()));
        let server = db.start(&["--allow-insecure-jwks-uri"]).await;

        for ((path, _, expected), id) in cases.iter().zip(&clients) {
            let started = Instant::now();
            let reply = token_by(&server, &key, id).await;
            let took = started.elapsed();
            assert_invalid_client(&reply, path);
            assert_eq!(description(&reply), *expected, "{path}: {reply:?}");
            assert!(took < ANSWER_DEADLINE, "{path}: answered after {took:?}");
            assert!(!reply.body.contains(BODY_MARKER), "{path}: the host's body reached the client: {reply:?}");
            assert!(!reply.body.contains("127.0.0.1"), "{path}: an address reached the client: {reply:?}");
            assert_eq!(host.requests(path), 1, "{path}: requests");
        }
        assert_eq!(host.requests("/jwks"), 0, "the redirect was followed");

        // A failure is not fetched again for each request: the next is answered at once.
        let started = Instant::now();
        assert_invalid_client(&token_by(&server, &key, &clients[2]).await, "the slow host again");
        assert!(started.elapsed() < Duration::from_secs(2), "waited for the slow host again");
        assert_eq!(host.requests("/slow"), 1);

        let logs = server.logs();
        for ((path, _, _), id) in cases.iter().zip(&clients) {
            assert!(
                logs.lines().any(|l| l.contains("cannot fetch the client's jwks_uri") && l.contains(id.as_str())),
                "{path}: no warning naming client {id}:\n{logs}"
            );
        }
        assert!(!logs.contains(BODY_MARKER), "a key host's body is in the log:\n{logs}");
    }

    async fn http_is_refused_without_allow_insecure_jwks_uri(backend) {
        let db = TestDb::new(backend).await;
        let host = KeyHost::start().await;
        let key = TestKey::generate("ES256", Some("k1"));
        let uri = host.serve("/jwks", Canned::Jwks(jwks(&[&key]).to_string()));

        // Registration refuses it...
        let out = db
            .cli(&["client", "create", "--name", "svc", "--auth-method", "private_key_jwt", "--jwks-uri", &uri])
            .await;
        assert!(!out.status.success(), "an http jwks_uri was registered: {out:#?}");
        assert!(out.stderr.contains("https"), "the refusal does not say https: {out:#?}");

        // ...and a server without the switch does not fetch one registered with it.
        let id = uri_client(&db, "svc", &uri).await;
        let server = db.start(&[]).await;
        let reply = token_by(&server, &key, &id).await;
        assert_invalid_client(&reply, "an http jwks_uri on a server without allow_insecure_jwks_uri");
        assert_eq!(description(&reply), "The client's jwks_uri is not allowed.");
        assert_eq!(host.connections.load(Ordering::SeqCst), 0, "the key host was contacted");
    }
}

/// A client of `jwks_uri`, as the fetcher sees it.
fn client_at(jwks_uri: &str) -> Client {
    Client {
        id: ClientId::parse("svc").unwrap(),
        name: "svc".into(),
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
            jwks_uri: Some(jwks_uri.to_string()),
            ..Default::default()
        },
        registered: false,
        created_at: 0,
    }
}

/// Without `allow_insecure_jwks_uri`, a key host on the loopback address is refused
/// by the address rule, whether named by its address or by a name that resolves to
/// it, and nothing connects to it.
#[tokio::test]
async fn the_address_rule_refuses_loopback() {
    let host = KeyHost::start().await;
    let key = TestKey::generate("ES256", Some("k1"));
    host.serve("/jwks", Canned::Jwks(jwks(&[&key]).to_string()));
    let port = host.addr.port();
    let fetcher = FetchedClientKeys::new(false).expect("the fetcher");
    for uri in [
        format!("https://127.0.0.1:{port}/jwks"),
        format!("https://localhost:{port}/jwks"),
        format!("https://[::ffff:127.0.0.1]:{port}/jwks"),
    ] {
        let err = fetcher.client_keys(&client_at(&uri), None).await.unwrap_err();
        assert_eq!(err.code(), "invalid_client", "{uri}");
        assert_eq!(
            err.description(),
            "The client's jwks_uri does not name a public host.",
            "{uri}"
        );
    }
    assert_eq!(
        host.connections.load(Ordering::SeqCst),
        0,
        "the key host was contacted"
    );

    // The switch lifts it (and the https rule).
    let open = FetchedClientKeys::new(true).expect("the fetcher");
    let keys = open
        .client_keys(&client_at(&format!("http://127.0.0.1:{port}/jwks")), None)
        .await
        .unwrap_or_else(|e| panic!("{}", e.description()));
    assert_eq!(keys.keys[0].kid.as_deref(), Some("k1"));
    assert_eq!(host.requests("/jwks"), 1);
}
