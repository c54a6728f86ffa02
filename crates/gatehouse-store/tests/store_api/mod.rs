//! The SQL store's own methods beyond the storage traits (those the admin API and
//! dynamic client registration use), on both backends: [`store_api_tests!`] makes one
//! test of each case for a store, as `store_conformance_tests!` does for the traits.
//! Each case reads back what was written through the store, and the change feed.

use gatehouse_core::store::{ChangeFeed, ClientLookup, ClientStore, TokenStore, UserStore};
use gatehouse_core::tokens::{NewFamily, NewOpaqueToken, NewRefreshToken, TokenDigest};
use gatehouse_core::user::{User, UserId};
use gatehouse_core::{
    Client, ClientId, ClientSecret, GrantTypes, PreviousSecret, Scope, SecretHash, StoreError, TokenFormat,
    UnixTime,
};
use gatehouse_store::{ClientChanges, SqlStore, UserChanges};

mod authn;
pub use authn::*;

/// The time the cases start at.
const NOW: UnixTime = 1_800_000_000;

/// Makes one `#[tokio::test]` per case, each on a store of its own from `$open`.
macro_rules! store_api_tests {
    ($open:path) => {
        store_api_tests!(@cases $open;
            client_pages_follow_the_ids,
            user_pages_follow_the_names,
            revoking_a_clients_tokens_marks_it_and_revokes_its_logins_and_opaque_tokens,
            revoking_a_users_tokens_marks_them_and_revokes_their_logins_and_opaque_tokens,
            revoking_the_tokens_of_an_unknown_holder_writes_nothing,
            a_registered_client_keeps_its_registration_token_hash,
            client_changes_replace_format_secret_and_registration_token,
            user_changes_disable_and_enable_with_the_other_changes,
            a_registered_client_keeps_its_authentication_settings_in_pages,
            client_changes_set_and_clear_authentication_settings,
        );
    };
    (@cases $open:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let Some(store) = $open().await else { return };
                $crate::store_api::$case(&store).await;
            }
        )*
    };
}

fn id(text: &str) -> ClientId {
    ClientId::parse(text).unwrap()
}

fn hash(secret: &str) -> SecretHash {
    SecretHash::sha256(&ClientSecret::new(secret.to_owned()))
}

fn client(name: &str) -> Client {
    Client {
        id: id(name),
        name: format!("the {name} client"),
        secret_hash: hash(&format!("{name}-secret-{name}-secret")),
        previous_secret: None,
        scope: Scope::parse("read write").unwrap(),
        grant_types: GrantTypes::parse("client_credentials,password,refresh_token").unwrap(),
        audience: None,
        access_token_ttl: None,
        refresh_token_ttl: None,
        token_format: TokenFormat::Jwt,
        can_introspect: false,
        auth: Default::default(),
        registered: false,
        created_at: NOW,
    }
}

fn user(name: &str) -> User {
    User {
        id: UserId(format!("u-{name}")),
        username: name.into(),
        password_hash: hash("not a real password hash"),
        scope: None,
        disabled: false,
        created_at: NOW,
    }
}

fn opaque(name: &str, client_id: &str, family: Option<&str>, user: Option<&User>) -> NewOpaqueToken {
    NewOpaqueToken {
        digest: TokenDigest::of(name),
        jti: format!("jti-{name}"),
        family_id: family.map(str::to_owned),
        client_id: id(client_id),
        subject: user.map_or_else(|| client_id.to_owned(), |u| u.id.0.clone()),
        username: user.map(|u| u.username.clone()),
        scope: Scope::parse("read").unwrap(),
        audience: "https://api.test".into(),
        issued_at: NOW,
        expires_at: NOW + 600,
        cnf: None,
    }
}

/// Starts the login `family` of `user` (or of the client alone) through `client_id`,
/// with the refresh token `{family}-r` and the opaque access token `{family}-o`.
async fn log_in(store: &SqlStore, family: &str, client_id: &str, user: Option<&User>) {
    let login = NewFamily {
        family_id: family.into(),
        client_id: id(client_id),
        user_id: user.map(|u| u.id.0.clone()),
        scope: Scope::parse("read").unwrap(),
        created_at: NOW,
    };
    let refresh = NewRefreshToken {
        digest: TokenDigest::of(&format!("{family}-r")),
        family_id: family.into(),
        client_id: id(client_id),
        issued_at: NOW,
        expires_at: NOW + 600,
    };
    let access = opaque(&format!("{family}-o"), client_id, Some(family), user);
    store.start_login(&login, &refresh, Some(&access)).await.unwrap();
}

