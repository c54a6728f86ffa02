//! Protocol tests of the endpoints: in-memory stores, a fixed clock.

mod bound_tokens;
mod client_auth;
mod grants;
mod holders;
mod inspect;
mod user_scope;

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jwt_simple::prelude::{ECDSAP256PublicKeyLike, ES256PublicKey, NoCustomClaims, VerificationOptions};

use super::*;
use crate::keys::{KeySet, PublishedKey};
use crate::request::{Params, TokenOptions};
use crate::store::memory::Memory;
use crate::{ClientAuth, ClientId, FixedClock, GrantTypes, SecretHash, SigningAlg, SigningKey, SystemRandom};

const NOW: UnixTime = 1_800_000_000;

fn client(id: &str, hash: SecretHash) -> Client {
    Client {
        id: ClientId::parse(id).unwrap(),
        name: id.into(),
        secret_hash: hash,
        previous_secret: None,
        scope: Scope::parse("read write").unwrap(),
        grant_types: GrantTypes::parse("client_credentials").unwrap(),
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

struct Fixture {
    service: TokenService,
    key: Arc<SigningKey>,
    store: Arc<Memory>,
    clock: Arc<FixedClock>,
}

fn fixture(clients: Vec<Client>) -> Fixture {
    fixture_with(clients, None)
}

/// A fixture whose replay records go to `replays` (not the in-memory store).
fn fixture_with_replays(clients: Vec<Client>, replays: Arc<dyn ReplayStore>) -> Fixture {
    fixture_with(clients, Some(replays))
}

fn fixture_with(clients: Vec<Client>, replays: Option<Arc<dyn ReplayStore>>) -> Fixture {
    let (key, _) = SigningKey::generate(SigningAlg::ES256).unwrap();
    let key = Arc::new(key);
    let ring = KeyRing::new(KeySet {
        published: vec![PublishedKey {
            key: key.clone(),
            publish_until: None,
        }],
        current: key.clone(),
    });
    let store = Arc::new(Memory::default());
    for client in clients {
        store.add_client(client);
    }
    let clock = Arc::new(FixedClock::new(NOW));
    let config = IssuerConfig {
        issuer: "https://issuer.test".into(),
        default_audience: "https://api.test".into(),
        access_token_ttl: 3600,
        refresh_token_ttl: 86400,
    };
    let stores = Stores {
        clients: store.clone(),
        users: store.clone(),
        tokens: store.clone(),
        replays: replays.unwrap_or_else(|| store.clone()),
    };
    let service = TokenService::new(
        config,
        stores,
        Arc::new(ring),
        clock.clone(),
        Arc::new(SystemRandom),
    );
    Fixture {
        service,
        key,
        store,
        clock,
    }
}

fn secret(text: &str) -> ClientSecret {
    ClientSecret::new(text)
}

fn request(pairs: &[(&str, &str)]) -> TokenRequest {
    let params = Params::new(
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
    )
    .unwrap();
    TokenRequest::parse(params, None, &TokenOptions::default()).unwrap()
}

fn claims(token: &str) -> serde_json::Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

#[tokio::test]
async fn client_credentials_issues_an_rfc9068_token() {
    let f = fixture(vec![client(
        "svc",
        SecretHash::sha256(&secret("s3cret-s3cret-s3cret")),
    )]);
    let response = f
        .service
        .exchange(request(&[
            ("grant_type", "client_credentials"),
            ("client_id", "svc"),
            ("client_secret", "s3cret-s3cret-s3cret"),
        ]))
        .await
        .unwrap();
    assert_eq!(response.token_type, "Bearer");
    assert_eq!(response.expires_in, 3600);
    assert_eq!(response.scope, "read write");
    assert!(response.refresh_token.is_none());

    let header: serde_json::Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(response.access_token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], "ES256");
    assert_eq!(header["kid"], f.key.kid());

    let c = claims(&response.access_token);
    assert_eq!(c["iss"], "https://issuer.test");
    assert_eq!(c["sub"], "svc");
    assert_eq!(c["client_id"], "svc");
    assert_eq!(c["aud"], "https://api.test");
    assert_eq!(c["iat"], NOW);
    assert_eq!(c["exp"], NOW + 3600);
    assert_eq!(c["scope"], "read write");
    assert_eq!(c["jti"].as_str().unwrap().len(), 22);

    // An independent JOSE implementation accepts the signature.
    let jwk = f.key.public_jwk();
    let mut point = vec![4u8];
    point.extend(URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap());
    point.extend(URL_SAFE_NO_PAD.decode(jwk["y"].as_str().unwrap()).unwrap());
    let public = ES256PublicKey::from_bytes(&point).unwrap();
    let options = VerificationOptions {
        accept_future: true,
        time_tolerance: Some(jwt_simple::prelude::Duration::from_days(1000)),
        ..Default::default()
    };
    public
        .verify_token::<NoCustomClaims>(&response.access_token, Some(options))
        .unwrap();
}

#[tokio::test]
async fn per_client_ttl_audience_and_scope_subset() {
    let mut c = client("svc", SecretHash::sha256(&secret("s3cret-s3cret-s3cret")));
    c.access_token_ttl = Some(60);
    c.audience = Some("https://orders.test".into());
    let f = fixture(vec![c]);
    let response = f
        .service
        .exchange(request(&[
            ("grant_type", "client_credentials"),
            ("client_id", "svc"),
            ("client_secret", "s3cret-s3cret-s3cret"),
            ("scope", "read"),
        ]))
        .await
        .unwrap();
    assert_eq!(response.expires_in, 60);
    assert_eq!(response.scope, "read");
    let c = claims(&response.access_token);
    assert_eq!(c["aud"], "https://orders.test");
    assert_eq!(c["exp"], NOW + 60);
}

#[tokio::test]
async fn scope_beyond_the_client_is_invalid_scope() {
    let f = fixture(vec![client(
        "svc",
        SecretHash::sha256(&secret("s3cret-s3cret-s3cret")),
    )]);
    let err = f
        .service
        .exchange(request(&[
            ("grant_type", "client_credentials"),
            ("client_id", "svc"),
            ("client_secret", "s3cret-s3cret-s3cret"),
            ("scope", "read admin"),
        ]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_scope");
}

#[tokio::test]
async fn unknown_client_and_wrong_secret_look_the_same() {
    let f = fixture(vec![client(
        "svc",
        SecretHash::sha256(&secret("s3cret-s3cret-s3cret")),
    )]);
    let unknown = f
        .service
        .exchange(request(&[
            ("grant_type", "client_credentials"),
            ("client_id", "nobody"),
            ("client_secret", "x"),
        ]))
        .await
        .unwrap_err();
    let wrong = f
        .service
        .exchange(request(&[
            ("grant_type", "client_credentials"),
            ("client_id", "svc"),
            ("client_secret", "x"),
        ]))
        .await
        .unwrap_err();
    // Same code and description: the standard endpoints answer both alike. Only a
    // route that asks for it (`unknown_client_status`, `docs/migrating.md`) tells them
    // apart, by this flag.
    assert_eq!(
        (unknown.code(), unknown.description()),
        (wrong.code(), wrong.description())
    );
    assert_eq!(unknown.code(), "invalid_client");
    assert!(unknown.is_unknown_client());
    assert!(!wrong.is_unknown_client());
    let none = f
        .service
        .exchange(request(&[("grant_type", "client_credentials")]))
        .await
        .unwrap_err();
    assert_eq!(none.code(), "invalid_client");
}

#[tokio::test]
async fn grant_rules_are_checked_after_authentication() {
    let f = fixture(vec![client(
        "svc",
        SecretHash::sha256(&secret("s3cret-s3cret-s3cret")),
    )]);
    let auth = [("client_id", "svc"), ("client_secret", "s3cret-s3cret-s3cret")];
    let password = [
        &auth[..],
        &[("grant_type", "password"), ("username", "u"), ("password", "p")],
    ]
    .concat();
    assert_eq!(
        f.service.exchange(request(&password)).await.unwrap_err().code(),
        "unauthorized_client"
    );
    let unknown = [&auth[..], &[("grant_type", "urn:example:nope")]].concat();
    assert_eq!(
        f.service.exchange(request(&unknown)).await.unwrap_err().code(),
        "unsupported_grant_type"
    );
    // Without valid credentials the client learns nothing about the grant.
    let anonymous = [
        ("grant_type", "urn:example:nope"),
        ("client_id", "svc"),
        ("client_secret", "x"),
    ];
    assert_eq!(
        f.service.exchange(request(&anonymous)).await.unwrap_err().code(),
        "invalid_client"
    );
}

#[tokio::test]
async fn imported_secret_verifies_with_argon2id_and_is_remembered() {
    let imported = secret("an imported secret");
    let hash = SecretHash::argon2id(&imported, &SystemRandom).unwrap();
    let f = fixture(vec![client("legacy", hash.clone())]);
    let auth = ClientAuth::Post {
        client_id: "legacy".into(),
        secret: imported.clone(),
    };
    assert!(f
        .service
        .authenticate(&auth, &AuthContext::default())
        .await
        .is_ok());
    assert!(f
        .service
        .verified
        .contains(&VerifiedSecrets::key("legacy", &hash, &imported)));
    assert!(f
        .service
        .authenticate(&auth, &AuthContext::default())
        .await
        .is_ok());
    let wrong = ClientAuth::Post {
        client_id: "legacy".into(),
        secret: secret("an imported secreT"),
    };
    assert_eq!(
        f.service
            .authenticate(&wrong, &AuthContext::default())
            .await
            .unwrap_err()
            .code(),
        "invalid_client"
    );
}

#[tokio::test]
async fn basic_failures_say_so_for_www_authenticate() {
    let f = fixture(vec![]);
    let auth = ClientAuth::Basic {
        client_id: "svc".into(),
        secret: secret("x"),
    };
    let err = f
        .service
        .authenticate(&auth, &AuthContext::default())
        .await
        .unwrap_err();
    assert!(matches!(err, OAuthError::InvalidClient { basic: true, .. }));
}

#[tokio::test]
async fn a_rotated_secret_works_until_its_grace_period_ends() {
    let mut c = client("svc", SecretHash::sha256(&secret("new-secret-new-secret")));
    c.previous_secret = Some(crate::PreviousSecret {
        hash: SecretHash::sha256(&secret("old-secret-old-secret")),
        expires_at: NOW + 60,
    });
    let f = fixture(vec![c]);
    let with = |s: &str| ClientAuth::Post {
        client_id: "svc".into(),
        secret: secret(s),
    };
    assert!(f
        .service
        .authenticate(&with("new-secret-new-secret"), &AuthContext::default())
        .await
        .is_ok());
    assert!(f
        .service
        .authenticate(&with("old-secret-old-secret"), &AuthContext::default())
        .await
        .is_ok());
    assert!(f
        .service
        .authenticate(&with("another"), &AuthContext::default())
        .await
        .is_err());
    f.clock.advance(60);
    let err = f
        .service
        .authenticate(&with("old-secret-old-secret"), &AuthContext::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_client");
    assert!(!err.is_unknown_client());
    assert!(f
        .service
        .authenticate(&with("new-secret-new-secret"), &AuthContext::default())
        .await
        .is_ok());
}
