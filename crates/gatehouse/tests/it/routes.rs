//! `[[routes]]` (`docs/migrating.md`): entries serve a standard endpoint at one
//! more path, checked at start-up, with parameters read from the query string
//! only where `GET` is served; the standard endpoints keep their behaviour.

use std::time::Duration;

use reqwest::StatusCode;

use crate::helpers::*;

const CONFIG_ERROR_DEADLINE: Duration = Duration::from_secs(10);

/// Writes `routes` (TOML) as the test's configuration file; returns its path.
fn config_file(db: &TestDb, routes: &str) -> String {
    let path = db.dir().join("routes.toml");
    std::fs::write(&path, routes).expect("write the config file");
    path.to_str().expect("UTF-8 path").to_string()
}

/// A server with `routes` as its configuration.
async fn start_with<'a>(db: &'a TestDb, routes: &str) -> TestServer<'a> {
    let file = config_file(db, routes);
    db.start(&["--config", &file]).await
}

const ROUTES: &str = r#"
[[routes]]
path = "/login"
endpoint = "token"
methods = ["GET", "POST"]

[[routes]]
path = "/connect/revocation"
endpoint = "revoke"
unknown_client_status = 404

[[routes]]
path = "/check"
endpoint = "introspect"
methods = ["GET"]
unknown_client_status = 403
"#;

/// A bad entry stops start-up: exit 2, one line naming the route and the problem.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_routes_stop_start_up_with_one_line() {
    let db = TestDb::new(Backend::Sqlite).await;
    let cases = [
        (
            "[[routes]]\npath = \"/auth/token\"\nendpoint = \"token\"\ndefault_grant = \"client_credentials\"\n",
            "route 1 (\"/auth/token\"): unknown key \"default_grant\"",
        ),
        (
            "[[routes]]\npath = \"/a\"\nendpoint = \"token\"\n[[routes]]\npath = \"/oauth/revoke\"\nendpoint = \"token\"\n",
            "route 2 (\"/oauth/revoke\"): clashes with the standard endpoint",
        ),
        (
            "[[routes]]\npath = \"/.well-known/openid-configuration\"\nendpoint = \"introspect\"\n",
            "clashes with the standard endpoint",
        ),
        (
            "[[routes]]\npath = \"/login\"\nendpoint = \"token\"\nmethods = [\"DELETE\"]\n",
            "route 1 (\"/login\"): method \"DELETE\" is not served",
        ),
        (
            "[[routes]]\npath = \"/login/{id}\"\nendpoint = \"token\"\n",
            "route 1 (\"/login/{id}\"): path holds '{'",
        ),
        (
            "[[routes]]\npath = \"/x\"\nendpoint = \"revoke\"\nrefresh_on_client_credentials = true\n",
            "applies to endpoint = \"token\" only",
        ),
    ];
    for (routes, expected) in cases {
        let file = config_file(&db, routes);
        let out = db
            .server()
            .args(&["--config", &file])
            .run_to_exit(CONFIG_ERROR_DEADLINE)
            .await
            .unwrap_or_else(|e| panic!("{routes:?}: {e}"));
        if let Some(problem) = out.one_line_error_problem(2, &["routes"]) {
            panic!("{routes:?}: {problem}");
        }
        assert!(
            out.stderr.contains(expected),
            "{routes:?}: {:?} lacks {expected:?}",
            out.stderr
        );
    }
}

