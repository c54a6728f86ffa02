//! The admin API, `/admin/v1`: what the `client`, `user` and `keys` commands do, over
//! HTTP, for pipelines and consoles without shell access to the database host.
//!
//! Every request passes, in order:
//! 1. the per-address rate limit, as at the token endpoint (429);
//! 2. the server's own bearer guard ([`super::bearer_guard`]): an access token this
//!    server issued, active now (401, RFC 6750 §3.1; 503 as a problem detail when
//!    the database cannot tell);
//! 3. the scope of the operation: `gatehouse:admin:read` or `gatehouse:admin` for a
//!    `GET`, `gatehouse:admin` for a change (403 `insufficient_scope`);
//! 4. the handler, which reads its input ([`input`]), calls the
//!    [`Manager`](crate::manage::Manager) and shows the result. The rules live there,
//!    shared with the command line.
//!
//! So an unknown path or method under `/admin/v1`, an unknown id, and a bad body are
//! told only to a caller with a valid token. Every error after the guard is an RFC
//! 9457 problem detail ([`Problem`]); every answer has `Cache-Control: no-store`.

pub mod clients;
pub mod input;
pub mod keys;
pub mod problem;
pub mod users;

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::handler::Handler as _;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::Router;
use gatehouse_guard::{Claims, RequireScope};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use tower_http::set_header::SetResponseHeaderLayer;

pub use self::problem::{Problem, ProblemDoc};
use super::AppState;
use crate::manage::Actor;

/// Where the admin API is served.
pub const PREFIX: &str = "/admin/v1";
/// The scope that reads and changes everything the admin API serves.
pub const ADMIN_SCOPE: &str = "gatehouse:admin";
/// The scope that reads it only: `GET`.
pub const ADMIN_READ_SCOPE: &str = "gatehouse:admin:read";

/// The admin routes, every one under [`PREFIX`], to merge into the server's router:
/// paths, the order of checks the module describes, problem details for unknown
/// paths and methods under the prefix.
pub fn router(state: &AppState) -> Router<AppState> {
    // RFC 6750 §3.1: a GET's challenge names the least scope that would do.
    let read = || RequireScope::any([ADMIN_READ_SCOPE, ADMIN_SCOPE]);
    let write = || RequireScope::new(ADMIN_SCOPE);
    let path = |rest: &str| format!("{PREFIX}{rest}");
    Router::new()
        .route(
            &path("/clients"),
            get(clients::list.layer(read())).post(clients::create.layer(write())),
        )
        .route(
            &path("/clients/{client_id}"),
            get(clients::show.layer(read()))
                .patch(clients::update.layer(write()))
                .delete(clients::delete.layer(write())),
        )
        .route(
            &path("/clients/{client_id}/secret"),
            post(clients::rotate_secret.layer(write())),
        )
        .route(
            &path("/clients/{client_id}/revoke-tokens"),
            post(clients::revoke_tokens.layer(write())),
        )
        .route(
            &path("/users"),
            get(users::list.layer(read())).post(users::create.layer(write())),
        )
        .route(
            &path("/users/{username}"),
            get(users::show.layer(read()))
                .patch(users::update.layer(write()))
                .delete(users::delete.layer(write())),
        )
        .route(
            &path("/users/{username}/revoke-tokens"),
            post(users::revoke_tokens.layer(write())),
        )
        .route(&path("/keys"), get(keys::list.layer(read())))
        .route(&path("/keys/rotate"), post(keys::rotate.layer(write())))
        // Every other path under the prefix, so that the server's own 404 (an OAuth
        // error, unguarded) never answers for it. A catch-all does not match an empty
        // rest: the prefix and the prefix with a slash are routes of their own.
        .route(PREFIX, any(not_found))
        .route(&path("/"), any(not_found))
        .route(&path("/{*rest}"), any(not_found))
        .method_not_allowed_fallback(method_not_allowed)
        // Router::layer wraps every route, 404s and 405s included: each answer passes
        // these, the last one outermost.
        .layer(super::bearer_guard::server_guard(state).layer())
        .layer(axum::middleware::map_response(unavailable_as_problem))
        .layer(axum::middleware::from_fn_with_state(state.clone(), admit_address))
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
}

/// The per-address rate limit, before the token is looked at: a flood of bad tokens
/// spends the sender's budget, not the database's time.
async fn admit_address(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| state.trusted_proxies.client(addr.ip(), request.headers()));
    match state.protection.admit_address(peer) {
        Ok(()) => next.run(request).await,
        Err(wait) => {
            // RFC 9110 §10.2.3: whole seconds, rounded up so that a retry is not early.
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too many requests from this address: retry after the number of seconds in Retry-After",
            )
            .with_retry_after(seconds)
            .into_response()
        }
    }
}

