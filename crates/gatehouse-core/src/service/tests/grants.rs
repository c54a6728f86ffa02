//! The password grant and the refresh token family state machine (RFC 6749 §4.3, §6;
//! RFC 9700 §4.14.2), on a fixed clock.

use super::*;
use crate::user::{User, UserId};

const SECRET: &str = "app-secret-app-secret";

fn app(format: TokenFormat) -> Client {
    let mut c = client("app", SecretHash::sha256(&secret(SECRET)));
    c.grant_types = GrantTypes::parse("client_credentials,password,refresh_token").unwrap();
    c.refresh_token_ttl = Some(600);
    c.token_format = format;
    c
}

async fn with_alice(format: TokenFormat) -> Fixture {
    let f = fixture(vec![app(format)]);
    let password = secret("correct horse battery");
    f.store
        .insert_user(&User {
            id: UserId("u-alice".into()),
            username: "alice".into(),
            password_hash: SecretHash::argon2id(&password, &SystemRandom).unwrap(),
            scope: Some(Scope::parse("read write").unwrap()),
            disabled: false,
            created_at: NOW,
        })
        .await
        .unwrap();
    f
}

fn auth(pairs: &[(&str, &str)]) -> TokenRequest {
    let mut all = vec![("client_id", "app"), ("client_secret", SECRET)];
    all.extend_from_slice(pairs);
    request(&all)
}

async fn login(f: &Fixture) -> TokenResponse {
    f.service
        .exchange(auth(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", "correct horse battery"),
        ]))
        .await
        .unwrap()
}

async fn refresh(f: &Fixture, token: &str, scope: Option<&str>) -> Result<TokenResponse, OAuthError> {
    let mut pairs = vec![("grant_type", "refresh_token"), ("refresh_token", token)];
    if let Some(scope) = scope {
        pairs.push(("scope", scope));
    }
    f.service.exchange(auth(&pairs)).await
}

async fn active(f: &Fixture, token: &str) -> bool {
    let resource_server = f
        .store
        .find_client(&ClientId::parse("app").unwrap())
        .await
        .unwrap()
        .unwrap();
    f.service
        .introspect_token(&resource_server, token)
        .await
        .unwrap()
        .active
}

#[tokio::test]
async fn password_login_issues_a_user_token_and_a_refresh_token() {
    let f = with_alice(TokenFormat::Jwt).await;
    let response = login(&f).await;
    let refresh_token = response.refresh_token.unwrap();
    assert!(refresh_token.starts_with("ghr_") && refresh_token.len() == 47);
    let c = claims(&response.access_token);
    assert_eq!(c["sub"], "u-alice");
    assert_eq!(c["username"], "alice");
    assert!(c["sid"].is_string());
    assert_eq!(response.scope, "read write");
}

#[tokio::test]
async fn wrong_password_unknown_and_disabled_users_are_one_error() {
    let f = with_alice(TokenFormat::Jwt).await;
    let attempt = |user: &'static str, password: &'static str| {
        f.service.exchange(auth(&[
            ("grant_type", "password"),
            ("username", user),
            ("password", password),
        ]))
    };
    let wrong = attempt("alice", "wrong").await.unwrap_err();
    let unknown = attempt("bob", "correct horse battery").await.unwrap_err();
    f.store.user_mut("alice", |u| u.disabled = true);
    let disabled = attempt("alice", "correct horse battery").await.unwrap_err();
    assert_eq!(wrong.code(), "invalid_grant");
    // What the server's login brake counts, and nothing else is.
    assert_eq!(wrong, OAuthError::LoginFailed);
    assert_eq!(wrong, unknown);
    assert_eq!(wrong, disabled);
}

#[tokio::test]
async fn every_refresh_rotates_and_the_old_token_stops_working() {
    let f = with_alice(TokenFormat::Jwt).await;
    let first = login(&f).await.refresh_token.unwrap();
    let second = refresh(&f, &first, None).await.unwrap().refresh_token.unwrap();
    assert_ne!(first, second);
    let third = refresh(&f, &second, None).await.unwrap().refresh_token.unwrap();
    assert!(active(&f, &third).await);
    assert!(!active(&f, &second).await);
    assert_eq!(f.store.refresh_rows(), 3);
}

