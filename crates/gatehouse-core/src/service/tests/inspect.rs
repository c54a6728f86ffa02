//! The server's own view of a token (`TokenService::inspect`): introspection's
//! liveness rules, with no client to answer to.

use super::*;
use crate::user::{User, UserId};

const SECRET: &str = "app-secret-app-secret";

/// The client `app` in `format`, a client `other` that may not introspect, and alice.
async fn cast(format: TokenFormat) -> Fixture {
    let mut app = client("app", SecretHash::sha256(&secret(SECRET)));
    app.grant_types = GrantTypes::parse("client_credentials,password,refresh_token").unwrap();
    app.token_format = format;
    let other = client("other", SecretHash::sha256(&secret(SECRET)));
    let f = fixture(vec![app, other]);
    f.store
        .insert_user(&User {
            id: UserId("u-alice".into()),
            username: "alice".into(),
            password_hash: SecretHash::argon2id(&secret("correct horse battery"), &SystemRandom).unwrap(),
            scope: Scope::parse("read").unwrap().into(),
            disabled: false,
            created_at: NOW,
        })
        .await
        .unwrap();
    f
}

/// The access and refresh tokens of alice's login through `app`.
async fn login(f: &Fixture) -> (String, String) {
    let response = f
        .service
        .exchange(request(&[
            ("client_id", "app"),
            ("client_secret", SECRET),
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", "correct horse battery"),
        ]))
        .await
        .unwrap();
    (response.access_token, response.refresh_token.unwrap())
}

#[tokio::test]
async fn the_server_sees_any_active_token_and_its_type() {
    for format in [TokenFormat::Jwt, TokenFormat::Opaque] {
        let f = cast(format).await;
        let (access, refresh) = login(&f).await;

        let seen = f.service.inspect(&access).await.unwrap().unwrap();
        assert_eq!(seen.token_type, "Bearer", "{format:?}");
        assert_eq!(
            (
                seen.client_id.as_str(),
                seen.username.as_deref(),
                seen.sub.as_str()
            ),
            ("app", Some("alice"), "u-alice"),
            "{format:?}"
        );
        assert_eq!((seen.scope.as_str(), seen.iat), ("read", NOW), "{format:?}");

        // No client filter: `other` may not introspect `app`'s token, the server may.
        let other = f
            .store
            .find_client(&ClientId::parse("other").unwrap())
            .await
            .unwrap()
            .unwrap();
        assert!(!f.service.introspect_token(&other, &access).await.unwrap().active);

        // A refresh token is active too, and says what it is.
        let seen = f.service.inspect(&refresh).await.unwrap().unwrap();
        assert_eq!(seen.token_type, "refresh_token", "{format:?}");
        assert_eq!(seen.client_id, "app");

        assert_eq!(f.service.inspect("not a token").await.unwrap(), None);
    }
}

#[tokio::test]
async fn a_revoked_or_expired_token_is_none() {
    for format in [TokenFormat::Jwt, TokenFormat::Opaque] {
        let f = cast(format).await;
        let (access, _) = login(&f).await;
        assert!(f.service.revoke_token(None, &access).await.unwrap());
        assert_eq!(f.service.inspect(&access).await.unwrap(), None, "{format:?}");

        // Revoking the refresh token ends the whole login, access token included.
        let (access, refresh) = login(&f).await;
        assert!(f.service.revoke_token(None, &refresh).await.unwrap());
        assert_eq!(f.service.inspect(&refresh).await.unwrap(), None, "{format:?}");
        assert_eq!(f.service.inspect(&access).await.unwrap(), None, "{format:?}");

        let (access, _) = login(&f).await;
        f.clock.advance(3600);
        assert_eq!(f.service.inspect(&access).await.unwrap(), None, "{format:?}");
    }
}
