//! The admin API (`/admin/v1`) under bad input: each request is refused with a
//! precise 4xx RFC 9457 problem detail (naming the member or parameter at fault
//! where there is one), never a 500, and leaves nothing written: the rows of
//! `clients` and `users` are counted before and after.

use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::admin_api::*;
use crate::helpers::*;

/// The rows of `clients` and `users`.
async fn rows(db: &TestDb) -> (i64, i64) {
    let mut conn = db.connect().await;
    (conn.count("clients").await, conn.count("users").await)
}

/// What is wrong in a list of cases, reported together at the end of a test, so
/// that one run names every case that fails.
#[derive(Default)]
struct Findings(Vec<String>);

impl Findings {
    /// Records what is wrong with `reply` as a problem detail of `status` naming
    /// `field`; returns its body (`null` when it is no JSON).
    fn problem(&mut self, what: &str, reply: &Reply, status: StatusCode, field: Option<&str>) -> Value {
        let issues = problem_issues(reply, status, field);
        if !issues.is_empty() {
            self.0.push(format!(
                "{what}: {} [{} {}]",
                issues.join("; "),
                reply.status,
                reply.body
            ));
        }
        serde_json::from_str(&reply.body).unwrap_or(Value::Null)
    }

    /// Records `what` unless `ok`.
    fn check(&mut self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            self.0.push(what());
        }
    }

    fn assert_none(self) {
        assert!(
            self.0.is_empty(),
            "{} finding(s):\n{}",
            self.0.len(),
            self.0.join("\n")
        );
    }
}

/// The `detail` of a problem body ("" when it has none).
fn detail(problem: &Value) -> String {
    problem["detail"].as_str().unwrap_or_default().to_string()
}

/// Sends each body to `path`; each must be a 400 naming its field, in `field` and
/// in the detail.
async fn each_refused(
    findings: &mut Findings,
    admin: &Admin<'_, '_>,
    method: Method,
    path: &str,
    cases: &[(Value, &str)],
) {
    for (body, field) in cases {
        let reply = admin.json(method.clone(), path, body).await;
        let what = format!("{method} {path} {body}");
        let problem = findings.problem(&what, &reply, StatusCode::BAD_REQUEST, Some(field));
        findings.check(
            reply.status != StatusCode::BAD_REQUEST || detail(&problem).contains(field),
            || format!("{what}: the detail does not name {field}: {problem}"),
        );
    }
}

/// Sends a JSON `body` with the admin token on a connection of its own: a server
/// that refuses a large body before reading it may close the connection after its
/// answer, which must not fail the next request of a shared pool.
async fn on_a_new_connection(admin: &Admin<'_, '_>, method: Method, path: &str, body: Vec<u8>) -> Reply {
    let http = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .build()
        .expect("HTTP client");
    let request = http
        .request(method, admin.server.url(path))
        .bearer_auth(&admin.token)
        .header("content-type", JSON)
        .body(body);
    Reply::from(request.send().await).await
}