backend_tests! {
    /// The standard endpoints answer as they do without routes.
    async fn standard_endpoints_keep_their_behaviour(backend) {
        let db = TestDb::new(backend).await;
        let client = db.create_client("svc", &[]).await;
        let server = start_with(&db, ROUTES).await;
        let credentials = form_body(&[
            ("grant_type", "client_credentials"),
            ("client_id", client.id.as_str()),
            ("client_secret", client.secret.as_str()),
        ]);

        // GET is not served, and credentials in the URL are refused at POST.
        let reply = server.get(&format!("/oauth/token?{credentials}")).await;
        reply.assert_token_error(StatusCode::METHOD_NOT_ALLOWED, "invalid_request");
        let reply = server
            .post_raw(&format!("/oauth/token?{credentials}"), None, None, "")
            .await;
        reply.assert_token_error(StatusCode::BAD_REQUEST, "invalid_request");
        let body = form_body(&[("client_id", client.id.as_str()), ("client_secret", client.secret.as_str())]);
        let reply = server
            .post_raw("/oauth/token?grant_type=client_credentials", Some(FORM), None, body)
            .await;
        reply.assert_token_error(StatusCode::BAD_REQUEST, "invalid_request");
        // A query of other names is the endpoint URI's own (RFC 6749 §3.2): ignored.
        let reply = server
            .post_raw("/oauth/token?tenant=eu", Some(FORM), None, credentials.clone())
            .await;
        reply.access_token();
        // An unknown client is 401 here, whatever the routes say.
        for path in ["/oauth/revoke", "/oauth/introspect"] {
            let stranger = ClientAuth::Post("no-such-client".into(), client.secret.clone());
            let reply = server.post_form(path, Some(&stranger), &[("token", "x")]).await;
            reply.assert_token_error(StatusCode::UNAUTHORIZED, "invalid_client");
        }
        // And the log names the refused parameters, not their values.
        let log = server.stop_with("TERM").await.logs;
        assert!(
            log.contains("parameters=grant_type,client_id,client_secret"),
            "{log}"
        );
        assert_log_holds_none(&log, std::slice::from_ref(&client.secret));
    }

    /// Revocation and introspection at routes, with their own unknown-client
    /// status; introspection by GET with the query string.
    async fn revoke_and_introspect_routes(backend) {
        let db = TestDb::new(backend).await;
        let client = db.create_client("svc", &[]).await;
        let resource_server = db.create_client("api", &["--can-introspect"]).await;
        let server = start_with(&db, ROUTES).await;
        let token = server.access_token(&client).await;

        let check = |token: &str, id: &str, secret: &str| {
            format!(
                "/check?{}",
                form_body(&[("token", token), ("client_id", id), ("client_secret", secret)])
            )
        };
        let reply = server.get(&check(&token, &resource_server.id, &resource_server.secret)).await;
        reply.assert_status(StatusCode::OK).assert_no_store();
        assert_eq!(reply.json()["active"], true, "{reply:?}");
        assert_eq!(reply.json()["client_id"], client.id.as_str());
        let reply = server.get(&check(&token, "no-such-client", &resource_server.secret)).await;
        reply.assert_token_error(StatusCode::FORBIDDEN, "invalid_client");
        let reply = server.get(&check(&token, &resource_server.id, "WRONG")).await;
        reply.assert_token_error(StatusCode::UNAUTHORIZED, "invalid_client");
        // POST is not among its methods.
        let reply = server.introspect(Some(&resource_server.basic()), &token).await;
        assert_eq!(reply.status, StatusCode::OK, "the standard endpoint: {reply:?}");
        let reply = server
            .post_form("/check", Some(&resource_server.post()), &[("token", &token)])
            .await;
        reply.assert_token_error(StatusCode::METHOD_NOT_ALLOWED, "invalid_request");

        // Revocation at its route: unknown client 404, then the holder revokes.
        let stranger = ClientAuth::Post("no-such-client".into(), client.secret.clone());
        let reply = server
            .post_form("/connect/revocation", Some(&stranger), &[("token", &token)])
            .await;
        reply.assert_token_error(StatusCode::NOT_FOUND, "invalid_client");
        assert!(server.is_active(&resource_server, &token).await);
        let reply = server
            .post_form("/connect/revocation", Some(&client.basic()), &[("token", &token)])
            .await;
        reply.assert_status(StatusCode::OK).assert_no_store();
        assert!(!server.is_active(&resource_server, &token).await);
        // POST only: its query string carries no parameters.
        let reply = server
            .post_raw(&format!("/connect/revocation?{}", form_body(&[("token", &token)])), None, None, "")
            .await;
        reply.assert_token_error(StatusCode::BAD_REQUEST, "invalid_request");
    }

    /// On a GET and POST route a POST may split its parameters between query
    /// and body; a name in both is repeated. HEAD is refused: it would spend a
    /// refresh token on an answer without a body.
    async fn query_and_body_on_a_get_route(backend) {
        let db = TestDb::new(backend).await;
        let (client, user) = db.refresh_app().await;
        let server = start_with(&db, ROUTES).await;
        let login = server.login(&client, &user).await;
        let refresh_token = json_str(&login, "refresh_token");

        let query = form_body(&[("grant_type", "refresh_token"), ("refresh_token", refresh_token.as_str())]);
        let reply = server
            .http()
            .head(server.url(&format!("/login?{query}")))
            .header("authorization", client.basic().header().expect("Basic"))
            .send()
            .await
            .expect("HEAD");
        assert_eq!(reply.status(), StatusCode::METHOD_NOT_ALLOWED);
        let mut db_conn = db.connect().await;
        assert_eq!(
            db_conn.scalar("SELECT COUNT(*) FROM refresh_tokens WHERE used_at IS NOT NULL", None).await,
            0,
            "HEAD spent nothing"
        );

        let body = form_body(&[("client_id", client.id.as_str()), ("client_secret", client.secret.as_str())]);
        let reply = server
            .post_raw(&format!("/login?{query}"), Some(FORM), None, body.clone())
            .await;
        let next = reply.refresh_token();
        assert_ne!(next, refresh_token);

        let repeated = format!("{body}&grant_type=refresh_token");
        let query = form_body(&[("grant_type", "refresh_token"), ("refresh_token", next.as_str())]);
        let reply = server
            .post_raw(&format!("/login?{query}"), Some(FORM), None, repeated)
            .await;
        reply.assert_token_error(StatusCode::BAD_REQUEST, "invalid_request");
        // A POST with the whole request in the query and no body at all.
        let all = format!("{query}&{body}");
        let reply = server.post_raw(&format!("/login?{all}"), None, None, "").await;
        reply.refresh_token();
    }
}

