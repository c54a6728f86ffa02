//! Building token requests (form or JSON bodies, `client_secret_basic` or
//! `client_secret_post`) and checking replies against `docs/protocol.md`.

use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use serde_json::Value;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;

pub const FORM: &str = "application/x-www-form-urlencoded";
pub const JSON: &str = "application/json";

/// How a token request authenticates its client (RFC 6749 section 2.3.1).
#[derive(Clone, Debug)]
pub enum ClientAuth {
    /// `client_secret_basic`: `Authorization: Basic` of the form-encoded id and secret.
    Basic(String, String),
    /// `client_secret_post`: `client_id` and `client_secret` in the body.
    Post(String, String),
}

impl ClientAuth {
    pub fn basic(id: &str, secret: &str) -> Self {
        ClientAuth::Basic(id.into(), secret.into())
    }

    pub fn header(&self) -> Option<String> {
        match self {
            ClientAuth::Basic(id, secret) => Some(basic_authorization(id, secret)),
            ClientAuth::Post(..) => None,
        }
    }

    pub fn body_params(&self) -> Vec<(String, String)> {
        match self {
            ClientAuth::Post(id, secret) => vec![
                ("client_id".into(), id.clone()),
                ("client_secret".into(), secret.clone()),
            ],
            ClientAuth::Basic(..) => vec![],
        }
    }
}

/// `application/x-www-form-urlencoded` serialisation of one component (the
/// WHATWG serializer, which RFC 6749 appendix B refers to): space becomes `+`,
/// every byte outside `*-._` and alphanumerics becomes `%XX`.
pub fn form_urlencode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => out.push(byte as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// A form body from pairs, in order, duplicates kept.
pub fn form_body<K: AsRef<str>, V: AsRef<str>>(pairs: &[(K, V)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", form_urlencode(k.as_ref()), form_urlencode(v.as_ref())))
        .collect::<Vec<_>>()
        .join("&")
}

/// The `Authorization` value of `client_secret_basic`: RFC 6749 section 2.3.1
/// form-encodes id and secret before joining them with `:`.
pub fn basic_authorization(id: &str, secret: &str) -> String {
    let joined = format!("{}:{}", form_urlencode(id), form_urlencode(secret));
    format!("Basic {}", BASE64.encode(joined))
}

/// One HTTP response, read in full.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    pub async fn from(response: reqwest::Result<reqwest::Response>) -> Reply {
        let response = response.expect("HTTP request");
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.text().await.expect("response body");
        Reply {
            status,
            headers,
            body,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("body is not JSON ({e}): {self:?}"))
    }

    pub fn assert_status(&self, status: StatusCode) -> &Self {
        assert_eq!(self.status, status, "unexpected status: {self:?}");
        self
    }

    pub fn assert_json_content_type(&self) -> &Self {
        let content_type = self.header("content-type").unwrap_or_default();
        assert!(
            content_type.starts_with("application/json"),
            "content type {content_type:?} is not JSON: {self:?}"
        );
        self
    }

    /// `Cache-Control: no-store` and `Pragma: no-cache` (RFC 6749 section 5.1).
    pub fn assert_no_store(&self) -> &Self {
        let cache_control = self.header("cache-control").unwrap_or_default();
        assert!(
            cache_control.split(',').any(|d| d.trim() == "no-store"),
            "Cache-Control {cache_control:?} lacks no-store: {self:?}"
        );
        assert_eq!(self.header("pragma"), Some("no-cache"), "Pragma: {self:?}");
        self
    }

    /// What is wrong with this reply as an OAuth error (`docs/protocol.md`, Answers):
    /// `status`, JSON content type, `{"error": code, "error_description": text}`,
    /// and, for the token endpoint, `Cache-Control: no-store` and `Pragma: no-cache`.
    pub fn error_problems(&self, status: StatusCode, code: &str, no_store: bool) -> Vec<String> {
        let mut problems = Vec::new();
        if self.status != status {
            problems.push(format!("status {} (want {status})", self.status));
        }
        let content_type = self.header("content-type").unwrap_or_default();
        if !content_type.starts_with("application/json") {
            problems.push(format!("content type {content_type:?}"));
        }
        match serde_json::from_str::<Value>(&self.body) {
            Ok(body) => {
                if body["error"] != code {
                    problems.push(format!("error {} (want {code:?})", body["error"]));
                }
                if !body["error_description"].is_string() {
                    problems.push("error_description is not a string".into());
                }
            }
            Err(_) => problems.push("body is not JSON".into()),
        }
        if no_store {
            let cache_control = self.header("cache-control").unwrap_or_default();
            if !cache_control.split(',').any(|d| d.trim() == "no-store") {
                problems.push(format!("Cache-Control {cache_control:?}"));
            }
            if self.header("pragma") != Some("no-cache") {
                problems.push(format!("Pragma {:?}", self.header("pragma")));
            }
        }
        problems
    }

    /// A token endpoint error: [`Reply::assert_error`] and the no-store headers.
    pub fn assert_token_error(&self, status: StatusCode, code: &str) -> &Self {
        let problems = self.error_problems(status, code, true);
        assert!(problems.is_empty(), "{}: {self:?}", problems.join("; "));
        self
    }

    /// Whether `WWW-Authenticate` is the Basic challenge every 401 carries.
    pub fn has_basic_challenge(&self) -> bool {
        self.header("www-authenticate")
            .is_some_and(|c| c.starts_with(r#"Basic realm="gatehouse""#))
    }

    /// 401 `invalid_client` after Basic: with `WWW-Authenticate: Basic realm="gatehouse"`.
    pub fn assert_basic_challenge(&self) -> &Self {
        self.assert_token_error(StatusCode::UNAUTHORIZED, "invalid_client");
        assert!(self.has_basic_challenge(), "WWW-Authenticate: {self:?}");
        self
    }

    /// A successful token response's `refresh_token`, after checking the
    /// status, the headers and the token's form (`ghr_` and 43 characters).
    pub fn refresh_token(&self) -> String {
        self.access_token();
        let token = self.json()["refresh_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no refresh_token: {self:?}"))
            .to_string();
        assert_token_form(&token, "ghr_");
        token
    }

    /// A successful token response's `access_token`, after checking the
    /// status and the no-store headers.
    pub fn access_token(&self) -> String {
        self.assert_status(StatusCode::OK)
            .assert_json_content_type()
            .assert_no_store();
        self.json()["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no access_token: {self:?}"))
            .to_string()
    }
}

/// Asserts that `token` is `prefix` and 43 base64url characters (256 bits).
pub fn assert_token_form(token: &str, prefix: &str) {
    let random = token
        .strip_prefix(prefix)
        .unwrap_or_else(|| panic!("{token:?} does not start with {prefix}"));
    assert!(
        random.len() == 43
            && random
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "{token:?} is not {prefix} and 43 base64url characters"
    );
}
