//! Every way a token request can be wrong gets the RFC 6749 section 5.2 error
//! `docs/protocol.md` lists, as JSON, with the no-store headers; and the server
//! never answers with a framework's plain-text rejection.

use reqwest::StatusCode;

use crate::helpers::*;

/// One request that must fail, and how.
struct Case {
    what: &'static str,
    content_type: Option<&'static str>,
    authorization: Option<String>,
    body: String,
    status: StatusCode,
    error: &'static str,
    basic_challenge: bool,
}

impl Case {
    fn new(what: &'static str, status: StatusCode, error: &'static str) -> Case {
        Case {
            what,
            content_type: Some(FORM),
            authorization: None,
            body: String::new(),
            status,
            error,
            basic_challenge: false,
        }
    }

    fn form(mut self, body: impl Into<String>) -> Case {
        self.content_type = Some(FORM);
        self.body = body.into();
        self
    }

    fn json(mut self, body: impl Into<String>) -> Case {
        self.content_type = Some(JSON);
        self.body = body.into();
        self
    }

    fn content_type(mut self, content_type: Option<&'static str>) -> Case {
        self.content_type = content_type;
        self
    }

    fn basic(mut self, id: &str, secret: &str) -> Case {
        self.authorization = Some(basic_authorization(id, secret));
        self
    }

    fn expect_basic_challenge(mut self) -> Case {
        self.basic_challenge = true;
        self
    }
}

