//! A protected API in this process, behind gatehouse-guard, for the tests that
//! call an API with the tokens gatehouse issued (the guard's own tests, and the
//! documented APIs' "Authorization: Bearer" requests).

use std::net::SocketAddr;
use std::time::Duration;

use axum::routing::get;
use axum::{Json, Router};
use gatehouse_guard::{Claims, Guard, GuardBuilder, RequireScope};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

/// The API of gatehouse-guard's `resource_server` example, in this process: `/api/v3/cities`
/// needs `read`, `/api/v3/orders` needs `orders`, `/api/v3/both` needs both,
/// `/api/v3/any` any valid token. Each answers with the claims it was handed.
pub struct Api {
    addr: SocketAddr,
    http: reqwest::Client,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Api {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn echo(claims: Claims) -> Json<Value> {
    Json(json!({
        "sub": claims.sub,
        "client_id": claims.client_id,
        "scope": claims.scope,
        "username": claims.username,
    }))
}

impl Api {
    pub async fn start(guard: GuardBuilder) -> Api {
        let guard = guard.build().expect("guard");
        let app = Router::new()
            .route("/api/v3/cities", get(echo).route_layer(RequireScope::new("read")))
            .route(
                "/api/v3/orders",
                get(echo).route_layer(RequireScope::new("orders")),
            )
            .route(
                "/api/v3/both",
                get(echo).route_layer(RequireScope::all(["read", "orders"])),
            )
            .route("/api/v3/any", get(echo))
            // Seed 001's example path.
            .route("/some-endpoint", get(echo))
            .layer(guard.layer());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the API");
        let addr = listener.local_addr().expect("API address");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(15))
            .build()
            .expect("HTTP client");
        Api { addr, http, task }
    }

    /// GET `path` with `Authorization: Bearer token` (none when `None`).
    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        let mut request = self.http.get(format!("http://{}{path}", self.addr));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        Reply::from(request.send().await).await
    }

    pub async fn get_with_header(&self, path: &str, authorization: &[&str]) -> Reply {
        let mut request = self.http.get(format!("http://{}{path}", self.addr));
        for value in authorization {
            request = request.header("authorization", *value);
        }
        Reply::from(request.send().await).await
    }
}

/// The guard of a gatehouse server at `server`, validating locally.
pub fn guard_for(server: &TestServer<'_>) -> GuardBuilder {
    Guard::builder(server.url(""))
}

/// The guard of `server` in introspection mode, as `resource_server`, with
/// answers cached for `ttl`.
pub fn introspecting_guard_for(
    server: &TestServer<'_>,
    resource_server: &TestClient,
    ttl: Duration,
) -> GuardBuilder {
    guard_for(server)
        .introspect(&resource_server.id, &resource_server.secret)
        .introspection_cache_ttl(ttl)
}

/// Asserts an RFC 6750 refusal: `status`, the JSON `error`, and a challenge
/// `Bearer realm="api"` that carries `error=` exactly when `code` is not
/// `unauthorized` (a request without a token gets the bare challenge).
pub fn assert_refused(reply: &Reply, status: StatusCode, code: &str) {
    let problems = reply.error_problems(status, code, false);
    assert!(problems.is_empty(), "{}: {reply:?}", problems.join("; "));
    let challenge = reply.header("www-authenticate").unwrap_or_default();
    assert!(
        challenge.starts_with(r#"Bearer realm="api""#),
        "WWW-Authenticate {challenge:?}: {reply:?}"
    );
    if code == "unauthorized" {
        assert_eq!(challenge, r#"Bearer realm="api""#, "{reply:?}");
    } else {
        assert!(
            challenge.contains(&format!(r#"error="{code}""#)),
            "WWW-Authenticate {challenge:?} lacks the error: {reply:?}"
        );
    }
}
