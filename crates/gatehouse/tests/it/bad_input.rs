//! Bad input never gets a 500. A battery of malformed bodies,
//! wrong types and content types, repeated, empty and NUL parameters, 10 KB
//! values, injection strings, broken Basic headers, unknown methods and paths,
//! sent to every OAuth endpoint (and a query-string route); every answer is
//! the documented 4xx with the OAuth error JSON, and the server lives on.

use reqwest::{Method, StatusCode};

use crate::helpers::*;

/// One request of the battery.
struct Case {
    what: String,
    method: Method,
    path: String,
    content_type: Option<&'static str>,
    authorization: Vec<Vec<u8>>,
    body: Vec<u8>,
    /// The status it must get.
    status: StatusCode,
}

impl Case {
    fn post(
        what: impl Into<String>,
        path: &str,
        content_type: Option<&'static str>,
        body: impl Into<Vec<u8>>,
        status: StatusCode,
    ) -> Case {
        Case {
            what: what.into(),
            method: Method::POST,
            path: path.to_string(),
            content_type,
            authorization: Vec::new(),
            body: body.into(),
            status,
        }
    }
}

/// Bodies that are malformed, or well-formed with bad contents, for `path`.
fn body_cases(path: &str, id: &str, secret: &str) -> Vec<Case> {
    const BAD: StatusCode = StatusCode::BAD_REQUEST;
    const UNAUTHORIZED: StatusCode = StatusCode::UNAUTHORIZED;
    let creds = format!("client_id={id}&client_secret={secret}");
    let long = "x".repeat(10 * 1024);
    let form = |what: &str, body: Vec<u8>, status| Case::post(what, path, Some(FORM), body, status);
    let json =
        |what: &str, body: &str, status| Case::post(what, path, Some(JSON), body.as_bytes().to_vec(), status);
    let mut cases = vec![
        form("bad percent-encoding", b"grant_type=%zz&token=%".to_vec(), BAD),
        form("percent-encoded non-UTF-8", format!("grant_type=%ff%fe&{creds}").into_bytes(), BAD),
        form("raw non-UTF-8", [b"grant_type=".as_slice(), &[0xff, 0xfe, 0xfd], b"&token=x"].concat(), BAD),
        form("repeated parameter", format!("grant_type=client_credentials&grant_type=password&token=a&token=b&{creds}").into_bytes(), BAD),
        form("repeated credentials", format!("{creds}&{creds}&token=x&grant_type=client_credentials").into_bytes(), BAD),
        form("NUL in a value", format!("grant_type=client%00credentials&token=a%00b&{creds}").into_bytes(), BAD),
        form("NUL in a name", format!("grant%00type=client_credentials&to%00ken=x&{creds}").into_bytes(), BAD),
        form("only separators", b"&&&=&==&".to_vec(), BAD),
        form("empty body", Vec::new(), BAD),
        form("10 KB client id", format!("grant_type=client_credentials&token=x&client_id={long}&client_secret=s").into_bytes(), UNAUTHORIZED),
        form("10 KB secret", format!("grant_type=client_credentials&token=x&client_id={id}&client_secret={long}").into_bytes(), UNAUTHORIZED),
        form("10 KB name", format!("{long}=1&{creds}").into_bytes(), BAD),
        form("SQL in the client id", b"grant_type=client_credentials&token=x&client_id=%27%20OR%20%271%27%3D%271&client_secret=%27%3B%20DROP%20TABLE%20clients%3B--".to_vec(), UNAUTHORIZED),
        form("header injection in the client id", format!("grant_type=client_credentials&token=x&client_id={id}%0d%0aSet-Cookie:%20a=b&client_secret={secret}").into_bytes(), UNAUTHORIZED),
        json("an array", "[1, 2]", BAD),
        json("a string", "\"grant_type\"", BAD),
        json("a number value", r#"{"grant_type": 1, "token": 2}"#, BAD),
        json("a null value", r#"{"grant_type": null, "token": null}"#, BAD),
        json("a nested object", r#"{"grant_type": {"a": 1}, "token": ["x"]}"#, BAD),
        json("truncated", r#"{"grant_type": "client_cre"#, BAD),
        json("a trailing comma", r#"{"grant_type": "client_credentials",}"#, BAD),
        json("two objects", r#"{"token": "x"} {"token": "y"}"#, BAD),
        json("a repeated member", &format!(r#"{{"token": "x", "token": "y", "grant_type": "client_credentials", "grant_type": "password", "client_id": "{id}", "client_secret": "{secret}"}}"#), BAD),
        Case::post("JSON with non-UTF-8", path, Some(JSON), [b"{\"token\": \"".as_slice(), &[0xff], b"\"}"].concat(), BAD),
        Case::post("text/plain", path, Some("text/plain"), format!("grant_type=client_credentials&token=x&{creds}"), BAD),
        Case::post("multipart", path, Some("multipart/form-data; boundary=x"), "--x\r\nContent-Disposition: form-data; name=\"token\"\r\n\r\nx\r\n--x--\r\n", BAD),
        Case::post("XML", path, Some("application/xml"), "<grant_type>client_credentials</grant_type>", BAD),
        Case::post("no content type", path, None, format!("grant_type=client_credentials&token=x&{creds}"), BAD),
        Case::post("an empty content type", path, Some(""), "token=x", BAD),
        Case::post("a garbage content type", path, Some(";;;==="), "token=x", BAD),
    ];
    if path.ends_with("token") || path.ends_with("login") {
        // Values the token endpoint reads, 10 KB long or with injected lines.
        cases.push(form(
            "10 KB scope",
            format!("grant_type=client_credentials&scope={long}&{creds}").into_bytes(),
            BAD,
        ));
        cases.push(form(
            "header injection in the scope",
            format!("grant_type=client_credentials&scope=read%0d%0aX-Evil:%201&{creds}").into_bytes(),
            BAD,
        ));
        cases.push(form(
            "10 KB username",
            format!("grant_type=password&username={long}&password=x&{creds}").into_bytes(),
            BAD,
        ));
    }
    // Broken Basic headers: 401 invalid_client with the Basic challenge.
    let basic = |what: &str, header: Vec<u8>| Case {
        what: what.to_string(),
        authorization: vec![header],
        ..Case::post(
            what,
            path,
            Some(FORM),
            "grant_type=client_credentials&token=x",
            UNAUTHORIZED,
        )
    };
    use base64::Engine as _;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    cases.extend([
        basic("Basic: bad base64", b"Basic !!!not-base64!!!".to_vec()),
        basic(
            "Basic: no colon",
            format!("Basic {}", b64(b"no-colon-here")).into_bytes(),
        ),
        basic(
            "Basic: non-UTF-8",
            format!("Basic {}", b64(&[0xff, b':', 0xfe])).into_bytes(),
        ),
        basic(
            "Basic: bad form-encoding",
            format!("Basic {}", b64(b"%zz:%ff")).into_bytes(),
        ),
        basic(
            "Basic: empty id and secret",
            format!("Basic {}", b64(b":")).into_bytes(),
        ),
        basic(
            "Basic: 6 KB",
            format!("Basic {}", "QUFB".repeat(1500)).into_bytes(),
        ),
        basic("Basic: no credentials", b"Basic".to_vec()),
        basic(
            "Basic: NUL",
            format!("Basic {}", b64(b"id\0:secret\0")).into_bytes(),
        ),
        basic("another scheme", b"Bearer abc.def.ghi".to_vec()),
        basic(
            "raw non-UTF-8 header",
            vec![b'B', b'a', b's', b'i', b'c', b' ', 0xff, 0xfe],
        ),
    ]);
    cases.push(Case {
        what: "two Authorization headers".into(),
        authorization: vec![
            format!("Basic {}", b64(b"a:b")).into_bytes(),
            format!("Basic {}", b64(b"c:d")).into_bytes(),
        ],
        ..Case::post("", path, Some(FORM), "grant_type=client_credentials&token=x", BAD)
    });
    cases.push(Case {
        what: "Basic and body credentials".into(),
        authorization: vec![format!("Basic {}", b64(format!("{id}:{secret}").as_bytes())).into_bytes()],
        ..Case::post(
            "",
            path,
            Some(FORM),
            format!("grant_type=client_credentials&token=x&{creds}"),
            BAD,
        )
    });
    for method in [
        Method::GET,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
        Method::OPTIONS,
    ] {
        cases.push(Case {
            what: format!("method {method}"),
            method,
            ..Case::post("", path, Some(FORM), "token=x", StatusCode::METHOD_NOT_ALLOWED)
        });
    }
    cases
}

fn path_cases() -> Vec<Case> {
    let long = format!("/{}", "a".repeat(4000));
    [
        "/oauth/tokens",
        "/oauth/token/",
        "/OAUTH/TOKEN",
        "/oauth/../etc/passwd",
        "/%00",
        "/oauth/token%00",
        "/%ff%fe",
        &long,
    ]
    .iter()
    .map(|p| {
        Case::post(
            format!("unknown path {p:.40}"),
            p,
            Some(FORM),
            "grant_type=client_credentials",
            StatusCode::NOT_FOUND,
        )
    })
    .collect()
}

/// What is wrong with the answer to `case`, if anything.
async fn check(server: &TestServer<'_>, case: &Case) -> Option<String> {
    let mut request = server
        .http()
        .request(case.method.clone(), server.url(&case.path))
        .body(case.body.clone());
    if let Some(content_type) = case.content_type {
        request = request.header("content-type", content_type);
    }
    for value in &case.authorization {
        request = request.header(
            "authorization",
            reqwest::header::HeaderValue::from_bytes(value).expect("a header value reqwest sends"),
        );
    }
    let reply = Reply::from(request.send().await).await;
    let mut problems = reply.error_problems(case.status, "", false);
    // Any error code will do as long as it is a string; the status is exact.
    problems.retain(|p| !p.starts_with("error "));
    let body: Option<serde_json::Value> = serde_json::from_str(&reply.body).ok();
    if !body.is_some_and(|b| b.get("error").is_some_and(|e| e.is_string())) {
        problems.push("no string error".into());
    }
    if case.status == StatusCode::UNAUTHORIZED && reply.header("www-authenticate").is_none() {
        problems.push("401 without WWW-Authenticate".into());
    }
    (!problems.is_empty()).then(|| {
        format!(
            "{} {} ({}): {}: {reply:?}",
            case.method,
            case.path,
            case.what,
            problems.join("; ")
        )
    })
}

backend_tests! {
    async fn every_bad_request_gets_a_4xx_with_the_oauth_error_json(backend) {
        let db = TestDb::new(backend).await;
        let client = db.create_client("svc", &[]).await;
        let routes = db.dir().join("routes.toml");
        std::fs::write(&routes, "[[routes]]\npath = \"/api/v3/login\"\nendpoint = \"token\"\nmethods = [\"GET\", \"POST\"]\n")
            .expect("write routes");
        let server = db
            .start(&["--config", routes.to_str().expect("UTF-8"), "--rate-limit-per-client", "0", "--rate-limit-per-address", "0"])
            .await;

        let mut cases = path_cases();
        for path in ["/oauth/token", "/oauth/revoke", "/oauth/introspect"] {
            cases.extend(body_cases(path, &client.id, &client.secret));
        }
        // The query-string route: the same bodies, and the same in its query.
        cases.extend(body_cases("/api/v3/login", &client.id, &client.secret).into_iter().filter(|c| c.method != Method::GET));
        for query in ["grant_type=%zz", "token=%ff", "grant_type=a&grant_type=b", "grant_type=client%00credentials"] {
            cases.push(Case {
                what: format!("query {query}"),
                method: Method::GET,
                ..Case::post("", &format!("/api/v3/login?{query}&client_id={}&client_secret={}", client.id, client.secret), None, "", StatusCode::BAD_REQUEST)
            });
        }
        let mut failures = Vec::new();
        for case in &cases {
            if let Some(problem) = check(&server, case).await {
                failures.push(problem);
            }
        }
        assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases.len(), failures.join("\n"));

        // The server lives on, logged no panic, and the database is intact.
        server.get("/healthz").await.assert_status(StatusCode::OK);
        server.access_token(&client).await;
        assert_eq!(db.connect().await.count("clients").await, 1);
        let log = server.stop_with("TERM").await.logs;
        assert!(!log.contains("panicked"), "{log}");
    }
}