/// Sends every case and fails once, listing every case that went wrong.
async fn check(server: &TestServer<'_>, cases: Vec<Case>) {
    let mut failures = Vec::new();
    for case in cases {
        let reply = server
            .post_raw(
                "/oauth/token",
                case.content_type,
                case.authorization.as_deref(),
                case.body.clone(),
            )
            .await;
        let mut problems = reply.error_problems(case.status, case.error, true);
        if case.basic_challenge && !reply.has_basic_challenge() {
            problems.push(format!("WWW-Authenticate {:?}", reply.header("www-authenticate")));
        }
        if !problems.is_empty() {
            failures.push(format!(
                "{}: {}\n    sent {:?} {:?}\n    got {} {:?} {}",
                case.what,
                problems.join("; "),
                case.content_type,
                case.body,
                reply.status,
                reply.headers,
                reply.body
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

const CC: &str = "grant_type=client_credentials";
const BAD: StatusCode = StatusCode::BAD_REQUEST;
const UNAUTHORIZED: StatusCode = StatusCode::UNAUTHORIZED;

backend_tests! {
    /// Malformed, ambiguous or incomplete requests: 400 invalid_request.
    async fn malformed_requests_are_invalid_request(backend) {
        let db = TestDb::new(backend).await;
        let c = db.create_client("svc", &["--scope", "read write"]).await;
        let server = db.start(&[]).await;
        let (id, secret) = (c.id.as_str(), c.secret.as_str());
        let post_creds = form_body(&[("client_id", id), ("client_secret", secret)]);
        let json_creds = format!(r#""client_id":"{id}","client_secret":"{secret}""#);
        let ir = "invalid_request";

        check(
            &server,
            vec![
                Case::new("Basic and body credentials at once (RFC 6749 2.3)", BAD, ir)
                    .form(format!("{CC}&{post_creds}"))
                    .basic(id, secret),
                Case::new("grant_type twice", BAD, ir)
                    .form(format!("{CC}&{CC}"))
                    .basic(id, secret),
                Case::new("scope twice", BAD, ir)
                    .form(format!("{CC}&scope=read&scope=write"))
                    .basic(id, secret),
                Case::new("client_id twice in the body", BAD, ir)
                    .form(format!("{CC}&{post_creds}&client_id={id}")),
                Case::new("JSON with a duplicate key", BAD, ir)
                    .json(r#"{"grant_type":"client_credentials","grant_type":"client_credentials"}"#)
                    .basic(id, secret),
                Case::new("JSON with a duplicate credential key", BAD, ir).json(format!(
                    r#"{{"grant_type":"client_credentials",{json_creds},"client_id":"{id}"}}"#
                )),
                Case::new("JSON with a number value", BAD, ir)
                    .json(r#"{"grant_type":"client_credentials","scope":1}"#)
                    .basic(id, secret),
                Case::new("JSON with an array value", BAD, ir)
                    .json(r#"{"grant_type":["client_credentials"]}"#)
                    .basic(id, secret),
                Case::new("JSON with a null value", BAD, ir)
                    .json(r#"{"grant_type":"client_credentials","scope":null}"#)
                    .basic(id, secret),
                Case::new("JSON with an object value", BAD, ir)
                    .json(r#"{"grant_type":{"name":"client_credentials"}}"#)
                    .basic(id, secret),
                Case::new("JSON that is an array", BAD, ir)
                    .json(r#"[["grant_type","client_credentials"]]"#)
                    .basic(id, secret),
                Case::new("JSON that is a string", BAD, ir)
                    .json(r#""grant_type=client_credentials""#)
                    .basic(id, secret),
                Case::new("malformed JSON", BAD, ir)
                    .json(r#"{"grant_type": "client_credentials""#)
                    .basic(id, secret),
                Case::new("empty JSON body", BAD, ir).json("").basic(id, secret),
                Case::new("JSON sent as a form: no grant_type", BAD, ir)
                    .form(r#"{"grant_type":"client_credentials"}"#)
                    .basic(id, secret),
                Case::new("text/plain content type", BAD, ir)
                    .form(CC)
                    .content_type(Some("text/plain"))
                    .basic(id, secret),
                Case::new("multipart content type", BAD, ir)
                    .form(CC)
                    .content_type(Some("multipart/form-data; boundary=x"))
                    .basic(id, secret),
                Case::new("no content type", BAD, ir)
                    .form(CC)
                    .content_type(None)
                    .basic(id, secret),
                Case::new("missing grant_type (form)", BAD, ir)
                    .form("scope=read")
                    .basic(id, secret),
                Case::new("missing grant_type (JSON)", BAD, ir)
                    .json(r#"{"scope":"read"}"#)
                    .basic(id, secret),
                Case::new("empty form body", BAD, ir).form("").basic(id, secret),
            ],
        )
        .await;
    }

    /// A known client asking for what it may not have.
    async fn grant_and_scope_errors(backend) {
        let db = TestDb::new(backend).await;
        let c = db.create_client("svc", &["--scope", "read write"]).await;
        let server = db.start(&[]).await;
        let (id, secret) = (c.id.as_str(), c.secret.as_str());

        check(
            &server,
            vec![
                Case::new("unknown grant_type", BAD, "unsupported_grant_type")
                    .form("grant_type=urn%3Aexample%3Aunknown")
                    .basic(id, secret),
                Case::new("unknown grant_type (JSON)", BAD, "unsupported_grant_type")
                    .json(r#"{"grant_type":"magic"}"#)
                    .basic(id, secret),
                Case::new(
                    "password grant, client_credentials-only client",
                    BAD,
                    "unauthorized_client",
                )
                .form("grant_type=password&username=alice&password=correct-horse-battery")
                .basic(id, secret),
                Case::new("scope outside the client's set", BAD, "invalid_scope")
                    .form(format!("{CC}&scope=admin"))
                    .basic(id, secret),
                Case::new("scope partly outside the client's set", BAD, "invalid_scope")
                    .form(format!("{CC}&scope=read+admin"))
                    .basic(id, secret),
                Case::new(
                    "scope outside the set (JSON, client_secret_post)",
                    BAD,
                    "invalid_scope",
                )
                .json(
                    serde_json::json!({
                        "grant_type": "client_credentials",
                        "scope": "admin",
                        "client_id": id,
                        "client_secret": secret,
                    })
                    .to_string(),
                ),
            ],
        )
        .await;

        // The same scope request within the set still works: the errors above
        // are about the request, not a broken client.
        server
            .client_credentials(&c, &[("scope", "write")])
            .await
            .access_token();
    }

    /// RFC 6749 section 5.2: failed client authentication is 401
    /// invalid_client, with a Basic challenge when Basic was used.
    async fn client_authentication_failures(backend) {
        let db = TestDb::new(backend).await;
        let c = db.create_client("svc", &["--scope", "read"]).await;
        let server = db.start(&[]).await;
        let (id, secret) = (c.id.as_str(), c.secret.as_str());
        let ic = "invalid_client";
        let wrong = format!("{secret}x");

        check(
            &server,
            vec![
                Case::new("unknown client, Basic", UNAUTHORIZED, ic)
                    .form(CC)
                    .basic("no-such-client", secret)
                    .expect_basic_challenge(),
                Case::new("wrong secret, Basic", UNAUTHORIZED, ic)
                    .form(CC)
                    .basic(id, &wrong)
                    .expect_basic_challenge(),
                Case::new("empty secret, Basic", UNAUTHORIZED, ic)
                    .form(CC)
                    .basic(id, "")
                    .expect_basic_challenge(),
                Case::new("wrong secret, Basic, JSON body", UNAUTHORIZED, ic)
                    .json(r#"{"grant_type":"client_credentials"}"#)
                    .basic(id, &wrong)
                    .expect_basic_challenge(),
                Case::new("unknown client, body", UNAUTHORIZED, ic).form(format!(
                    "{CC}&{}",
                    form_body(&[("client_id", "no-such-client"), ("client_secret", secret)])
                )),
                Case::new("wrong secret, body", UNAUTHORIZED, ic).form(format!(
                    "{CC}&{}",
                    form_body(&[("client_id", id), ("client_secret", wrong.as_str())])
                )),
                Case::new("client_id without a secret", UNAUTHORIZED, ic)
                    .form(format!("{CC}&{}", form_body(&[("client_id", id)]))),
                Case::new("no client authentication", UNAUTHORIZED, ic).form(CC),
                Case::new("no client authentication (JSON)", UNAUTHORIZED, ic)
                    .json(r#"{"grant_type":"client_credentials"}"#),
            ],
        )
        .await;

        // The right secret still works after all those failures.
        server.client_credentials(&c, &[]).await.access_token();
    }

    /// Wrong method and unknown path: JSON error bodies, not plain text.
    async fn wrong_method_and_unknown_path_answer_json(backend) {
        let db = TestDb::new(backend).await;
        let server = db.start(&[]).await;

        for (reply, status) in [
            (server.get("/oauth/token").await, StatusCode::METHOD_NOT_ALLOWED),
            (server.get("/no/such/path").await, StatusCode::NOT_FOUND),
            (
                server.post_raw("/no/such/path", Some(FORM), None, CC).await,
                StatusCode::NOT_FOUND,
            ),
        ] {
            reply.assert_status(status).assert_json_content_type();
            let body = reply.json();
            assert!(body["error"].is_string(), "no error code: {reply:?}");
            assert!(
                body["error_description"].is_string(),
                "no error_description: {reply:?}"
            );
        }
    }
}