/// When the login `family` was revoked, `None` if live.
async fn login_revoked_at(store: &SqlStore, family: &str) -> Option<UnixTime> {
    let view = store
        .find_refresh(&TokenDigest::of(&format!("{family}-r")))
        .await
        .unwrap();
    view.unwrap().token.login_revoked_at
}

/// When the opaque access token `name` was revoked, `None` if live.
async fn opaque_revoked_at(store: &SqlStore, name: &str) -> Option<UnixTime> {
    store
        .find_opaque(&TokenDigest::of(name))
        .await
        .unwrap()
        .unwrap()
        .revoked_at
}

/// The revocation marks of the client `client_id` and the user id `user_id`.
async fn marks(store: &SqlStore, client_id: &str, user_id: &str) -> (Option<UnixTime>, Option<UnixTime>) {
    let state = store
        .jwt_state("some-jti", None, client_id, Some(user_id))
        .await
        .unwrap();
    (
        state.holders.client_revoked_at,
        state.holders.user.unwrap().revoked_at,
    )
}

fn client_ids(clients: &[Client]) -> Vec<&str> {
    clients.iter().map(|c| c.id.as_str()).collect()
}

fn usernames(users: &[User]) -> Vec<&str> {
    users.iter().map(|u| u.username.as_str()).collect()
}

pub async fn client_pages_follow_the_ids(store: &SqlStore) {
    assert!(
        store.list_clients_page(None, 10).await.unwrap().is_empty(),
        "no clients yet"
    );
    // Inserted out of order; "B" < "a" < "a b" < "ab" in byte order.
    for name in ["ab", "a", "c", "B", "a b", "d"] {
        store.insert_client(&client(name)).await.unwrap();
    }
    let first = store.list_clients_page(None, 3).await.unwrap();
    assert_eq!(client_ids(&first), ["B", "a", "a b"]);
    assert_eq!(first[0], client("B"), "a page holds the whole client");
    let second = store.list_clients_page(Some(&id("a b")), 3).await.unwrap();
    assert_eq!(client_ids(&second), ["ab", "c", "d"]);
    // Six clients in pages of three: the page after the last is empty.
    assert!(store
        .list_clients_page(Some(&id("d")), 3)
        .await
        .unwrap()
        .is_empty());
    // `after` need not exist: the page starts at the next id.
    let after_missing = store.list_clients_page(Some(&id("b")), 10).await.unwrap();
    assert_eq!(client_ids(&after_missing), ["c", "d"]);
    let all = store.list_clients_page(None, 100).await.unwrap();
    assert_eq!(client_ids(&all), ["B", "a", "a b", "ab", "c", "d"]);
    assert!(store
        .list_clients_page(Some(&id("zz")), 100)
        .await
        .unwrap()
        .is_empty());
}

pub async fn user_pages_follow_the_names(store: &SqlStore) {
    assert!(
        store.list_users_page(None, 10).await.unwrap().is_empty(),
        "no users yet"
    );
    for name in ["carol", "Alice", "bob", "alice"] {
        store.insert_user(&user(name)).await.unwrap();
    }
    let first = store.list_users_page(None, 2).await.unwrap();
    assert_eq!(usernames(&first), ["Alice", "alice"]);
    assert_eq!(first[1], user("alice"), "a page holds the whole user");
    let second = store.list_users_page(Some("alice"), 2).await.unwrap();
    assert_eq!(usernames(&second), ["bob", "carol"]);
    assert!(store.list_users_page(Some("carol"), 2).await.unwrap().is_empty());
    assert_eq!(
        usernames(&store.list_users_page(Some("b"), 10).await.unwrap()),
        ["bob", "carol"]
    );
    assert_eq!(
        usernames(&store.list_users_page(Some("alicia"), 1).await.unwrap()),
        ["bob"]
    );
}

