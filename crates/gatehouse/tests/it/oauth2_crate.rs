//! The server driven by a third-party client library:
//! the `oauth2` crate (v5), over `oauth2::reqwest` with redirects disabled as
//! its documentation asks, runs client_credentials, password, refresh with
//! rotation, revocation (RFC 7009) and introspection (RFC 7662) against the
//! real server. What it can parse and check, gatehouse got right on the wire.

use std::time::Duration;

use oauth2::basic::{BasicClient, BasicErrorResponseType, BasicTokenResponse, BasicTokenType};
use oauth2::http::Uri;
use oauth2::reqwest;
use oauth2::{
    AccessToken, AsyncHttpClient, AuthType, ClientId, ClientSecret, HttpRequest, IntrospectionUrl,
    RefreshToken, RequestTokenError, ResourceOwnerPassword, ResourceOwnerUsername, RevocationUrl, Scope,
    StandardRevocableToken, TokenIntrospectionResponse, TokenResponse, TokenUrl,
};

use crate::helpers::*;
use crate::jose;

/// The HTTP client oauth2's documentation asks for: no redirects (a
/// redirected token request would be an SSRF vector).
fn http_client() -> reqwest::Client {
    reqwest::ClientBuilder::new()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(Duration::from_secs(15))
        .build()
        .expect("HTTP client")
}

/// A `BasicClient` for `client` with the server's token endpoint.
fn oauth2_client(
    server: &TestServer<'_>,
    client: &TestClient,
) -> BasicClient<
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointSet,
> {
    BasicClient::new(ClientId::new(client.id.clone()))
        .set_client_secret(ClientSecret::new(client.secret.clone()))
        .set_token_uri(TokenUrl::new(server.url("/oauth/token")).expect("token URL"))
}

/// The error code of a refused token request.
fn refusal<T: std::fmt::Debug>(
    result: Result<T, RequestTokenError<impl std::error::Error, oauth2::basic::BasicErrorResponse>>,
) -> BasicErrorResponseType {
    match result {
        Err(RequestTokenError::ServerResponse(response)) => response.error().clone(),
        other => panic!("not a refusal from the server: {other:?}"),
    }
}

fn refresh_token_of(response: &BasicTokenResponse) -> RefreshToken {
    response.refresh_token().expect("a refresh token").clone()
}