/// The guard's 503 (the token could not be checked: the database is unreachable)
/// as the problem detail every other 503 of this API is. Its 401, 403 and 400 stay
/// as RFC 6750 §3 shapes them.
async fn unavailable_as_problem(response: Response) -> Response {
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(problem::PROBLEM_JSON.as_bytes()));
    if response.status() != StatusCode::SERVICE_UNAVAILABLE || is_problem {
        return response;
    }
    Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "the access token cannot be checked right now: the database cannot be reached; try again shortly",
    )
    .with_retry_after(1)
    .into_response()
}

async fn not_found() -> Problem {
    Problem::new(StatusCode::NOT_FOUND, "there is no admin resource at this path")
}

async fn method_not_allowed() -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "this admin resource does not take this method (Allow lists those it takes)",
    )
}

/// Who makes a change, for its audit event: the client the admin token was issued to.
fn actor(claims: &Claims) -> Actor {
    Actor::Client(claims.client_id.clone())
}

/// RFC 3986 §3.3: a path segment keeps only the unreserved characters as they are.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The `Location` of a new resource (RFC 9110 §10.2.2): `/admin/v1/{kind}/{id}`.
fn location(kind: &str, id: &str) -> HeaderValue {
    let path = format!("{PREFIX}/{kind}/{}", utf8_percent_encode(id, SEGMENT));
    // Percent-encoding leaves visible ASCII only, always a valid header value.
    HeaderValue::from_str(&path).unwrap_or_else(|_| HeaderValue::from_static(PREFIX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_encode_the_id_as_one_segment() {
        assert_eq!(location("clients", "svc-1.a_b~"), "/admin/v1/clients/svc-1.a_b~");
        assert_eq!(
            location("clients", "a b/c?d%"),
            "/admin/v1/clients/a%20b%2Fc%3Fd%25"
        );
        assert_eq!(location("users", "zoë"), "/admin/v1/users/zo%C3%AB");
    }

    #[tokio::test]
    async fn the_guards_503_is_a_problem_and_its_challenges_stay() {
        let unavailable = gatehouse_guard::Rejection::Unavailable.into_response_in("gatehouse");
        let answer = unavailable_as_problem(unavailable).await;
        assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(answer.headers()[header::CONTENT_TYPE], problem::PROBLEM_JSON);
        assert_eq!(answer.headers()[header::RETRY_AFTER], "1");
        let invalid = gatehouse_guard::Rejection::InvalidToken("expired").into_response_in("gatehouse");
        let answer = unavailable_as_problem(invalid).await;
        assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
        assert!(answer.headers().contains_key(header::WWW_AUTHENTICATE));
    }

    #[test]
    fn the_openapi_document_describes_every_admin_operation() {
        let doc = serde_json::to_value(crate::http::openapi::document(&[])).unwrap();
        let paths = &doc["paths"];
        for (path, methods) in [
            ("/admin/v1/clients", &["get", "post"][..]),
            ("/admin/v1/clients/{client_id}", &["get", "patch", "delete"]),
            ("/admin/v1/clients/{client_id}/secret", &["post"]),
            ("/admin/v1/clients/{client_id}/revoke-tokens", &["post"]),
            ("/admin/v1/users", &["get", "post"]),
            ("/admin/v1/users/{username}", &["get", "patch", "delete"]),
            ("/admin/v1/users/{username}/revoke-tokens", &["post"]),
            ("/admin/v1/keys", &["get"]),
            ("/admin/v1/keys/rotate", &["post"]),
        ] {
            for method in methods {
                let operation = &paths[path][method];
                assert!(operation.is_object(), "{method} {path} undescribed");
                assert!(
                    operation["responses"]["401"].is_object(),
                    "{method} {path}: no 401"
                );
                let scopes = operation["security"].to_string();
                assert!(scopes.contains("gatehouse:admin"), "{method} {path}: {scopes}");
                assert_eq!(
                    *method == "get",
                    scopes.contains("gatehouse:admin:read"),
                    "{method} {path}: {scopes}"
                );
            }
        }
        let scheme = &doc["components"]["securitySchemes"]["admin_token"];
        assert_eq!(scheme["type"], "oauth2", "{scheme}");
        assert!(
            scheme["flows"]["clientCredentials"]["scopes"]["gatehouse:admin:read"].is_string(),
            "{scheme}"
        );
        let schemas = &doc["components"]["schemas"];
        for name in [
            "ProblemDoc",
            "NewClientBody",
            "ClientPatchBody",
            "ClientView",
            "UserView",
            "KeyView",
            "RotatedSecret",
        ] {
            assert!(schemas[name].is_object(), "no schema {name}");
        }
        assert!(schemas["ClientPatchBody"]["properties"]
            .get("client_id")
            .is_none());
        // Generated clients name their methods after these: one each.
        let mut ids: Vec<&str> = paths
            .as_object()
            .unwrap()
            .values()
            .flat_map(|item| item.as_object().unwrap().values())
            .filter_map(|operation| operation["operationId"].as_str())
            .collect();
        let count = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), count, "operation ids repeat: {ids:?}");
    }
}