pub async fn revoking_a_clients_tokens_marks_it_and_revokes_its_logins_and_opaque_tokens(store: &SqlStore) {
    store.insert_client(&client("app")).await.unwrap();
    store.insert_client(&client("other")).await.unwrap();
    let alice = user("alice");
    store.insert_user(&alice).await.unwrap();
    log_in(store, "app-alice", "app", Some(&alice)).await;
    log_in(store, "app-own", "app", None).await;
    log_in(store, "other-alice", "other", Some(&alice)).await;
    store
        .insert_opaque(&opaque("app-cc", "app", None, None))
        .await
        .unwrap();
    // A login revoked before keeps its time.
    store.revoke_family("app-own", NOW + 1).await.unwrap();
    let feed = store.latest_change().await.unwrap();

    assert!(store.revoke_client_tokens(&id("app"), NOW + 5).await.unwrap());
    assert_eq!(marks(store, "app", "u-alice").await, (Some(NOW + 5), None));
    assert_eq!(login_revoked_at(store, "app-alice").await, Some(NOW + 5));
    assert_eq!(login_revoked_at(store, "app-own").await, Some(NOW + 1));
    for token in ["app-alice-o", "app-own-o", "app-cc"] {
        assert_eq!(opaque_revoked_at(store, token).await, Some(NOW + 5), "{token}");
    }
    // Another client's tokens, of the same user, live on.
    assert_eq!(marks(store, "other", "u-alice").await, (None, None));
    assert_eq!(login_revoked_at(store, "other-alice").await, None);
    assert_eq!(opaque_revoked_at(store, "other-alice-o").await, None);
    assert_eq!(
        store.latest_change().await.unwrap(),
        feed,
        "the client did not change"
    );

    // The mark never moves back: an earlier time leaves it, a later one raises it.
    assert!(store.revoke_client_tokens(&id("app"), NOW + 2).await.unwrap());
    assert_eq!(marks(store, "app", "u-alice").await.0, Some(NOW + 5));
    assert!(store.revoke_client_tokens(&id("app"), NOW + 9).await.unwrap());
    assert_eq!(marks(store, "app", "u-alice").await.0, Some(NOW + 9));
    assert_eq!(
        login_revoked_at(store, "app-alice").await,
        Some(NOW + 5),
        "revoked once"
    );
}

pub async fn revoking_a_users_tokens_marks_them_and_revokes_their_logins_and_opaque_tokens(store: &SqlStore) {
    store.insert_client(&client("app")).await.unwrap();
    store.insert_client(&client("other")).await.unwrap();
    let (alice, bob) = (user("alice"), user("bob"));
    store.insert_user(&alice).await.unwrap();
    store.insert_user(&bob).await.unwrap();
    log_in(store, "app-alice", "app", Some(&alice)).await;
    log_in(store, "other-alice", "other", Some(&alice)).await;
    log_in(store, "app-bob", "app", Some(&bob)).await;
    log_in(store, "app-own", "app", None).await;
    // A client whose id is the user's id: its own tokens are not the user's.
    store.insert_client(&client("u-alice")).await.unwrap();
    store
        .insert_opaque(&opaque("lookalike", "u-alice", None, None))
        .await
        .unwrap();

    assert!(store.revoke_user_tokens("alice", NOW + 5).await.unwrap());
    assert_eq!(marks(store, "app", "u-alice").await, (None, Some(NOW + 5)));
    for login in ["app-alice", "other-alice"] {
        assert_eq!(login_revoked_at(store, login).await, Some(NOW + 5), "{login}");
        assert_eq!(
            opaque_revoked_at(store, &format!("{login}-o")).await,
            Some(NOW + 5),
            "{login}"
        );
    }
    for login in ["app-bob", "app-own"] {
        assert_eq!(login_revoked_at(store, login).await, None, "{login}");
        assert_eq!(
            opaque_revoked_at(store, &format!("{login}-o")).await,
            None,
            "{login}"
        );
    }
    assert_eq!(opaque_revoked_at(store, "lookalike").await, None);
    assert_eq!(marks(store, "app", "u-bob").await, (None, None));
    let alice_now = store.find_user("alice").await.unwrap().unwrap();
    assert!(!alice_now.disabled, "the user stays enabled");

    assert!(store.revoke_user_tokens("alice", NOW + 3).await.unwrap());
    assert_eq!(
        marks(store, "app", "u-alice").await.1,
        Some(NOW + 5),
        "a mark never moves back"
    );
}

pub async fn revoking_the_tokens_of_an_unknown_holder_writes_nothing(store: &SqlStore) {
    let feed = store.latest_change().await.unwrap();
    assert!(!store.revoke_client_tokens(&id("ghost"), NOW).await.unwrap());
    assert!(!store.revoke_user_tokens("ghost", NOW).await.unwrap());
    assert_eq!(marks(store, "ghost", "ghost").await, (None, None));
    // A deleted client keeps its mark as it was.
    store.insert_client(&client("gone")).await.unwrap();
    store.delete_client(&id("gone"), NOW + 1).await.unwrap();
    assert!(!store.revoke_client_tokens(&id("gone"), NOW + 7).await.unwrap());
    assert_eq!(marks(store, "gone", "ghost").await.0, Some(NOW + 1));
    assert_eq!(
        store.latest_change().await.unwrap(),
        feed + 2,
        "the insert and the delete only"
    );
}

