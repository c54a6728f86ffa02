//! A server's own token check behind the guard: [`TokenValidator`].

use futures::future::BoxFuture;

use crate::claims::Claims;
use crate::error::Rejection;

/// A check of bearer tokens the server does itself, in process, instead of the JWKS
/// or introspection: for an issuer guarding its own API with its own token store, or
/// a test. The guard still does the RFC 6750 side (reading the `Authorization`
/// header, the challenges, the [`Claims`] extension, [`crate::RequireScope`]).
///
/// Answer [`Rejection::InvalidToken`] for a token that is not good (unknown,
/// expired, revoked, or of the wrong kind), and [`Rejection::Unavailable`] when it
/// cannot be checked right now (503: the token may be valid). The guard caches
/// nothing: each request is checked by `validate`, so a revocation is seen as soon
/// as the validator sees it.
pub trait TokenValidator: Send + Sync + 'static {
    /// The claims of `token`, or why it is refused.
    fn validate<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<Claims, Rejection>>;
}

#[cfg(test)]
mod tests {
    use axum::body::{to_bytes, Body};
    use axum::routing::get;
    use axum::Router;
    use futures::FutureExt;
    use http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
    use http::{Request, StatusCode};
    use tower::ServiceExt;

    use super::*;
    use crate::{ClientCertificate, Confirmation, Guard, RequireScope};

    /// Accepts `good` (scope `admin:read`) and `bound` (the same, bound to the
    /// certificate [`CERTIFICATE`]), refuses `down` as unavailable, and any other
    /// token as invalid.
    struct OneToken;

    const CERTIFICATE: &[u8] = b"the admin's certificate";

    impl TokenValidator for OneToken {
        fn validate<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<Claims, Rejection>> {
            let answer = match token {
                "good" | "bound" => Ok(Claims {
                    sub: "admin-cli".into(),
                    client_id: "admin-cli".into(),
                    scope: "admin:read".into(),
                    exp: i64::MAX,
                    iat: None,
                    nbf: None,
                    iss: None,
                    aud: Vec::new(),
                    jti: None,
                    username: None,
                    sid: None,
                    cnf: (token == "bound").then(|| {
                        Confirmation::certificate(ClientCertificate(CERTIFICATE.to_vec()).thumbprint())
                    }),
                }),
                "down" => Err(Rejection::Unavailable),
                _ => Err(Rejection::InvalidToken("The access token is not active.")),
            };
            futures::future::ready(answer).boxed()
        }
    }

    fn app(required: RequireScope) -> Router {
        let guard = Guard::from_validator("gatehouse", OneToken);
        Router::new()
            .route("/", get(|claims: Claims| async move { claims.client_id }))
            .route_layer(required)
            .layer(guard.layer())
    }

    /// Status, `WWW-Authenticate` and body of a request with `authorization`.
    async fn call(app: Router, authorization: Option<&str>) -> (StatusCode, String, String) {
        call_with(app, authorization, None).await
    }

    /// The same, on a connection that presented `certificate`.
    async fn call_with(
        app: Router,
        authorization: Option<&str>,
        certificate: Option<&[u8]>,
    ) -> (StatusCode, String, String) {
        let mut request = Request::get("/");
        if let Some(value) = authorization {
            request = request.header(AUTHORIZATION, value);
        }
        let mut request = request.body(Body::empty()).unwrap();
        if let Some(der) = certificate {
            request.extensions_mut().insert(ClientCertificate(der.to_vec()));
        }
        let response = app.oneshot(request).await.unwrap();
        let status = response.status();
        let challenge = response
            .headers()
            .get(WWW_AUTHENTICATE)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let body = to_bytes(response.into_body(), 1 << 16).await.unwrap();
        (status, challenge, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn a_custom_validator_decides_and_the_guard_answers() {
        let read = || app(RequireScope::new("admin:read"));
        let (status, _, body) = call(read(), Some("Bearer good")).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "admin-cli"));

        let (status, challenge, body) = call(read(), Some("Bearer forged")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            challenge,
            r#"Bearer realm="gatehouse", error="invalid_token", error_description="The access token is not active.""#
        );
        assert!(body.contains(r#""error":"invalid_token""#), "{body}");

        let (status, challenge, _) = call(read(), None).await;
        assert_eq!(
            (status, challenge.as_str()),
            (StatusCode::UNAUTHORIZED, r#"Bearer realm="gatehouse""#)
        );

        let (status, challenge, body) = call(read(), Some("Bearer down")).await;
        assert_eq!(
            (status, challenge.as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, "")
        );
        assert!(body.contains(r#""error":"temporarily_unavailable""#), "{body}");
    }

    #[tokio::test]
    async fn a_validators_binding_is_checked_against_the_connection() {
        let read = || app(RequireScope::new("admin:read"));
        let (status, _, _) = call_with(read(), Some("Bearer bound"), Some(CERTIFICATE)).await;
        assert_eq!(status, StatusCode::OK);
        let (status, challenge, _) = call_with(read(), Some("Bearer bound"), Some(b"another")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(
            challenge.contains("bound to a TLS client certificate other"),
            "{challenge}"
        );
        let (status, challenge, _) = call(read(), Some("Bearer bound")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(challenge.contains("presented none"), "{challenge}");
        let (status, _, _) = call(read(), Some("Bearer good")).await;
        assert_eq!(status, StatusCode::OK, "unbound tokens need no certificate");
    }

    #[tokio::test]
    async fn any_scope_passes_with_one_and_names_the_first_when_none() {
        // The token has admin:read: one of the alternatives is enough.
        let either = RequireScope::any(["admin:read", "admin"]);
        let (status, _, _) = call(app(either), Some("Bearer good")).await;
        assert_eq!(status, StatusCode::OK);
        let reversed = RequireScope::any(["admin", "admin:read"]);
        let (status, _, _) = call(app(reversed), Some("Bearer good")).await;
        assert_eq!(status, StatusCode::OK);

        // None of them: 403 naming the first alone.
        let writes = RequireScope::any(["admin", "admin:write"]);
        let (status, challenge, body) = call(app(writes), Some("Bearer good")).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(
            challenge.starts_with(r#"Bearer realm="gatehouse", error="insufficient_scope""#),
            "{challenge}"
        );
        assert!(challenge.ends_with(r#", scope="admin""#), "{challenge}");
        assert!(body.contains(r#""error":"insufficient_scope""#), "{body}");

        // `all` still needs every one.
        let both = RequireScope::all(["admin:read", "admin"]);
        let (status, challenge, _) = call(app(both), Some("Bearer good")).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(
            challenge.ends_with(r#", scope="admin:read admin""#),
            "{challenge}"
        );

        // No alternatives: nothing passes.
        let none = RequireScope::any(Vec::<String>::new());
        let (status, _, _) = call(app(none), Some("Bearer good")).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
}
