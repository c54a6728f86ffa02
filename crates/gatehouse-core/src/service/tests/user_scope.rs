//! A user created without a scope is limited by the client alone,
//! a refusal names what limited the scope, and an empty grant is not echoed as `""`.

use super::*;
use crate::user::{User, UserId};

const SECRET: &str = "app-secret-app-secret";
const PASSWORD: &str = "correct horse battery";

/// Client "app" (scope `read write`, password and refresh grants) and user "alice"
/// with `user_scope` (`None`: created without `--scope`).
async fn app_and_alice(user_scope: Option<&str>) -> Fixture {
    let mut app = client("app", SecretHash::sha256(&secret(SECRET)));
    app.grant_types = GrantTypes::parse("client_credentials,password,refresh_token").unwrap();
    let f = fixture(vec![app]);
    f.store
        .insert_user(&User {
            id: UserId("u-alice".into()),
            username: "alice".into(),
            password_hash: SecretHash::argon2id(&secret(PASSWORD), &SystemRandom).unwrap(),
            scope: user_scope.map(|s| Scope::parse(s).unwrap()),
            disabled: false,
            created_at: NOW,
        })
        .await
        .unwrap();
    f
}

async fn login(f: &Fixture, scope: Option<&str>) -> Result<TokenResponse, OAuthError> {
    let mut pairs = vec![
        ("client_id", "app"),
        ("client_secret", SECRET),
        ("grant_type", "password"),
        ("username", "alice"),
        ("password", PASSWORD),
    ];
    pairs.extend(scope.map(|s| ("scope", s)));
    f.service.exchange(request(&pairs)).await
}

fn refusal(outcome: Result<TokenResponse, OAuthError>) -> String {
    match outcome {
        Err(OAuthError::InvalidScope(description)) => description.into_owned(),
        other => panic!("not invalid_scope: {other:?}"),
    }
}

#[tokio::test]
async fn a_user_without_a_scope_gets_what_the_client_may_have() {
    let f = app_and_alice(None).await;
    let full = login(&f, None).await.unwrap();
    assert_eq!(full.scope, "read write");
    assert_eq!(claims(&full.access_token)["scope"], "read write");
    assert_eq!(login(&f, Some("read")).await.unwrap().scope, "read");
    // The refresh is not narrowed by the user either.
    let refresh_token = full.refresh_token.unwrap();
    let refreshed = f
        .service
        .exchange(request(&[
            ("client_id", "app"),
            ("client_secret", SECRET),
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh_token),
        ]))
        .await
        .unwrap();
    assert_eq!(refreshed.scope, "read write");
    assert_eq!(
        refusal(login(&f, Some("read admin")).await),
        "The requested scope exceeds what this client may have: admin."
    );
}

#[tokio::test]
async fn a_refusal_names_the_user_or_the_client() {
    let f = app_and_alice(Some("read orders")).await;
    assert_eq!(login(&f, None).await.unwrap().scope, "read");
    assert_eq!(
        refusal(login(&f, Some("read write")).await),
        "The requested scope exceeds what this user may have: write."
    );
    assert_eq!(
        refusal(login(&f, Some("orders")).await),
        "The requested scope exceeds what this client may have: orders."
    );
}

#[tokio::test]
async fn a_refresh_beyond_the_login_names_the_login() {
    let f = app_and_alice(None).await;
    let read = login(&f, Some("read")).await.unwrap();
    let outcome = f
        .service
        .exchange(request(&[
            ("client_id", "app"),
            ("client_secret", SECRET),
            ("grant_type", "refresh_token"),
            ("refresh_token", &read.refresh_token.unwrap()),
            ("scope", "read write"),
        ]))
        .await;
    assert_eq!(
        refusal(outcome),
        "The requested scope exceeds the scope originally granted: write."
    );
}

#[tokio::test]
async fn an_empty_grant_leaves_scope_out_of_the_response() {
    let mut bare = client("bare", SecretHash::sha256(&secret(SECRET)));
    bare.scope = Scope::default();
    let f = fixture(vec![bare.clone()]);
    let response = f
        .service
        .exchange(request(&[
            ("client_id", "bare"),
            ("client_secret", SECRET),
            ("grant_type", "client_credentials"),
        ]))
        .await
        .unwrap();
    assert_eq!(response.scope, "");
    let body = serde_json::to_value(&response).unwrap();
    assert!(body.get("scope").is_none(), "{body}");
    assert_eq!(body["token_type"], "Bearer");
    let introspection = serde_json::to_value(
        f.service
            .introspect_token(&bare, &response.access_token)
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(introspection["active"], true, "{introspection}");
    assert!(introspection.get("scope").is_none(), "{introspection}");
}