backend_tests! {
    /// Every invalid member of a new client: 400 naming it, nothing stored. The
    /// limits themselves are accepted.
    async fn client_create_refuses_each_invalid_member(backend) {
        let db = TestDb::new(backend).await;
        let ops = ops_client(&db, &[]).await;
        let server = db.start(&[]).await;
        let admin = Admin::of(&server, &ops).await;
        let before = rows(&db).await;

        let cases = [
            (json!({"name": "x", "colour": "red"}), "colour"),
            (json!({"name": "x", "Name": "y"}), "Name"),
            (json!({"name": 5}), "name"),
            (json!({"name": null}), "name"),
            (json!({"scope": "read"}), "name"),
            (json!({"name": ""}), "name"),
            (json!({"name": "a\nb"}), "name"),
            (json!({"name": "a\u{1b}[31mb"}), "name"),
            (json!({"name": "n".repeat(256)}), "name"),
            (json!({"name": "x", "grant_types": "x"}), "grant_types"),
            (json!({"name": "x", "grant_types": [5]}), "grant_types"),
            (json!({"name": "x", "grant_types": ["implicit"]}), "grant_types"),
            (json!({"name": "x", "grant_types": ["client_credentials", "authorization_code"]}), "grant_types"),
            (json!({"name": "x", "grant_types": []}), "grant_types"),
            (json!({"name": "x", "client_id": "a\u{1}b"}), "client_id"),
            (json!({"name": "x", "client_id": "a\u{0}b"}), "client_id"),
            (json!({"name": "x", "client_id": "a\nb"}), "client_id"),
            (json!({"name": "x", "client_id": "x".repeat(256)}), "client_id"),
            (json!({"name": "x", "client_id": ""}), "client_id"),
            (json!({"name": "x", "client_id": "caf\u{e9}"}), "client_id"),
            (json!({"name": "x", "client_id": 7}), "client_id"),
            (json!({"name": "x", "scope": "read \"write\""}), "scope"),
            (json!({"name": "x", "scope": "read\\write"}), "scope"),
            (json!({"name": "x", "scope": ["read"]}), "scope"),
            (json!({"name": "x", "token_ttl": 0}), "token_ttl"),
            (json!({"name": "x", "token_ttl": -1}), "token_ttl"),
            (json!({"name": "x", "token_ttl": 1_000_000_000_000i64}), "token_ttl"),
            (json!({"name": "x", "token_ttl": 315_360_001}), "token_ttl"),
            (json!({"name": "x", "token_ttl": 1.5}), "token_ttl"),
            (json!({"name": "x", "token_ttl": "60"}), "token_ttl"),
            (json!({"name": "x", "refresh_token_ttl": 0}), "refresh_token_ttl"),
            (json!({"name": "x", "refresh_token_ttl": 1_000_000_000_000i64}), "refresh_token_ttl"),
            (json!({"name": "x", "audience": ""}), "audience"),
            (json!({"name": "x", "audience": 1}), "audience"),
            (json!({"name": "x", "token_format": "jws"}), "token_format"),
            (json!({"name": "x", "can_introspect": "yes"}), "can_introspect"),
            (json!({"name": "x", "client_secret": "too-short"}), "client_secret"),
            (json!({"name": "x", "client_secret": 1234567890123456789i64}), "client_secret"),
        ];
        let mut findings = Findings::default();
        each_refused(&mut findings, &admin, Method::POST, "/admin/v1/clients", &cases).await;

        // A refused secret is not repeated in the answer.
        let reply = admin.post("/admin/v1/clients", &json!({"name": "x", "client_secret": "short-secret"})).await;
        findings.problem("short client_secret", &reply, StatusCode::BAD_REQUEST, Some("client_secret"));
        findings.check(!reply.body.contains("short-secret"), || format!("the secret is echoed: {reply:?}"));
        findings.check(rows(&db).await == before, || "a refused create wrote something".into());
        findings.assert_none();

        // The limits are inside: 255 characters, printable ASCII with spaces,
        // a ttl of ten years.
        let long_id = "i".repeat(255);
        admin.create_client(&json!({"name": "n".repeat(255), "client_id": long_id})).await;
        admin.create_client(&json!({"name": "ttl", "client_id": "a b~!", "token_ttl": 315_360_000, "refresh_token_ttl": 1})).await;
        admin.get_ok(&format!("/admin/v1/clients/{long_id}")).await;
        assert_eq!(rows(&db).await, (before.0 + 2, before.1));
    }

    /// The members of features this server does not have yet are accepted only
    /// with the value that means "not used"; any other value is 400 naming the
    /// member, saying it is not supported.
    async fn unsupported_members_need_their_neutral_value(backend) {
        let db = TestDb::new(backend).await;
        let ops = ops_client(&db, &[]).await;
        let server = db.start(&[]).await;
        let admin = Admin::of(&server, &ops).await;
        let before = rows(&db).await;

        let cases = [
            (json!({"name": "x", "public": true}), "public"),
            (json!({"name": "x", "first_party": true}), "first_party"),
            (json!({"name": "x", "require_dpop": true}), "require_dpop"),
            (json!({"name": "x", "redirect_uris": ["https://app.example.com/cb"]}), "redirect_uris"),
            (json!({"name": "x", "post_logout_redirect_uris": ["https://app.example.com/"]}), "post_logout_redirect_uris"),
        ];
        let mut findings = Findings::default();
        for (body, field) in &cases {
            let reply = admin.post("/admin/v1/clients", body).await;
            let problem = findings.problem(&format!("POST {body}"), &reply, StatusCode::BAD_REQUEST, Some(field));
            findings.check(detail(&problem).contains("not supported"), || format!("{body}: {problem}"));
        }
        // Wrong types are wrong types, not "not supported".
        each_refused(
            &mut findings,
            &admin,
            Method::POST,
            "/admin/v1/clients",
            &[(json!({"name": "x", "public": "no"}), "public"), (json!({"name": "x", "redirect_uris": "https://a"}), "redirect_uris")],
        )
        .await;
        // And in a PATCH of an existing client.
        admin.create_client(&json!({"name": "svc", "client_id": "svc"})).await;
        let shown = admin.get_ok("/admin/v1/clients/svc").await;
        for (body, field) in &cases {
            let reply = admin.patch("/admin/v1/clients/svc", body).await;
            findings.problem(&format!("PATCH {body}"), &reply, StatusCode::BAD_REQUEST, Some(field));
        }
        findings.assert_none();
        assert_eq!(admin.get_ok("/admin/v1/clients/svc").await, shown, "a refused PATCH changed the client");
        assert_eq!(rows(&db).await, (before.0 + 1, before.1));

        // The neutral values are fine, all at once.
        let created = admin
            .create_client(&json!({
                "name": "neutral",
                "auth_method": "client_secret_post",
                "jwks": null,
                "jwks_uri": null,
                "tls_subject_dn": null,
                "bound_tokens": false,
                "require_dpop": false,
                "redirect_uris": [],
                "post_logout_redirect_uris": [],
                "first_party": false,
                "public": false,
            }))
            .await;
        assert_eq!(created["auth_method"], "client_secret_post", "{created}");
        // Either secret method means one secret, sent either way.
        let client = TestClient { id: json_str(&created, "client_id"), secret: json_str(&created, "client_secret"), created };
        server.token_form(&client.post(), &[("grant_type", "client_credentials")]).await.access_token();
        server.access_token(&client).await;
    }

    /// Bodies: over 64 KiB is 413, not JSON is 415 (a form, text, no content
    /// type), malformed JSON is 400 saying where; nothing is stored.
    async fn bodies_must_be_small_json_objects(backend) {
        let db = TestDb::new(backend).await;
        let ops = ops_client(&db, &[]).await;
        db.create_client("svc", &["--client-id", "svc"]).await;
        let server = db.start(&[]).await;
        let admin = Admin::of(&server, &ops).await;
        let before = rows(&db).await;

        let mut findings = Findings::default();
        // Too large: 1 MB, and just over 64 KiB, in a well-formed JSON object.
        for size in [1024 * 1024, 65_537] {
            let body = json!({"name": "x".repeat(size)}).to_string().into_bytes();
            for (method, path) in [(Method::POST, "/admin/v1/clients"), (Method::PATCH, "/admin/v1/clients/svc"), (Method::POST, "/admin/v1/users")] {
                let reply = on_a_new_connection(&admin, method.clone(), path, body.clone()).await;
                let what = format!("{method} {path} ({size} bytes)");
                let problem = findings.problem(&what, &reply, StatusCode::PAYLOAD_TOO_LARGE, None);
                findings.check(problem["detail"] == "the body is larger than 65536 bytes", || format!("{what}: {problem}"));
            }
        }
        // Just under the limit is read (and judged for what it says).
        let mut padded = json!({"name": "under the limit", "client_id": "under"}).to_string();
        padded.insert_str(1, &" ".repeat(60_000));
        let reply = admin.raw(Method::POST, "/admin/v1/clients", Some(JSON), Some(padded.into_bytes())).await;
        assert_created(&reply, "clients", "client_id");

        // Not JSON.
        let valid = json!({"name": "x"}).to_string();
        for (content_type, body) in [
            (Some(FORM), "name=x".to_string()),
            (Some("text/plain"), valid.clone()),
            (Some("application/xml"), "<client><name>x</name></client>".to_string()),
            (Some("multipart/form-data; boundary=b"), "--b\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nx\r\n--b--\r\n".to_string()),
            (None, valid.clone()),
        ] {
            for (method, path) in [(Method::POST, "/admin/v1/clients"), (Method::PATCH, "/admin/v1/clients/svc"), (Method::POST, "/admin/v1/users"), (Method::POST, "/admin/v1/clients/svc/secret")] {
                let reply = admin.raw(method.clone(), path, content_type, Some(body.clone().into_bytes())).await;
                findings.problem(&format!("{method} {path} as {content_type:?}"), &reply, StatusCode::UNSUPPORTED_MEDIA_TYPE, None);
            }
        }
        // application/*+json is JSON (a merge patch, say), charset or not.
        let reply = admin.raw(Method::PATCH, "/admin/v1/clients/svc", Some("application/merge-patch+json"), Some(json!({"name": "merged"}).to_string().into_bytes())).await;
        assert_eq!(assert_ok_json(&reply, StatusCode::OK)["name"], "merged");
        let reply = admin.raw(Method::PATCH, "/admin/v1/clients/svc", Some("application/json; charset=utf-8"), Some(json!({"name": "charset"}).to_string().into_bytes())).await;
        assert_eq!(assert_ok_json(&reply, StatusCode::OK)["name"], "charset");

        // Malformed JSON: 400 saying where.
        for body in ["{\"name\": ", "{\"name\": \"x\",}", "{name: \"x\"}", "{\"name\": \"x\"} trailing", "\u{feff}{\"name\": \"x\"}", "{\"name\": \"\\ud800\"}"] {
            let reply = admin.raw(Method::POST, "/admin/v1/clients", Some(JSON), Some(body.as_bytes().to_vec())).await;
            let problem = findings.problem(&format!("{body:?}"), &reply, StatusCode::BAD_REQUEST, None);
            let detail = detail(&problem);
            findings.check(detail.contains("line") && detail.contains("column"), || format!("{body:?}: the detail does not say where: {problem}"));
        }
        // Not UTF-8, not an object, empty.
        for body in [vec![b'{', 0xff, 0xfe, b'}'], b"[]".to_vec(), b"\"name\"".to_vec(), b"null".to_vec(), Vec::new()] {
            let reply = admin.raw(Method::POST, "/admin/v1/clients", Some(JSON), Some(body.clone())).await;
            findings.problem(&format!("body {body:?}"), &reply, StatusCode::BAD_REQUEST, None);
        }
        // The same name twice.
        let reply = admin.raw(Method::POST, "/admin/v1/clients", Some(JSON), Some(br#"{"name": "a", "name": "b"}"#.to_vec())).await;
        let problem = findings.problem("name twice", &reply, StatusCode::BAD_REQUEST, None);
        findings.check(detail(&problem).contains("name"), || format!("name twice: {problem}"));
        findings.assert_none();

        assert_eq!(rows(&db).await, (before.0 + 1, before.1), "only the padded client was stored");
        let names: Vec<String> = admin.get_ok("/admin/v1/clients").await["clients"].as_array().expect("clients").iter().map(|c| json_str(c, "name")).collect();
        assert!(!names.iter().any(|n| n == "x" || n == "a" || n == "b"), "{names:?}");
    }

    /// An id that exists: 409 naming `client_id` / `username`, the first left alone.
    async fn taken_ids_are_409(backend) {
        let db = TestDb::new(backend).await;
        let ops = ops_client(&db, &[]).await;
        let first = db.create_client("first", &["--client-id", "taken", "--scope", "read"]).await;
        db.create_user("alice", PASSWORD, Some("read")).await;
        let server = db.start(&[]).await;
        let admin = Admin::of(&server, &ops).await;
        admin.create_client(&json!({"name": "api made", "client_id": "api-made"})).await;
        admin.create_user(&json!({"username": "bob", "password": PASSWORD})).await;
        let before = rows(&db).await;

        let mut findings = Findings::default();
        for id in ["taken", "api-made", "ops"] {
            let reply = admin.post("/admin/v1/clients", &json!({"name": "second", "client_id": id, "scope": "write"})).await;
            let problem = findings.problem(id, &reply, StatusCode::CONFLICT, Some("client_id"));
            findings.check(detail(&problem).contains(id), || format!("{id}: {problem}"));
        }
        for username in ["alice", "bob"] {
            let reply = admin.post("/admin/v1/users", &json!({"username": username, "password": "another password"})).await;
            let problem = findings.problem(username, &reply, StatusCode::CONFLICT, Some("username"));
            findings.check(detail(&problem).contains(username), || format!("{username}: {problem}"));
        }
        findings.assert_none();
        assert_eq!(rows(&db).await, before);
        // The first holders are untouched.
        let shown = admin.get_ok("/admin/v1/clients/taken").await;
        assert_eq!(shown["name"], "first", "{shown}");
        assert_eq!(shown["scope"], "read", "{shown}");
        server.access_token(&first).await;
        let app = db.create_client("app", &["--scope", "read", "--grant-types", "password"]).await;
        server.password_grant(&app, "alice", PASSWORD, &[]).await.access_token();
        server.password_grant(&app, "bob", PASSWORD, &[]).await.access_token();
    }

    /// PATCH: `client_id` cannot change, an empty object changes nothing (400), and
    /// each invalid member is 400 naming it; the client and user stay as they were.
    async fn patch_refusals(backend) {
        let db = TestDb::new(backend).await;
        let ops = ops_client(&db, &[]).await;
        let svc = db.create_client("svc", &["--client-id", "svc", "--scope", "read"]).await;
        db.create_user("alice", PASSWORD, Some("read")).await;
        let server = db.start(&[]).await;
        let admin = Admin::of(&server, &ops).await;
        let client_before = admin.get_ok("/admin/v1/clients/svc").await;
        let user_before = admin.get_ok("/admin/v1/users/alice").await;

        let mut findings = Findings::default();
        let reply = admin.patch("/admin/v1/clients/svc", &json!({"client_id": "renamed"})).await;
        findings.problem("client_id", &reply, StatusCode::BAD_REQUEST, Some("client_id"));
        let reply = admin.patch("/admin/v1/clients/svc", &json!({"client_id": "svc", "name": "same id"})).await;
        findings.problem("client_id unchanged", &reply, StatusCode::BAD_REQUEST, Some("client_id"));
        for path in ["/admin/v1/clients/svc", "/admin/v1/users/alice"] {
            let reply = admin.patch(path, &json!({})).await;
            let problem = findings.problem(&format!("{path} {{}}"), &reply, StatusCode::BAD_REQUEST, None);
            findings.check(detail(&problem).contains("nothing to change"), || format!("{path}: {problem}"));
        }
        each_refused(
            &mut findings,
            &admin,
            Method::PATCH,
            "/admin/v1/clients/svc",
            &[
                (json!({"name": ""}), "name"),
                (json!({"name": null}), "name"),
                (json!({"scope": "a\"b"}), "scope"),
                (json!({"grant_types": []}), "grant_types"),
                (json!({"grant_types": null}), "grant_types"),
                (json!({"grant_types": ["device_code"]}), "grant_types"),
                (json!({"token_ttl": 0}), "token_ttl"),
                (json!({"refresh_token_ttl": 1_000_000_000_000i64}), "refresh_token_ttl"),
                (json!({"token_format": "paseto"}), "token_format"),
                (json!({"can_introspect": null}), "can_introspect"),
                (json!({"client_secret": "short"}), "client_secret"),
                (json!({"colour": "red"}), "colour"),
                // One bad member spoils the good ones beside it.
                (json!({"name": "fine", "token_ttl": -5}), "token_ttl"),
            ],
        )
        .await;
        each_refused(
            &mut findings,
            &admin,
            Method::PATCH,
            "/admin/v1/users/alice",
            &[
                (json!({"disabled": "yes"}), "disabled"),
                (json!({"disabled": null}), "disabled"),
                (json!({"password": "short"}), "password"),
                (json!({"password": null}), "password"),
                (json!({"scope": ""}), "scope"),
                (json!({"scope": "a\"b"}), "scope"),
                (json!({"username": "bob"}), "username"),
                (json!({"scope": "write", "disabled": 1}), "disabled"),
            ],
        )
        .await;
        findings.assert_none();
        assert_eq!(admin.get_ok("/admin/v1/clients/svc").await, client_before, "a refused PATCH changed the client");
        assert_eq!(admin.get_ok("/admin/v1/users/alice").await, user_before, "a refused PATCH changed the user");
        server.access_token(&svc).await;
        let app = db.create_client("app", &["--scope", "read", "--grant-types", "password"]).await;
        server.password_grant(&app, "alice", PASSWORD, &[]).await.access_token();
    }

    /// Every invalid member of a new user: 400 naming it, nothing stored, no
    /// password in any answer.
    async fn user_create_refuses_each_invalid_member(backend) {
        let db = TestDb::new(backend).await;
        let ops = ops_client(&db, &[]).await;
        let server = db.start(&[]).await;
        let admin = Admin::of(&server, &ops).await;
        let before = rows(&db).await;
        let cases = [
            (json!({"password": PASSWORD}), "username"),
            (json!({"username": "", "password": PASSWORD}), "username"),
            (json!({"username": "a\u{1}b", "password": PASSWORD}), "username"),
            (json!({"username": "a\u{0}b", "password": PASSWORD}), "username"),
            (json!({"username": "a\nb", "password": PASSWORD}), "username"),
            (json!({"username": "u".repeat(256), "password": PASSWORD}), "username"),
            (json!({"username": 5, "password": PASSWORD}), "username"),
            (json!({"username": "erin"}), "password"),
            (json!({"username": "erin", "password": "1234567"}), "password"),
            (json!({"username": "erin", "password": 12345678}), "password"),
            (json!({"username": "erin", "password": PASSWORD, "scope": ""}), "scope"),
            (json!({"username": "erin", "password": PASSWORD, "scope": "read \"all\""}), "scope"),
            (json!({"username": "erin", "password": PASSWORD, "disabled": "no"}), "disabled"),
            (json!({"username": "erin", "password": PASSWORD, "role": "admin"}), "role"),
        ];
        let mut findings = Findings::default();
        for (body, field) in &cases {
            let reply = admin.post("/admin/v1/users", body).await;
            let problem = findings.problem(&format!("{body}"), &reply, StatusCode::BAD_REQUEST, Some(field));
            findings.check(!reply.body.contains(PASSWORD) && !reply.body.contains("1234567"), || format!("{body}: a password in {problem}"));
        }
        findings.assert_none();
        assert_eq!(rows(&db).await, before);
        let user = admin.create_user(&json!({"username": "u".repeat(255), "password": "12345678"})).await;
        assert_eq!(user["username"], "u".repeat(255));
    }

    /// Paths and methods: ids with percent-encoded control characters or
    /// invalid UTF-8, unknown paths (404) and methods (405) under /admin/v1 are
    /// problem details; out-of-range `grace_seconds` is 400 naming it.
    async fn bad_paths_methods_and_parameters(backend) {
        let db = TestDb::new(backend).await;
        let ops = ops_client(&db, &[]).await;
        db.create_client("svc", &["--client-id", "svc"]).await;
        let server = db.start(&[]).await;
        let admin = Admin::of(&server, &ops).await;
        let before = rows(&db).await;

        let mut findings = Findings::default();
        for id in ["a%01b", "a%0D%0AX-Injected:%20yes", "%00", "%1B%5B31m", "%FF%FE", "a%2Fb", "%20", "svc%00"] {
            for (method, path) in [
                (Method::GET, format!("/admin/v1/clients/{id}")),
                (Method::DELETE, format!("/admin/v1/clients/{id}")),
                (Method::POST, format!("/admin/v1/clients/{id}/revoke-tokens")),
                (Method::GET, format!("/admin/v1/users/{id}")),
                (Method::DELETE, format!("/admin/v1/users/{id}")),
                (Method::POST, format!("/admin/v1/users/{id}/revoke-tokens")),
                (Method::POST, format!("/admin/v1/clients/{id}/secret")),
            ] {
                let reply = admin.raw(method.clone(), &path, None, None).await;
                let what = format!("{method} {path}");
                findings.check(
                    reply.status == StatusCode::BAD_REQUEST || reply.status == StatusCode::NOT_FOUND,
                    || format!("{what}: status {} (want 400 or 404)", reply.status),
                );
                findings.problem(&what, &reply, reply.status, None);
                findings.check(reply.header("x-injected").is_none(), || format!("{what}: {reply:?}"));
            }
            let reply = admin.patch(&format!("/admin/v1/clients/{id}"), &json!({"name": "x"})).await;
            findings.check(reply.status.is_client_error(), || format!("PATCH {id}: status {}", reply.status));
            findings.problem(&format!("PATCH {id}"), &reply, reply.status, None);
        }

        // Unknown paths: 404 problem details (after authorization).
        for path in ["/admin/v1/", "/admin/v1/nothing", "/admin/v1/clients/svc/unknown", "/admin/v1/clients/svc/secret/more", "/admin/v1/keys/svc"] {
            let reply = admin.get(path).await;
            findings.problem(&format!("GET {path}"), &reply, StatusCode::NOT_FOUND, None);
            let reply = send(&server, Method::GET, path, None, None, None).await;
            findings.check(
                reply.status == StatusCode::UNAUTHORIZED && reply.header("www-authenticate") == Some(r#"Bearer realm="gatehouse""#),
                || format!("GET {path} without a token: {reply:?}"),
            );
        }

        // Known paths, wrong methods: 405 problem details.
        for (method, path) in [
            (Method::PUT, "/admin/v1/clients"),
            (Method::DELETE, "/admin/v1/clients"),
            (Method::PUT, "/admin/v1/clients/svc"),
            (Method::POST, "/admin/v1/clients/svc"),
            (Method::GET, "/admin/v1/clients/svc/secret"),
            (Method::GET, "/admin/v1/clients/svc/revoke-tokens"),
            (Method::DELETE, "/admin/v1/keys"),
            (Method::POST, "/admin/v1/keys"),
            (Method::GET, "/admin/v1/keys/rotate"),
            (Method::PUT, "/admin/v1/users/svc"),
        ] {
            let reply = admin.raw(method.clone(), path, None, None).await;
            findings.problem(&format!("{method} {path}"), &reply, StatusCode::METHOD_NOT_ALLOWED, None);
        }

        // grace_seconds: 0..=2592000.
        each_refused(
            &mut findings,
            &admin,
            Method::POST,
            "/admin/v1/clients/svc/secret",
            &[
                (json!({"grace_seconds": -1}), "grace_seconds"),
                (json!({"grace_seconds": 2_592_001}), "grace_seconds"),
                (json!({"grace_seconds": "60"}), "grace_seconds"),
                (json!({"grace_seconds": 1e20}), "grace_seconds"),
                (json!({"grace": 60}), "grace"),
            ],
        )
        .await;
        let reply = admin.post("/admin/v1/clients/svc/secret", &json!({"grace_seconds": 2_592_000})).await;
        assert_ok_json(&reply, StatusCode::OK);
        each_refused(&mut findings, &admin, Method::POST, "/admin/v1/clients/svc/revoke-tokens", &[(json!({"all": true}), "all")]).await;

        // Query parameters of the lists.
        for query in ["limit=1e3", "limit=%00", "limit=99999999999999999999"] {
            let reply = admin.get(&format!("/admin/v1/clients?{query}")).await;
            findings.problem(query, &reply, StatusCode::BAD_REQUEST, Some("limit"));
        }
        // A cursor no id can be: an empty page or a 400, never a 500.
        for path in ["/admin/v1/clients?after=%00", "/admin/v1/users?after=a%00b", "/admin/v1/users?after=%01", "/admin/v1/clients?after=%FF"] {
            let reply = admin.get(path).await;
            findings.check(
                reply.status == StatusCode::OK || reply.status == StatusCode::BAD_REQUEST,
                || format!("GET {path}: {} {}", reply.status, reply.body),
            );
        }
        let reply = admin.get("/admin/v1/users?cursor=x").await;
        findings.problem("cursor", &reply, StatusCode::BAD_REQUEST, Some("cursor"));
        findings.check(rows(&db).await == before, || "a refused request wrote something".into());
        findings.assert_none();
    }

    /// Concurrent creates of one client_id (and one username): exactly one 201,
    /// every other a 409; one row each.
    async fn concurrent_creates_of_one_id(backend) {
        let db = TestDb::new(backend).await;
        let ops = ops_client(&db, &[]).await;
        let server = db.start(&[]).await;
        let token = server.access_token(&ops).await;
        let before = rows(&db).await;
        const RACERS: usize = 8;

        for (path, body, field) in [
            ("/admin/v1/clients", json!({"name": "racer", "client_id": "contested"}), "client_id"),
            ("/admin/v1/users", json!({"username": "contested", "password": PASSWORD}), "username"),
        ] {
            let barrier = Arc::new(tokio::sync::Barrier::new(RACERS));
            let tasks: Vec<_> = (0..RACERS)
                .map(|_| {
                    let request = server
                        .http()
                        .post(server.url(path))
                        .bearer_auth(&token)
                        .header("content-type", JSON)
                        .body(body.to_string());
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
            let created = replies.iter().filter(|r| r.status == StatusCode::CREATED).count();
            assert_eq!(created, 1, "{path}: exactly one 201: {replies:#?}");
            for reply in replies.iter().filter(|r| r.status != StatusCode::CREATED) {
                assert_problem(reply, StatusCode::CONFLICT, Some(field));
            }
        }
        assert_eq!(rows(&db).await, (before.0 + 1, before.1 + 1));
    }
}