pub async fn a_registered_client_keeps_its_registration_token_hash(store: &SqlStore) {
    let token = hash("ghm_the-registration-access-token");
    let feed = store.latest_change().await.unwrap();
    store.register_client(&client("dyn"), &token).await.unwrap();
    assert_eq!(
        store.latest_change().await.unwrap(),
        feed + 1,
        "recorded as any new client"
    );
    assert_eq!(
        store.registration_token(&id("dyn")).await.unwrap(),
        Some(token.clone())
    );
    // Read back as registered, whatever the client given said.
    assert_eq!(
        store.find_client(&id("dyn")).await.unwrap().as_deref(),
        Some(&Client {
            registered: true,
            ..client("dyn")
        })
    );
    // Not registered over RFC 7591, or no such client.
    store.insert_client(&client("cli")).await.unwrap();
    assert!(!store.find_client(&id("cli")).await.unwrap().unwrap().registered);
    assert_eq!(store.registration_token(&id("cli")).await.unwrap(), None);
    assert_eq!(store.registration_token(&id("ghost")).await.unwrap(), None);
    // A taken id is a conflict, whichever way either was made.
    for taken in ["dyn", "cli"] {
        let err = store
            .register_client(&client(taken), &hash("another-token-value"))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{taken}: {err:?}");
    }
    assert_eq!(store.registration_token(&id("dyn")).await.unwrap(), Some(token));
    assert_eq!(store.registration_token(&id("cli")).await.unwrap(), None);
    // An id deleted and registered again: its predecessor's tokens stay dead, as for
    // any re-created client.
    store.delete_client(&id("dyn"), NOW + 10).await.unwrap();
    let again = Client {
        created_at: NOW + 20,
        ..client("dyn")
    };
    store
        .register_client(&again, &hash("a-third-token-value"))
        .await
        .unwrap();
    assert_eq!(marks(store, "dyn", "ghost").await.0, Some(NOW + 19));
    assert!(store.delete_client(&id("dyn"), NOW + 30).await.unwrap());
    assert_eq!(store.registration_token(&id("dyn")).await.unwrap(), None);
}

pub async fn client_changes_replace_format_secret_and_registration_token(store: &SqlStore) {
    store
        .register_client(&client("app"), &hash("first-registration-token"))
        .await
        .unwrap();
    store
        .replace_secret(&id("app"), &hash("second-secret-value"), Some(NOW + 100), NOW + 1)
        .await
        .unwrap();
    let before = store.find_client(&id("app")).await.unwrap().unwrap();
    assert!(before.previous_secret.is_some(), "a grace period to clear");

    // Nothing new: the new members are left as they are.
    let renamed = ClientChanges {
        name: Some("renamed".into()),
        ..ClientChanges::default()
    };
    let after = store
        .update_client(&id("app"), &renamed, NOW + 2)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        after,
        Client {
            name: "renamed".into(),
            ..(*before).clone()
        }
    );
    assert_eq!(
        store.registration_token(&id("app")).await.unwrap(),
        Some(hash("first-registration-token"))
    );

    let feed = store.latest_change().await.unwrap();
    let changes = ClientChanges {
        token_format: Some(TokenFormat::Opaque),
        secret_hash: Some(hash("third-secret-value")),
        registration_token_hash: Some(hash("second-registration-token")),
        ..ClientChanges::default()
    };
    let after = store
        .update_client(&id("app"), &changes, NOW + 3)
        .await
        .unwrap()
        .unwrap();
    let expected = Client {
        token_format: TokenFormat::Opaque,
        secret_hash: hash("third-secret-value"),
        previous_secret: None,
        name: "renamed".into(),
        ..(*before).clone()
    };
    assert_eq!(after, expected);
    assert_eq!(
        store.find_client(&id("app")).await.unwrap().as_deref(),
        Some(&expected)
    );
    assert_eq!(
        store.registration_token(&id("app")).await.unwrap(),
        Some(hash("second-registration-token"))
    );
    assert_eq!(
        store.latest_change().await.unwrap(),
        feed + 1,
        "recorded for the caches"
    );

    // Conditional on the registration token: the update made with the token that
    // was just replaced changes nothing, the one with the current token goes in.
    let stale = ClientChanges {
        name: Some("stale".into()),
        registration_token_hash: Some(hash("third-registration-token")),
        if_registration_token: Some(hash("first-registration-token")),
        ..ClientChanges::default()
    };
    assert!(store
        .update_client(&id("app"), &stale, NOW + 3)
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        store.registration_token(&id("app")).await.unwrap(),
        Some(hash("second-registration-token")),
        "a stale token changed nothing"
    );
    let current = ClientChanges {
        if_registration_token: Some(hash("second-registration-token")),
        ..stale
    };
    let after = store
        .update_client(&id("app"), &current, NOW + 3)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.name, "stale");
    assert_eq!(
        store.registration_token(&id("app")).await.unwrap(),
        Some(hash("third-registration-token"))
    );
    let renamed_back = ClientChanges {
        name: Some("renamed".into()),
        ..ClientChanges::default()
    };
    store
        .update_client(&id("app"), &renamed_back, NOW + 3)
        .await
        .unwrap();

    // A new secret without a grace period in place, and a client made by the CLI.
    store.insert_client(&client("cli")).await.unwrap();
    let changes = ClientChanges {
        secret_hash: Some(hash("fourth-secret-value")),
        ..ClientChanges::default()
    };
    let after = store
        .update_client(&id("cli"), &changes, NOW + 4)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.secret_hash, hash("fourth-secret-value"));
    assert_eq!(after.previous_secret, None::<PreviousSecret>);
    assert_eq!(store.registration_token(&id("cli")).await.unwrap(), None);
    assert!(store
        .update_client(&id("ghost"), &changes, NOW)
        .await
        .unwrap()
        .is_none());
}

