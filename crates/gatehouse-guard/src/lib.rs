//! gatehouse-guard: the tower layer an axum resource server puts in front of its
//! routes to accept only valid OAuth 2.0 bearer tokens (RFC 6750), and the per-route
//! layer that requires scopes.
//!
//! ```no_run
//! use axum::{routing::get, Router};
//! use gatehouse_guard::{Claims, Guard, RequireScope};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let guard = Guard::builder("https://auth.example.com")
//!     .audience("https://api.example.com")
//!     .build()?;
//! let app: Router = Router::new()
//!     .route("/cities", get(|claims: Claims| async move { claims.sub }))
//!     .route_layer(RequireScope::new("read"))
//!     .layer(guard.layer());
//! # Ok(()) }
//! ```
//!
//! Design choices:
//! - **Three ways to validate.** Locally (the default): the JWT's signature against the
//!   issuer's JWKS, found through its RFC 8414 metadata, then `typ` (RFC 9068 §4),
//!   `iss`, `aud`, `exp` and `nbf`. Or by introspection (RFC 7662), for opaque tokens
//!   and for resource servers that must see revocations: the answer is cached for a
//!   few seconds (configurable), never past the token's `exp`. Or by the server's
//!   own [`TokenValidator`] ([`Guard::from_validator`]): an issuer guarding its own
//!   API checks its tokens in process, against its store, with the same RFC 6750
//!   answers and scope layers; the guard caches nothing for it.
//! - **Keys pin their algorithm.** Each JWK is used only with the `alg` it declares,
//!   and only asymmetric algorithms are accepted: no `none`, and no HMAC with a
//!   public key as the secret (the algorithm-confusion attack).
//! - **The JWKS is re-fetched on an unknown `kid`**, at most once per
//!   [`GuardBuilder::jwks_refetch_interval`] (5 s by default): requests with an
//!   unknown `kid` inside that window wait for the next allowed fetch and share it, so a
//!   key rotation is followed at once while bogus `kid`s cannot hammer the issuer. A
//!   key that disappears from the JWKS stops being accepted at the next fetch.
//! - **Verified tokens are cached** by their exact text until their `exp`: a signature
//!   check costs ~60 µs, a cache hit well under one.
//! - **RFC 6750 answers.** No token: 401 with `WWW-Authenticate: Bearer realm="…"`
//!   and no error code (§3.1). A malformed request (a broken `Authorization` header,
//!   two of them, a token in the query string): 400 `invalid_request`. A bad, expired
//!   or revoked token: 401 `invalid_token`. A missing scope: 403 `insufficient_scope`
//!   with the `scope` needed. Bodies are JSON `{"error", "error_description"}`. A
//!   token is only ever read from the `Authorization` header: RFC 9700 §2.4 advises
//!   against the query string, which ends up in logs.
//! - **Scopes all or any.** [`RequireScope::new`] and [`RequireScope::all`] need
//!   every scope named; [`RequireScope::any`] one of them (a read that a `read` or an
//!   `admin` scope grants). The 403 challenge names what to ask for: all of them, or
//!   the first alternative, since a challenge's `scope` lists scopes needed together.
//! - **The issuer unreachable** (no keys yet, or introspection failing) is 503, not
//!   401: the token may well be valid, and a 401 would send clients to renew it for
//!   nothing.
//! - **Certificate-bound tokens** (RFC 8705 §3): a token whose `cnf` carries
//!   `x5t#S256` (JWT claim, introspection member, or a [`TokenValidator`]'s
//!   [`Claims::cnf`]) passes only on a request that presents that certificate: a
//!   [`ClientCertificate`] extension put there by the application's TLS acceptor, or
//!   the header of a trusted TLS-terminating proxy
//!   ([`GuardBuilder::client_cert_header`]). Otherwise 401 `invalid_token` saying the
//!   token is bound to a certificate. The check runs per request, after the token
//!   caches, so a cached token is checked against each request's certificate. A
//!   `cnf` naming something else (a DPoP key) is refused, never taken for a bearer
//!   token; [`Guard::validate`], which sees no request, refuses every bound token.
#![warn(missing_docs)]
// Tests may unwrap: a panic there is a failed test (the workspace lint is for the rest).
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod bearer;
mod certificate;
mod claims;
mod config;
mod discovery;
mod ecdsa;
mod error;
mod introspect;
mod jwks;
mod layer;
mod local;
mod scope;
mod validator;

/// Entry points for `cargo fuzz` (feature `fuzzing`); not a stable API.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};

    /// Parses an `Authorization` header value and a query string as the guard does.
    pub fn bearer(authorization: &[u8], query: &str) {
        let mut request = http::Request::builder().uri(format!("/x?{}", query.escape_default()));
        if let Ok(value) = http::HeaderValue::from_bytes(authorization) {
            request = request.header(http::header::AUTHORIZATION, value);
        }
        if let Ok(request) = request.body(()) {
            let (parts, ()) = request.into_parts();
            let _ = crate::bearer::bearer_token(&parts);
        }
    }

    /// Runs a token through header parsing and full verification against a fixed
    /// P-256 key, as the local validator does after the key lookup.
    pub fn jwt(token: &str) {
        let _ = decode_header(token);
        let key = DecodingKey::from_ec_components(
            "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
            "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
        );
        if let Ok(key) = key {
            let mut validation = Validation::new(Algorithm::ES256);
            validation.set_audience(&["https://api.example"]);
            validation.set_issuer(&["https://issuer.example"]);
            let _ = decode::<crate::Claims>(token, &key, &validation);
        }
        let _ = jsonwebtoken::dangerous::insecure_decode::<crate::Claims>(token);
    }
}

pub use self::certificate::ClientCertificate;
pub use self::claims::{Claims, Confirmation, Scope};
pub use self::config::{Guard, GuardBuildError, GuardBuilder};
pub use self::error::Rejection;
pub use self::layer::{GuardLayer, GuardService};
pub use self::scope::{RequireScope, RequireScopeService};
pub use self::validator::TokenValidator;