#[tokio::test]
async fn a_reused_token_revokes_the_whole_family() {
    let f = with_alice(TokenFormat::Jwt).await;
    let login = login(&f).await;
    let first = login.refresh_token.unwrap();
    let rotated = refresh(&f, &first, None).await.unwrap();
    let second = rotated.refresh_token.unwrap();

    let reuse = refresh(&f, &first, None).await.unwrap_err();
    assert_eq!(reuse.code(), "invalid_grant");
    // The thief's copy and the legitimate successor die together, with their
    // access tokens.
    assert_eq!(
        refresh(&f, &second, None).await.unwrap_err().code(),
        "invalid_grant"
    );
    assert!(!active(&f, &login.access_token).await);
    assert!(!active(&f, &rotated.access_token).await);
}

#[tokio::test]
async fn scope_may_narrow_never_widen() {
    let f = with_alice(TokenFormat::Jwt).await;
    let first = login(&f).await.refresh_token.unwrap();
    let narrowed = refresh(&f, &first, Some("read")).await.unwrap();
    assert_eq!(narrowed.scope, "read");
    // Omitted again: the originally granted scope comes back.
    let full = refresh(&f, narrowed.refresh_token.as_deref().unwrap(), None)
        .await
        .unwrap();
    assert_eq!(full.scope, "read write");
    // Wider is refused, and the refused token still works (the rotation rolled back).
    let latest = full.refresh_token.unwrap();
    assert_eq!(
        refresh(&f, &latest, Some("read admin")).await.unwrap_err().code(),
        "invalid_scope"
    );
    assert!(refresh(&f, &latest, None).await.is_ok());
}

#[tokio::test]
async fn expired_refresh_tokens_and_disabled_users_do_not_refresh() {
    let f = with_alice(TokenFormat::Jwt).await;
    let first = login(&f).await.refresh_token.unwrap();
    f.clock.advance(601);
    assert_eq!(
        refresh(&f, &first, None).await.unwrap_err().code(),
        "invalid_grant"
    );

    let f = with_alice(TokenFormat::Jwt).await;
    let first = login(&f).await.refresh_token.unwrap();
    f.store.user_mut("alice", |u| u.disabled = true);
    assert_eq!(
        refresh(&f, &first, None).await.unwrap_err().code(),
        "invalid_grant"
    );
    f.store.user_mut("alice", |u| u.disabled = false);
    assert!(
        refresh(&f, &first, None).await.is_ok(),
        "a refused refresh leaves the token usable"
    );
}

#[tokio::test]
async fn a_refresh_token_works_only_for_its_client() {
    let mut other = client("other", SecretHash::sha256(&secret(SECRET)));
    other.grant_types = GrantTypes::parse("refresh_token").unwrap();
    let f = with_alice(TokenFormat::Jwt).await;
    f.store.add_client(other);
    let first = login(&f).await.refresh_token.unwrap();
    let stolen = request(&[
        ("client_id", "other"),
        ("client_secret", SECRET),
        ("grant_type", "refresh_token"),
        ("refresh_token", &first),
    ]);
    assert_eq!(
        f.service.exchange(stolen).await.unwrap_err().code(),
        "invalid_grant"
    );
    assert!(refresh(&f, &first, None).await.is_ok());
}