pub async fn user_changes_disable_and_enable_with_the_other_changes(store: &SqlStore) {
    store.insert_client(&client("app")).await.unwrap();
    let alice = user("alice");
    store.insert_user(&alice).await.unwrap();
    log_in(store, "before", "app", Some(&alice)).await;

    // Disabling, with a new password and scope, in one call: the mark as disable_user
    // writes it; the login is refused by rotation, not revoked.
    let changes = UserChanges {
        password_hash: Some(hash("a new password hash")),
        scope: Some(Some(Scope::parse("read").unwrap())),
        disabled: Some(true),
    };
    let now = store
        .update_user("alice", &changes, NOW + 5)
        .await
        .unwrap()
        .unwrap();
    let expected = User {
        password_hash: hash("a new password hash"),
        scope: Some(Scope::parse("read").unwrap()),
        disabled: true,
        ..alice.clone()
    };
    assert_eq!(now, expected);
    assert_eq!(store.find_user("alice").await.unwrap(), Some(expected.clone()));
    assert_eq!(marks(store, "app", "u-alice").await.1, Some(NOW + 5));
    assert_eq!(login_revoked_at(store, "before").await, None);

    // Disabled again: the mark moves on, as disable_user's does.
    let disable = UserChanges {
        disabled: Some(true),
        ..UserChanges::default()
    };
    store
        .update_user("alice", &disable, NOW + 6)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(marks(store, "app", "u-alice").await.1, Some(NOW + 6));

    // Enabling revokes the logins from before, in the same call as the scope change.
    let changes = UserChanges {
        scope: Some(None),
        disabled: Some(false),
        ..UserChanges::default()
    };
    let now = store
        .update_user("alice", &changes, NOW + 8)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        now,
        User {
            scope: None,
            disabled: false,
            ..expected.clone()
        }
    );
    assert_eq!(login_revoked_at(store, "before").await, Some(NOW + 8));
    assert_eq!(
        marks(store, "app", "u-alice").await.1,
        Some(NOW + 6),
        "enabling leaves the mark"
    );

    // Enabling an enabled user changes nothing: a login made since lives on.
    log_in(store, "after", "app", Some(&alice)).await;
    let enable = UserChanges {
        disabled: Some(false),
        ..UserChanges::default()
    };
    let now = store
        .update_user("alice", &enable, NOW + 9)
        .await
        .unwrap()
        .unwrap();
    assert!(!now.disabled);
    assert_eq!(login_revoked_at(store, "after").await, None);

    // No such user: nothing written.
    assert!(store
        .update_user("ghost", &disable, NOW + 10)
        .await
        .unwrap()
        .is_none());
    let ghost = store
        .jwt_state("jti", None, "app", Some("u-ghost"))
        .await
        .unwrap();
    assert_eq!(ghost.holders.user.unwrap().revoked_at, None);
}
