//! The one set of tests every store passes (with the `testing` feature): the SQL stores
//! on SQLite and PostgreSQL (`gatehouse-store/tests/conformance.rs`) and
//! [`super::memory::Memory`] (core's protocol tests), so that none can drift from the
//! others. Each case is a generic async function over the store traits;
//! [`crate::store_conformance_tests!`] makes one test of each for a store.
//!
//! The cases check facts and steps, not protocol: what a store reports of a token and
//! what it writes for each [`RotationStep`]. Core's rules ([`RefreshState::verdict`],
//! [`HolderState::allows`]) are applied to what the store reports where a case needs a
//! verdict, as the service does.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed assertion

use crate::store::{ClientStore, ReplayStore, RotationDecision, TokenStore, UserStore};
use crate::tokens::{
    HolderState, LoginRecord, NewFamily, NewOpaqueToken, NewRefreshToken, RefreshState, RefreshVerdict,
    Rotation, RotationStep, RotationWrites, TokenDigest, UserHolder, LOGIN_GRACE_SECS,
};
use crate::user::{User, UserId};
use crate::{Client, ClientId, GrantTypes, OAuthError, Scope, SecretHash, StoreError, TokenFormat, UnixTime};

mod authn;
pub use authn::*;

/// What the cases need of a store.
pub trait TestedStore: ClientStore + UserStore + TokenStore + ReplayStore {}
impl<S: ClientStore + UserStore + TokenStore + ReplayStore + ?Sized> TestedStore for S {}

/// The time the cases start at.
pub const NOW: UnixTime = 1_800_000_000;
/// The lifetime of the cases' refresh tokens.
const REFRESH_TTL: i64 = 600;
/// The lifetime of the cases' opaque access tokens.
const ACCESS_TTL: i64 = 60;

/// Makes one `#[tokio::test]` per conformance case, each on a store of its own from
/// `$open`: an async function returning `Option<impl Deref<Target = S>>`, `None` when
/// the store cannot run here (it says why on stdout, and the test passes).
#[macro_export]
macro_rules! store_conformance_tests {
    ($open:path) => {
        $crate::store_conformance_tests!(@cases $open;
            clients_are_stored_found_and_listed,
            users_are_stored_found_and_listed,
            a_login_is_stored_as_issued,
            a_rotation_consumes_the_token_and_stores_its_successor,
            a_rotation_stores_an_opaque_successor,
            of_concurrent_rotations_exactly_one_consumes,
            a_reused_token_revokes_its_login,
            a_refused_rotation_leaves_the_token_as_it_was,
            an_expired_token_is_reported_and_refused,
            an_unknown_token_is_reported_as_none,
            tokens_are_revoked_one_by_one_and_by_login,
            introspection_reads_the_facts_and_the_holders,
            revocation_marks_end_tokens_and_only_move_forward,
            the_clean_up_deletes_what_expired,
            deleting_a_client_deletes_its_tokens,
            a_client_keeps_its_authentication_settings,
            opaque_tokens_keep_what_they_are_bound_to,
            a_value_is_used_once,
            of_concurrent_first_uses_exactly_one_wins_per_value,
            the_clean_up_deletes_expired_replay_records_only,
        );
    };
    (@cases $open:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let Some(store) = $open().await else { return };
                $crate::store::conformance::$case(&*store).await;
            }
        )*
    };
}

fn id(text: &str) -> ClientId {
    ClientId::parse(text).unwrap()
}

fn scope(text: &str) -> Scope {
    Scope::parse(text).unwrap()
}

/// A 32-byte digest from a short name, so that cases read their tokens by name.
fn digest(name: &str) -> TokenDigest {
    TokenDigest::of(name)
}

