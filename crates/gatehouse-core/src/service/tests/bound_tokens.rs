//! Certificate-bound access tokens (RFC 8705 §3): `cnf.x5t#S256` in the JWT and in
//! the opaque token's row, reported by introspection, for every grant.

use serde_json::json;

use super::client_auth::certificate;
use super::*;
use crate::user::{User, UserId};
use crate::PresentedCertificate;

const SECRET: &str = "bound-secret-bound-secret";

/// The client `bound` (with bound tokens) in `format`, with every grant, an unbound
/// twin `plain`, and alice.
async fn cast(format: TokenFormat) -> Fixture {
    let mut bound = client("bound", SecretHash::sha256(&secret(SECRET)));
    bound.grant_types = GrantTypes::parse("client_credentials,password,refresh_token").unwrap();
    bound.token_format = format;
    bound.auth.bound_tokens = true;
    let mut plain = bound.clone();
    plain.id = ClientId::parse("plain").unwrap();
    plain.auth.bound_tokens = false;
    let f = fixture(vec![bound, plain]);
    f.store
        .insert_user(&User {
            id: UserId("u-alice".into()),
            username: "alice".into(),
            password_hash: SecretHash::argon2id(&secret("correct horse battery"), &SystemRandom).unwrap(),
            scope: None,
            disabled: false,
            created_at: NOW,
        })
        .await
        .unwrap();
    f
}

/// A token request of `client` with `pairs`, over a connection with `cert`.
fn bound_request(
    client: &str,
    pairs: &[(&str, &str)],
    cert: Option<&Arc<PresentedCertificate>>,
) -> TokenRequest {
    let mut all = vec![("client_id", client), ("client_secret", SECRET)];
    all.extend_from_slice(pairs);
    let mut request = request(&all);
    request.certificate = cert.cloned();
    request
}

/// The `cnf` of `thumbprint`, as JSON.
fn cnf_of(cert: &PresentedCertificate) -> serde_json::Value {
    json!({"x5t#S256": cert.thumbprint})
}

/// What introspection by `client` answers for `token`, as JSON.
async fn introspected(f: &Fixture, client: &str, token: &str) -> serde_json::Value {
    let params = Params::new(vec![
        ("client_id".into(), client.into()),
        ("client_secret".into(), SECRET.into()),
        ("token".into(), token.into()),
    ])
    .unwrap();
    let request = IntrospectionRequest::parse(params, None).unwrap();
    serde_json::to_value(f.service.introspect(request).await.unwrap()).unwrap()
}

#[tokio::test]
async fn every_grant_binds_the_access_token_to_the_request_certificate() {
    for format in [TokenFormat::Jwt, TokenFormat::Opaque] {
        let f = cast(format).await;
        let first = certificate(b"first-cert", Some("CN=svc"), true);
        let second = certificate(b"second-cert", Some("CN=svc"), true);

        let cc = f
            .service
            .exchange(bound_request(
                "bound",
                &[("grant_type", "client_credentials")],
                Some(&first),
            ))
            .await
            .unwrap();
        let login = f
            .service
            .exchange(bound_request(
                "bound",
                &[
                    ("grant_type", "password"),
                    ("username", "alice"),
                    ("password", "correct horse battery"),
                ],
                Some(&first),
            ))
            .await
            .unwrap();
        // A refresh binds the new access token to the refresh request's certificate.
        let refreshed = f
            .service
            .exchange(bound_request(
                "bound",
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", login.refresh_token.as_deref().unwrap()),
                ],
                Some(&second),
            ))
            .await
            .unwrap();

        for (what, token, cert) in [
            ("client_credentials", &cc.access_token, &first),
            ("password", &login.access_token, &first),
            ("refresh", &refreshed.access_token, &second),
        ] {
            if format == TokenFormat::Jwt {
                assert_eq!(
                    claims(token)["cnf"],
                    cnf_of(cert),
                    "{format:?} {what}: the JWT's cnf"
                );
            }
            let seen = f.service.inspect(token).await.unwrap().unwrap();
            assert_eq!(
                seen.cnf.and_then(|cnf| cnf.x5t_s256),
                Some(cert.thumbprint.clone()),
                "{format:?} {what}: inspect"
            );
            let body = introspected(&f, "bound", token).await;
            assert_eq!(body["active"], true, "{format:?} {what}");
            assert_eq!(body["cnf"], cnf_of(cert), "{format:?} {what}: introspection");
        }
        // The refresh token itself is bound to nothing.
        let refresh = refreshed.refresh_token.as_deref().unwrap();
        assert!(
            introspected(&f, "bound", refresh).await.get("cnf").is_none(),
            "{format:?}"
        );
    }
}

#[tokio::test]
async fn a_bound_client_without_a_certificate_is_refused() {
    let f = cast(TokenFormat::Jwt).await;
    for pairs in [
        &[("grant_type", "client_credentials")][..],
        &[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", "wrong"),
        ][..],
    ] {
        let err = f
            .service
            .exchange(bound_request("bound", pairs, None))
            .await
            .unwrap_err();
        assert_eq!(
            err,
            OAuthError::invalid_request(
                "This client's access tokens are bound to its TLS client certificate: connect with one."
            ),
            "{pairs:?}"
        );
    }
}

#[tokio::test]
async fn an_unbound_client_gets_unbound_tokens_with_or_without_a_certificate() {
    for format in [TokenFormat::Jwt, TokenFormat::Opaque] {
        let f = cast(format).await;
        let cert = certificate(b"some-cert", None, false);
        for presented in [Some(&cert), None] {
            let response = f
                .service
                .exchange(bound_request(
                    "plain",
                    &[("grant_type", "client_credentials")],
                    presented,
                ))
                .await
                .unwrap();
            if format == TokenFormat::Jwt {
                assert!(claims(&response.access_token).get("cnf").is_none(), "{format:?}");
            }
            let body = introspected(&f, "plain", &response.access_token).await;
            assert_eq!(body["active"], true);
            assert!(body.get("cnf").is_none(), "{format:?}: {body}");
        }
    }
}
