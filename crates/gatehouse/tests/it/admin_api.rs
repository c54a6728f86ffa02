//! The admin API (`/admin/v1`) over HTTP, driven as an operator's pipeline would
//! drive it: a client created with the CLI holding `gatehouse:admin` gets a token
//! at /oauth/token and calls the API with `Authorization: Bearer`. Every change
//! is checked where it matters: at the token, introspection and revocation
//! endpoints, in the CLI's view of the database, in the server's audit log, and
//! on a second node. Authorization follows RFC 6750 §3 (the server's own guard);
//! every other error is an RFC 9457 problem detail.

use std::collections::BTreeSet;

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;
use crate::jose;

/// The scope of read-and-write admin tokens.
pub const ADMIN: &str = "gatehouse:admin";
/// The scope of read-only admin tokens.
pub const ADMIN_READ: &str = "gatehouse:admin:read";

/// The members of a client as the admin API shows it (never a secret or its hash).
pub const CLIENT_VIEW: [&str; 17] = [
    "client_id",
    "name",
    "scope",
    "grant_types",
    "audience",
    "token_ttl",
    "refresh_token_ttl",
    "token_format",
    "can_introspect",
    "auth_method",
    "jwks",
    "jwks_uri",
    "tls_subject_dn",
    "bound_tokens",
    "registered",
    "created_at",
    "previous_secret_expires_at",
];

/// The members of a user as the admin API shows it (never a password or its hash).
pub const USER_VIEW: [&str; 5] = ["user_id", "username", "scope", "disabled", "created_at"];

/// The members of a signing key as the admin API shows it (never private material).
pub const KEY_VIEW: [&str; 5] = ["kid", "alg", "created_at", "current", "retires_at"];

