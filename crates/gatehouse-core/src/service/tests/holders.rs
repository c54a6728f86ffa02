//! A token lives no longer than its holders: a deleted client, a disabled or deleted
//! user, and a revocation mark end every kind of token at introspection.

use super::*;
use crate::user::{User, UserId};

const SECRET: &str = "app-secret-app-secret";

fn app(format: TokenFormat) -> Client {
    let mut c = client("app", SecretHash::sha256(&secret(SECRET)));
    c.grant_types = GrantTypes::parse("client_credentials,password,refresh_token").unwrap();
    c.token_format = format;
    c
}

/// `app` in `format`, the resource server `rs`, and the user alice.
async fn cast(format: TokenFormat) -> (Fixture, Arc<Client>) {
    let mut rs = client("rs", SecretHash::sha256(&secret(SECRET)));
    rs.can_introspect = true;
    let f = fixture(vec![app(format), rs]);
    f.store
        .insert_user(&User {
            id: UserId("u-alice".into()),
            username: "alice".into(),
            password_hash: SecretHash::argon2id(&secret("correct horse battery"), &SystemRandom).unwrap(),
            scope: Scope::parse("read write").unwrap().into(),
            disabled: false,
            created_at: NOW,
        })
        .await
        .unwrap();
    let rs = f
        .store
        .find_client(&ClientId::parse("rs").unwrap())
        .await
        .unwrap()
        .unwrap();
    (f, rs)
}

/// The access token of a client_credentials grant, and the access and refresh
/// tokens of alice's login.
async fn tokens(f: &Fixture) -> [String; 3] {
    let grant = |pairs: &[(&str, &str)]| {
        let mut all = vec![("client_id", "app"), ("client_secret", SECRET)];
        all.extend_from_slice(pairs);
        f.service.exchange(request(&all))
    };
    let machine = grant(&[("grant_type", "client_credentials")]).await.unwrap();
    let login = grant(&[
        ("grant_type", "password"),
        ("username", "alice"),
        ("password", "correct horse battery"),
    ])
    .await
    .unwrap();
    [
        machine.access_token,
        login.access_token,
        login.refresh_token.unwrap(),
    ]
}

/// Which of `tokens` the resource server sees active.
async fn active(f: &Fixture, rs: &Client, tokens: &[String]) -> Vec<bool> {
    let mut seen = Vec::new();
    for token in tokens {
        seen.push(f.service.introspect_token(rs, token).await.unwrap().active);
    }
    seen
}

#[tokio::test]
async fn a_deleted_client_s_tokens_are_inactive() {
    for format in [TokenFormat::Jwt, TokenFormat::Opaque] {
        let (f, rs) = cast(format).await;
        let tokens = tokens(&f).await;
        assert_eq!(active(&f, &rs, &tokens).await, [true; 3], "{format:?}");
        f.store.forget_client(&ClientId::parse("app").unwrap());
        assert_eq!(active(&f, &rs, &tokens).await, [false; 3], "{format:?}");
    }
}

#[tokio::test]
async fn a_client_mark_ends_the_tokens_issued_up_to_its_second() {
    for format in [TokenFormat::Jwt, TokenFormat::Opaque] {
        let (f, rs) = cast(format).await;
        let tokens = tokens(&f).await;
        f.store.mark("client", "app", NOW - 1);
        assert_eq!(
            active(&f, &rs, &tokens).await,
            [true; 3],
            "{format:?}: an earlier mark"
        );
        f.store.mark("client", "app", NOW);
        assert_eq!(
            active(&f, &rs, &tokens).await,
            [false; 3],
            "{format:?}: a mark in the same second"
        );
        f.clock.advance(1);
        let later = self::tokens(&f).await;
        assert_eq!(
            active(&f, &rs, &later).await,
            [true; 3],
            "{format:?}: tokens after the mark"
        );
    }
}

#[tokio::test]
async fn a_disabled_or_deleted_user_s_tokens_are_inactive() {
    for format in [TokenFormat::Jwt, TokenFormat::Opaque] {
        let (f, rs) = cast(format).await;
        let [machine, access, refresh] = tokens(&f).await;
        f.store.disable_user("alice", NOW).await.unwrap();
        assert_eq!(
            active(&f, &rs, &[machine.clone(), access.clone(), refresh.clone()]).await,
            [true, false, false],
            "{format:?}: disabled; the client's own token stays"
        );
        f.store.delete_user("alice", NOW).await.unwrap();
        assert_eq!(
            active(&f, &rs, &[machine, access, refresh]).await,
            [true, false, false],
            "{format:?}: deleted"
        );
    }
}

#[tokio::test]
async fn a_user_mark_outlives_the_user_being_enabled_again() {
    let (f, rs) = cast(TokenFormat::Jwt).await;
    let [_, access, refresh] = tokens(&f).await;
    f.store.disable_user("alice", NOW).await.unwrap();
    f.store.user_mut("alice", |u| u.disabled = false);
    assert_eq!(active(&f, &rs, &[access, refresh]).await, [false, false]);
    f.clock.advance(1);
    let [_, access, refresh] = tokens(&f).await;
    assert_eq!(active(&f, &rs, &[access, refresh]).await, [true, true]);
}
