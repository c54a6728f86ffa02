//! Dynamic client registration (RFC 7591) and its management protocol
//! (RFC 7592): off unless `registration` says `open` or `token`; what a
//! registration answers and stores (the registration access token only as a
//! SHA-256 hash); an initial access token with scope `gatehouse:register` in
//! `token` mode; reading, replacing and deleting a registration with its own
//! token, which a replacement renews; the metadata refused (and nothing
//! written then); and the per-address brake on open registration.

use std::net::Ipv4Addr;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::abuse::client_from;
use crate::helpers::*;

const REGISTER: &str = "/oauth/register";

const METADATA_PATHS: [&str; 2] = [
    "/.well-known/oauth-authorization-server",
    "/.well-known/openid-configuration",
];

/// POST /oauth/register with `metadata` as JSON, and `Authorization: Bearer
/// token` when given.
async fn register(server: &TestServer<'_>, token: Option<&str>, metadata: &Value) -> Reply {
    let authorization = token.map(|t| format!("Bearer {t}"));
    server
        .post_raw(
            REGISTER,
            Some(JSON),
            authorization.as_deref(),
            metadata.to_string(),
        )
        .await
}

/// A request to a registration's URI (RFC 7592) with the registration access
/// token `token`, and `body` as JSON when given.
async fn manage(
    server: &TestServer<'_>,
    method: Method,
    uri: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> Reply {
    let mut request = server.http().request(method, uri);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    if let Some(body) = body {
        request = request.header("content-type", JSON).body(body.to_string());
    }
    Reply::from(request.send().await).await
}

/// What a successful registration handed out.
#[derive(Clone, Debug)]
struct Registration {
    id: String,
    secret: String,
    token: String,
    uri: String,
    body: Value,
}

impl Registration {
    fn client(&self) -> TestClient {
        TestClient {
            id: self.id.clone(),
            secret: self.secret.clone(),
            created: self.body.clone(),
        }
    }
}

/// `Cache-Control: no-store`: the answer holds credentials (RFC 7591 §3.2.1).
fn assert_cache_no_store(reply: &Reply) {
    let cache_control = reply.header("cache-control").unwrap_or_default();
    assert!(
        cache_control.split(',').any(|d| d.trim() == "no-store"),
        "Cache-Control {cache_control:?} lacks no-store: {reply:?}"
    );
}

/// A 201 registration answer (RFC 7591 §3.2.1), checked for the members every
/// one has: a client id, a secret that never expires, the issue time, a
/// registration access token (`ghm_` and 256 bits) and the URI to manage it.
fn registered(server_issuer: &str, reply: &Reply) -> Registration {
    reply
        .assert_status(StatusCode::CREATED)
        .assert_json_content_type();
    assert_cache_no_store(reply);
    let body = reply.json();
    let id = json_str(&body, "client_id");
    assert!(!id.is_empty(), "empty client_id: {body}");
    let secret = json_str(&body, "client_secret");
    assert!(secret.len() >= 32, "a short client_secret: {body}");
    let issued_at = body["client_id_issued_at"]
        .as_i64()
        .unwrap_or_else(|| panic!("client_id_issued_at is not an integer: {body}"));
    assert!(
        (issued_at - unix_now()).abs() <= 60,
        "client_id_issued_at {issued_at} is not now: {body}"
    );
    assert_eq!(
        body["client_secret_expires_at"], 0,
        "client_secret_expires_at: {body}"
    );
    let token = json_str(&body, "registration_access_token");
    assert_token_form(&token, "ghm_");
    let uri = json_str(&body, "registration_client_uri");
    assert_eq!(
        uri,
        format!("{server_issuer}{REGISTER}/{id}"),
        "registration_client_uri: {body}"
    );
    Registration {
        id,
        secret,
        token,
        uri,
        body,
    }
}

/// Registers `metadata` and checks the answer ([`registered`]).
async fn register_ok(server: &TestServer<'_>, token: Option<&str>, metadata: &Value) -> Registration {
    let issuer = server.issuer().await;
    registered(&issuer, &register(server, token, metadata).await)
}

/// An OAuth error answer: `status`, JSON, `{"error": code, "error_description"}`.
fn assert_oauth_error(reply: &Reply, status: StatusCode, code: &str) {
    let problems = reply.error_problems(status, code, false);
    assert!(problems.is_empty(), "{}: {reply:?}", problems.join("; "));
}

/// RFC 7592 §2: a missing or wrong registration access token, or an unknown
/// client id, is 401 `invalid_token` with a Bearer challenge, the same for each
/// so that nobody learns which clients exist.
fn assert_invalid_token(reply: &Reply) {
    assert_oauth_error(reply, StatusCode::UNAUTHORIZED, "invalid_token");
    let challenge = reply.header("www-authenticate").unwrap_or_default();
    assert!(
        challenge.starts_with("Bearer") && challenge.contains(r#"error="invalid_token""#),
        "WWW-Authenticate {challenge:?}: {reply:?}"
    );
}

async fn count_clients(db: &TestDb) -> i64 {
    db.connect().await.count("clients").await
}

/// `clients.registration_token_hash` of `client_id`: `None` when there is no
/// such row, `Some(None)` when the column is NULL.
async fn registration_hash(db: &TestDb, client_id: &str) -> Option<Option<String>> {
    let result = match db.connect().await {
        DbConn::Sqlite(mut conn) => {
            sqlx::query_scalar::<_, Option<String>>(
                "SELECT registration_token_hash FROM clients WHERE client_id = ?1",
            )
            .bind(client_id)
            .fetch_optional(&mut conn)
            .await
        }
        DbConn::Postgres(mut conn) => {
            sqlx::query_scalar::<_, Option<String>>(
                "SELECT registration_token_hash FROM clients WHERE client_id = $1",
            )
            .bind(client_id)
            .fetch_optional(&mut conn)
            .await
        }
    };
    result.unwrap_or_else(|e| panic!("read registration_token_hash: {e}"))
}

/// The stored form of a SHA-256 hashed secret (`sha256$` and the digest in
/// base64url), as the server keeps its generated secrets.
fn stored_sha256(token: &str) -> String {
    format!(
        "sha256${}",
        URL_SAFE_NO_PAD.encode(gatehouse_core::secret::sha256(token.as_bytes()))
    )
}

/// A client_credentials request of `client` with `auth` (basic or post).
async fn client_credentials_with(server: &TestServer<'_>, auth: &ClientAuth, scope: Option<&str>) -> Reply {
    let mut params = vec![("grant_type", "client_credentials")];
    if let Some(scope) = scope {
        params.push(("scope", scope));
    }
    server.token_form(auth, &params).await
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {value}"))
        .iter()
        .map(|v| {
            v.as_str()
                .unwrap_or_else(|| panic!("not a string: {v}"))
                .to_string()
        })
        .collect()
}

backend_tests! {
    /// Without a `registration` setting there is no registration endpoint: 404
    /// (the OAuth JSON of any unknown path) and no `registration_endpoint` in
    /// the metadata.
    async fn registration_is_off_by_default(backend) {
        let db = TestDb::new(backend).await;
        let server = db.start(&[]).await;

        let reply = register(&server, None, &json!({"client_name": "robot"})).await;
        reply.assert_status(StatusCode::NOT_FOUND).assert_json_content_type();
        assert!(reply.json()["error"].is_string(), "{reply:?}");
        let reply = server.get(&format!("{REGISTER}/some-client")).await;
        reply.assert_status(StatusCode::NOT_FOUND);
        for path in METADATA_PATHS {
            let metadata = server.get(path).await.json();
            assert!(
                metadata.get("registration_endpoint").is_none(),
                "{path} names a registration endpoint while registration is off: {metadata}"
            );
        }
        assert_eq!(count_clients(&db).await, 0);
    }

    /// With `open` or `token`, both metadata documents name
    /// `<issuer>/oauth/register` (RFC 7591 §3, RFC 8414 §2), and /openapi.json
    /// describes it.
    async fn metadata_names_the_registration_endpoint(backend) {
        let db = TestDb::new(backend).await;
        for mode in ["open", "token"] {
            let server = db.start(&["--registration", mode, "--issuer", "http://test.local"]).await;
            for path in METADATA_PATHS {
                let metadata = server.get(path).await.json();
                assert_eq!(
                    metadata["registration_endpoint"], "http://test.local/oauth/register",
                    "registration {mode}, {path}: {metadata}"
                );
            }
            let openapi = server.get("/openapi.json").await.json();
            assert!(
                openapi["paths"][REGISTER].get("post").is_some(),
                "/openapi.json does not describe POST {REGISTER}: {}",
                openapi["paths"]
            );
        }
    }

    /// Open registration: 201 with everything RFC 7591 §3.2.1 asks for; the
    /// client gets tokens with its secret either way (basic and post); the
    /// database keeps the registration access token only as its SHA-256 hash;
    /// the log names the change but holds neither secret nor token.
    async fn open_registration_issues_a_working_client(backend) {
        let db = TestDb::new(backend).await;
        let server = db.start(&["--registration", "open"]).await;

        let reply = register(
            &server,
            None,
            &json!({
                "client_name": "Robot",
                "grant_types": ["client_credentials"],
                "scope": "read write",
            }),
        )
        .await;
        let robot = registered(&server.issuer().await, &reply);
        assert_eq!(robot.body["client_name"], "Robot", "{}", robot.body);
        assert_eq!(strings(&robot.body["grant_types"]), ["client_credentials"], "{}", robot.body);
        assert_eq!(scope_set(robot.body["scope"].as_str().unwrap_or_default()), ["read", "write"], "{}", robot.body);
        assert_eq!(robot.body["token_endpoint_auth_method"], "client_secret_basic", "{}", robot.body);

        // The secret works both ways, for the registered scope and no more.
        let client = robot.client();
        for auth in [client.basic(), client.post()] {
            let reply = client_credentials_with(&server, &auth, None).await;
            reply.access_token();
            assert_eq!(scope_set(reply.json()["scope"].as_str().unwrap_or_default()), ["read", "write"], "{reply:?}");
        }
        client_credentials_with(&server, &client.basic(), Some("admin"))
            .await
            .assert_token_error(StatusCode::BAD_REQUEST, "invalid_scope");

        // Stored: the hash of the registration token, never the token or the secret.
        let stored = registration_hash(&db, &robot.id)
            .await
            .unwrap_or_else(|| panic!("no row for {}", robot.id))
            .unwrap_or_else(|| panic!("registration_token_hash is NULL for {}", robot.id));
        assert_eq!(stored, stored_sha256(&robot.token), "registration_token_hash is not the SHA-256 of the token");
        if db.sqlite_path().is_some() {
            let bytes = db.sqlite_bytes();
            for secret in [&robot.token, &robot.secret] {
                assert!(!bytes_contain(&bytes, secret), "{secret:?} is stored in the clear");
            }
        }

        // client_secret_post is accepted as the method, and defaults fill the rest.
        let post = register_ok(&server, None, &json!({"token_endpoint_auth_method": "client_secret_post"})).await;
        assert_eq!(post.body["token_endpoint_auth_method"], "client_secret_post", "{}", post.body);
        assert_eq!(post.body["client_name"], post.id, "client_name defaults to the client_id: {}", post.body);
        assert_eq!(strings(&post.body["grant_types"]), ["client_credentials"], "{}", post.body);
        client_credentials_with(&server, &post.client().post(), None).await.access_token();
        assert_eq!(count_clients(&db).await, 2);

        let log = server.logs();
        assert!(log.contains("registration.create"), "no audit event registration.create:\n{log}");
        assert_log_holds_none(&log, &[robot.secret.clone(), robot.token.clone(), post.secret, post.token]);

        // The admin view says the client was registered.
        let shown = db.cli_json(&["client", "show", &robot.id]).await;
        assert_eq!(shown["registered"], true, "client show: {shown}");
    }

    /// `token` mode: registration needs a bearer token of this server with
    /// scope `gatehouse:register`, answered as the guard answers (RFC 6750 §3).
    async fn token_mode_needs_the_register_scope(backend) {
        let db = TestDb::new(backend).await;
        let registrar = db.create_client("registrar", &["--scope", "gatehouse:register"]).await;
        let plain = db.create_client("plain", &["--scope", "read"]).await;
        let server = db.start(&["--registration", "token"]).await;
        let metadata = json!({"client_name": "robot", "scope": "read"});

        // No token: the bare challenge.
        let reply = register(&server, None, &metadata).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{reply:?}");
        let challenge = reply.header("www-authenticate").unwrap_or_default();
        assert!(challenge.starts_with("Bearer"), "WWW-Authenticate {challenge:?}: {reply:?}");
        assert!(!challenge.contains("error="), "a request without a token gets no error code: {reply:?}");
        // Another scheme is no token either.
        let reply = server
            .post_raw(REGISTER, Some(JSON), plain.basic().header().as_deref(), metadata.to_string())
            .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "Basic credentials: {reply:?}");
        // A token this server never issued.
        let reply = register(&server, Some(random_token("gho_").as_str()), &metadata).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{reply:?}");
        let challenge = reply.header("www-authenticate").unwrap_or_default();
        assert!(challenge.contains(r#"error="invalid_token""#), "WWW-Authenticate {challenge:?}: {reply:?}");
        // A good token without the scope.
        let reply = register(&server, Some(server.access_token(&plain).await.as_str()), &metadata).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{reply:?}");
        let challenge = reply.header("www-authenticate").unwrap_or_default();
        assert!(
            challenge.starts_with("Bearer")
                && challenge.contains(r#"error="insufficient_scope""#)
                && challenge.contains(r#"scope="gatehouse:register""#),
            "WWW-Authenticate {challenge:?}: {reply:?}"
        );
        assert_eq!(count_clients(&db).await, 2, "a refused registration wrote a client");

        // With the scope.
        let initial = server.access_token(&registrar).await;
        let robot = register_ok(&server, Some(initial.as_str()), &metadata).await;
        assert_eq!(count_clients(&db).await, 3);
        server.access_token(&robot.client()).await;
        // Its management needs its registration token, not the initial one.
        manage(&server, Method::GET, &robot.uri, Some(robot.token.as_str()), None)
            .await
            .assert_status(StatusCode::OK);
        assert_invalid_token(&manage(&server, Method::GET, &robot.uri, Some(initial.as_str()), None).await);

        // A revoked initial token stops working on its next use (no cache).
        server
            .revoke(None, &[("token", initial.as_str())])
            .await
            .assert_status(StatusCode::OK);
        let reply = register(&server, Some(initial.as_str()), &metadata).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "a revoked initial access token: {reply:?}");
        let challenge = reply.header("www-authenticate").unwrap_or_default();
        assert!(challenge.contains(r#"error="invalid_token""#), "WWW-Authenticate {challenge:?}: {reply:?}");
        assert_eq!(count_clients(&db).await, 3);
    }

    /// RFC 7592: GET answers the current metadata (no secret); PUT replaces it
    /// and renews the registration token (the old one stops working at once);
    /// DELETE ends the client and its secret. Every wrong token, another
    /// client's token, no token or an unknown id is the same 401.
    async fn management_reads_replaces_and_deletes(backend) {
        let db = TestDb::new(backend).await;
        let resource_server = db.create_client("api", &["--can-introspect"]).await;
        let server = db.start(&["--registration", "open"]).await;
        let a = register_ok(&server, None, &json!({"client_name": "A", "scope": "read"})).await;
        let b = register_ok(&server, None, &json!({"client_name": "B", "scope": "read"})).await;

        // Read.
        let reply = manage(&server, Method::GET, &a.uri, Some(a.token.as_str()), None).await;
        reply.assert_status(StatusCode::OK).assert_json_content_type();
        assert_cache_no_store(&reply);
        let current = reply.json();
        assert_eq!(current["client_id"], a.id.as_str(), "{current}");
        assert_eq!(current["client_name"], "A", "{current}");
        assert_eq!(current["scope"], "read", "{current}");
        assert_eq!(strings(&current["grant_types"]), ["client_credentials"], "{current}");
        assert!(current.get("client_secret").is_none(), "GET shows the secret: {current}");
        assert!(
            current.get("registration_access_token").is_none(),
            "GET shows a registration access token: {current}"
        );

        // Refused alike: no token, a token never issued, another client's,
        // the secret as Basic, an unknown id.
        assert_invalid_token(&manage(&server, Method::GET, &a.uri, None, None).await);
        assert_invalid_token(&manage(&server, Method::GET, &a.uri, Some(random_token("ghm_").as_str()), None).await);
        assert_invalid_token(&manage(&server, Method::GET, &a.uri, Some(b.token.as_str()), None).await);
        let reply = Reply::from(
            server
                .http()
                .get(&a.uri)
                .header("authorization", basic_authorization(&a.id, &a.secret))
                .send()
                .await,
        )
        .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "Basic credentials: {reply:?}");
        let unknown = format!("{}{REGISTER}/no-such-client", server.issuer().await);
        assert_invalid_token(&manage(&server, Method::GET, &unknown, Some(a.token.as_str()), None).await);

        // Replace: new metadata, a new token; the secret is unchanged.
        let replacement = json!({
            "client_id": a.id,
            "client_secret": a.secret,
            "client_name": "A two",
            "scope": "read write",
            "grant_types": ["client_credentials"],
        });
        assert_invalid_token(&manage(&server, Method::PUT, &a.uri, Some(b.token.as_str()), Some(&replacement)).await);
        let reply = manage(&server, Method::PUT, &a.uri, Some(a.token.as_str()), Some(&replacement)).await;
        reply.assert_status(StatusCode::OK).assert_json_content_type();
        assert_cache_no_store(&reply);
        let replaced = reply.json();
        assert_eq!(replaced["client_id"], a.id.as_str(), "{replaced}");
        assert_eq!(replaced["client_name"], "A two", "{replaced}");
        assert_eq!(scope_set(replaced["scope"].as_str().unwrap_or_default()), ["read", "write"], "{replaced}");
        let new_token = json_str(&replaced, "registration_access_token");
        assert_token_form(&new_token, "ghm_");
        assert_ne!(new_token, a.token, "PUT kept the registration access token");
        assert_eq!(
            registration_hash(&db, &a.id).await.flatten(),
            Some(stored_sha256(&new_token)),
            "the stored hash is not that of the new token"
        );
        assert_invalid_token(&manage(&server, Method::GET, &a.uri, Some(a.token.as_str()), None).await);
        assert_invalid_token(&manage(&server, Method::PUT, &a.uri, Some(a.token.as_str()), Some(&replacement)).await);
        let reply = manage(&server, Method::GET, &a.uri, Some(new_token.as_str()), None).await;
        reply.assert_status(StatusCode::OK);
        assert_eq!(reply.json()["client_name"], "A two", "{reply:?}");
        let reply = client_credentials_with(&server, &a.client().basic(), Some("write")).await;
        reply.access_token();
        assert_eq!(reply.json()["scope"], "write", "{reply:?}");

        // A client_id in the body that is not this client's: refused, nothing changed.
        let mismatched = json!({"client_id": b.id, "client_name": "hijack", "scope": "read"});
        let reply = manage(&server, Method::PUT, &a.uri, Some(new_token.as_str()), Some(&mismatched)).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{reply:?}");
        assert!(reply.json()["error"].is_string(), "{reply:?}");
        let reply = manage(&server, Method::GET, &a.uri, Some(new_token.as_str()), None).await;
        assert_eq!(reply.json()["client_name"], "A two", "a refused PUT changed the client: {reply:?}");
        let reply = manage(&server, Method::GET, &b.uri, Some(b.token.as_str()), None).await;
        assert_eq!(reply.json()["client_name"], "B", "a PUT on A changed B: {reply:?}");

        // Delete: another client's token cannot; its own can, once.
        let issued = server.access_token(&a.client()).await;
        assert!(server.is_active(&resource_server, &issued).await);
        assert_invalid_token(&manage(&server, Method::DELETE, &a.uri, Some(b.token.as_str()), None).await);
        assert_eq!(count_clients(&db).await, 3);
        let reply = manage(&server, Method::DELETE, &a.uri, Some(new_token.as_str()), None).await;
        reply.assert_status(StatusCode::NO_CONTENT);
        assert_eq!(count_clients(&db).await, 2);
        assert!(registration_hash(&db, &a.id).await.is_none(), "the row of {} is still there", a.id);
        client_credentials_with(&server, &a.client().basic(), None)
            .await
            .assert_basic_challenge();
        client_credentials_with(&server, &a.client().post(), None)
            .await
            .assert_token_error(StatusCode::UNAUTHORIZED, "invalid_client");
        assert!(!server.is_active(&resource_server, &issued).await, "a token of the deleted client is active");
        assert_invalid_token(&manage(&server, Method::GET, &a.uri, Some(new_token.as_str()), None).await);
        assert_invalid_token(&manage(&server, Method::DELETE, &a.uri, Some(new_token.as_str()), None).await);

        // B is untouched.
        manage(&server, Method::GET, &b.uri, Some(b.token.as_str()), None)
            .await
            .assert_status(StatusCode::OK);
        server.access_token(&b.client()).await;

        // A client made by the CLI has no registration token: nothing opens its URI.
        let cli_uri = format!("{}{REGISTER}/{}", server.issuer().await, resource_server.id);
        for token in [None, Some(b.token.as_str()), Some("ghm_"), Some("")] {
            assert_invalid_token(&manage(&server, Method::GET, &cli_uri, token, None).await);
            assert_invalid_token(&manage(&server, Method::DELETE, &cli_uri, token, None).await);
        }
        assert!(server.is_active(&resource_server, &server.access_token(&b.client()).await).await);

        // Each change is an audit event.
        let log = server.logs();
        for action in ["registration.create", "registration.update", "registration.delete"] {
            assert!(log.contains(action), "no audit event {action}:\n{log}");
        }
        assert_log_holds_none(&log, &[a.secret.clone(), a.token.clone(), new_token.clone(), b.token.clone()]);
    }

    /// Concurrent updates with the same registration token, on one node and
    /// across two nodes of one database: the old token must stop working as the
    /// change is written, so exactly one of them succeeds each time, and the
    /// token it hands out is the one that works next.
    async fn concurrent_updates_with_one_token_succeed_once(backend) {
        let db = TestDb::new(backend).await;
        // One after the other: the first migrates the fresh database.
        let a = db.start(&["--registration", "open"]).await;
        let b = db.start(&["--registration", "open"]).await;
        let robot = register_ok(&a, None, &json!({"client_name": "robot"})).await;
        let path = format!("{REGISTER}/{}", robot.id);

        let mut token = robot.token.clone();
        for round in 0..5 {
            // Three racers on each node.
            let racers = 6;
            let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(racers));
            let tasks: Vec<_> = (0..racers)
                .map(|i| {
                    let node = if i % 2 == 0 { &a } else { &b };
                    let request = node
                        .http()
                        .put(node.url(&path))
                        .header("authorization", format!("Bearer {token}"))
                        .header("content-type", JSON)
                        .body(json!({"client_name": format!("robot {round}.{i}")}).to_string());
                    let barrier = barrier.clone();
                    tokio::spawn(async move {
                        barrier.wait().await;
                        Reply::from(request.send().await).await
                    })
                })
                .collect();
            let mut replies = Vec::new();
            for task in tasks {
                replies.push(task.await.expect("racing task"));
            }
            let winners: Vec<&Reply> = replies.iter().filter(|r| r.status == StatusCode::OK).collect();
            for reply in replies.iter().filter(|r| r.status != StatusCode::OK) {
                assert_invalid_token(reply);
            }
            assert_eq!(
                winners.len(),
                1,
                "round {round}: {} of {racers} updates with one token succeeded: {:?}",
                winners.len(),
                replies.iter().map(|r| (r.status, r.body.as_str())).collect::<Vec<_>>()
            );
            let winner = winners[0].json();
            token = json_str(&winner, "registration_access_token");
            let reply = manage(&b, Method::GET, &b.url(&path), Some(token.as_str()), None).await;
            reply.assert_status(StatusCode::OK);
            assert_eq!(reply.json()["client_name"], winner["client_name"], "{reply:?}");
        }
    }

    /// Refused metadata (RFC 7591 §3.2.2): `invalid_client_metadata` or
    /// `invalid_redirect_uri`, 415 for a body that is not JSON, 413 for one
    /// over 64 KiB; not one row written by any of them. An RFC 7592 update is
    /// held to the same rules.
    async fn refused_metadata_writes_nothing(backend) {
        let db = TestDb::new(backend).await;
        let server = db.start(&["--registration", "open"]).await;
        let bad_metadata = "invalid_client_metadata";
        let bad_uri = "invalid_redirect_uri";
        // (what, metadata, error code, the member the description must name)
        let cases: Vec<(&str, Value, &str, Option<&str>)> = vec![
            ("admin scope", json!({"scope": "read gatehouse:admin"}), bad_metadata, None),
            ("admin read scope", json!({"scope": "gatehouse:admin:read"}), bad_metadata, None),
            ("register scope", json!({"scope": "gatehouse:register"}), bad_metadata, None),
            ("password grant", json!({"grant_types": ["password"]}), bad_metadata, None),
            ("authorization_code grant", json!({"grant_types": ["authorization_code"]}), bad_metadata, None),
            (
                "one bad grant among good",
                json!({"grant_types": ["client_credentials", "implicit"]}),
                bad_metadata,
                None,
            ),
            ("response type code", json!({"response_types": ["code"]}), bad_metadata, None),
            (
                "private_key_jwt",
                json!({"token_endpoint_auth_method": "private_key_jwt"}),
                bad_metadata,
                None,
            ),
            ("auth method none", json!({"token_endpoint_auth_method": "none"}), bad_metadata, None),
            ("jwks", json!({"jwks": {"keys": []}}), bad_metadata, None),
            ("jwks_uri", json!({"jwks_uri": "https://a.example/jwks.json"}), bad_metadata, None),
            ("not a URI", json!({"redirect_uris": ["not a uri"]}), bad_uri, None),
            ("a fragment", json!({"redirect_uris": ["https://a.example/cb#frag"]}), bad_uri, None),
            ("http off loopback", json!({"redirect_uris": ["http://evil.example/cb"]}), bad_uri, None),
            ("relative", json!({"redirect_uris": ["/cb"]}), bad_uri, None),
            (
                "one bad URI among good",
                json!({"redirect_uris": ["https://a.example/cb", "http://evil.example/cb"]}),
                bad_uri,
                None,
            ),
            ("grant_types a string", json!({"grant_types": "x"}), bad_metadata, Some("grant_types")),
            ("scope a number", json!({"scope": 5}), bad_metadata, Some("scope")),
            ("client_name an array", json!({"client_name": ["a"]}), bad_metadata, Some("client_name")),
            (
                "redirect_uris a string",
                json!({"redirect_uris": "https://a.example/cb"}),
                bad_metadata,
                Some("redirect_uris"),
            ),
            (
                "auth method a number",
                json!({"token_endpoint_auth_method": 1}),
                bad_metadata,
                Some("token_endpoint_auth_method"),
            ),
        ];
        let mut failures = Vec::new();
        for (what, metadata, code, field) in &cases {
            let reply = register(&server, None, metadata).await;
            let mut problems = reply.error_problems(StatusCode::BAD_REQUEST, code, false);
            if let (Some(field), true) = (field, problems.is_empty()) {
                let description = reply.json()["error_description"].as_str().unwrap_or_default().to_string();
                if !description.contains(field) {
                    problems.push(format!("error_description {description:?} does not name {field}"));
                }
            }
            if !problems.is_empty() {
                failures.push(format!("{what} {metadata}: {}; got {} {}", problems.join("; "), reply.status, reply.body));
            }
        }

        // Not a JSON object, or not JSON at all.
        for (what, body) in [("malformed JSON", "{\"client_name\": "), ("an array", "[]"), ("a string", "\"robot\"")] {
            let reply = server.post_raw(REGISTER, Some(JSON), None, body).await;
            if reply.status != StatusCode::BAD_REQUEST
                || !serde_json::from_str::<Value>(&reply.body).is_ok_and(|b| b["error"].is_string())
            {
                failures.push(format!("{what}: want 400 with an OAuth error, got {} {}", reply.status, reply.body));
            }
        }
        let body = json!({"client_name": "robot"}).to_string();
        for content_type in [Some(FORM), Some("text/plain"), None] {
            let reply = server.post_raw(REGISTER, content_type, None, body.clone()).await;
            if reply.status != StatusCode::UNSUPPORTED_MEDIA_TYPE {
                failures.push(format!("content type {content_type:?}: want 415, got {} {}", reply.status, reply.body));
            }
        }
        // Over 64 KiB: 413, whether small over or far over.
        for size in [65 * 1024, 1024 * 1024] {
            let body = json!({"client_name": "robot", "x_padding": "a".repeat(size)}).to_string();
            let sent = server
                .http()
                .post(server.url(REGISTER))
                .header("content-type", JSON)
                .body(body)
                .send()
                .await;
            match sent {
                Ok(response) if response.status() == StatusCode::PAYLOAD_TOO_LARGE => {}
                Ok(response) => failures.push(format!(
                    "a {size}-byte body: want 413, got {} {}",
                    response.status(),
                    response.text().await.unwrap_or_default()
                )),
                Err(e) => failures.push(format!("a {size}-byte body: want 413, the request failed: {e}")),
            }
        }
        assert!(failures.is_empty(), "{} refusals wrong:\n{}", failures.len(), failures.join("\n"));
        assert_eq!(count_clients(&db).await, 0, "a refused registration wrote a client");

        // An update is held to the same rules, and a refused one changes nothing.
        let robot = register_ok(&server, None, &json!({"client_name": "robot", "scope": "read"})).await;
        for metadata in [
            json!({"client_name": "robot", "scope": "read gatehouse:admin"}),
            json!({"client_name": "robot", "grant_types": ["password"]}),
            json!({"client_name": "robot", "token_endpoint_auth_method": "private_key_jwt"}),
        ] {
            let reply = manage(&server, Method::PUT, &robot.uri, Some(robot.token.as_str()), Some(&metadata)).await;
            assert_oauth_error(&reply, StatusCode::BAD_REQUEST, bad_metadata);
        }
        let reply = manage(
            &server,
            Method::PUT,
            &robot.uri,
            Some(robot.token.as_str()),
            Some(&json!({"client_name": "robot", "redirect_uris": ["http://evil.example/cb"]})),
        )
        .await;
        assert_oauth_error(&reply, StatusCode::BAD_REQUEST, bad_uri);
        // The token still works (a refused update renews nothing) and the metadata is unchanged.
        let reply = manage(&server, Method::GET, &robot.uri, Some(robot.token.as_str()), None).await;
        reply.assert_status(StatusCode::OK);
        assert_eq!(reply.json()["scope"], "read", "{reply:?}");
        assert_eq!(count_clients(&db).await, 1);
    }

    /// Members this server does not understand are ignored (RFC 7591 §2);
    /// valid redirect URIs (https, or http on a loopback address) pass but are
    /// not kept, so the answer leaves them out (§3.2.1); a body just under
    /// 64 KiB is read.
    async fn unknown_members_and_valid_redirect_uris_pass(backend) {
        let db = TestDb::new(backend).await;
        let server = db.start(&["--registration", "open"]).await;

        let robot = register_ok(
            &server,
            None,
            &json!({
                "client_name": "robot",
                "logo_uri": "https://a.example/logo.png",
                "software_id": "4NRB1-0XZABZI9E6-5SM3R",
                "software_version": "2.1",
                "contacts": ["ops@a.example"],
                "tos_uri": "https://a.example/tos",
                "x_vendor_extension": {"nested": [1, 2, 3]},
                "redirect_uris": ["https://a.example/cb", "http://127.0.0.1:9000/cb", "http://[::1]/cb"],
            }),
        )
        .await;
        assert_eq!(robot.body["client_name"], "robot", "{}", robot.body);
        assert!(robot.body.get("redirect_uris").is_none(), "redirect URIs are answered but not kept: {}", robot.body);
        server.access_token(&robot.client()).await;

        let big = json!({"client_name": "big", "x_padding": "a".repeat(60 * 1024)});
        register_ok(&server, None, &big).await;
        assert_eq!(count_clients(&db).await, 2);
    }

    /// Open registration is braked per source address: 10 at once, then 429
    /// with `Retry-After`; another address is not held back.
    async fn open_registration_is_rate_limited_per_address(backend) {
        let db = TestDb::new(backend).await;
        let server = db.start(&["--registration", "open"]).await;
        let metadata = json!({"client_name": "flood"}).to_string();

        let http = client_from(Ipv4Addr::new(127, 0, 0, 2));
        let mut statuses = Vec::new();
        let mut limited = None;
        for _ in 0..12 {
            let reply = Reply::from(
                http.post(server.url(REGISTER))
                    .header("content-type", JSON)
                    .body(metadata.clone())
                    .send()
                    .await,
            )
            .await;
            statuses.push(reply.status.as_u16());
            if reply.status == StatusCode::TOO_MANY_REQUESTS && limited.is_none() {
                limited = Some(reply);
            }
        }
        assert_eq!(statuses[..10], [201; 10], "the first 10 registrations: {statuses:?}");
        assert_eq!(statuses[10..], [429, 429], "registrations 11 and 12: {statuses:?}");
        let limited = limited.expect("a 429");
        let retry_after: u64 = limited
            .header("retry-after")
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no Retry-After in seconds: {limited:?}"));
        assert!((1..=60).contains(&retry_after), "Retry-After {retry_after}: {limited:?}");
        assert!(limited.json()["error"].is_string(), "{limited:?}");
        assert_eq!(count_clients(&db).await, 10);

        let other = client_from(Ipv4Addr::new(127, 0, 0, 3));
        let reply = Reply::from(
            other
                .post(server.url(REGISTER))
                .header("content-type", JSON)
                .body(metadata.clone())
                .send()
                .await,
        )
        .await;
        registered(&server.issuer().await, &reply);
    }
}

/// `registration` has the three forms of every setting (environment, TOML),
/// and a value other than off, token or open stops start-up naming the key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_setting_forms() {
    let db = TestDb::new(Backend::Sqlite).await;

    let server = db.server().env("GATEHOUSE_REGISTRATION", "open").start().await;
    register_ok(&server, None, &json!({"client_name": "env"})).await;
    drop(server);

    let file = db.dir().join("registration.toml");
    std::fs::write(&file, "registration = \"token\"\n").expect("write the config file");
    let server = db.start(&["--config", file.to_str().expect("UTF-8 path")]).await;
    let reply = register(&server, None, &json!({"client_name": "toml"})).await;
    assert_eq!(
        reply.status,
        StatusCode::UNAUTHORIZED,
        "registration = \"token\" from TOML: {reply:?}"
    );
    // The flag wins over the file.
    drop(server);
    let server = db
        .start(&[
            "--config",
            file.to_str().expect("UTF-8 path"),
            "--registration",
            "off",
        ])
        .await;
    register(&server, None, &json!({"client_name": "flag"}))
        .await
        .assert_status(StatusCode::NOT_FOUND);
    drop(server);

    let out = db
        .server()
        .args(&["--registration", "sometimes"])
        .run_to_exit(Duration::from_secs(30))
        .await
        .expect("serve stops on a bad registration setting");
    if let Some(problem) = out.one_line_error_problem(2, &["registration"]) {
        panic!("--registration sometimes: {problem}");
    }
}
