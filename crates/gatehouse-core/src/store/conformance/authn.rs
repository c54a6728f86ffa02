//! Conformance cases of client authentication beyond a secret: a client's
//! [`AuthSettings`](crate::AuthSettings), what an opaque access token is bound to
//! (`cnf`), and the single-use records of [`ReplayStore`].

use super::{alice_logs_in, client, digest, futures_join_all, opaque, rotate, rotate_into, TestedStore, NOW};
use crate::{AuthMethod, AuthSettings, Confirmation};

/// A JWK Set as a client registers it (the store keeps the text as given).
const JWKS: &str = r#"{"keys":[{"kty":"EC","crv":"P-256","kid":"k1","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}"#;

/// A replay digest from a short name.
fn replay(name: &str) -> [u8; 32] {
    digest(&format!("replay {name}")).0
}

fn bound_to(thumbprint: &str) -> Confirmation {
    Confirmation {
        x5t_s256: Some(thumbprint.into()),
        jkt: None,
    }
}

/// Every authentication setting is stored and read back as written, by a client's
/// lookup and by the list; a client stored without them has the defaults (a secret
/// in Basic, nothing bound).
pub async fn a_client_keeps_its_authentication_settings<S: TestedStore + ?Sized>(store: &S) {
    let mut keyed = client("keyed");
    keyed.auth = AuthSettings {
        method: AuthMethod::SelfSignedTlsClientAuth,
        jwks: Some(JWKS.into()),
        jwks_uri: Some("https://keyed.test/jwks.json".into()),
        tls_subject_dn: Some("CN=keyed,O=Example,C=SE".into()),
        bound_tokens: true,
    };
    let plain = client("plain");
    store.insert_client(&keyed).await.unwrap();
    store.insert_client(&plain).await.unwrap();
    assert_eq!(
        store.find_client(&keyed.id).await.unwrap().as_deref(),
        Some(&keyed)
    );
    let found = store.find_client(&plain.id).await.unwrap().unwrap();
    assert_eq!(found.auth, AuthSettings::default());
    assert_eq!(found.auth.method, AuthMethod::ClientSecretBasic);
    assert_eq!(store.list_clients().await.unwrap(), [keyed, plain]);

    // Each method is stored under its own name.
    for (n, method) in AuthMethod::ALL.into_iter().enumerate() {
        let mut each = client(&format!("method-{n}"));
        each.auth.method = method;
        store.insert_client(&each).await.unwrap();
        let found = store.find_client(&each.id).await.unwrap().unwrap();
        assert_eq!(found.auth.method, method);
    }
}

/// An opaque access token's `cnf` is read back as written, whichever way the token
/// was stored (alone, with a login, by a rotation); an unbound token has none.
pub async fn opaque_tokens_keep_what_they_are_bound_to<S: TestedStore + ?Sized>(store: &S) {
    alice_logs_in(store, true).await;
    let unbound = store.find_opaque(&digest("o1")).await.unwrap().unwrap();
    assert_eq!(unbound.token.cnf, None);

    let alone = crate::tokens::NewOpaqueToken {
        cnf: Some(bound_to("thumbprint-alone")),
        ..opaque("o2", "app", None, None, NOW)
    };
    store.insert_opaque(&alone).await.unwrap();
    assert_eq!(
        store.find_opaque(&digest("o2")).await.unwrap().unwrap().token,
        alone
    );
    let both = crate::tokens::NewOpaqueToken {
        cnf: Some(Confirmation {
            x5t_s256: Some("thumbprint-both".into()),
            jkt: Some("jkt-both".into()),
        }),
        ..opaque("o3", "app", None, None, NOW)
    };
    store.insert_opaque(&both).await.unwrap();
    assert_eq!(
        store.find_opaque(&digest("o3")).await.unwrap().unwrap().token.cnf,
        both.cnf
    );

    let family = crate::tokens::NewFamily {
        family_id: "login-2".into(),
        client_id: super::id("app"),
        user_id: None,
        scope: super::scope("read"),
        created_at: NOW,
    };
    let with_login = crate::tokens::NewOpaqueToken {
        cnf: Some(bound_to("thumbprint-login")),
        ..opaque("o4", "app", Some("login-2"), None, NOW)
    };
    store
        .start_login(
            &family,
            &super::refresh("r2", "login-2", "app", NOW),
            Some(&with_login),
        )
        .await
        .unwrap();
    assert_eq!(
        store.find_opaque(&digest("o4")).await.unwrap().unwrap().token.cnf,
        with_login.cnf
    );

    // A rotation's opaque successor, bound to the certificate of the refresh request.
    let decide = rotate_into("r3", NOW, true);
    let bind: crate::store::RotationDecision = Box::new(move |found| match decide(found) {
        crate::tokens::RotationStep::Rotate(mut writes) => {
            if let Some(access) = writes.opaque.as_mut() {
                access.cnf = Some(bound_to("thumbprint-rotated"));
            }
            crate::tokens::RotationStep::Rotate(writes)
        }
        other => other,
    });
    let rotation = rotate(store, "r2", NOW, bind).await;
    assert!(matches!(rotation.step, crate::tokens::RotationStep::Rotate(_)));
    let rotated = store.find_opaque(&digest("r3-access")).await.unwrap().unwrap();
    assert_eq!(rotated.token.cnf, Some(bound_to("thumbprint-rotated")));
}