/// /openapi.json describes every route beside the standard endpoints: the methods it
/// serves, its parameters in the query where it serves GET, and its differences.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_describes_the_routes() {
    let db = TestDb::new(Backend::Sqlite).await;
    let server = start_with(
        &db,
        &format!("{ROUTES}\n[[routes]]\npath = \"/auth\"\nendpoint = \"token\"\ndefault_grant_type = \"client_credentials\"\n"),
    )
    .await;
    let doc = server.get("/openapi.json").await.json();
    let paths = &doc["paths"];
    for standard in ["/oauth/token", "/oauth/revoke", "/oauth/introspect"] {
        assert!(paths[standard]["post"].is_object(), "{standard} is still there");
    }

    let login = &paths["/login"];
    assert!(
        login["post"]["requestBody"].is_object(),
        "POST /login takes a body: {login}"
    );
    let get = &login["get"];
    assert!(get["requestBody"].is_null(), "GET /login has no body: {get}");
    let params: Vec<(&str, bool)> = get["parameters"]
        .as_array()
        .unwrap_or_else(|| panic!("GET /login has parameters: {get}"))
        .iter()
        .map(|p| {
            assert_eq!(p["in"], "query", "{p}");
            (p["name"].as_str().unwrap_or_default(), p["required"] == true)
        })
        .collect();
    for name in [
        "grant_type",
        "username",
        "password",
        "refresh_token",
        "scope",
        "client_id",
        "client_secret",
    ] {
        assert!(
            params.iter().any(|(n, _)| *n == name),
            "GET /login lists {name}: {params:?}"
        );
    }
    assert!(params.contains(&("grant_type", true)), "{params:?}");
    assert!(
        get["description"]
            .as_str()
            .is_some_and(|d| d.contains("query string")),
        "{get}"
    );

    let revocation = &paths["/connect/revocation"];
    assert!(
        revocation["get"].is_null() && revocation["post"].is_object(),
        "{revocation}"
    );
    assert!(
        revocation["post"]["description"]
            .as_str()
            .is_some_and(|d| d.contains("404")),
        "{revocation}"
    );
    let check = &paths["/check"];
    assert!(check["post"].is_null() && check["get"].is_object(), "{check}");
    assert!(
        check["get"]["parameters"]
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p["name"] == "token")),
        "{check}"
    );

    let auth = &paths["/auth"]["post"];
    assert!(
        auth["description"]
            .as_str()
            .is_some_and(|d| d.contains("client_credentials")),
        "{auth}"
    );
    // Operation ids stay unique (OpenAPI 3 requires it).
    let mut ids: Vec<&str> = paths
        .as_object()
        .expect("paths")
        .values()
        .flat_map(|item| item.as_object().expect("path item").values())
        .filter_map(|op| op["operationId"].as_str())
        .collect();
    let count = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), count, "operation ids are unique: {ids:?}");
}