/// Percent-encodes everything but RFC 3986 unreserved characters: one path segment.
pub fn segment(id: &str) -> String {
    let mut out = String::new();
    for byte in id.bytes() {
        match byte {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => out.push(byte as char),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// Decodes `%XX` sequences (the inverse of [`segment`], and of any other encoder).
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(byte) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).expect("UTF-8 after percent-decoding")
}

/// The sorted member names of a JSON object.
pub fn members(object: &Value) -> Vec<String> {
    let mut names: Vec<String> = object
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {object}"))
        .keys()
        .cloned()
        .collect();
    names.sort_unstable();
    names
}

fn sorted(names: &[&str]) -> Vec<String> {
    let mut names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    names.sort_unstable();
    names
}

/// Asserts `Cache-Control: no-store` (every admin answer carries it).
pub fn assert_no_store_only(reply: &Reply) {
    let cache_control = reply.header("cache-control").unwrap_or_default();
    assert!(
        cache_control.split(',').any(|d| d.trim() == "no-store"),
        "Cache-Control {cache_control:?} lacks no-store: {reply:?}"
    );
}

/// What is wrong with `reply` as an RFC 9457 problem detail: `status`,
/// `application/problem+json`, `Cache-Control: no-store`, `{"type": "about:blank",
/// "title": reason phrase, "status", "detail"}` (a detail without control
/// characters), and `field` when given (`None`: no assertion about `field`).
pub fn problem_issues(reply: &Reply, status: StatusCode, field: Option<&str>) -> Vec<String> {
    let mut issues = Vec::new();
    if reply.status != status {
        issues.push(format!("status {} (want {status})", reply.status));
    }
    let content_type = reply.header("content-type").unwrap_or_default();
    if !content_type.starts_with("application/problem+json") {
        issues.push(format!("content type {content_type:?}"));
    }
    let cache_control = reply.header("cache-control").unwrap_or_default();
    if !cache_control.split(',').any(|d| d.trim() == "no-store") {
        issues.push(format!("Cache-Control {cache_control:?}"));
    }
    let Ok(body) = serde_json::from_str::<Value>(&reply.body) else {
        issues.push("body is not JSON".into());
        return issues;
    };
    if body["type"] != "about:blank" {
        issues.push(format!("type {}", body["type"]));
    }
    if body["status"] != reply.status.as_u16() {
        issues.push(format!("member status {}", body["status"]));
    }
    let reason = reply.status.canonical_reason().unwrap_or_default();
    let title = body["title"].as_str().unwrap_or_default();
    if title != reason && !(reply.status == StatusCode::PAYLOAD_TOO_LARGE && title == "Content Too Large") {
        issues.push(format!("title {} (want {reason:?})", body["title"]));
    }
    match body["detail"].as_str() {
        Some(detail) if !detail.is_empty() && !detail.chars().any(char::is_control) => {}
        _ => issues.push(format!("detail {}", body["detail"])),
    }
    if let Some(field) = field {
        if body["field"] != field {
            issues.push(format!("field {} (want {field:?})", body["field"]));
        }
    }
    issues
}

/// Asserts an RFC 9457 problem detail ([`problem_issues`]); returns the body.
pub fn assert_problem(reply: &Reply, status: StatusCode, field: Option<&str>) -> Value {
    let issues = problem_issues(reply, status, field);
    assert!(issues.is_empty(), "{}: {reply:?}", issues.join("; "));
    reply.json()
}

/// A 401 with the bare challenge: no token, or another scheme (RFC 6750 §3.1).
pub fn assert_no_token(reply: &Reply) {
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{reply:?}");
    assert_eq!(
        reply.header("www-authenticate"),
        Some(r#"Bearer realm="gatehouse""#),
        "{reply:?}"
    );
    assert_no_store_only(reply);
    assert_eq!(reply.json()["error"], "unauthorized", "{reply:?}");
}

/// A 401 `invalid_token` (RFC 6750 §3.1).
pub fn assert_invalid_token(reply: &Reply) {
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{reply:?}");
    let challenge = reply.header("www-authenticate").unwrap_or_default();
    assert!(
        challenge.starts_with(r#"Bearer realm="gatehouse""#)
            && challenge.contains(r#"error="invalid_token""#),
        "WWW-Authenticate {challenge:?}: {reply:?}"
    );
    assert_no_store_only(reply);
    assert_eq!(reply.json()["error"], "invalid_token", "{reply:?}");
}

/// A 403 `insufficient_scope` naming `scope` (RFC 6750 §3.1).
pub fn assert_insufficient_scope(reply: &Reply, scope: &str) {
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{reply:?}");
    let challenge = reply.header("www-authenticate").unwrap_or_default();
    assert!(
        challenge.starts_with(r#"Bearer realm="gatehouse""#)
            && challenge.contains(r#"error="insufficient_scope""#)
            && challenge.contains(&format!("scope=\"{scope}\"")),
        "WWW-Authenticate {challenge:?} (want scope {scope:?}): {reply:?}"
    );
    assert_no_store_only(reply);
    assert_eq!(reply.json()["error"], "insufficient_scope", "{reply:?}");
}

/// One request to `server` with `authorization` (verbatim) and an optional body.
pub async fn send(
    server: &TestServer<'_>,
    method: Method,
    path: &str,
    authorization: Option<&str>,
    content_type: Option<&str>,
    body: Option<Vec<u8>>,
) -> Reply {
    let mut request = server.http().request(method, server.url(path));
    if let Some(authorization) = authorization {
        request = request.header(AUTHORIZATION, authorization);
    }
    if let Some(content_type) = content_type {
        request = request.header(CONTENT_TYPE, content_type);
    }
    if let Some(body) = body {
        request = request.body(body);
    }
    Reply::from(request.send().await).await
}

/// An admin API caller: a server and the bearer token it presents.
pub struct Admin<'s, 'd> {
    pub server: &'s TestServer<'d>,
    pub token: String,
}

impl<'s, 'd> Admin<'s, 'd> {
    pub fn new(server: &'s TestServer<'d>, token: String) -> Self {
        Admin { server, token }
    }

    /// A token of `client` at `server` (client_credentials), as the caller's.
    pub async fn of(server: &'s TestServer<'d>, client: &TestClient) -> Admin<'s, 'd> {
        let token = server.access_token(client).await;
        Admin { server, token }
    }

    pub fn bearer(&self) -> String {
        format!("Bearer {}", self.token)
    }

    /// A request with this caller's token and a raw body.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Reply {
        send(
            self.server,
            method,
            path,
            Some(&self.bearer()),
            content_type,
            body,
        )
        .await
    }

    /// A request with this caller's token and a JSON body (`application/json`).
    pub async fn json(&self, method: Method, path: &str, body: &Value) -> Reply {
        self.raw(method, path, Some(JSON), Some(body.to_string().into_bytes()))
            .await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.raw(Method::GET, path, None, None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        self.json(Method::POST, path, body).await
    }

    /// A POST without a body or content type (the optional-body endpoints).
    pub async fn post_empty(&self, path: &str) -> Reply {
        self.raw(Method::POST, path, None, None).await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> Reply {
        self.json(Method::PATCH, path, body).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.raw(Method::DELETE, path, None, None).await
    }

    /// `POST /admin/v1/clients` asserted to be a 201 with its Location; the body.
    pub async fn create_client(&self, body: &Value) -> Value {
        let reply = self.post("/admin/v1/clients", body).await;
        assert_created(&reply, "clients", "client_id")
    }

    /// `POST /admin/v1/users` asserted to be a 201 with its Location; the body.
    pub async fn create_user(&self, body: &Value) -> Value {
        let reply = self.post("/admin/v1/users", body).await;
        assert_created(&reply, "users", "username")
    }

    /// `GET path`, asserted 200 JSON with no-store; the body.
    pub async fn get_ok(&self, path: &str) -> Value {
        let reply = self.get(path).await;
        assert_ok_json(&reply, StatusCode::OK)
    }
}

/// Asserts `status`, a JSON content type and no-store; returns the body.
pub fn assert_ok_json(reply: &Reply, status: StatusCode) -> Value {
    reply.assert_status(status).assert_json_content_type();
    assert_no_store_only(reply);
    reply.json()
}

/// A 201 of `POST /admin/v1/{collection}`: JSON, no-store and a `Location` naming
/// the new resource by its `id_member`, percent-encoded.
pub fn assert_created(reply: &Reply, collection: &str, id_member: &str) -> Value {
    let body = assert_ok_json(reply, StatusCode::CREATED);
    let id = json_str(&body, id_member);
    let location = reply
        .header("location")
        .unwrap_or_else(|| panic!("201 without Location: {reply:?}"));
    let prefix = format!("/admin/v1/{collection}/");
    let encoded = location
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("Location {location:?} is not under {prefix}: {reply:?}"));
    assert!(
        !encoded.contains('/') && encoded.bytes().all(|b| b.is_ascii_graphic()),
        "Location {location:?} is not one encoded segment"
    );
    assert_eq!(
        percent_decode(encoded),
        id,
        "Location {location:?} does not name {id:?}"
    );
    body
}

/// The admin client the tests act as: id `ops`, scope `gatehouse:admin` (plus `extra`).
pub async fn ops_client(db: &TestDb, extra: &[&str]) -> TestClient {
    let mut args = vec!["--client-id", "ops", "--scope", ADMIN];
    args.extend_from_slice(extra);
    db.create_client("ops", &args).await
}

/// The view of `created` (a create answer) without its secret.
fn without_secret(created: &Value) -> Value {
    let mut view = created.clone();
    view.as_object_mut().expect("object").remove("client_secret");
    view
}

/// The granted scope of a client_credentials request of `client` asking `scope`;
/// `Err` with status and body when refused.
async fn granted(server: &TestServer<'_>, client: &TestClient, scope: &str) -> Result<Value, String> {
    let reply = server.client_credentials(client, &[("scope", scope)]).await;
    if reply.status == StatusCode::OK {
        Ok(reply.json())
    } else {
        Err(format!("{} {}", reply.status, reply.body))
    }
}

/// Waits (at most the propagation deadline) until `client`'s
/// client_credentials request answers `status`.
async fn until_token_status(server: &TestServer<'_>, client: &TestClient, status: StatusCode, what: &str) {
    eventually(PROPAGATION_DEADLINE, what, || async move {
        let reply = server.client_credentials(client, &[]).await;
        if reply.status == status {
            Ok(())
        } else {
            Err(format!("{} {}", reply.status, reply.body))
        }
    })
    .await;
}

/// The `name=value` fields of a text-format log line (values bare, or quoted and
/// escaped as Rust's `Debug` writes them).
fn text_fields(line: &str) -> Vec<(String, String)> {
    let mut fields = Vec::new();
    let mut rest = line;
    while let Some(eq) = rest.find('=') {
        let name = rest[..eq].rsplit(' ').next().unwrap_or_default().to_string();
        let after = &rest[eq + 1..];
        let (value, tail) = if let Some(quoted) = after.strip_prefix('"') {
            let mut end = 0;
            let mut escaped = false;
            for (i, c) in quoted.char_indices() {
                match (escaped, c) {
                    (true, _) => escaped = false,
                    (false, '\\') => escaped = true,
                    (false, '"') => {
                        end = i;
                        break;
                    }
                    _ => {}
                }
            }
            (quoted[..end].to_string(), &quoted[(end + 1).min(quoted.len())..])
        } else {
            let end = after.find(' ').unwrap_or(after.len());
            (after[..end].to_string(), &after[end..])
        };
        fields.push((name, value));
        rest = tail;
    }
    fields
}

/// The `admin change` events of a text-format log, each as its fields.
fn admin_changes(log: &str) -> Vec<Vec<(String, String)>> {
    log.lines()
        .filter(|line| line.contains(" INFO gatehouse::audit: admin change "))
        .map(text_fields)
        .collect()
}

/// The value of field `name` of an event.
fn field<'e>(event: &'e [(String, String)], name: &str) -> Option<&'e str> {
    event.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

backend_tests! {
    /// No token, another scheme, a garbage token, a refresh token or a token
    /// without an admin scope: the guard's RFC 6750 answers, before any body is
    /// read or any path is looked up.
    async fn admin_api_refuses_requests_without_a_valid_admin_token(backend) {
        let db = TestDb::new(backend).await;
        let ops = ops_client(&db, &[]).await;
        let other = db.create_client("other", &["--scope", "read"]).await;
        let (app, user) = {
            let app = db
                .create_client("app", &["--scope", ADMIN, "--grant-types", "password,refresh_token"])
                .await;
            (app, db.create_user("alice", PASSWORD, None).await)
        };
        let server = db.start(&[]).await;
        let clients_before = db.connect().await.count("clients").await;

        // No token at all, on a known path, an unknown id, an unknown path, a body.
        for (method, path) in [
            (Method::GET, "/admin/v1/clients"),
            (Method::GET, "/admin/v1/clients/nobody"),
            (Method::GET, "/admin/v1/nothing-here"),
            (Method::GET, "/admin/v1/keys"),
            (Method::POST, "/admin/v1/clients"),
            (Method::DELETE, "/admin/v1/users/alice"),
        ] {
            let reply = send(&server, method.clone(), path, None, Some(JSON), Some(b"{\"name\": ".to_vec())).await;
            assert_no_token(&reply);
        }
        // Another scheme: Basic credentials of the admin client itself.
        let reply = send(&server, Method::GET, "/admin/v1/clients", ops.basic().header().as_deref(), None, None).await;
        assert_no_token(&reply);

        // Garbage, and tokens of the right shape that this server never issued.
        for token in [
            "garbage".to_string(),
            random_token("gho_"),
            "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJvcHMifQ.c2lnbmF0dXJl".to_string(),
        ] {
            let reply = send(&server, Method::GET, "/admin/v1/clients", Some(&format!("Bearer {token}")), None, None).await;
            assert_invalid_token(&reply);
            let reply = send(
                &server, Method::POST, "/admin/v1/clients", Some(&format!("Bearer {token}")),
                Some(JSON), Some(json!({"name": "x"}).to_string().into_bytes()),
            ).await;
            assert_invalid_token(&reply);
        }

        // A valid token without an admin scope: 403, naming the scope a GET
        // (gatehouse:admin:read) or a write (gatehouse:admin) needs.
        let plain = Admin::of(&server, &other).await;
        assert_insufficient_scope(&plain.get("/admin/v1/clients").await, ADMIN_READ);
        assert_insufficient_scope(&plain.get(&format!("/admin/v1/clients/{}", ops.id)).await, ADMIN_READ);
        assert_insufficient_scope(&plain.post("/admin/v1/clients", &json!({"name": "x"})).await, ADMIN);
        assert_insufficient_scope(&plain.delete(&format!("/admin/v1/clients/{}", ops.id)).await, ADMIN);
        assert_insufficient_scope(&plain.post_empty("/admin/v1/keys/rotate").await, ADMIN);

        // A refresh token (of a client and user that may have the admin scope) is no bearer token.
        let login = server.login(&app, &user).await;
        assert_eq!(login["scope"], ADMIN, "{login}");
        let refresh = json_str(&login, "refresh_token");
        let reply = send(&server, Method::GET, "/admin/v1/clients", Some(&format!("Bearer {refresh}")), None, None).await;
        assert_invalid_token(&reply);
        // Its access token, though, carries the scope and works.
        let user_admin = Admin::new(&server, json_str(&login, "access_token"));
        user_admin.get_ok("/admin/v1/clients").await;

        // And the admin client's own token: the whole API.
        let admin = Admin::of(&server, &ops).await;
        let listed = admin.get_ok("/admin/v1/clients").await;
        assert!(listed["clients"].is_array(), "{listed}");
        assert_eq!(db.connect().await.count("clients").await, clients_before, "nothing was created");
    }

    /// `gatehouse:admin:read` reads every collection but writes nothing: 403
    /// `insufficient_scope` naming `gatehouse:admin` on POST, PATCH and DELETE.
    async fn admin_read_scope_can_get_but_not_change(backend) {
        let db = TestDb::new(backend).await;
        let reader = db.create_client("reader", &["--scope", ADMIN_READ]).await;
        let victim = db.create_client("victim", &["--scope", "read"]).await;
        db.create_user("alice", PASSWORD, None).await;
        let server = db.start(&[]).await;
        let read = Admin::of(&server, &reader).await;

        for path in ["/admin/v1/clients", "/admin/v1/users", "/admin/v1/keys", "/admin/v1/users/alice"] {
            read.get_ok(path).await;
        }
        let shown = read.get_ok(&format!("/admin/v1/clients/{}", segment(&victim.id))).await;
        assert_eq!(shown["client_id"], victim.id.as_str(), "{shown}");

        let victim_path = format!("/admin/v1/clients/{}", segment(&victim.id));
        for reply in [
            read.post("/admin/v1/clients", &json!({"name": "x"})).await,
            read.patch(&victim_path, &json!({"name": "renamed"})).await,
            read.delete(&victim_path).await,
            read.post_empty(&format!("{victim_path}/secret")).await,
            read.post_empty(&format!("{victim_path}/revoke-tokens")).await,
            read.post("/admin/v1/users", &json!({"username": "bob", "password": PASSWORD})).await,
            read.patch("/admin/v1/users/alice", &json!({"disabled": true})).await,
            read.delete("/admin/v1/users/alice").await,
            read.post_empty("/admin/v1/keys/rotate").await,
        ] {
            assert_insufficient_scope(&reply, ADMIN);
        }
        // Nothing changed.
        let after = read.get_ok(&victim_path).await;
        assert_eq!(after, shown, "a refused PATCH changed the client");
        server.access_token(&victim).await;
        let users = read.get_ok("/admin/v1/users").await;
        assert_eq!(users["users"].as_array().map(Vec::len), Some(1), "{users}");
        assert_eq!(users["users"][0]["disabled"], false, "{users}");
        assert_eq!(db.connect().await.count("signing_keys").await, 1, "no key rotation");
    }

    /// The admin scopes are granted only to a client registered with them: a
    /// request for them by any other client is `invalid_scope`.
    async fn admin_scope_is_granted_only_to_clients_registered_with_it(backend) {
        let db = TestDb::new(backend).await;
        let reader = db.create_client("reader", &["--scope", "read"]).await;
        let unscoped = db.create_client("unscoped", &[]).await;
        let read_only = db.create_client("read-only", &["--scope", ADMIN_READ]).await;
        let ops = ops_client(&db, &[]).await;
        let server = db.start(&[]).await;

        for (client, scope) in [
            (&reader, ADMIN),
            (&reader, ADMIN_READ),
            (&reader, "read gatehouse:admin"),
            (&unscoped, ADMIN),
            (&read_only, ADMIN),
        ] {
            server
                .client_credentials(client, &[("scope", scope)])
                .await
                .assert_token_error(StatusCode::BAD_REQUEST, "invalid_scope");
        }
        // A default grant holds what the client was registered with, and no more.
        for client in [&reader, &unscoped] {
            let body = server.client_credentials(client, &[]).await;
            body.access_token();
            let scope = body.json()["scope"].as_str().unwrap_or_default().to_string();
            assert!(!scope.contains("gatehouse:"), "{}: {scope:?}", client.id);
        }
        assert_eq!(granted(&server, &ops, ADMIN).await.expect("ops is granted its scope")["scope"], ADMIN);
    }

    /// An admin token revoked at /oauth/revoke (by its client, or by its holder
    /// without client authentication) is refused on its very next request.
    async fn a_revoked_admin_token_is_refused_at_once(backend) {
        let db = TestDb::new(backend).await;
        let ops = ops_client(&db, &[]).await;
        let opaque_ops = db
            .create_client("ops-opaque", &["--scope", ADMIN, "--token-format", "opaque"])
            .await;
        let server = db.start(&[]).await;

        for (client, authenticated) in [(&ops, true), (&ops, false), (&opaque_ops, true), (&opaque_ops, false)] {
            let admin = Admin::of(&server, client).await;
            admin.get_ok("/admin/v1/clients").await;
            let auth = client.basic();
            let reply = server
                .revoke(authenticated.then_some(&auth), &[("token", admin.token.as_str())])
                .await;
            reply.assert_status(StatusCode::OK);
            assert_invalid_token(&admin.get("/admin/v1/clients").await);
            assert_invalid_token(&admin.post("/admin/v1/clients", &json!({"name": "after-revocation"})).await);
            // A new token of the same client still works.
            Admin::of(&server, client).await.get_ok("/admin/v1/keys").await;
        }
        let listed = Admin::of(&server, &ops).await.get_ok("/admin/v1/clients?limit=1000").await;
        assert!(
            !listed.to_string().contains("after-revocation"),
            "a revoked token created a client: {listed}"
        );
    }

    /// An opaque admin token (`--token-format opaque`) works for reads and writes.
    async fn opaque_admin_tokens_work(backend) {
        let db = TestDb::new(backend).await;
        let ops = ops_client(&db, &["--token-format", "opaque"]).await;
        let server = db.start(&[]).await;
        let admin = Admin::of(&server, &ops).await;
        assert_token_form(&admin.token, "gho_");
        let created = admin.create_client(&json!({"name": "made-by-opaque"})).await;
        let id = json_str(&created, "client_id");
        admin.get_ok(&format!("/admin/v1/clients/{}", segment(&id))).await;
        let reply = admin.delete(&format!("/admin/v1/clients/{}", segment(&id))).await;
        reply.assert_status(StatusCode::NO_CONTENT);
        assert_no_store_only(&reply);
    }

    /// `POST /admin/v1/clients`: 201, Location, the view plus a generated secret
    /// that works at once at /oauth/token; GET shows the same view as the CLI.
    async fn client_create_get_and_use(backend) {
        let db = TestDb::new(backend).await;
        let ops = ops_client(&db, &[]).await;
        let server = db.start(&[]).await;
        let admin = Admin::of(&server, &ops).await;

        let before = unix_now();
        let created = admin
            .create_client(&json!({
                "name": "Billing service",
                "scope": "read write",
                "grant_types": ["client_credentials", "refresh_token"],
                "token_ttl": 120,
                "refresh_token_ttl": 86400,
                "audience": "https://billing.example.com",
            }))
            .await;
        let id = json_str(&created, "client_id");
        assert_eq!(created["name"], "Billing service");
        assert_eq!(scope_set(&json_str(&created, "scope")), ["read", "write"]);
        assert_eq!(created["grant_types"], json!(["client_credentials", "refresh_token"]));
        assert_eq!(created["audience"], "https://billing.example.com");
        assert_eq!(created["token_ttl"], 120);
        assert_eq!(created["refresh_token_ttl"], 86400);
        assert_eq!(created["token_format"], "jwt");
        assert_eq!(created["can_introspect"], false);
        assert_eq!(created["auth_method"], "client_secret_basic");
        assert_eq!(created["previous_secret_expires_at"], Value::Null);
        let created_at = created["created_at"].as_i64().expect("created_at is a number");
        assert!((before - 5..=unix_now() + 5).contains(&created_at), "{created}");
        let secret = json_str(&created, "client_secret");
        assert!(secret.len() >= 43, "secret {secret:?} is shorter than 256 bits");

        let client = TestClient { id: id.clone(), secret: secret.clone(), created: created.clone() };
        let body = granted(&server, &client, "read").await.expect("the new secret works at once");
        assert_eq!(body["expires_in"], 120, "{body}");
        let claims = jose::decode(&json_str(&body, "access_token")).claims;
        assert_eq!(claims["aud"], "https://billing.example.com", "{claims}");
        assert_eq!(claims["client_id"], id.as_str(), "{claims}");

        // GET shows the view; so does the CLI; neither holds the secret.
        let path = format!("/admin/v1/clients/{}", segment(&id));
        let shown = admin.get_ok(&path).await;
        assert_eq!(shown, without_secret(&created), "GET and POST disagree");
        assert_eq!(db.cli_json(&["client", "show", &id]).await, shown, "the CLI and the API disagree");
        assert!(!shown.to_string().contains(&secret), "GET shows the secret");

        // Defaults: only a name.
        let minimal = admin.create_client(&json!({"name": "minimal"})).await;
        assert_eq!(minimal["scope"], "", "{minimal}");
        assert_eq!(minimal["grant_types"], json!(["client_credentials"]), "{minimal}");
        assert_eq!(minimal["audience"], Value::Null, "{minimal}");
        assert_eq!(minimal["token_ttl"], Value::Null, "{minimal}");
        assert_eq!(minimal["refresh_token_ttl"], Value::Null, "{minimal}");
        assert_eq!(minimal["token_format"], "jwt", "{minimal}");
        assert_ne!(minimal["client_id"], created["client_id"]);
        assert_ne!(minimal["client_secret"], created["client_secret"]);

        // Every option the CLI has: an opaque resource server.
        let rs = admin
            .create_client(&json!({"name": "rs", "client_id": "resource server", "token_format": "opaque", "can_introspect": true}))
            .await;
        assert_eq!(rs["client_id"], "resource server", "{rs}");
        assert_eq!(rs["token_format"], "opaque", "{rs}");
        assert_eq!(rs["can_introspect"], true, "{rs}");
        let rs = TestClient { id: "resource server".into(), secret: json_str(&rs, "client_secret"), created: rs };
        let opaque = server.access_token(&rs).await;
        assert_token_form(&opaque, "gho_");
        assert!(server.is_active(&rs, &json_str(&body, "access_token")).await, "can_introspect took effect");
        admin.get_ok("/admin/v1/clients/resource%20server").await;

        assert_eq!(created["registered"], false, "{created}");
        let mut expected = CLIENT_VIEW.to_vec();
        expected.push("client_secret");
        assert_eq!(members(&created), sorted(&expected), "{created}");
    }

    /// A client created with an imported `client_secret` authenticates with it.
    async fn client_create_with_an_imported_secret(backend) {
        let db = TestDb::new(backend).await;
        let ops = ops_client(&db, &[]).await;
        let server = db.start(&[]).await;
        let admin = Admin::of(&server, &ops).await;
        let imported = "imported-secret-from-the-old-server-0123";
        let created = admin
            .create_client(&json!({"name": "migrated", "client_id": "legacy-app", "client_secret": imported, "scope": "read"}))
            .await;
        assert_eq!(created["client_id"], "legacy-app");
        let client = TestClient { id: "legacy-app".into(), secret: imported.into(), created };
        let body = granted(&server, &client, "read").await.expect("the imported secret works");
        assert_eq!(body["scope"], "read");
        let wrong = TestClient { secret: "imported-secret-from-the-old-server-0124".into(), ..client.clone() };
        server.client_credentials(&wrong, &[]).await.assert_basic_challenge();
        // Not stored in clear.
        let shown = admin.get_ok("/admin/v1/clients/legacy-app").await;
        assert!(!shown.to_string().contains(imported), "{shown}");
        if db.sqlite_path().is_some() {
            assert!(!bytes_contain(&db.sqlite_bytes(), imported), "the imported secret is stored in clear");
        }
    }

    /// `GET /admin/v1/clients?limit&after`: pages in client-id byte order, `next`
    /// the last id of a page when more follow and null at the end, even when the
    /// last page is full; `limit` 1..=1000.
    async fn client_list_pages_in_id_order(backend) {
        let db = TestDb::new(backend).await;
        let ops = ops_client(&db, &[]).await;
        let server = db.start(&[]).await;
        let admin = Admin::of(&server, &ops).await;
        // Created out of order; "B" < "a" < "ops" in byte order; "c 7" has a space.
        let mut ids: Vec<String> = ["c5", "B2", "c 7", "a1", "c3", "c4", "c6"].iter().map(|s| s.to_string()).collect();
        for id in &ids {
            admin.create_client(&json!({"name": format!("client {id}"), "client_id": id})).await;
        }
        ids.push("ops".into());
        ids.sort_unstable();

        let all = admin.get_ok("/admin/v1/clients").await;
        let listed: Vec<String> = all["clients"].as_array().expect("clients").iter().map(|c| json_str(c, "client_id")).collect();
        assert_eq!(listed, ids, "default limit: all of them, in order");
        assert_eq!(all["next"], Value::Null, "{all}");

        for limit in [1usize, 3, 4, 8, 1000] {
            let mut seen = Vec::new();
            let mut after: Option<String> = None;
            let mut pages = 0;
            loop {
                let path = match &after {
                    Some(after) => format!("/admin/v1/clients?limit={limit}&after={}", segment(after)),
                    None => format!("/admin/v1/clients?limit={limit}"),
                };
                let page = admin.get_ok(&path).await;
                pages += 1;
                assert!(pages <= ids.len() + 1, "limit {limit}: no end of the pages");
                let entries = page["clients"].as_array().unwrap_or_else(|| panic!("{page}"));
                assert!(entries.len() <= limit, "limit {limit}: {page}");
                seen.extend(entries.iter().map(|c| json_str(c, "client_id")));
                match &page["next"] {
                    Value::Null => break,
                    Value::String(next) => {
                        assert_eq!(entries.len(), limit, "limit {limit}: a short page has a next: {page}");
                        assert_eq!(Some(next), seen.last(), "next is the last id of the page: {page}");
                        after = Some(next.clone());
                    }
                    other => panic!("next is {other}"),
                }
            }
            assert_eq!(seen, ids, "limit {limit}");
            assert_eq!(pages, ids.len().div_ceil(limit), "limit {limit}: an empty last page");
        }

        // `after` is exclusive, and need not be an existing id.
        let page = admin.get_ok("/admin/v1/clients?limit=2&after=c3").await;
        let got: Vec<String> = page["clients"].as_array().expect("clients").iter().map(|c| json_str(c, "client_id")).collect();
        assert_eq!(got, ["c4", "c5"], "{page}");
        assert_eq!(page["next"], "c5", "{page}");
        let page = admin.get_ok("/admin/v1/clients?after=c35").await;
        let got: Vec<String> = page["clients"].as_array().expect("clients").iter().map(|c| json_str(c, "client_id")).collect();
        assert_eq!(got, ["c4", "c5", "c6", "ops"], "{page}");
        let page = admin.get_ok("/admin/v1/clients?after=zzz").await;
        assert_eq!(page, json!({"clients": [], "next": null}));

        for bad in ["0", "1001", "-1", "ten", ""] {
            let reply = admin.get(&format!("/admin/v1/clients?limit={bad}")).await;
            assert_problem(&reply, StatusCode::BAD_REQUEST, Some("limit"));
        }
        let reply = admin.get("/admin/v1/clients?colour=red").await;
        assert_problem(&reply, StatusCode::BAD_REQUEST, Some("colour"));
        for entry in all["clients"].as_array().expect("clients") {
            assert_eq!(members(entry), sorted(&CLIENT_VIEW), "{entry}");
        }
    }

    /// PATCH changes only what it names, and the token endpoint follows within 5 s;
    /// `null` sets a ttl back to the server default.
    async fn client_patch_takes_effect(backend) {
        let db = TestDb::new(backend).await;
        let ops = ops_client(&db, &[]).await;
        let svc = db.create_client("svc", &["--client-id", "svc", "--scope", "read"]).await;
        let server = db.start(&[]).await;
        let admin = Admin::of(&server, &ops).await;
        granted(&server, &svc, "read").await.expect("read");
        server
            .client_credentials(&svc, &[("scope", "write")])
            .await
            .assert_token_error(StatusCode::BAD_REQUEST, "invalid_scope");
        let original = admin.get_ok("/admin/v1/clients/svc").await;

        let reply = admin.patch("/admin/v1/clients/svc", &json!({"scope": "read write", "token_ttl": 90})).await;
        let patched = assert_ok_json(&reply, StatusCode::OK);
        let mut expected = original.clone();
        expected["scope"] = patched["scope"].clone();
        expected["token_ttl"] = json!(90);
        assert_eq!(patched, expected, "only scope and token_ttl change");
        assert_eq!(scope_set(&json_str(&patched, "scope")), ["read", "write"]);
        assert_eq!(admin.get_ok("/admin/v1/clients/svc").await, patched);
        assert_eq!(db.cli_json(&["client", "show", "svc"]).await, patched, "the database holds the change");

        eventually(PROPAGATION_DEADLINE, "the new scope and ttl at the token endpoint", || {
            let (server, svc) = (&server, &svc);
            async move {
                let body = granted(server, svc, "write").await?;
                if body["expires_in"] == 90 { Ok(()) } else { Err(body.to_string()) }
            }
        })
        .await;

        // null: back to the server default (3600 s).
        let patched = assert_ok_json(&admin.patch("/admin/v1/clients/svc", &json!({"token_ttl": null})).await, StatusCode::OK);
        assert_eq!(patched["token_ttl"], Value::Null, "{patched}");
        assert_eq!(scope_set(&json_str(&patched, "scope")), ["read", "write"], "scope untouched: {patched}");
        eventually(PROPAGATION_DEADLINE, "the default ttl at the token endpoint", || {
            let (server, svc) = (&server, &svc);
            async move {
                let body = granted(server, svc, "read").await?;
                if body["expires_in"] == 3600 { Ok(()) } else { Err(body.to_string()) }
            }
        })
        .await;

        // Narrowing the scope takes effect too; rename, audience, grants, format.
        let patched = assert_ok_json(
            &admin
                .patch(
                    "/admin/v1/clients/svc",
                    &json!({"scope": "read", "name": "renamed", "audience": "https://api.example.com", "token_format": "opaque"}),
                )
                .await,
            StatusCode::OK,
        );
        assert_eq!(patched["name"], "renamed");
        assert_eq!(patched["audience"], "https://api.example.com");
        assert_eq!(patched["token_format"], "opaque");
        eventually(PROPAGATION_DEADLINE, "write is no longer granted, tokens are opaque", || {
            let (server, svc) = (&server, &svc);
            async move {
                let refused = server.client_credentials(svc, &[("scope", "write")]).await;
                if refused.status != StatusCode::BAD_REQUEST {
                    return Err(format!("write: {} {}", refused.status, refused.body));
                }
                let token = server.access_token(svc).await;
                if token.starts_with("gho_") { Ok(()) } else { Err(format!("token {token:.12}")) }
            }
        })
        .await;
        let patched = assert_ok_json(&admin.patch("/admin/v1/clients/svc", &json!({"audience": null})).await, StatusCode::OK);
        assert_eq!(patched["audience"], Value::Null, "{patched}");

        // A new secret through PATCH replaces the old one at once.
        let new_secret = "patched-secret-0123456789abcdef";
        let patched = assert_ok_json(&admin.patch("/admin/v1/clients/svc", &json!({"client_secret": new_secret})).await, StatusCode::OK);
        assert!(patched.get("client_secret").is_none() || patched["client_secret"] == new_secret, "{patched}");
        assert_eq!(patched["previous_secret_expires_at"], Value::Null, "no grace: {patched}");
        let renewed = TestClient { secret: new_secret.into(), ..svc.clone() };
        until_token_status(&server, &renewed, StatusCode::OK, "the patched secret works").await;
        until_token_status(&server, &svc, StatusCode::UNAUTHORIZED, "the old secret stops").await;

        // Unknown client: 404 naming it.
        let reply = admin.patch("/admin/v1/clients/nobody", &json!({"name": "x"})).await;
        let problem = assert_problem(&reply, StatusCode::NOT_FOUND, None);
        assert!(json_str(&problem, "detail").contains("nobody"), "{problem}");
    }

    /// DELETE: 204, then 404 for GET and a second DELETE; its tokens end at once.
    async fn client_delete(backend) {
        let db = TestDb::new(backend).await;
        let ops = ops_client(&db, &[]).await;
        let svc = db.create_client("svc", &["--client-id", "svc", "--scope", "read"]).await;
        let rs = db.create_client("rs", &["--can-introspect"]).await;
        let server = db.start(&[]).await;
        let admin = Admin::of(&server, &ops).await;
        let token = server.access_token(&svc).await;
        assert!(server.is_active(&rs, &token).await);

        let reply = admin.delete("/admin/v1/clients/svc").await;
        reply.assert_status(StatusCode::NO_CONTENT);
        assert_no_store_only(&reply);
        assert!(reply.body.is_empty(), "{reply:?}");
        assert!(!server.is_active(&rs, &token).await, "the deleted client's token is active");
        until_token_status(&server, &svc, StatusCode::UNAUTHORIZED, "the deleted client is refused").await;

        for reply in [admin.get("/admin/v1/clients/svc").await, admin.delete("/admin/v1/clients/svc").await] {
            let problem = assert_problem(&reply, StatusCode::NOT_FOUND, None);
            assert!(json_str(&problem, "detail").contains("svc"), "{problem}");
        }
        let out = db.cli(&["client", "show", "svc", "--json"]).await;
        assert_eq!(out.code(), Some(1), "the CLI still sees the client: {out:#?}");
    }

    /// `POST …/secret`: a new secret; with `grace_seconds` the old one keeps
    /// working until `previous_secret_expires_at`; without, it stops at once.
    async fn client_secret_rotation(backend) {
        let db = TestDb::new(backend).await;
        let ops = ops_client(&db, &[]).await;
        let svc = db.create_client("svc", &["--client-id", "svc", "--scope", "read"]).await;
        let server = db.start(&[]).await;
        let admin = Admin::of(&server, &ops).await;

        let before = unix_now();
        let reply = admin.post("/admin/v1/clients/svc/secret", &json!({"grace_seconds": 300})).await;
        let rotated = assert_ok_json(&reply, StatusCode::OK);
        assert_eq!(members(&rotated), sorted(&["client_id", "client_secret", "previous_secret_expires_at"]), "{rotated}");
        assert_eq!(rotated["client_id"], "svc");
        let expires = rotated["previous_secret_expires_at"].as_i64().unwrap_or_else(|| panic!("{rotated}"));
        assert!((before + 295..=unix_now() + 305).contains(&expires), "{rotated}");
        let new = TestClient { secret: json_str(&rotated, "client_secret"), ..svc.clone() };
        assert_ne!(new.secret, svc.secret);
        until_token_status(&server, &new, StatusCode::OK, "the new secret works").await;
        server.access_token(&svc).await; // the old one, within its grace
        let shown = admin.get_ok("/admin/v1/clients/svc").await;
        assert_eq!(shown["previous_secret_expires_at"], expires, "{shown}");
        assert!(!shown.to_string().contains(&new.secret), "{shown}");

        // No body: no grace, the previous secret stops at once.
        let reply = admin.post_empty("/admin/v1/clients/svc/secret").await;
        let again = assert_ok_json(&reply, StatusCode::OK);
        assert_eq!(again["previous_secret_expires_at"], Value::Null, "{again}");
        let newest = TestClient { secret: json_str(&again, "client_secret"), ..svc.clone() };
        until_token_status(&server, &newest, StatusCode::OK, "the newest secret works").await;
        until_token_status(&server, &new, StatusCode::UNAUTHORIZED, "the replaced secret stops").await;
        until_token_status(&server, &svc, StatusCode::UNAUTHORIZED, "the first secret stops").await;

        // An explicit 0 is no grace either; the CLI's own view agrees.
        let zero = assert_ok_json(&admin.post("/admin/v1/clients/svc/secret", &json!({"grace_seconds": 0})).await, StatusCode::OK);
        assert_eq!(zero["previous_secret_expires_at"], Value::Null, "{zero}");
        let cli = db.cli_json(&["client", "show", "svc"]).await;
        assert_eq!(cli["previous_secret_expires_at"], Value::Null, "{cli}");

        let reply = admin.post_empty("/admin/v1/clients/nobody/secret").await;
        assert_problem(&reply, StatusCode::NOT_FOUND, None);
    }

    /// `POST …/revoke-tokens`: 204, and every token the client holds (JWT access
    /// tokens included, and its refresh tokens) is inactive at once; a token
    /// issued after the answer works.
    async fn client_revoke_tokens(backend) {
        let db = TestDb::new(backend).await;
        let ops = ops_client(&db, &[]).await;
        let svc = db
            .create_client("svc", &["--client-id", "svc", "--scope", "read", "--grant-types", "client_credentials,password,refresh_token"])
            .await;
        let other = db.create_client("other", &["--scope", "read"]).await;
        let rs = db.create_client("rs", &["--can-introspect"]).await;
        let user = db.create_user("alice", PASSWORD, None).await;
        let server = db.start(&[]).await;
        let admin = Admin::of(&server, &ops).await;

        let machine = server.access_token(&svc).await;
        let login = server.login(&svc, &user).await;
        let access = json_str(&login, "access_token");
        let refresh = json_str(&login, "refresh_token");
        let others = server.access_token(&other).await;
        for token in [&machine, &access, &others] {
            assert!(server.is_active(&rs, token).await);
        }

        let reply = admin.post_empty("/admin/v1/clients/svc/revoke-tokens").await;
        reply.assert_status(StatusCode::NO_CONTENT);
        assert_no_store_only(&reply);
        for (what, token) in [("client_credentials JWT", &machine), ("password-grant JWT", &access), ("refresh token", &refresh)] {
            assert!(!server.is_active(&rs, token).await, "{what} of the client is still active");
        }
        server.refresh_grant(&svc, &refresh, &[]).await.assert_token_error(StatusCode::BAD_REQUEST, "invalid_grant");
        assert!(server.is_active(&rs, &others).await, "another client's token was revoked");

        // The client itself lives on: a token issued after the 204 is good.
        let fresh = server.access_token(&svc).await;
        assert!(server.is_active(&rs, &fresh).await, "a token issued after revoke-tokens is inactive");
        let login = server.login(&svc, &user).await;
        assert!(server.is_active(&rs, &json_str(&login, "access_token")).await);

        // A JSON empty object is a fine body too; an unknown client is 404.
        let reply = admin.post("/admin/v1/clients/svc/revoke-tokens", &json!({})).await;
        reply.assert_status(StatusCode::NO_CONTENT);
        let reply = admin.post_empty("/admin/v1/clients/nobody/revoke-tokens").await;
        assert_problem(&reply, StatusCode::NOT_FOUND, None);
    }

    /// Users: create (201, Location), get, list in pages, PATCH password, scope and
    /// disabled, delete; the password grant follows each change and no answer
    /// holds a password.
    async fn users_create_get_list_patch_delete(backend) {
        let db = TestDb::new(backend).await;
        let ops = ops_client(&db, &[]).await;
        let app = db
            .create_client("app", &["--scope", "read write", "--grant-types", "password,refresh_token"])
            .await;
        let rs = db.create_client("rs", &["--can-introspect"]).await;
        let server = db.start(&[]).await;
        let admin = Admin::of(&server, &ops).await;

        let before = unix_now();
        let alice = admin.create_user(&json!({"username": "alice", "password": PASSWORD, "scope": "read"})).await;
        assert_eq!(members(&alice), sorted(&USER_VIEW), "{alice}");
        assert_eq!(alice["username"], "alice");
        assert_eq!(alice["scope"], "read");
        assert_eq!(alice["disabled"], false);
        let user_id = json_str(&alice, "user_id");
        assert!(user_id.len() == 32 && user_id.bytes().all(|b| b.is_ascii_hexdigit()), "{alice}");
        let created_at = alice["created_at"].as_i64().expect("created_at");
        assert!((before - 5..=unix_now() + 5).contains(&created_at), "{alice}");
        let bob = admin.create_user(&json!({"username": "bob", "password": "bobs-password-1"})).await;
        assert_eq!(bob["scope"], Value::Null, "no scope: limited by the client alone: {bob}");
        admin.create_user(&json!({"username": "Carol", "password": "carols-password"})).await;
        admin.create_user(&json!({"username": "dave smith", "password": "daves-password"})).await;

        let body = server.password_grant(&app, "alice", PASSWORD, &[]).await;
        assert_eq!(body.json()["scope"], "read", "{body:?}");
        let token = body.access_token();
        let login = body.json();

        let shown = admin.get_ok("/admin/v1/users/alice").await;
        assert_eq!(shown, alice);
        let cli = db.cli_json(&["user", "list"]).await;
        let cli_alice = cli["users"].as_array().expect("users").iter().find(|u| u["username"] == "alice").cloned();
        assert_eq!(cli_alice, Some(alice.clone()), "the CLI and the API disagree");
        admin.get_ok("/admin/v1/users/dave%20smith").await;

        // Pages in username byte order.
        let all = admin.get_ok("/admin/v1/users").await;
        let names: Vec<String> = all["users"].as_array().expect("users").iter().map(|u| json_str(u, "username")).collect();
        assert_eq!(names, ["Carol", "alice", "bob", "dave smith"], "{all}");
        assert_eq!(all["next"], Value::Null);
        let page = admin.get_ok("/admin/v1/users?limit=2").await;
        assert_eq!(page["next"], "alice", "{page}");
        assert_eq!(page["users"].as_array().map(Vec::len), Some(2), "{page}");
        let page = admin.get_ok("/admin/v1/users?limit=2&after=alice").await;
        let names: Vec<String> = page["users"].as_array().expect("users").iter().map(|u| json_str(u, "username")).collect();
        assert_eq!(names, ["bob", "dave smith"], "{page}");
        assert_eq!(page["next"], Value::Null, "a full last page: {page}");
        assert_problem(&admin.get("/admin/v1/users?limit=0").await, StatusCode::BAD_REQUEST, Some("limit"));
        let text = all.to_string();
        assert!(!text.contains(PASSWORD) && !text.contains("$argon2") && !text.contains("password"), "{all}");

        // PATCH password: the old one stops, the new one works.
        let new_password = "a brand new passphrase";
        let reply = admin.patch("/admin/v1/users/alice", &json!({"password": new_password})).await;
        let patched = assert_ok_json(&reply, StatusCode::OK);
        assert_eq!(patched, alice, "a password change shows nothing new");
        assert!(!reply.body.contains(new_password));
        server.password_grant(&app, "alice", PASSWORD, &[]).await.assert_token_error(StatusCode::BAD_REQUEST, "invalid_grant");
        server.password_grant(&app, "alice", new_password, &[]).await.access_token();

        // PATCH scope, then null.
        let patched = assert_ok_json(&admin.patch("/admin/v1/users/alice", &json!({"scope": "read write"})).await, StatusCode::OK);
        assert_eq!(scope_set(&json_str(&patched, "scope")), ["read", "write"]);
        let body = server.password_grant(&app, "alice", new_password, &[("scope", "write")]).await;
        body.access_token();
        let patched = assert_ok_json(&admin.patch("/admin/v1/users/alice", &json!({"scope": null})).await, StatusCode::OK);
        assert_eq!(patched["scope"], Value::Null, "{patched}");

        // PATCH disabled: the user cannot log in and its tokens end; enabled again, it can.
        assert!(server.is_active(&rs, &token).await);
        let patched = assert_ok_json(&admin.patch("/admin/v1/users/alice", &json!({"disabled": true})).await, StatusCode::OK);
        assert_eq!(patched["disabled"], true);
        server.password_grant(&app, "alice", new_password, &[]).await.assert_token_error(StatusCode::BAD_REQUEST, "invalid_grant");
        assert!(!server.is_active(&rs, &token).await, "a disabled user's token is active");
        server
            .refresh_grant(&app, &json_str(&login, "refresh_token"), &[])
            .await
            .assert_token_error(StatusCode::BAD_REQUEST, "invalid_grant");
        let patched = assert_ok_json(&admin.patch("/admin/v1/users/alice", &json!({"disabled": false})).await, StatusCode::OK);
        assert_eq!(patched["disabled"], false);
        server.password_grant(&app, "alice", new_password, &[]).await.access_token();

        // DELETE: 204, then 404.
        let reply = admin.delete("/admin/v1/users/bob").await;
        reply.assert_status(StatusCode::NO_CONTENT);
        assert_no_store_only(&reply);
        server.password_grant(&app, "bob", "bobs-password-1", &[]).await.assert_token_error(StatusCode::BAD_REQUEST, "invalid_grant");
        for reply in [
            admin.get("/admin/v1/users/bob").await,
            admin.delete("/admin/v1/users/bob").await,
            admin.patch("/admin/v1/users/bob", &json!({"disabled": true})).await,
            admin.post_empty("/admin/v1/users/bob/revoke-tokens").await,
        ] {
            let problem = assert_problem(&reply, StatusCode::NOT_FOUND, None);
            assert!(json_str(&problem, "detail").contains("bob"), "{problem}");
        }
        assert_eq!(db.connect().await.count("users").await, 3);
    }

    /// `POST /admin/v1/users/{username}/revoke-tokens`: 204; every token of the
    /// user's logins (access JWTs and refresh tokens) is dead at once; the user
    /// logs in again.
    async fn user_revoke_tokens(backend) {
        let db = TestDb::new(backend).await;
        let ops = ops_client(&db, &[]).await;
        let (app, alice) = db.refresh_app().await;
        let bob = db.create_user("bob", PASSWORD, Some("read")).await;
        let rs = db.create_client("rs", &["--can-introspect"]).await;
        let server = db.start(&[]).await;
        let admin = Admin::of(&server, &ops).await;

        let first = server.login(&app, &alice).await;
        let second = server.login(&app, &alice).await;
        let bobs = server.login(&app, &bob).await;
        let reply = admin.post_empty("/admin/v1/users/alice/revoke-tokens").await;
        reply.assert_status(StatusCode::NO_CONTENT);
        assert_no_store_only(&reply);
        for login in [&first, &second] {
            assert!(!server.is_active(&rs, &json_str(login, "access_token")).await, "alice's access token is active");
            server
                .refresh_grant(&app, &json_str(login, "refresh_token"), &[])
                .await
                .assert_token_error(StatusCode::BAD_REQUEST, "invalid_grant");
        }
        assert!(server.is_active(&rs, &json_str(&bobs, "access_token")).await, "bob's token was revoked");
        server.refresh(&app, &json_str(&bobs, "refresh_token")).await;

        let again = server.login(&app, &alice).await;
        assert!(server.is_active(&rs, &json_str(&again, "access_token")).await, "a login after revoke-tokens is inactive");
        server.refresh(&app, &json_str(&again, "refresh_token")).await;
        assert_eq!(admin.get_ok("/admin/v1/users/alice").await["disabled"], false, "revoke-tokens does not disable");
    }

    /// Keys: GET lists the current key; POST rotate makes a new current one (201),
    /// tokens carry its kid within 5 s, and the old key is listed with `retires_at`.
    async fn keys_list_and_rotate(backend) {
        let db = TestDb::new(backend).await;
        let ops = ops_client(&db, &[]).await;
        let svc = db.create_client("svc", &[]).await;
        let server = db.start(&[]).await;
        let admin = Admin::of(&server, &ops).await;
        let old_kid = jose::kid(&server.access_token(&svc).await);

        let keys = admin.get_ok("/admin/v1/keys").await;
        let list = keys["keys"].as_array().unwrap_or_else(|| panic!("{keys}"));
        assert_eq!(list.len(), 1, "{keys}");
        assert_eq!(members(&list[0]), sorted(&KEY_VIEW), "{keys}");
        assert_eq!(list[0]["kid"], old_kid.as_str(), "{keys}");
        assert_eq!(list[0]["alg"], "ES256", "{keys}");
        assert_eq!(list[0]["current"], true, "{keys}");
        assert_eq!(list[0]["retires_at"], Value::Null, "{keys}");
        assert!(list[0]["created_at"].is_i64(), "{keys}");

        let reply = admin.post_empty("/admin/v1/keys/rotate").await;
        let new_key = assert_ok_json(&reply, StatusCode::CREATED);
        assert_eq!(members(&new_key), sorted(&KEY_VIEW), "{new_key}");
        let new_kid = json_str(&new_key, "kid");
        assert_ne!(new_kid, old_kid);
        assert_eq!(new_key["current"], true, "{new_key}");
        assert_eq!(new_key["retires_at"], Value::Null, "{new_key}");
        assert_eq!(new_key["alg"], "ES256", "{new_key}");
        let text = reply.body.to_lowercase();
        assert!(!text.contains("\"d\"") && !text.contains("private"), "{new_key}");

        eventually(PROPAGATION_DEADLINE, "tokens signed with the new key", || {
            let (server, svc, new_kid) = (&server, &svc, &new_kid);
            async move {
                let kid = jose::kid(&server.access_token(svc).await);
                if kid == *new_kid { Ok(()) } else { Err(kid) }
            }
        })
        .await;
        let token = server.access_token(&svc).await;
        jose::verify(&token, &server.jwks().await, &server.issuer().await, &server.issuer().await);

        let keys = admin.get_ok("/admin/v1/keys").await;
        let list = keys["keys"].as_array().unwrap_or_else(|| panic!("{keys}"));
        assert_eq!(list.len(), 2, "{keys}");
        let current: Vec<&Value> = list.iter().filter(|k| k["current"] == true).collect();
        assert_eq!(current.len(), 1, "one current key: {keys}");
        assert_eq!(current[0]["kid"], new_kid.as_str(), "{keys}");
        assert_eq!(current[0]["retires_at"], Value::Null, "{keys}");
        let old = list.iter().find(|k| k["kid"] == old_kid.as_str()).unwrap_or_else(|| panic!("old key gone: {keys}"));
        assert_eq!(old["current"], false, "{keys}");
        let retires = old["retires_at"].as_i64().unwrap_or_else(|| panic!("old key without retires_at: {keys}"));
        assert!(retires > unix_now(), "{keys}");
        // The CLI's database agrees.
        assert_eq!(db.connect().await.count("signing_keys").await, 2);
    }

    /// Every change through the API is one `admin change` audit event naming the
    /// acting client, the action, the target and the member names, and no secret,
    /// password or token reaches the log.
    async fn admin_changes_are_audited_without_secrets(backend) {
        let db = TestDb::new(backend).await;
        let ops = ops_client(&db, &[]).await;
        let server = db.start(&[]).await;
        let admin = Admin::of(&server, &ops).await;
        let imported = "audit-imported-secret-0123456789";
        let patched_secret = "audit-patched-secret-0123456789";
        let password = "audit password one";
        let new_password = "audit password two";

        let created = admin.create_client(&json!({"name": "audited", "client_id": "aud", "scope": "read"})).await;
        admin.create_client(&json!({"name": "imported", "client_id": "imp", "client_secret": imported})).await;
        assert_ok_json(&admin.patch("/admin/v1/clients/aud", &json!({"scope": "read write", "token_ttl": 60})).await, StatusCode::OK);
        assert_ok_json(&admin.patch("/admin/v1/clients/imp", &json!({"client_secret": patched_secret})).await, StatusCode::OK);
        let rotated = assert_ok_json(&admin.post("/admin/v1/clients/aud/secret", &json!({"grace_seconds": 60})).await, StatusCode::OK);
        admin.post_empty("/admin/v1/clients/aud/revoke-tokens").await.assert_status(StatusCode::NO_CONTENT);
        admin.create_user(&json!({"username": "erin", "password": password, "scope": "read"})).await;
        assert_ok_json(&admin.patch("/admin/v1/users/erin", &json!({"password": new_password, "disabled": true})).await, StatusCode::OK);
        admin.post_empty("/admin/v1/users/erin/revoke-tokens").await.assert_status(StatusCode::NO_CONTENT);
        admin.delete("/admin/v1/users/erin").await.assert_status(StatusCode::NO_CONTENT);
        let key = assert_ok_json(&admin.post_empty("/admin/v1/keys/rotate").await, StatusCode::CREATED);
        admin.delete("/admin/v1/clients/imp").await.assert_status(StatusCode::NO_CONTENT);
        // A refused request changes nothing and is no admin change.
        let reply = admin.post("/admin/v1/clients", &json!({"name": "", "client_secret": "refused-secret-0123456789"})).await;
        assert_problem(&reply, StatusCode::BAD_REQUEST, Some("name"));

        let admin_token = admin.token.clone();
        let log = server.stop_with("TERM").await.logs;
        let secrets = vec![
            json_str(&created, "client_secret"),
            json_str(&rotated, "client_secret"),
            imported.to_string(),
            patched_secret.to_string(),
            password.to_string(),
            new_password.to_string(),
            "refused-secret-0123456789".to_string(),
            admin_token,
            ops.secret.clone(),
        ];
        assert_log_holds_none(&log, &secrets);
        assert!(!log.contains("$argon2"), "a hash in the log");

        let events = admin_changes(&log);
        let expect = [
            ("client.create", "aud", &["name", "scope"][..]),
            ("client.create", "imp", &["client_secret"][..]),
            ("client.update", "aud", &["scope", "token_ttl"][..]),
            ("client.update", "imp", &["client_secret"][..]),
            ("client.rotate_secret", "aud", &[][..]),
            ("client.revoke_tokens", "aud", &[][..]),
            ("user.create", "erin", &["password", "scope"][..]),
            ("user.update", "erin", &["password", "disabled"][..]),
            ("user.revoke_tokens", "erin", &[][..]),
            ("user.delete", "erin", &[][..]),
            ("keys.rotate", key["kid"].as_str().expect("kid"), &[][..]),
            ("client.delete", "imp", &[][..]),
        ];
        assert_eq!(events.len(), expect.len(), "one event per change: {events:#?}");
        for (action, target, fields) in expect {
            let event = events
                .iter()
                .find(|e| field(e, "action") == Some(action) && field(e, "target_id") == Some(target))
                .unwrap_or_else(|| panic!("no {action} of {target} among {events:#?}"));
            assert_eq!(field(event, "admin_client_id"), Some("ops"), "{event:?}");
            let logged: BTreeSet<&str> = field(event, "fields").unwrap_or_default().split(',').filter(|f| !f.is_empty()).collect();
            for name in fields {
                assert!(logged.contains(name), "{action}: fields lack {name}: {event:?}");
            }
        }
    }

    /// In the JSON log, an admin change is one JSON object whose members can all be
    /// read: the event's own fields do not collide with the line's `target` (the
    /// module), which a JSON reader would otherwise take in place of the changed object.
    async fn admin_changes_in_the_json_log(backend) {
        let db = TestDb::new(backend).await;
        let ops = ops_client(&db, &[]).await;
        let server = db.start(&["--log-format", "json"]).await;
        let admin = Admin::of(&server, &ops).await;
        admin.create_client(&json!({"name": "audited", "client_id": "aud", "scope": "read"})).await;
        let log = server.stop_with("TERM").await.logs;
        let line = log
            .lines()
            .find(|l| l.contains("\"admin change\""))
            .unwrap_or_else(|| panic!("no admin change in {log}"));
        let event: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert_eq!(event["level"], "INFO", "{line}");
        assert_eq!(event["admin_client_id"], "ops", "{line}");
        assert_eq!(event["action"], "client.create", "{line}");
        for name in ["target", "target_id", "fields", "action", "admin_client_id"] {
            assert_eq!(line.matches(&format!("\"{name}\":")).count(), 1, "member {name:?} appears more than once: {line}");
        }
        assert_eq!(event["target_id"], "aud", "the changed client is not readable: {line}");
    }
}

/// Two nodes on one PostgreSQL database act as one: a client created through
/// node A's API gets tokens at node B within 5 s, and an admin token revoked at
/// node A is refused by both at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_changes_reach_every_node() {
    if Backend::Postgres.skipped() {
        return;
    }
    let db = TestDb::new(Backend::Postgres).await;
    let ops = ops_client(&db, &[]).await;
    let (a, b) = tokio::join!(db.start(&[]), db.start(&[]));
    let admin_a = Admin::of(&a, &ops).await;

    let created = admin_a
        .create_client(&json!({"name": "made on A", "client_id": "made-on-a", "scope": "read"}))
        .await;
    let client = TestClient {
        id: "made-on-a".into(),
        secret: json_str(&created, "client_secret"),
        created,
    };
    until_token_status(&b, &client, StatusCode::OK, "node B knows the client made on A").await;

    // A change on A reaches B.
    assert_ok_json(
        &admin_a
            .patch("/admin/v1/clients/made-on-a", &json!({"scope": "read write"}))
            .await,
        StatusCode::OK,
    );
    eventually(
        PROPAGATION_DEADLINE,
        "node B grants the scope patched on A",
        || {
            let (b, client) = (&b, &client);
            async move { granted(b, client, "write").await.map(|_| ()) }
        },
    )
    .await;
    // B's API sees what A's made.
    let admin_b = Admin::new(&b, admin_a.token.clone());
    let shown = admin_b.get_ok("/admin/v1/clients/made-on-a").await;
    assert_eq!(shown["name"], "made on A", "{shown}");

    // Revoked at A: refused by A and by B on the next request.
    a.revoke(Some(&ops.basic()), &[("token", admin_a.token.as_str())])
        .await
        .assert_status(StatusCode::OK);
    assert_invalid_token(&admin_a.get("/admin/v1/clients").await);
    assert_invalid_token(&admin_b.get("/admin/v1/clients").await);
    assert_invalid_token(&admin_b.post("/admin/v1/clients", &json!({"name": "after"})).await);

    // Deleted on B: A refuses the client.
    let admin_b = Admin::of(&b, &ops).await;
    admin_b
        .delete("/admin/v1/clients/made-on-a")
        .await
        .assert_status(StatusCode::NO_CONTENT);
    until_token_status(
        &a,
        &client,
        StatusCode::UNAUTHORIZED,
        "node A refuses the client deleted on B",
    )
    .await;
}
