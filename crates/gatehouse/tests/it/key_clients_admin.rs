//! Managing clients that authenticate with keys or certificates (docs/admin-api.md,
//! docs/protocol.md): `client create --auth-method … --jwks-file/--jwks-uri/--tls-subject-dn
//! --bound-tokens`, the admin API's `auth_method`, `jwks`, `jwks_uri`,
//! `tls_subject_dn` and `bound_tokens` on POST, PATCH and GET, and registration
//! (RFC 7591 §2, RFC 8705 §2.1.2) of such clients. Each method is made, shown and
//! changed; each broken combination is refused naming the flag or member at fault,
//! writing nothing; a key or certificate client never has, nor is shown, a secret.
//! JWK Sets come from jwt-simple keys (`private_key_jwt.rs`) and rcgen certificates.

use base64::engine::general_purpose::{STANDARD as BASE64, URL_SAFE_NO_PAD as BASE64URL};
use base64::Engine as _;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::admin_api::{assert_problem, ops_client, Admin};
use crate::helpers::*;
use crate::private_key_jwt::{assert_token_for, claims, endpoint_url, jwks, token_with, TestKey};

/// A subject DN as an operator might type it, and its canonical form.
const TYPED_DN: &str = "cn=billing, o=Example Corp,C=DE";
const CANONICAL_DN: &str = "CN=billing,O=Example Corp,C=DE";

/// A JWK Set of one public EC key with a self-signed certificate in `x5c`, as a
/// `self_signed_tls_client_auth` client registers it (RFC 8705 §2.2).
fn jwks_with_certificate() -> Value {
    let key = rcgen::KeyPair::generate().expect("key");
    let params = rcgen::CertificateParams::new(vec!["client.example".to_string()]).expect("params");
    let cert = params.self_signed(&key).expect("self-signed certificate");
    let point = key.public_key_raw();
    assert_eq!(point.len(), 65, "uncompressed P-256 point");
    json!({"keys": [{
        "kty": "EC",
        "crv": "P-256",
        "x": BASE64URL.encode(&point[1..33]),
        "y": BASE64URL.encode(&point[33..]),
        "use": "sig",
        "x5c": [BASE64.encode(cert.der())],
    }]})
}

/// A JWK Set whose key carries its private part (`d`): refused, never stripped.
fn jwks_with_private_key() -> Value {
    let mut set = jwks(&[&TestKey::generate("ES256", Some("k1"))]);
    set["keys"][0]["d"] = json!(BASE64URL.encode([7u8; 32]));
    set
}

/// Writes `content` to `name` in the test's directory; its path.
fn write_file(db: &TestDb, name: &str, content: &[u8]) -> String {
    let path = db.dir().join(name);
    std::fs::write(&path, content).expect("write the file");
    path.to_str().expect("UTF-8 path").to_string()
}

/// `client create --name NAME ARGS --json`, asserted to succeed, shown no secret.
async fn create_keyed(db: &TestDb, name: &str, args: &[&str]) -> Value {
    let mut all = vec!["client", "create", "--name", name];
    all.extend_from_slice(args);
    let created = db.cli_json(&all).await;
    assert!(
        created.get("client_secret").is_none(),
        "shown a secret: {created}"
    );
    created
}

/// Asserts a usage failure: exit status 2, one line on stderr naming `flag` and
/// holding each of `words`.
fn assert_usage(out: &CliOutput, flag: &str, words: &[&str], what: &str) {
    if let Some(problem) = out.one_line_error_problem(2, &[flag]) {
        panic!("{what}: {problem}: {out:#?}");
    }
    for word in words {
        assert!(
            out.stderr.contains(word),
            "{what}: stderr lacks {word:?}: {out:#?}"
        );
    }
}

/// The number of clients in the database.
async fn client_count(db: &TestDb) -> i64 {
    db.connect().await.count("clients").await
}

/// A client as `client show --json` prints it.
async fn shown(db: &TestDb, id: &str) -> Value {
    db.cli_json(&["client", "show", id]).await
}