backend_tests! {
    /// client_credentials, with `client_secret_basic` and with
    /// `client_secret_post`: a Bearer token of the requested scope and the
    /// announced lifetime, no refresh token, and a JWT that verifies with the
    /// JWKS alone.
    async fn client_credentials_through_oauth2(backend) {
        let db = TestDb::new(backend).await;
        let client = db.create_client("svc", &["--scope", "read write"]).await;
        let server = db.start(&[]).await;
        let http = http_client();
        let issuer = server.issuer().await;
        let jwks = server.jwks().await;

        for auth_type in [AuthType::BasicAuth, AuthType::RequestBody] {
            let oauth = oauth2_client(&server, &client).set_auth_type(auth_type.clone());
            let token = oauth
                .exchange_client_credentials()
                .add_scope(Scope::new("read".into()))
                .request_async(&http)
                .await
                .unwrap_or_else(|e| panic!("{auth_type:?}: {e:?}"));
            assert_eq!(token.token_type(), &BasicTokenType::Bearer);
            assert_eq!(token.expires_in(), Some(Duration::from_secs(3600)));
            assert_eq!(token.scopes(), Some(&vec![Scope::new("read".into())]));
            assert!(token.refresh_token().is_none(), "RFC 6749 §4.4.3: no refresh token");
            let claims = jose::verify(token.access_token().secret(), &jwks, &issuer, &issuer);
            assert_eq!(claims.custom.client_id, client.id);
            assert_eq!(claims.custom.scope, "read");
        }

        // The whole scope when none is asked for; an unknown one is refused.
        let oauth = oauth2_client(&server, &client);
        let token = oauth.exchange_client_credentials().request_async(&http).await.expect("a token");
        let mut scopes: Vec<&str> = token.scopes().expect("scope").iter().map(|s| s.as_str()).collect();
        scopes.sort_unstable();
        assert_eq!(scopes, ["read", "write"]);
        let refused = oauth
            .exchange_client_credentials()
            .add_scope(Scope::new("admin".into()))
            .request_async(&http)
            .await;
        assert_eq!(refusal(refused), BasicErrorResponseType::InvalidScope);
        let wrong = TestClient { secret: "not-the-secret-at-all".into(), ..client.clone() };
        let refused = oauth2_client(&server, &wrong).exchange_client_credentials().request_async(&http).await;
        assert_eq!(refusal(refused), BasicErrorResponseType::InvalidClient);
    }

    /// password, then refresh: every refresh rotates, the new refresh token
    /// works, and the rotated-out one is refused (and, being a reuse, ends
    /// the login: its newest refresh token is refused too).
    async fn password_and_rotating_refresh_through_oauth2(backend) {
        let db = TestDb::new(backend).await;
        let (client, user) = db.refresh_app().await;
        let server = db.start(&[]).await;
        let http = http_client();
        let oauth = oauth2_client(&server, &client);
        let username = ResourceOwnerUsername::new(user.username.clone());

        let refused = oauth
            .exchange_password(&username, &ResourceOwnerPassword::new("wrong password".into()))
            .request_async(&http)
            .await;
        assert_eq!(refusal(refused), BasicErrorResponseType::InvalidGrant);

        let login = oauth
            .exchange_password(&username, &ResourceOwnerPassword::new(PASSWORD.into()))
            .add_scope(Scope::new("read".into()))
            .request_async(&http)
            .await
            .expect("login");
        assert_eq!(login.token_type(), &BasicTokenType::Bearer);
        assert_eq!(jose::decode(login.access_token().secret()).claims["sub"], user.id.as_str());
        let first = refresh_token_of(&login);

        let refreshed = oauth.exchange_refresh_token(&first).request_async(&http).await.expect("refresh");
        let second = refresh_token_of(&refreshed);
        assert_ne!(second.secret(), first.secret(), "the refresh token rotated");
        assert_ne!(refreshed.access_token().secret(), login.access_token().secret());
        assert_eq!(refreshed.scopes(), Some(&vec![Scope::new("read".into())]));

        let again = oauth.exchange_refresh_token(&second).request_async(&http).await;
        let again = again.expect("the new one works");
        let third = refresh_token_of(&again);
        assert_ne!(third.secret(), second.secret());

        let reused = oauth.exchange_refresh_token(&first).request_async(&http).await;
        assert_eq!(refusal(reused), BasicErrorResponseType::InvalidGrant, "the old one is refused");
        let after_reuse = oauth.exchange_refresh_token(&third).request_async(&http).await;
        assert_eq!(refusal(after_reuse), BasicErrorResponseType::InvalidGrant, "the login is revoked");
    }

    /// RFC 7662 introspection by a resource server (`--can-introspect`): an
    /// access token of a password login, with everything §2.2 lists, and a
    /// refresh token; anything unknown is inactive.
    async fn introspection_through_oauth2(backend) {
        let db = TestDb::new(backend).await;
        let (client, user) = db.refresh_app().await;
        let resource_server = db.create_client("rs", &["--can-introspect"]).await;
        let server = db.start(&[]).await;
        let http = http_client();
        let issuer = server.issuer().await;
        let login = oauth2_client(&server, &client)
            .exchange_password(
                &ResourceOwnerUsername::new(user.username.clone()),
                &ResourceOwnerPassword::new(PASSWORD.into()),
            )
            .request_async(&http)
            .await
            .expect("login");
        let introspector = oauth2_client(&server, &resource_server)
            .set_introspection_url(IntrospectionUrl::new(server.url("/oauth/introspect")).expect("URL"));

        let access = introspector
            .introspect(login.access_token())
            .request_async(&http)
            .await
            .expect("introspection");
        assert!(access.active());
        assert_eq!(access.scopes(), Some(&vec![Scope::new("read".into())]));
        assert_eq!(access.client_id().map(|id| id.as_str()), Some(client.id.as_str()));
        assert_eq!(access.username(), Some(user.username.as_str()));
        assert_eq!(access.token_type(), Some(&BasicTokenType::Bearer));
        assert_eq!(access.sub(), Some(user.id.as_str()));
        assert_eq!(access.iss(), Some(issuer.as_str()));
        assert_eq!(access.aud(), Some(&vec![issuer.clone()]));
        assert!(access.jti().is_some_and(|jti| !jti.is_empty()));
        let (exp, iat) = (access.exp().expect("exp"), access.iat().expect("iat"));
        assert_eq!(exp.timestamp() - iat.timestamp(), 3600);
        assert!((iat.timestamp() - unix_now()).abs() < 60, "iat is now");

        let refresh = AccessToken::new(refresh_token_of(&login).secret().clone());
        let introspected = introspector
            .introspect(&refresh)
            .set_token_type_hint("refresh_token")
            .request_async(&http)
            .await
            .expect("introspection");
        assert!(introspected.active());
        assert_eq!(
            introspected.token_type(),
            Some(&BasicTokenType::Extension("refresh_token".into()))
        );

        let unknown = AccessToken::new(random_token("ghr_"));
        let introspected = introspector.introspect(&unknown).request_async(&http).await;
        let introspected = introspected.expect("introspection");
        assert!(!introspected.active());
        assert!(introspected.scopes().is_none() && introspected.client_id().is_none());
    }

    /// RFC 7009 revocation: a refresh token (and with it its login's access
    /// tokens), an access token, and an unknown token (200 all the same).
    async fn revocation_through_oauth2(backend) {
        let db = TestDb::new(backend).await;
        let (client, user) = db.refresh_app().await;
        let server = db.start(&[]).await;
        let http = http_client();
        let oauth = oauth2_client(&server, &client);

        // oauth2 refuses a revocation URL that is not https (RFC 7009 §2
        // requires TLS), and gatehouse serves TLS only behind a proxy. So the
        // revocation URL says https, and this adapter sends the request as
        // plain HTTP to the loopback server with the same reqwest client.
        let revocation_url = server.url("/oauth/revoke").replacen("http://", "https://", 1);
        let loopback = |mut request: HttpRequest| {
            let uri = request.uri().to_string().replacen("https://", "http://", 1);
            *request.uri_mut() = uri.parse::<Uri>().expect("URI");
            http.call(request)
        };
        let revoker = oauth2_client(&server, &client)
            .set_revocation_url(RevocationUrl::new(revocation_url).expect("URL"));

        let login = oauth
            .exchange_password(
                &ResourceOwnerUsername::new(user.username.clone()),
                &ResourceOwnerPassword::new(PASSWORD.into()),
            )
            .request_async(&http)
            .await
            .expect("login");
        let refresh = refresh_token_of(&login);
        assert!(server.is_active(&client, refresh.secret()).await);
        revoker
            .revoke_token(StandardRevocableToken::RefreshToken(refresh.clone()))
            .expect("revocation request")
            .request_async(&loopback)
            .await
            .expect("revoked");
        assert!(!server.is_active(&client, refresh.secret()).await, "the refresh token");
        assert!(!server.is_active(&client, login.access_token().secret()).await, "its login's access token");
        let refused = oauth.exchange_refresh_token(&refresh).request_async(&http).await;
        assert_eq!(refusal(refused), BasicErrorResponseType::InvalidGrant);

        let another = oauth
            .exchange_password(
                &ResourceOwnerUsername::new(user.username.clone()),
                &ResourceOwnerPassword::new(PASSWORD.into()),
            )
            .request_async(&http)
            .await
            .expect("another login");
        revoker
            .revoke_token(StandardRevocableToken::AccessToken(another.access_token().clone()))
            .expect("revocation request")
            .request_async(&loopback)
            .await
            .expect("revoked");
        assert!(!server.is_active(&client, another.access_token().secret()).await);
        assert!(
            server.is_active(&client, refresh_token_of(&another).secret()).await,
            "revoking an access token leaves its refresh token"
        );

        revoker
            .revoke_token(StandardRevocableToken::AccessToken(AccessToken::new(random_token("gho_"))))
            .expect("revocation request")
            .request_async(&loopback)
            .await
            .expect("an unknown token is revoked all the same (RFC 7009 §2.2)");
    }
}
