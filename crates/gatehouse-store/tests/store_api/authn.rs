//! Cases of client authentication beyond a secret, for the SQL store's own methods:
//! registration, pages and changes carry a client's authentication settings.
//! (Lookups, lists, bound opaque tokens and replay records are trait cases, in the
//! conformance suite.)

use gatehouse_core::store::{ChangeFeed, ClientLookup, ClientStore};
use gatehouse_core::{AuthMethod, AuthSettings, Client};
use gatehouse_store::{ClientChanges, SqlStore};

use super::{client, hash, id, NOW};

/// A JWK Set as a client registers it (the store keeps the text as given).
const JWKS: &str = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k1","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;

/// Settings with every member set.
fn every_setting() -> AuthSettings {
    AuthSettings {
        method: AuthMethod::PrivateKeyJwt,
        jwks: Some(JWKS.into()),
        jwks_uri: Some("https://keys.test/jwks.json".into()),
        tls_subject_dn: Some("CN=app,OU=Payments,O=Example".into()),
        bound_tokens: true,
    }
}

pub async fn a_registered_client_keeps_its_authentication_settings_in_pages(store: &SqlStore) {
    let keyed = Client {
        auth: every_setting(),
        ..client("keyed")
    };
    store
        .register_client(&keyed, &hash("the-registration-token"))
        .await
        .unwrap();
    let registered = Client {
        registered: true,
        ..keyed
    };
    assert_eq!(
        store.find_client(&id("keyed")).await.unwrap().as_deref(),
        Some(&registered)
    );
    let inserted = Client {
        auth: AuthSettings {
            method: AuthMethod::TlsClientAuth,
            jwks: None,
            jwks_uri: None,
            ..every_setting()
        },
        ..client("inserted")
    };
    store.insert_client(&inserted).await.unwrap();
    let page = store.list_clients_page(None, 10).await.unwrap();
    assert_eq!(page, [inserted.clone(), registered.clone()]);
    let page = store.list_clients_page(Some(&id("inserted")), 10).await.unwrap();
    assert_eq!(page, [registered]);
}

pub async fn client_changes_set_and_clear_authentication_settings(store: &SqlStore) {
    store.insert_client(&client("app")).await.unwrap();
    let before = store.find_client(&id("app")).await.unwrap().unwrap();
    assert_eq!(before.auth, AuthSettings::default());

    let feed = store.latest_change().await.unwrap();
    let set = ClientChanges {
        auth_method: Some(AuthMethod::PrivateKeyJwt),
        jwks: Some(Some(JWKS.into())),
        jwks_uri: Some(Some("https://keys.test/jwks.json".into())),
        tls_subject_dn: Some(Some("CN=app,OU=Payments,O=Example".into())),
        bound_tokens: Some(true),
        ..ClientChanges::default()
    };
    let after = store
        .update_client(&id("app"), &set, NOW + 1)
        .await
        .unwrap()
        .unwrap();
    let expected = Client {
        auth: every_setting(),
        ..(*before).clone()
    };
    assert_eq!(after, expected);
    assert_eq!(
        store.find_client(&id("app")).await.unwrap().as_deref(),
        Some(&expected)
    );
    assert_eq!(
        store.latest_change().await.unwrap(),
        feed + 1,
        "recorded for the caches"
    );

    // A change of something else leaves them as they are.
    let renamed = ClientChanges {
        name: Some("renamed".into()),
        ..ClientChanges::default()
    };
    let after = store
        .update_client(&id("app"), &renamed, NOW + 2)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.auth, every_setting());

    // Some(None) clears; None leaves; each member on its own.
    let clear = ClientChanges {
        jwks: Some(None),
        tls_subject_dn: Some(None),
        bound_tokens: Some(false),
        ..ClientChanges::default()
    };
    let after = store
        .update_client(&id("app"), &clear, NOW + 3)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        after.auth,
        AuthSettings {
            method: AuthMethod::PrivateKeyJwt,
            jwks: None,
            jwks_uri: Some("https://keys.test/jwks.json".into()),
            tls_subject_dn: None,
            bound_tokens: false,
        }
    );
    let back = ClientChanges {
        auth_method: Some(AuthMethod::ClientSecretPost),
        jwks_uri: Some(None),
        ..ClientChanges::default()
    };
    let after = store
        .update_client(&id("app"), &back, NOW + 4)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        after.auth,
        AuthSettings {
            method: AuthMethod::ClientSecretPost,
            ..AuthSettings::default()
        }
    );
    assert_eq!(
        store.find_client(&id("app")).await.unwrap().unwrap().auth,
        after.auth
    );
    assert_eq!(store.latest_change().await.unwrap(), feed + 4);
    assert!(store
        .update_client(&id("ghost"), &set, NOW + 5)
        .await
        .unwrap()
        .is_none());
}