/// The members a view has for how its client authenticates.
fn auth_of(view: &Value) -> Value {
    json!({
        "auth_method": view["auth_method"],
        "jwks": view["jwks"],
        "jwks_uri": view["jwks_uri"],
        "tls_subject_dn": view["tls_subject_dn"],
        "bound_tokens": view["bound_tokens"],
    })
}

backend_tests! {
    /// `client create` makes a client of each method; `show` and `list --json`
    /// show its members; the key and certificate clients have no secret, not even
    /// in `--format env`; `--bound-tokens` works with a secret.
    async fn cli_creates_each_method(backend) {
        let db = TestDb::new(backend).await;
        let key = TestKey::generate("ES256", Some("k1"));
        let set = jwks(&[&key]);
        let file = write_file(&db, "jwks.json", serde_json::to_string_pretty(&set).unwrap().as_bytes());
        let file = file.as_str();

        let jwt = create_keyed(&db, "jwt", &["--auth-method", "private_key_jwt", "--jwks-file", file]).await;
        assert_eq!(
            auth_of(&jwt),
            json!({"auth_method": "private_key_jwt", "jwks": set, "jwks_uri": null, "tls_subject_dn": null, "bound_tokens": false}),
            "{jwt}"
        );
        let by_uri = create_keyed(
            &db,
            "by-uri",
            &["--auth-method", "private_key_jwt", "--jwks-uri", "https://client.example/jwks.json"],
        )
        .await;
        assert_eq!(by_uri["jwks_uri"], "https://client.example/jwks.json", "{by_uri}");
        assert_eq!(by_uri["jwks"], Value::Null, "{by_uri}");

        let cert_set = jwks_with_certificate();
        let cert_file = write_file(&db, "cert-jwks.json", cert_set.to_string().as_bytes());
        let self_signed = create_keyed(
            &db,
            "self-signed",
            &["--auth-method", "self_signed_tls_client_auth", "--jwks-file", &cert_file, "--bound-tokens"],
        )
        .await;
        assert_eq!(self_signed["auth_method"], "self_signed_tls_client_auth", "{self_signed}");
        assert_eq!(self_signed["jwks"], cert_set, "{self_signed}");
        assert_eq!(self_signed["bound_tokens"], true, "{self_signed}");

        let mtls = create_keyed(&db, "mtls", &["--auth-method", "tls_client_auth", "--tls-subject-dn", TYPED_DN]).await;
        assert_eq!(mtls["tls_subject_dn"], CANONICAL_DN, "stored canonical: {mtls}");
        assert_eq!(mtls["jwks"], Value::Null, "{mtls}");

        // A secret client may have bound tokens too, and keeps its secret.
        let bound = db.create_client("bound", &["--bound-tokens"]).await;
        assert_eq!(
            auth_of(&bound.created),
            json!({"auth_method": "client_secret_basic", "jwks": null, "jwks_uri": null, "tls_subject_dn": null, "bound_tokens": true})
        );
        let post = db.create_client("post", &["--auth-method", "client_secret_post"]).await;
        assert_eq!(post.created["auth_method"], "client_secret_post");

        // show and list --json say the same, without a secret.
        for created in [&jwt, &by_uri, &self_signed, &mtls] {
            let id = json_str(created, "client_id");
            assert_eq!(&shown(&db, &id).await, created, "show differs from create");
        }
        let listed = db.cli_json(&["client", "list"]).await;
        let clients = listed["clients"].as_array().expect("clients");
        assert_eq!(clients.len(), 6, "{listed}");
        for client in clients {
            assert!(client.get("client_secret").is_none(), "{client}");
            assert!(client.get("jwks").is_some() && client.get("bound_tokens").is_some(), "{client}");
        }

        // --format env prints no CLIENT_SECRET line for a client without a secret.
        let out = db
            .cli(&["client", "create", "--name", "env", "--auth-method", "private_key_jwt", "--jwks-file", file, "--format", "env"])
            .await;
        assert!(out.status.success(), "{out:#?}");
        let lines: Vec<&str> = out.stdout.lines().collect();
        assert_eq!(lines.len(), 1, "{out:#?}");
        assert!(lines[0].starts_with("CLIENT_ID="), "{out:#?}");

        // The text form, too, shows the members and no secret.
        let text = db.cli(&["client", "show", &json_str(&mtls, "client_id")]).await;
        assert!(text.stdout.contains(&format!("tls_subject_dn: {CANONICAL_DN}")), "{text:#?}");
        assert!(!text.stdout.contains("client_secret"), "{text:#?}");
    }

    /// Each broken combination on the command line is exit status 2 with one
    /// line naming the flag at fault, and writes nothing; `rotate-secret` of a key
    /// client is refused (exit 1), and `client update` keeps the rules.
    async fn cli_refuses_what_cannot_authenticate(backend) {
        let db = TestDb::new(backend).await;
        // The database first, so that the only line on stderr is the refusal.
        db.cli_json(&["migrate"]).await;
        let key = TestKey::generate("EdDSA", None);
        let file = write_file(&db, "jwks.json", jwks(&[&key]).to_string().as_bytes());
        let private = write_file(&db, "private.json", jwks_with_private_key().to_string().as_bytes());
        let not_json = write_file(&db, "not.json", b"{\"keys\": [");
        let huge = write_file(&db, "huge.json", &vec![b' '; 64 * 1024 + 1]);
        let latin1 = write_file(&db, "latin1.json", b"{\"keys\": [\xe9]}");
        let missing = db.dir().join("missing.json").to_str().unwrap().to_string();
        let (file, private, not_json, huge, latin1, missing) =
            (file.as_str(), private.as_str(), not_json.as_str(), huge.as_str(), latin1.as_str(), missing.as_str());

        let cases: Vec<(&str, Vec<&str>, &str, Vec<&str>)> = vec![
            ("keys without a method", vec!["--jwks-file", file], "--jwks-file", vec!["private_key_jwt"]),
            ("a URL without a method", vec!["--jwks-uri", "https://a.example/jwks"], "--jwks-uri", vec!["private_key_jwt"]),
            ("keys with a secret method", vec!["--auth-method", "client_secret_post", "--jwks-file", file], "--jwks-file", vec!["client_secret_post"]),
            ("private_key_jwt without keys", vec!["--auth-method", "private_key_jwt"], "--jwks-file", vec!["private_key_jwt"]),
            ("self-signed without keys", vec!["--auth-method", "self_signed_tls_client_auth"], "--jwks-file", vec![]),
            ("self-signed keys without x5c", vec!["--auth-method", "self_signed_tls_client_auth", "--jwks-file", file], "--jwks-file", vec!["x5c"]),
            ("tls_client_auth without a DN", vec!["--auth-method", "tls_client_auth"], "--tls-subject-dn", vec![]),
            ("tls_client_auth with keys", vec!["--auth-method", "tls_client_auth", "--tls-subject-dn", "CN=a", "--jwks-file", file], "--jwks-file", vec![]),
            ("a DN with another method", vec!["--tls-subject-dn", "CN=a"], "--tls-subject-dn", vec!["tls_client_auth"]),
            ("a garbage DN", vec!["--auth-method", "tls_client_auth", "--tls-subject-dn", "no equals sign"], "--tls-subject-dn", vec!["RFC 4514"]),
            ("a private key", vec!["--auth-method", "private_key_jwt", "--jwks-file", private], "--jwks-file", vec!["private"]),
            ("not JSON", vec!["--auth-method", "private_key_jwt", "--jwks-file", not_json], "--jwks-file", vec!["JSON"]),
            ("over 64 KiB", vec!["--auth-method", "private_key_jwt", "--jwks-file", huge], "--jwks-file", vec!["65536"]),
            ("not UTF-8", vec!["--auth-method", "private_key_jwt", "--jwks-file", latin1], "--jwks-file", vec!["UTF-8"]),
            ("an unreadable file", vec!["--auth-method", "private_key_jwt", "--jwks-file", missing], "--jwks-file", vec!["missing.json"]),
            ("an http URL", vec!["--auth-method", "private_key_jwt", "--jwks-uri", "http://a.example/jwks"], "--jwks-uri", vec!["allow_insecure_jwks_uri"]),
            ("a private address", vec!["--auth-method", "private_key_jwt", "--jwks-uri", "https://10.1.2.3/jwks"], "--jwks-uri", vec![]),
        ];
        for (what, args, flag, words) in &cases {
            let mut all = vec!["client", "create", "--name", "x"];
            all.extend(args.iter().copied());
            assert_usage(&db.cli(&all).await, flag, words, what);
        }
        // Refused by the parser: its message is several lines.
        for (what, args, flag) in [
            ("both kinds of keys", vec!["--auth-method", "private_key_jwt", "--jwks-file", file, "--jwks-uri", "https://a.example/jwks"], "--jwks-uri"),
            ("an unknown method", vec!["--auth-method", "none"], "private_key_jwt"),
        ] {
            let mut all = vec!["client", "create", "--name", "x"];
            all.extend(args);
            let out = db.cli(&all).await;
            assert_eq!(out.code(), Some(2), "{what}: {out:#?}");
            assert!(out.stderr.contains(flag), "{what}: {out:#?}");
        }
        // An imported secret for a client without one.
        let out = db
            .cli_with_stdin(
                &["client", "create", "--name", "x", "--auth-method", "private_key_jwt", "--jwks-file", file, "--secret-stdin"],
                Some("a-long-enough-secret-value\n"),
            )
            .await;
        assert_usage(&out, "--secret-stdin", &["private_key_jwt", "no secret"], "an imported secret");
        assert_eq!(client_count(&db).await, 0, "a refused create wrote a client");

        // rotate-secret: the client has no secret to replace.
        let jwt = create_keyed(&db, "jwt", &["--auth-method", "private_key_jwt", "--jwks-file", file]).await;
        let id = json_str(&jwt, "client_id");
        let out = db.cli(&["client", "rotate-secret", &id]).await;
        if let Some(problem) = out.one_line_error_problem(1, &["no secret"]) {
            panic!("rotate-secret: {problem}: {out:#?}");
        }
        assert!(out.stderr.contains("private_key_jwt"), "{out:#?}");

        // client update keeps the rules, and changes nothing when it refuses.
        let out = db.cli(&["client", "update", &id, "--auth-method", "tls_client_auth"]).await;
        assert_usage(&out, "--tls-subject-dn", &[], "update to tls_client_auth without a DN");
        let out = db.cli(&["client", "update", &id, "--jwks-file", private]).await;
        assert_usage(&out, "--jwks-file", &["private"], "update with a private key");
        assert_eq!(shown(&db, &id).await, jwt, "a refused update changed the client");
    }

    /// `client update` moves a client between methods in one command: a new
    /// method drops the keys or DN it does not use, new keys replace the old of
    /// either kind, and the audit names what changed.
    async fn cli_update_moves_between_methods(backend) {
        let db = TestDb::new(backend).await;
        let first = TestKey::generate("ES256", Some("one"));
        let second = TestKey::generate("RS256", Some("two"));
        let one = write_file(&db, "one.json", jwks(&[&first]).to_string().as_bytes());
        let two = write_file(&db, "two.json", jwks(&[&second]).to_string().as_bytes());
        let created = create_keyed(&db, "c", &["--auth-method", "private_key_jwt", "--jwks-file", &one]).await;
        let id = json_str(&created, "client_id");

        let updated = db.cli_json(&["client", "update", &id, "--jwks-file", &two]).await;
        assert_eq!(updated["jwks"], jwks(&[&second]), "{updated}");
        let updated = db.cli_json(&["client", "update", &id, "--jwks-uri", "https://client.example/keys"]).await;
        assert_eq!((&updated["jwks"], &updated["jwks_uri"]), (&Value::Null, &json!("https://client.example/keys")), "{updated}");
        let updated = db
            .cli_json(&["client", "update", &id, "--auth-method", "tls_client_auth", "--tls-subject-dn", TYPED_DN, "--bound-tokens", "true"])
            .await;
        assert_eq!(
            auth_of(&updated),
            json!({"auth_method": "tls_client_auth", "jwks": null, "jwks_uri": null, "tls_subject_dn": CANONICAL_DN, "bound_tokens": true}),
            "{updated}"
        );
        // Back to a secret method: no usable secret until one is rotated in.
        let updated = db
            .cli_json(&["client", "update", &id, "--auth-method", "client_secret_basic", "--bound-tokens", "false"])
            .await;
        assert_eq!(updated["tls_subject_dn"], Value::Null, "{updated}");
        let rotated = db.cli_json(&["client", "rotate-secret", &id]).await;
        let server = db.start(&[]).await;
        let client = TestClient { id: id.clone(), secret: json_str(&rotated, "client_secret"), created: updated };
        let reply = server.client_credentials(&client, &[]).await;
        reply.assert_status(StatusCode::OK);
    }

    /// The admin API: a `private_key_jwt` client made with a JWK Set object is
    /// answered without a secret, shown with its members, authenticates with its
    /// key and with nothing else; `/secret` is a 409; PATCH changes method and
    /// keys consistently; the audit names the members changed.
    async fn api_creates_and_changes_key_clients(backend) {
        let db = TestDb::new(backend).await;
        let ops = ops_client(&db, &[]).await;
        let server = db.start(&[]).await;
        let admin = Admin::of(&server, &ops).await;
        let issuer = server.issuer().await;
        let key = TestKey::generate("ES256", Some("k1"));
        let set = jwks(&[&key]);

        let created = admin
            .create_client(&json!({"name": "jwt", "client_id": "jwt", "auth_method": "private_key_jwt", "jwks": set}))
            .await;
        assert!(created.get("client_secret").is_none(), "a key client was shown a secret: {created}");
        assert_eq!(
            auth_of(&created),
            json!({"auth_method": "private_key_jwt", "jwks": set, "jwks_uri": null, "tls_subject_dn": null, "bound_tokens": false})
        );
        assert_eq!(admin.get_ok("/admin/v1/clients/jwt").await, created);
        assert_eq!(shown(&db, "jwt").await, created, "the CLI shows what the API does");

        // Its key gets a token; a Basic header gets nothing, whatever the secret.
        let token_url = endpoint_url(&issuer, "/oauth/token");
        let reply = token_with(&server, "/oauth/token", &key.sign(&claims("jwt", &token_url))).await;
        assert_token_for(&reply, "jwt", "the registered key");
        for secret in ["", "secret", "a-long-enough-secret-value"] {
            let reply = server.token_form(&ClientAuth::basic("jwt", secret), &[("grant_type", "client_credentials")]).await;
            reply.assert_status(StatusCode::UNAUTHORIZED);
            assert_eq!(reply.json()["error"], "invalid_client", "{reply:?}");
        }

        // No secret to rotate or import.
        let reply = admin.post_empty("/admin/v1/clients/jwt/secret").await;
        let problem = assert_problem(&reply, StatusCode::CONFLICT, None);
        assert!(problem["detail"].as_str().unwrap().contains("private_key_jwt: it has no secret"), "{problem}");
        let reply = admin.patch("/admin/v1/clients/jwt", &json!({"client_secret": "a-long-enough-secret-value"})).await;
        assert_problem(&reply, StatusCode::BAD_REQUEST, Some("client_secret"));

        // New keys replace the old at once.
        let next = TestKey::generate("EdDSA", Some("k2"));
        let changed = admin.patch("/admin/v1/clients/jwt", &json!({"jwks": jwks(&[&next])})).await;
        assert_eq!(changed.status, StatusCode::OK, "{changed:?}");
        assert_eq!(changed.json()["jwks"], jwks(&[&next]));
        eventually(PROPAGATION_DEADLINE, "the new key works", || async {
            let reply = token_with(&server, "/oauth/token", &next.sign(&claims("jwt", &token_url))).await;
            (reply.status == StatusCode::OK).then_some(()).ok_or(format!("{reply:?}"))
        })
        .await;

        // To tls_client_auth: the DN, and the keys dropped, in one change.
        let reply = admin.patch("/admin/v1/clients/jwt", &json!({"auth_method": "tls_client_auth", "tls_subject_dn": TYPED_DN})).await;
        assert_problem(&reply, StatusCode::BAD_REQUEST, Some("jwks"));
        let reply = admin
            .patch("/admin/v1/clients/jwt", &json!({"auth_method": "tls_client_auth", "tls_subject_dn": TYPED_DN, "jwks": null, "bound_tokens": true}))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
        assert_eq!(
            auth_of(&reply.json()),
            json!({"auth_method": "tls_client_auth", "jwks": null, "jwks_uri": null, "tls_subject_dn": CANONICAL_DN, "bound_tokens": true})
        );

        // A secret client moved to keys loses its secret at once.
        let secret_client = admin.create_client(&json!({"name": "s", "client_id": "s"})).await;
        let client = TestClient { id: "s".into(), secret: json_str(&secret_client, "client_secret"), created: secret_client };
        server.access_token(&client).await;
        let reply = admin
            .patch("/admin/v1/clients/s", &json!({"auth_method": "private_key_jwt", "jwks_uri": "https://client.example/jwks.json"}))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
        eventually(PROPAGATION_DEADLINE, "the old secret stops", || async {
            let reply = server.client_credentials(&client, &[]).await;
            (reply.status == StatusCode::UNAUTHORIZED).then_some(()).ok_or(format!("{reply:?}"))
        })
        .await;
        // And back, with a secret imported in the same change.
        let reply = admin
            .patch(
                "/admin/v1/clients/s",
                &json!({"auth_method": "client_secret_post", "jwks_uri": null, "client_secret": "a-long-enough-secret-value"}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
        let client = TestClient { secret: "a-long-enough-secret-value".into(), ..client };
        eventually(PROPAGATION_DEADLINE, "the imported secret works", || async {
            let reply = server.client_credentials(&client, &[]).await;
            (reply.status == StatusCode::OK).then_some(()).ok_or(format!("{reply:?}"))
        })
        .await;

        let log = server.logs();
        assert!(log.contains("fields=\"auth_method,jwks,tls_subject_dn,bound_tokens\"") || log.contains("fields=auth_method,jwks,tls_subject_dn,bound_tokens"),
            "the audit names the members changed:\n{log}");
    }

    /// The admin API refuses each client that could not authenticate, as a 400
    /// naming the member, and writes nothing: a private JWK, an http or private
    /// jwks_uri, a garbage DN, keys with a secret method, a method without what it
    /// needs, both kinds of keys, a secret for a key client.
    async fn api_refusals_name_the_member(backend) {
        let db = TestDb::new(backend).await;
        let ops = ops_client(&db, &[]).await;
        let server = db.start(&[]).await;
        let admin = Admin::of(&server, &ops).await;
        let set = jwks(&[&TestKey::generate("PS256", None)]);
        let uri = "https://client.example/jwks.json";
        let cases = [
            (json!({"auth_method": "private_key_jwt", "jwks": jwks_with_private_key()}), "jwks"),
            (json!({"auth_method": "private_key_jwt", "jwks": "{\"keys\": []}"}), "jwks"),
            (json!({"auth_method": "private_key_jwt", "jwks": {"keys": "none"}}), "jwks"),
            (json!({"auth_method": "private_key_jwt", "jwks_uri": "http://client.example/jwks"}), "jwks_uri"),
            (json!({"auth_method": "private_key_jwt", "jwks_uri": "https://192.168.1.1/jwks"}), "jwks_uri"),
            (json!({"auth_method": "private_key_jwt", "jwks_uri": "jwks.json"}), "jwks_uri"),
            (json!({"auth_method": "tls_client_auth", "tls_subject_dn": "CN=a,,=b"}), "tls_subject_dn"),
            (json!({"auth_method": "tls_client_auth", "tls_subject_dn": ""}), "tls_subject_dn"),
            (json!({"jwks": set}), "jwks"),
            (json!({"auth_method": "client_secret_basic", "jwks_uri": uri}), "jwks_uri"),
            (json!({"auth_method": "private_key_jwt"}), "jwks"),
            (json!({"auth_method": "self_signed_tls_client_auth"}), "jwks"),
            (json!({"auth_method": "self_signed_tls_client_auth", "jwks": set}), "jwks"),
            (json!({"auth_method": "tls_client_auth"}), "tls_subject_dn"),
            (json!({"auth_method": "tls_client_auth", "tls_subject_dn": "CN=a", "jwks": set}), "jwks"),
            (json!({"auth_method": "private_key_jwt", "jwks": set, "jwks_uri": uri}), "jwks_uri"),
            (json!({"auth_method": "private_key_jwt", "jwks_uri": uri, "tls_subject_dn": "CN=a"}), "tls_subject_dn"),
            (json!({"auth_method": "private_key_jwt", "jwks": set, "client_secret": "a-long-enough-secret-value"}), "client_secret"),
            (json!({"auth_method": "none"}), "auth_method"),
            (json!({"auth_method": 5}), "auth_method"),
            (json!({"bound_tokens": "yes"}), "bound_tokens"),
        ];
        let before = client_count(&db).await;
        for (members, field) in &cases {
            let mut body = members.clone();
            body["name"] = json!("x");
            let reply = admin.post("/admin/v1/clients", &body).await;
            let problem = assert_problem(&reply, StatusCode::BAD_REQUEST, Some(field));
            let detail = problem["detail"].as_str().unwrap();
            assert!(detail.starts_with(&format!("{field}:")), "{body}: {problem}");
        }
        assert_eq!(client_count(&db).await, before, "a refused POST wrote a client");

        // The same rules for a PATCH, on the client as it would be after it.
        admin.create_client(&json!({"name": "jwt", "client_id": "jwt", "auth_method": "private_key_jwt", "jwks_uri": uri})).await;
        let shown_before = admin.get_ok("/admin/v1/clients/jwt").await;
        for (members, field) in [
            (json!({"jwks": set}), "jwks_uri"),
            (json!({"jwks_uri": null}), "jwks"),
            (json!({"auth_method": "client_secret_basic"}), "jwks_uri"),
            (json!({"tls_subject_dn": "CN=a"}), "tls_subject_dn"),
            (json!({"jwks_uri": "http://client.example/jwks"}), "jwks_uri"),
            (json!({"auth_method": null}), "auth_method"),
            (json!({"bound_tokens": null}), "bound_tokens"),
        ] {
            let reply = admin.patch("/admin/v1/clients/jwt", &members).await;
            assert_problem(&reply, StatusCode::BAD_REQUEST, Some(field));
        }
        assert_eq!(admin.get_ok("/admin/v1/clients/jwt").await, shown_before, "a refused PATCH changed the client");
    }

    /// Registration (RFC 7591 §2, RFC 8705 §2.1.2): a `private_key_jwt` client
    /// with `jwks` is a 201 without a secret, with its metadata in the answer and
    /// on a read, and gets a token with its key; refusals are
    /// `invalid_client_metadata` naming the member.
    async fn registration_of_key_clients(backend) {
        let db = TestDb::new(backend).await;
        let server = db.start(&["--registration", "open"]).await;
        let issuer = server.issuer().await;
        let key = TestKey::generate("ES256", Some("k1"));
        let register = |metadata: Value| {
            let request = server.http().post(server.url("/oauth/register")).json(&metadata);
            async move { Reply::from(request.send().await).await }
        };

        let reply = register(json!({
            "client_name": "robot",
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": jwks(&[&key]),
            "tls_client_certificate_bound_access_tokens": false,
        }))
        .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
        let body = reply.json();
        assert!(body.get("client_secret").is_none(), "a key client was given a secret: {body}");
        assert_eq!(body["token_endpoint_auth_method"], "private_key_jwt", "{body}");
        assert_eq!(body["jwks"], jwks(&[&key]), "{body}");
        let id = json_str(&body, "client_id");
        let token_url = endpoint_url(&issuer, "/oauth/token");
        let reply = token_with(&server, "/oauth/token", &key.sign(&claims(&id, &token_url))).await;
        assert_token_for(&reply, &id, "a registered key client");
        // The registration reads back the same way.
        let read = server
            .http()
            .get(json_str(&body, "registration_client_uri"))
            .bearer_auth(json_str(&body, "registration_access_token"))
            .send()
            .await;
        let read = Reply::from(read).await;
        assert_eq!(read.status, StatusCode::OK, "{read:?}");
        assert_eq!(read.json()["token_endpoint_auth_method"], "private_key_jwt", "{read:?}");
        assert_eq!(read.json()["jwks"], jwks(&[&key]), "{read:?}");
        // The admin view calls it what it is.
        let view = shown(&db, &id).await;
        assert_eq!((&view["auth_method"], &view["registered"]), (&json!("private_key_jwt"), &json!(true)), "{view}");

        let mtls = register(json!({
            "token_endpoint_auth_method": "tls_client_auth",
            "tls_client_auth_subject_dn": TYPED_DN,
            "tls_client_certificate_bound_access_tokens": true,
        }))
        .await;
        assert_eq!(mtls.status, StatusCode::CREATED, "{mtls:?}");
        let body = mtls.json();
        assert!(body.get("client_secret").is_none(), "{body}");
        assert_eq!(body["tls_client_auth_subject_dn"], CANONICAL_DN, "{body}");
        assert_eq!(body["tls_client_certificate_bound_access_tokens"], true, "{body}");

        let before = client_count(&db).await;
        for (metadata, member) in [
            (json!({"token_endpoint_auth_method": "private_key_jwt"}), "jwks"),
            (json!({"token_endpoint_auth_method": "private_key_jwt", "jwks": jwks_with_private_key()}), "jwks"),
            (json!({"token_endpoint_auth_method": "private_key_jwt", "jwks_uri": "http://127.0.0.1:9/jwks"}), "jwks_uri"),
            (json!({"jwks": jwks(&[&key])}), "jwks"),
            (json!({"token_endpoint_auth_method": "tls_client_auth"}), "tls_client_auth_subject_dn"),
            (json!({"token_endpoint_auth_method": "tls_client_auth", "tls_client_auth_subject_dn": "garbage"}), "tls_client_auth_subject_dn"),
            (json!({"token_endpoint_auth_method": "tls_client_auth", "tls_client_auth_subject_dn": "CN=a", "tls_client_auth_san_dns": "a.example"}), "tls_client_auth_san_dns"),
            (json!({"token_endpoint_auth_method": "self_signed_tls_client_auth", "jwks": jwks(&[&key])}), "jwks"),
            (json!({"token_endpoint_auth_method": "none"}), "token_endpoint_auth_method"),
        ] {
            let reply = register(metadata.clone()).await;
            let problems = reply.error_problems(StatusCode::BAD_REQUEST, "invalid_client_metadata", false);
            assert!(problems.is_empty(), "{metadata}: {}: {reply:?}", problems.join("; "));
            let description = reply.json()["error_description"].as_str().unwrap_or_default().to_string();
            assert!(description.starts_with(&format!("{member}:")), "{metadata}: {description}");
        }
        assert_eq!(client_count(&db).await, before, "a refused registration wrote a client");
    }
}