#[tokio::test]
async fn opaque_tokens_introspect_and_revoke() {
    let f = with_alice(TokenFormat::Opaque).await;
    let login = login(&f).await;
    assert!(login.access_token.starts_with("gho_"));
    assert!(active(&f, &login.access_token).await);
    let app = f
        .store
        .find_client(&ClientId::parse("app").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(f
        .service
        .revoke_token(Some(&app), &login.access_token)
        .await
        .unwrap());
    assert!(!active(&f, &login.access_token).await);
    // The refresh token is a separate matter: revoking it ends the login.
    let refresh_token = login.refresh_token.unwrap();
    assert!(active(&f, &refresh_token).await);
    assert!(f.service.revoke_token(None, &refresh_token).await.unwrap());
    assert!(!active(&f, &refresh_token).await);
}

#[tokio::test]
async fn revoked_client_credentials_jwt_is_inactive_and_others_are_refused() {
    let f = with_alice(TokenFormat::Jwt).await;
    let token = f
        .service
        .exchange(auth(&[("grant_type", "client_credentials")]))
        .await
        .unwrap()
        .access_token;
    assert!(active(&f, &token).await);
    let mut other = client("other", SecretHash::sha256(&secret(SECRET)));
    other.can_introspect = true;
    f.store.add_client(other.clone());
    let other = Arc::new(other);
    assert_eq!(
        f.service
            .revoke_token(Some(&other), &token)
            .await
            .unwrap_err()
            .code(),
        "unauthorized_client"
    );
    assert!(active(&f, &token).await);
    assert!(f.service.revoke_token(None, &token).await.unwrap());
    assert!(!f.service.introspect_token(&other, &token).await.unwrap().active);
    // Garbage and tampered tokens are simply inactive.
    assert!(!active(&f, "garbage").await);
    let tampered = format!("{}x", &token[..token.len() - 1]);
    assert!(!active(&f, &tampered).await);
}

fn client_credentials_at_route(refresh_on_client_credentials: bool) -> TokenRequest {
    let params = Params::new(vec![
        ("client_id".into(), "app".into()),
        ("client_secret".into(), SECRET.into()),
    ])
    .unwrap();
    let options = TokenOptions {
        default_grant_type: Some(GrantType::ClientCredentials),
        refresh_on_client_credentials,
    };
    TokenRequest::parse(params, None, &options).unwrap()
}

#[tokio::test]
async fn a_route_may_give_client_credentials_a_refresh_token() {
    let f = with_alice(TokenFormat::Jwt).await;
    let standard = f
        .service
        .exchange(auth(&[("grant_type", "client_credentials")]))
        .await;
    assert!(standard.unwrap().refresh_token.is_none(), "RFC 6749 §4.4.3");
    let plain_route = f.service.exchange(client_credentials_at_route(false)).await;
    assert!(plain_route.unwrap().refresh_token.is_none());

    let first = f
        .service
        .exchange(client_credentials_at_route(true))
        .await
        .unwrap();
    let refresh_token = first.refresh_token.clone().expect("a refresh token");
    let sid = claims(&first.access_token)["sid"].clone();
    assert!(sid.is_string(), "the access token names its login");
    assert_eq!(claims(&first.access_token)["sub"], "app");

    // It refreshes like a login's token: rotation, the client as subject.
    let second = refresh(&f, &refresh_token, None).await.unwrap();
    assert_eq!(claims(&second.access_token)["sub"], "app");
    assert_eq!(claims(&second.access_token)["sid"], sid);
    assert_eq!(second.scope, "read write");
    assert_eq!(
        refresh(&f, &refresh_token, None).await.unwrap_err().code(),
        "invalid_grant"
    );
    // The reuse revoked the login, and with it the access tokens it carried.
    assert!(!active(&f, &second.access_token).await);
}

#[tokio::test]
async fn no_refresh_token_for_a_client_that_cannot_refresh() {
    let mut c = app(TokenFormat::Jwt);
    c.grant_types = GrantTypes::parse("client_credentials").unwrap();
    let f = fixture(vec![c]);
    let response = f
        .service
        .exchange(client_credentials_at_route(true))
        .await
        .unwrap();
    assert!(response.refresh_token.is_none());
    assert!(claims(&response.access_token).get("sid").is_none());
}

/// A revocation or introspection request as the HTTP layer parses it.
fn token_params(pairs: &[(&str, &str)]) -> crate::request::Params {
    Params::new(
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
    )
    .unwrap()
}

#[tokio::test]
async fn revocation_and_introspection_authenticate_the_client_themselves() {
    use crate::{IntrospectionRequest, RevocationRequest};
    let f = with_alice(TokenFormat::Opaque).await;
    let token = login(&f).await.access_token;
    let introspect = |client_id: Option<&str>, secret: &str| {
        let mut pairs = vec![("token", token.as_str())];
        if let Some(client_id) = client_id {
            pairs.extend([("client_id", client_id), ("client_secret", secret)]);
        }
        f.service
            .introspect(IntrospectionRequest::parse(token_params(&pairs), None).unwrap())
    };
    assert_eq!(
        introspect(Some("app"), "wrong").await.unwrap_err().code(),
        "invalid_client"
    );
    assert_eq!(introspect(None, "").await.unwrap_err().code(), "invalid_client");
    assert!(introspect(Some("app"), SECRET).await.unwrap().active);

    let wrong = token_params(&[
        ("token", &token),
        ("client_id", "app"),
        ("client_secret", "wrong"),
    ]);
    let wrong = RevocationRequest::parse(wrong, None).unwrap();
    assert_eq!(
        f.service.revoke(wrong).await.unwrap_err().code(),
        "invalid_client"
    );
    assert!(
        active(&f, &token).await,
        "a failed authentication revokes nothing"
    );
    // Without credentials, the holder of the token gives it up.
    let holder = RevocationRequest::parse(token_params(&[("token", &token)]), None).unwrap();
    assert!(f.service.revoke(holder).await.unwrap());
    assert!(!active(&f, &token).await);
}
