//! gatehouse stands in for the token server of each API in `examples/`
//! (`docs/migrating.md`). Each module starts the server with that API's example
//! configuration (`examples/NAME.toml`) and sends every request its documentation shows, as it
//! shows it (path, method, content type, parameter names, query string), then
//! checks every status, error code and response field the document lists.

mod anti_grazer;
mod musement;
mod oauth_guide;
mod surveysphere;
mod z_recommendation;

use serde_json::Value;

use crate::api::{guard_for, Api};
use crate::helpers::*;
use crate::jose;

/// The path of `examples/NAME.toml` in the repository.
pub fn example(name: &str) -> String {
    format!("{}/../../examples/{name}.toml", env!("CARGO_MANIFEST_DIR"))
}

/// A server configured by `examples/NAME.toml` (listen address and database
/// from the test).
pub async fn start_example<'a>(db: &'a TestDb, name: &str) -> TestServer<'a> {
    db.start(&["--config", &example(name)]).await
}

/// The token response every seed documents: 200, JSON, no-store, an
/// `access_token` that verifies with the JWKS alone, `token_type` Bearer
/// (RFC 6749 section 5.1: case-insensitive; the Musement documentation prints
/// `bearer`) and `expires_in` 3600 (every documented lifetime). Returns the body.
pub async fn assert_documented_token(server: &TestServer<'_>, reply: &Reply) -> Value {
    let token = reply.access_token();
    let body = reply.json();
    assert!(
        body["token_type"]
            .as_str()
            .is_some_and(|t| t.eq_ignore_ascii_case("bearer")),
        "token_type: {body}"
    );
    assert_eq!(body["expires_in"], 3600, "expires_in: {body}");
    let issuer = server.issuer().await;
    jose::verify(&token, &server.jwks().await, &issuer, &issuer);
    body
}

/// A raw query string, in the order given, values form-encoded as a client
/// substituting them into the documented template would.
pub fn query(pairs: &[(&str, &str)]) -> String {
    form_body(pairs)
}

/// The seed's "Authorization: Bearer <access_token>" request to its API: a
/// guarded API in front of `server` answers 200 to `token` at `path`.
pub async fn assert_api_accepts(server: &TestServer<'_>, path: &str, token: &str) {
    let api = Api::start(guard_for(server)).await;
    let reply = api.get_with_header(path, &[&format!("Bearer {token}")]).await;
    assert_eq!(
        reply.status,
        reqwest::StatusCode::OK,
        "{path} with the token: {reply:?}"
    );
}