/// A value's first use is reported as such, every later one not, whatever expiry it
/// comes with; other values are not affected.
pub async fn a_value_is_used_once<S: TestedStore + ?Sized>(store: &S) {
    assert!(store.first_use(&replay("a"), NOW + 60).await.unwrap());
    assert!(!store.first_use(&replay("a"), NOW + 60).await.unwrap());
    assert!(!store.first_use(&replay("a"), NOW + 3600).await.unwrap());
    assert!(store.first_use(&replay("b"), NOW + 60).await.unwrap());
    assert!(!store.first_use(&replay("b"), NOW).await.unwrap());
}

/// Of 200 uses at once, four of each of 50 values, exactly one of each value is its
/// first.
pub async fn of_concurrent_first_uses_exactly_one_wins_per_value<S: TestedStore + ?Sized>(store: &S) {
    let values: Vec<[u8; 32]> = (0..50).map(|n| replay(&n.to_string())).collect();
    let uses: Vec<_> = (0..4)
        .flat_map(|_| values.iter())
        .map(|value| async move { (*value, store.first_use(value, NOW + 60).await.unwrap()) })
        .collect();
    let outcomes = futures_join_all(uses).await;
    assert_eq!(outcomes.len(), 200);
    for value in &values {
        let firsts = outcomes
            .iter()
            .filter(|(used, first)| used == value && *first)
            .count();
        assert_eq!(firsts, 1, "exactly one first use of each value");
    }
    assert_eq!(outcomes.iter().filter(|(_, first)| *first).count(), 50);
}

/// The clean-up deletes replay records once expired (at most `batch` a call), and
/// those only: a value whose record went can be used again, one still recorded not.
pub async fn the_clean_up_deletes_expired_replay_records_only<S: TestedStore + ?Sized>(store: &S) {
    for name in ["early-1", "early-2"] {
        assert!(store.first_use(&replay(name), NOW + 10).await.unwrap());
    }
    assert!(store.first_use(&replay("late"), NOW + 100).await.unwrap());
    assert_eq!(
        store.purge_expired(NOW + 10, 100).await.unwrap(),
        0,
        "not expired yet"
    );
    assert_eq!(store.purge_expired(NOW + 50, 1).await.unwrap(), 1, "one a batch");
    assert_eq!(store.purge_expired(NOW + 50, 100).await.unwrap(), 1);
    assert_eq!(store.purge_expired(NOW + 50, 100).await.unwrap(), 0);
    assert!(!store.first_use(&replay("late"), NOW + 100).await.unwrap());
    for name in ["early-1", "early-2"] {
        assert!(store.first_use(&replay(name), NOW + 200).await.unwrap(), "{name}");
    }
}