fn client(name: &str) -> Client {
    Client {
        id: id(name),
        name: format!("the {name} client"),
        secret_hash: SecretHash::sha256(&crate::ClientSecret::new(format!("{name}-secret-{name}-secret"))),
        previous_secret: None,
        scope: scope("read write"),
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

fn user(name: &str, scope_text: Option<&str>) -> User {
    User {
        id: UserId(format!("u-{name}")),
        username: name.into(),
        password_hash: SecretHash::sha256(&crate::ClientSecret::new("not a real password hash")),
        scope: scope_text.map(scope),
        disabled: false,
        created_at: NOW,
    }
}

fn opaque(
    name: &str,
    client_id: &str,
    family: Option<&str>,
    user: Option<&User>,
    at: UnixTime,
) -> NewOpaqueToken {
    NewOpaqueToken {
        digest: digest(name),
        jti: format!("jti-{name}"),
        family_id: family.map(str::to_owned),
        client_id: id(client_id),
        subject: user.map_or_else(|| client_id.to_owned(), |u| u.id.0.clone()),
        username: user.map(|u| u.username.clone()),
        scope: scope("read"),
        audience: "https://api.test".into(),
        issued_at: at,
        expires_at: at + ACCESS_TTL,
        cnf: None,
    }
}

fn refresh(name: &str, family: &str, client_id: &str, at: UnixTime) -> NewRefreshToken {
    NewRefreshToken {
        digest: digest(name),
        family_id: family.into(),
        client_id: id(client_id),
        issued_at: at,
        expires_at: at + REFRESH_TTL,
    }
}

/// Registers the client `app` and the user alice, and starts alice's login `login-1`
/// at `NOW` with the refresh token `r1` (and, with `with_opaque`, the opaque access
/// token `o1`).
async fn alice_logs_in<S: TestedStore + ?Sized>(store: &S, with_opaque: bool) -> User {
    store.insert_client(&client("app")).await.unwrap();
    let alice = user("alice", Some("read write"));
    store.insert_user(&alice).await.unwrap();
    let family = NewFamily {
        family_id: "login-1".into(),
        client_id: id("app"),
        user_id: Some(alice.id.0.clone()),
        scope: scope("read write"),
        created_at: NOW,
    };
    let opaque = with_opaque.then(|| opaque("o1", "app", Some("login-1"), Some(&alice), NOW));
    store
        .start_login(&family, &refresh("r1", "login-1", "app", NOW), opaque.as_ref())
        .await
        .unwrap();
    alice
}

/// A decision that rotates `presented` into the successor `next` when core's rules
/// say so, and otherwise does what they say.
fn rotate_into(next: &str, at: UnixTime, with_opaque: bool) -> RotationDecision {
    let next = next.to_owned();
    Box::new(move |found: Option<&RefreshState>| {
        let Some(token) = found else {
            return RotationStep::Refuse(OAuthError::InvalidGrant("unknown".into()));
        };
        match token.verdict(&id("app"), at) {
            RefreshVerdict::Rotate => RotationStep::Rotate(Box::new(RotationWrites {
                refresh: refresh(&next, &token.login.family_id, "app", at),
                opaque: with_opaque.then(|| NewOpaqueToken {
                    family_id: Some(token.login.family_id.clone()),
                    ..opaque(&format!("{next}-access"), "app", None, None, at)
                }),
                access_scope: token.login.scope.clone(),
            })),
            RefreshVerdict::Reused => RotationStep::RevokeLogin,
            RefreshVerdict::Invalid => RotationStep::Refuse(OAuthError::InvalidGrant("invalid".into())),
        }
    })
}

/// A decision that refuses whatever it sees.
fn refuse() -> RotationDecision {
    Box::new(|_| RotationStep::Refuse(OAuthError::InvalidScope("refused".into())))
}

async fn rotate<S: TestedStore + ?Sized>(
    store: &S,
    presented: &str,
    at: UnixTime,
    decide: RotationDecision,
) -> Rotation {
    store
        .rotate_refresh_token(&digest(presented), at, decide)
        .await
        .unwrap()
}

async fn refresh_state<S: TestedStore + ?Sized>(store: &S, name: &str) -> Option<RefreshState> {
    store
        .find_refresh(&digest(name))
        .await
        .unwrap()
        .map(|view| view.token)
}

async fn used<S: TestedStore + ?Sized>(store: &S, name: &str) -> bool {
    refresh_state(store, name)
        .await
        .expect("the refresh token is stored")
        .used
}

/// Clients: stored, found, listed by id; an id taken is a conflict; the secret is
/// replaced with or without a grace period; the longest access token lifetime.
pub async fn clients_are_stored_found_and_listed<S: TestedStore + ?Sized>(store: &S) {
    let mut b = client("b-app");
    b.access_token_ttl = Some(120);
    b.audience = Some("https://orders.test".into());
    b.token_format = TokenFormat::Opaque;
    b.can_introspect = true;
    let a = client("a-app");
    assert_eq!(store.max_access_token_ttl().await.unwrap(), None);
    store.insert_client(&b).await.unwrap();
    store.insert_client(&a).await.unwrap();
    assert_eq!(store.find_client(&b.id).await.unwrap().as_deref(), Some(&b));
    assert_eq!(store.find_client(&id("nobody")).await.unwrap(), None);
    assert_eq!(store.list_clients().await.unwrap(), [a.clone(), b.clone()]);
    assert!(matches!(
        store.insert_client(&a).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.max_access_token_ttl().await.unwrap(), Some(120));

    let new_hash = SecretHash::sha256(&crate::ClientSecret::new("a new secret, a new secret"));
    assert!(store
        .replace_secret(&a.id, &new_hash, Some(NOW + 60), NOW)
        .await
        .unwrap());
    let found = store.find_client(&a.id).await.unwrap().unwrap();
    assert_eq!(found.secret_hash, new_hash);
    let previous = found.previous_secret.clone().expect("a previous secret");
    assert_eq!(
        (previous.hash, previous.expires_at),
        (a.secret_hash.clone(), NOW + 60)
    );
    assert!(store
        .replace_secret(&a.id, &a.secret_hash, None, NOW)
        .await
        .unwrap());
    let found = store.find_client(&a.id).await.unwrap().unwrap();
    assert_eq!(
        (&found.secret_hash, &found.previous_secret),
        (&a.secret_hash, &None)
    );
    assert!(!store
        .replace_secret(&id("nobody"), &new_hash, None, NOW)
        .await
        .unwrap());
}

/// Users: stored, found by name, listed by name; a name taken is a conflict; a user
/// without a scope is stored as one; disabled and deleted.
pub async fn users_are_stored_found_and_listed<S: TestedStore + ?Sized>(store: &S) {
    let bob = user("bob", None);
    let alice = user("alice", Some("read"));
    store.insert_user(&bob).await.unwrap();
    store.insert_user(&alice).await.unwrap();
    assert_eq!(store.find_user("alice").await.unwrap(), Some(alice.clone()));
    assert_eq!(store.find_user("bob").await.unwrap(), Some(bob.clone()));
    assert_eq!(store.find_user("carol").await.unwrap(), None);
    assert_eq!(store.list_users().await.unwrap(), [alice.clone(), bob.clone()]);
    assert!(matches!(
        store.insert_user(&user("alice", None)).await,
        Err(StoreError::Conflict(_))
    ));

    assert!(store.disable_user("alice", NOW).await.unwrap());
    assert!(store.find_user("alice").await.unwrap().unwrap().disabled);
    assert!(!store.disable_user("carol", NOW).await.unwrap());
    assert!(store.delete_user("alice", NOW).await.unwrap());
    assert_eq!(store.find_user("alice").await.unwrap(), None);
    assert!(!store.delete_user("alice", NOW).await.unwrap());
    assert_eq!(store.list_users().await.unwrap(), [bob]);
}

/// A login's first refresh token is reported as issued: unused, its login live, the
/// login's scope and user as they are now.
pub async fn a_login_is_stored_as_issued<S: TestedStore + ?Sized>(store: &S) {
    let alice = alice_logs_in(store, true).await;
    let token = refresh_state(store, "r1").await.unwrap();
    assert_eq!(
        (
            token.client_id.as_str(),
            token.issued_at,
            token.expires_at,
            token.used
        ),
        ("app", NOW, NOW + REFRESH_TTL, false)
    );
    assert_eq!(token.login_revoked_at, None);
    assert_eq!(token.login.family_id, "login-1");
    assert_eq!(token.login.scope, scope("read write"));
    assert!(token.login.had_user);
    let user = token.login.user.clone().unwrap();
    assert_eq!(
        (
            user.user_id.as_str(),
            user.username.as_str(),
            user.scope,
            user.disabled
        ),
        ("u-alice", "alice", Some(scope("read write")), false)
    );
    assert!(token.is_live(NOW));
    assert_eq!(token.verdict(&id("app"), NOW), RefreshVerdict::Rotate);

    let access = store.find_opaque(&digest("o1")).await.unwrap().unwrap();
    assert_eq!(
        access.token,
        opaque("o1", "app", Some("login-1"), Some(&alice), NOW)
    );
    assert_eq!((access.revoked_at, access.login), (None, Some(LoginRecord::Live)));
    assert!(access.is_live(NOW));

    // A login without a user (client_credentials with a refresh token).
    let family = NewFamily {
        family_id: "login-2".into(),
        client_id: id("app"),
        user_id: None,
        scope: scope("read"),
        created_at: NOW,
    };
    store
        .start_login(&family, &refresh("r2", "login-2", "app", NOW), None)
        .await
        .unwrap();
    let token = refresh_state(store, "r2").await.unwrap();
    assert_eq!((token.login.had_user, token.login.user), (false, None));
}

/// A rotation consumes the token and stores its successor in the same login; the
/// token is reported used after, and its successor unused.
pub async fn a_rotation_consumes_the_token_and_stores_its_successor<S: TestedStore + ?Sized>(store: &S) {
    alice_logs_in(store, false).await;
    let later = NOW + 10;
    let rotation = rotate(store, "r1", later, rotate_into("r2", later, false)).await;
    let before = rotation.presented.expect("the token was found");
    assert!(!before.used, "reported as it was before the consuming step");
    assert!(matches!(rotation.step, RotationStep::Rotate(_)));
    assert!(used(store, "r1").await);
    let next = refresh_state(store, "r2").await.unwrap();
    assert_eq!(
        (
            next.used,
            next.issued_at,
            next.expires_at,
            next.login.family_id.as_str()
        ),
        (false, later, later + REFRESH_TTL, "login-1")
    );
    // The successor rotates in turn.
    let rotation = rotate(store, "r2", later, rotate_into("r3", later, false)).await;
    assert!(matches!(rotation.step, RotationStep::Rotate(_)));
    assert!(refresh_state(store, "r3").await.is_some());
}

/// An opaque client's rotation also stores the new opaque access token, in the login.
pub async fn a_rotation_stores_an_opaque_successor<S: TestedStore + ?Sized>(store: &S) {
    alice_logs_in(store, true).await;
    let rotation = rotate(store, "r1", NOW, rotate_into("r2", NOW, true)).await;
    assert!(matches!(rotation.step, RotationStep::Rotate(_)));
    let access = store.find_opaque(&digest("r2-access")).await.unwrap().unwrap();
    assert_eq!(access.token.family_id.as_deref(), Some("login-1"));
    assert_eq!(access.login, Some(LoginRecord::Live));
}

/// Of many rotations of one token at once, exactly one finds it unused and rotates it;
/// every other sees it used, and their reuse revokes the login.
pub async fn of_concurrent_rotations_exactly_one_consumes<S: TestedStore + ?Sized>(store: &S) {
    alice_logs_in(store, false).await;
    let presented = digest("r1");
    let racers: Vec<_> = (0..8)
        .map(|n| store.rotate_refresh_token(&presented, NOW, rotate_into(&format!("next-{n}"), NOW, false)))
        .collect();
    let rotations = futures_join_all(racers).await;
    let mut winners = 0;
    for rotation in rotations {
        let rotation = rotation.unwrap();
        let token = rotation.presented.expect("found");
        match rotation.step {
            RotationStep::Rotate(_) => {
                assert!(!token.used);
                winners += 1;
            }
            RotationStep::RevokeLogin => assert!(token.used),
            RotationStep::Refuse(err) => panic!("refused: {err:?}"),
        }
    }
    assert_eq!(winners, 1, "exactly one rotation consumes the token");
    let mut successors = 0;
    for n in 0..8 {
        if let Some(next) = refresh_state(store, &format!("next-{n}")).await {
            successors += 1;
            assert!(
                next.login_revoked_at.is_some(),
                "the losers' reuse revoked the login"
            );
        }
    }
    assert_eq!(successors, 1);
}

/// Polls every future to its end, concurrently (what `futures::future::join_all`
/// does, without the dependency).
async fn futures_join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(value) => *output = Some(value),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().map(|o| o.unwrap()).collect()
}

/// A token presented after its rotation is reported used; the revocation core asks for
/// ends its login: its successor and the login's access tokens go with it.
pub async fn a_reused_token_revokes_its_login<S: TestedStore + ?Sized>(store: &S) {
    alice_logs_in(store, true).await;
    rotate(store, "r1", NOW, rotate_into("r2", NOW, false)).await;
    let later = NOW + 5;
    let rotation = rotate(store, "r1", later, rotate_into("r3", later, false)).await;
    assert!(rotation.presented.unwrap().used);
    assert!(matches!(rotation.step, RotationStep::RevokeLogin));
    assert!(refresh_state(store, "r3").await.is_none(), "nothing stored");

    let successor = refresh_state(store, "r2").await.unwrap();
    assert_eq!(successor.login_revoked_at, Some(later));
    assert!(!successor.used);
    assert_eq!(successor.verdict(&id("app"), later), RefreshVerdict::Invalid);
    let access = store.find_opaque(&digest("o1")).await.unwrap().unwrap();
    assert_eq!(access.login, Some(LoginRecord::Revoked(later)));
    let jwt = store
        .jwt_state("jti-x", Some("login-1"), "app", Some("u-alice"))
        .await
        .unwrap();
    assert_eq!(jwt.login, LoginRecord::Revoked(later));
    // Revoking again changes nothing.
    assert!(!store.revoke_family("login-1", later + 1).await.unwrap());
    assert_eq!(
        refresh_state(store, "r2").await.unwrap().login_revoked_at,
        Some(later)
    );
}

/// A refusal writes nothing: the consuming step is undone and the token stays unused,
/// for the next request to rotate (whoever presented it: core refuses another
/// client's token, and that leaves it alone too).
pub async fn a_refused_rotation_leaves_the_token_as_it_was<S: TestedStore + ?Sized>(store: &S) {
    alice_logs_in(store, false).await;
    let rotation = rotate(store, "r1", NOW, refuse()).await;
    assert!(!rotation.presented.unwrap().used);
    assert!(matches!(
        rotation.step,
        RotationStep::Refuse(OAuthError::InvalidScope(_))
    ));
    assert!(!used(store, "r1").await, "a refusal undoes the consumption");

    store.insert_client(&client("other")).await.unwrap();
    let rotation = rotate(store, "r1", NOW, refuse()).await;
    let token = rotation.presented.unwrap();
    assert_eq!(token.verdict(&id("other"), NOW), RefreshVerdict::Invalid);
    assert!(!used(store, "r1").await);

    let rotation = rotate(store, "r1", NOW, rotate_into("r2", NOW, false)).await;
    assert!(matches!(rotation.step, RotationStep::Rotate(_)), "still rotates");
}

/// An expired token is reported as stored, expiry and all; core refuses it, and it is
/// not consumed: presented again, it is still not reuse.
pub async fn an_expired_token_is_reported_and_refused<S: TestedStore + ?Sized>(store: &S) {
    alice_logs_in(store, false).await;
    let expiry = NOW + REFRESH_TTL;
    let rotation = rotate(store, "r1", expiry, rotate_into("r2", expiry, false)).await;
    let token = rotation.presented.unwrap();
    assert_eq!((token.expires_at, token.used), (expiry, false));
    assert!(!token.is_live(expiry));
    assert!(matches!(rotation.step, RotationStep::Refuse(_)));
    assert!(refresh_state(store, "r2").await.is_none());
    let again = rotate(store, "r1", expiry + 1, rotate_into("r2", expiry + 1, false)).await;
    assert!(
        !again.presented.unwrap().used,
        "an expired token is never consumed"
    );
    assert!(matches!(again.step, RotationStep::Refuse(_)));
    assert_eq!(refresh_state(store, "r1").await.unwrap().login_revoked_at, None);
}

/// An unknown token is `None` to the decision, and nothing is written.
pub async fn an_unknown_token_is_reported_as_none<S: TestedStore + ?Sized>(store: &S) {
    alice_logs_in(store, false).await;
    let rotation = rotate(store, "no-such-token", NOW, refuse()).await;
    assert!(rotation.presented.is_none());
    assert!(store
        .find_refresh(&digest("no-such-token"))
        .await
        .unwrap()
        .is_none());
    assert!(store
        .find_opaque(&digest("no-such-token"))
        .await
        .unwrap()
        .is_none());
    // Rotating a token the consuming step did not take is an error, never a write.
    let rotation = store
        .rotate_refresh_token(&digest("no-such-token"), NOW, rotate_into("r9", NOW, false))
        .await;
    assert!(matches!(rotation.map(|r| r.step), Ok(RotationStep::Refuse(_))));
    let forced: RotationDecision = Box::new(|_| {
        RotationStep::Rotate(Box::new(RotationWrites {
            refresh: refresh("r9", "login-1", "app", NOW),
            opaque: None,
            access_scope: scope("read"),
        }))
    });
    assert!(store
        .rotate_refresh_token(&digest("no-such-token"), NOW, forced)
        .await
        .is_err());
    assert!(refresh_state(store, "r9").await.is_none());
}

/// Revocation: an opaque access token by itself, a JWT by its `jti`, a login with
/// everything issued from it; each once (the second time says nothing was revoked).
pub async fn tokens_are_revoked_one_by_one_and_by_login<S: TestedStore + ?Sized>(store: &S) {
    alice_logs_in(store, true).await;
    store
        .insert_opaque(&opaque("o2", "app", None, None, NOW))
        .await
        .unwrap();
    let later = NOW + 1;

    assert!(store.revoke_opaque(&digest("o2"), later).await.unwrap());
    assert!(!store.revoke_opaque(&digest("o2"), later + 1).await.unwrap());
    let o2 = store.find_opaque(&digest("o2")).await.unwrap().unwrap();
    assert_eq!((o2.revoked_at, o2.login), (Some(later), None));
    assert!(!o2.is_live(later));
    assert!(!store.revoke_opaque(&digest("nothing"), later).await.unwrap());

    assert!(
        !store
            .jwt_state("j1", None, "app", None)
            .await
            .unwrap()
            .jti_revoked
    );
    assert!(store.revoke_jti("j1", NOW + ACCESS_TTL).await.unwrap());
    assert!(!store.revoke_jti("j1", NOW + ACCESS_TTL).await.unwrap());
    assert!(
        store
            .jwt_state("j1", None, "app", None)
            .await
            .unwrap()
            .jti_revoked
    );

    let o1 = store.find_opaque(&digest("o1")).await.unwrap().unwrap();
    assert!(o1.is_live(later), "revoking o2 leaves the login's own token");
    assert!(store.revoke_family("login-1", later).await.unwrap());
    assert!(!store.revoke_family("login-1", later).await.unwrap());
    assert!(!store.revoke_family("no-such-login", later).await.unwrap());
    let r1 = refresh_state(store, "r1").await.unwrap();
    assert_eq!((r1.used, r1.login_revoked_at), (false, Some(later)));
    assert!(!r1.is_live(later));
    let o1 = store.find_opaque(&digest("o1")).await.unwrap().unwrap();
    assert_eq!(
        (o1.revoked_at, o1.login),
        (None, Some(LoginRecord::Revoked(later)))
    );
    assert!(!o1.is_live(later));
}

/// What introspection reads: a token's holders as they are now (client, user, marks),
/// and for a JWT its login and revocation.
pub async fn introspection_reads_the_facts_and_the_holders<S: TestedStore + ?Sized>(store: &S) {
    alice_logs_in(store, true).await;
    store
        .insert_opaque(&opaque("o2", "app", None, None, NOW))
        .await
        .unwrap();
    let client_holder = HolderState {
        client_exists: true,
        client_revoked_at: None,
        user: None,
    };
    let alice_holder = HolderState {
        user: Some(UserHolder {
            disabled: Some(false),
            revoked_at: None,
        }),
        ..client_holder.clone()
    };
    let r1 = store.find_refresh(&digest("r1")).await.unwrap().unwrap();
    assert_eq!(r1.holders, alice_holder);
    let o1 = store.find_opaque(&digest("o1")).await.unwrap().unwrap();
    assert_eq!(o1.holders, alice_holder);
    let o2 = store.find_opaque(&digest("o2")).await.unwrap().unwrap();
    assert_eq!(o2.holders, client_holder);

    let jwt = store
        .jwt_state("j1", Some("login-1"), "app", Some("u-alice"))
        .await
        .unwrap();
    assert_eq!((jwt.jti_revoked, jwt.login), (false, LoginRecord::Live));
    assert_eq!(jwt.holders, alice_holder);
    let jwt = store.jwt_state("j2", None, "app", None).await.unwrap();
    assert_eq!((jwt.login, jwt.holders), (LoginRecord::Missing, client_holder));
    let jwt = store
        .jwt_state("j3", Some("no-such-login"), "gone", Some("u-nobody"))
        .await
        .unwrap();
    assert_eq!(jwt.login, LoginRecord::Missing);
    assert_eq!(
        jwt.holders,
        HolderState {
            client_exists: false,
            client_revoked_at: None,
            user: Some(UserHolder {
                disabled: None,
                revoked_at: None,
            }),
        }
    );
    assert!(!jwt.holders.allows(NOW));
}

/// Disabling or deleting a user, and deleting a client, leave a revocation mark that
/// ends their tokens issued up to then; a mark only moves forward, and a client
/// re-created with the same id raises its mark to the second before its creation.
pub async fn revocation_marks_end_tokens_and_only_move_forward<S: TestedStore + ?Sized>(store: &S) {
    alice_logs_in(store, false).await;
    let at = NOW + 100;
    assert!(store.disable_user("alice", at).await.unwrap());
    let holders = store.find_refresh(&digest("r1")).await.unwrap().unwrap().holders;
    assert_eq!(
        holders.user,
        Some(UserHolder {
            disabled: Some(true),
            revoked_at: Some(at),
        })
    );
    assert!(!holders.allows(NOW));
    // The login's user is reported disabled to the rotation, too.
    let token = refresh_state(store, "r1").await.unwrap();
    assert!(token.login.user.unwrap().disabled);

    assert!(store.delete_user("alice", at - 50).await.unwrap());
    let token = store.find_refresh(&digest("r1")).await.unwrap().unwrap();
    assert_eq!(
        token.holders.user,
        Some(UserHolder {
            disabled: None,
            revoked_at: Some(at),
        }),
        "an earlier clock does not move a mark back"
    );
    assert_eq!((token.token.login.had_user, token.token.login.user), (true, None));

    assert!(store.delete_client(&id("app"), at).await.unwrap());
    let jwt = store.jwt_state("j1", None, "app", None).await.unwrap();
    assert_eq!(
        (jwt.holders.client_exists, jwt.holders.client_revoked_at),
        (false, Some(at))
    );
    let mut again = client("app");
    again.created_at = at + 1000;
    store.insert_client(&again).await.unwrap();
    let jwt = store.jwt_state("j1", None, "app", None).await.unwrap();
    assert_eq!(
        (jwt.holders.client_exists, jwt.holders.client_revoked_at),
        (true, Some(at + 999))
    );
    assert!(!jwt.holders.allows(at + 999));
    assert!(jwt.holders.allows(at + 1000));
}

/// The clean-up deletes refresh tokens, opaque access tokens and revoked `jti`s once
/// expired, logins [`LOGIN_GRACE_SECS`] after their first refresh token's expiry, at
/// most `batch` rows of each kind a call, and nothing still live.
pub async fn the_clean_up_deletes_what_expired<S: TestedStore + ?Sized>(store: &S) {
    alice_logs_in(store, true).await;
    let expiry = NOW + REFRESH_TTL;
    store.revoke_jti("j1", NOW + ACCESS_TTL).await.unwrap();
    store
        .insert_opaque(&opaque("o2", "app", None, None, expiry))
        .await
        .unwrap();
    assert_eq!(
        store.purge_expired(NOW + ACCESS_TTL, 100).await.unwrap(),
        0,
        "nothing expired yet"
    );

    // o1 and j1 expired; r1 expires at `expiry`, o2 later.
    assert_eq!(store.purge_expired(expiry, 1).await.unwrap(), 2);
    assert!(store.find_opaque(&digest("o1")).await.unwrap().is_none());
    assert!(
        !store
            .jwt_state("j1", None, "app", None)
            .await
            .unwrap()
            .jti_revoked
    );
    assert!(refresh_state(store, "r1").await.is_some());

    assert_eq!(store.purge_expired(expiry + 1, 100).await.unwrap(), 1);
    assert!(store.find_refresh(&digest("r1")).await.unwrap().is_none());
    let login = store
        .jwt_state("j2", Some("login-1"), "app", None)
        .await
        .unwrap()
        .login;
    assert_eq!(login, LoginRecord::Live, "the login outlives its refresh tokens");

    let late = expiry + LOGIN_GRACE_SECS + 1;
    assert_eq!(
        store.purge_expired(late, 100).await.unwrap(),
        2,
        "o2 and the login"
    );
    let login = store
        .jwt_state("j2", Some("login-1"), "app", None)
        .await
        .unwrap()
        .login;
    assert_eq!(login, LoginRecord::Missing);
    assert_eq!(store.purge_expired(late, 100).await.unwrap(), 0);
}

/// Deleting a client deletes its stored tokens and logins, and only its own.
pub async fn deleting_a_client_deletes_its_tokens<S: TestedStore + ?Sized>(store: &S) {
    alice_logs_in(store, true).await;
    store.insert_client(&client("other")).await.unwrap();
    let family = NewFamily {
        family_id: "login-2".into(),
        client_id: id("other"),
        user_id: None,
        scope: scope("read"),
        created_at: NOW,
    };
    store
        .start_login(
            &family,
            &refresh("r2", "login-2", "other", NOW),
            Some(&opaque("o2", "other", Some("login-2"), None, NOW)),
        )
        .await
        .unwrap();

    assert!(store.delete_client(&id("app"), NOW).await.unwrap());
    assert!(!store.delete_client(&id("app"), NOW).await.unwrap());
    assert_eq!(store.find_client(&id("app")).await.unwrap(), None);
    assert!(store.find_refresh(&digest("r1")).await.unwrap().is_none());
    assert!(store.find_opaque(&digest("o1")).await.unwrap().is_none());
    let jwt = store.jwt_state("j1", Some("login-1"), "app", None).await.unwrap();
    assert_eq!(jwt.login, LoginRecord::Missing);
    let rotation = rotate(store, "r1", NOW, rotate_into("r3", NOW, false)).await;
    assert!(rotation.presented.is_none());

    assert!(store.find_refresh(&digest("r2")).await.unwrap().is_some());
    let o2 = store.find_opaque(&digest("o2")).await.unwrap().unwrap();
    assert!(o2.is_live(NOW));
}
