//! Client authentication beyond secrets: `private_key_jwt` assertions signed with
//! jwt-simple (a JOSE library independent of the verifier's), `tls_client_auth` and
//! `self_signed_tls_client_auth` with hand-made certificates, and the rule that
//! methods do not cross families.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use jsonwebtoken::{Algorithm, DecodingKey};
use jwt_simple::algorithms::{
    ECDSAP256KeyPairLike, ECDSAP256PublicKeyLike, ES256KeyPair, Ed25519KeyPair, EdDSAKeyPairLike, HS256Key,
    MACLike, PS256KeyPair, RS256KeyPair, RSAKeyPairLike,
};
use jwt_simple::claims::{Claims, JWTClaims};
use serde_json::{json, Map, Value};

use super::*;
use crate::client_jwks::ClientKey;
use crate::request::CLIENT_AUTH_FAILED;
use crate::{AuthMethod, ClientKeySet, PresentedCertificate, Random};

pub(super) const ISSUER: &str = "https://issuer.test";
pub(super) const TOKEN_URL: &str = "https://issuer.test/oauth/token";

/// A client's key pair of one algorithm, with an optional `kid`.
pub(super) enum TestKey {
    Es(ES256KeyPair),
    Ed(Ed25519KeyPair),
    Rs(RS256KeyPair),
    Ps(PS256KeyPair),
}

impl TestKey {
    pub(super) fn generate(alg: &str, kid: Option<&str>) -> Self {
        let key = match alg {
            "ES256" => Self::Es(ES256KeyPair::generate()),
            "EdDSA" => Self::Ed(Ed25519KeyPair::generate()),
            "RS256" => Self::Rs(RS256KeyPair::generate(2048).unwrap()),
            "PS256" => Self::Ps(PS256KeyPair::generate(2048).unwrap()),
            other => panic!("no test key for {other}"),
        };
        match kid {
            Some(kid) => key.with_kid(kid),
            None => key,
        }
    }

    fn with_kid(self, kid: &str) -> Self {
        match self {
            Self::Es(k) => Self::Es(k.with_key_id(kid)),
            Self::Ed(k) => Self::Ed(k.with_key_id(kid)),
            Self::Rs(k) => Self::Rs(k.with_key_id(kid)),
            Self::Ps(k) => Self::Ps(k.with_key_id(kid)),
        }
    }

    fn kid(&self) -> Option<String> {
        match self {
            Self::Es(k) => k.key_id().clone(),
            Self::Ed(k) => k.key_id().clone(),
            Self::Rs(k) => k.key_id().clone(),
            Self::Ps(k) => k.key_id().clone(),
        }
    }

    /// The public key as the server holds it, verifying `algorithms`.
    pub(super) fn client_key_for(&self, algorithms: &[Algorithm]) -> ClientKey {
        let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
        let key = match self {
            Self::Es(k) => {
                let point = k.public_key().public_key().to_bytes_uncompressed();
                DecodingKey::from_ec_components(&b64(&point[1..33]), &b64(&point[33..])).unwrap()
            }
            Self::Ed(k) => DecodingKey::from_ed_components(&b64(&k.public_key().to_bytes())).unwrap(),
            Self::Rs(k) => {
                let c = k.public_key().to_components();
                DecodingKey::from_rsa_raw_components(&c.n, &c.e)
            }
            Self::Ps(k) => {
                let c = k.public_key().to_components();
                DecodingKey::from_rsa_raw_components(&c.n, &c.e)
            }
        };
        ClientKey {
            kid: self.kid(),
            algorithms: algorithms.to_vec(),
            key,
            certificate: None,
        }
    }

    /// The public key, verifying the one algorithm it signs with.
    pub(super) fn client_key(&self) -> ClientKey {
        let alg = match self {
            Self::Es(_) => Algorithm::ES256,
            Self::Ed(_) => Algorithm::EdDSA,
            Self::Rs(_) => Algorithm::RS256,
            Self::Ps(_) => Algorithm::PS256,
        };
        self.client_key_for(&[alg])
    }

    /// Signs `payload` (a JSON object, exactly as given) into a compact JWS.
    pub(super) fn sign(&self, payload: &Value) -> String {
        let claims = exact_claims(payload);
        match self {
            Self::Es(k) => k.sign(claims),
            Self::Ed(k) => k.sign(claims),
            Self::Rs(k) => k.sign(claims),
            Self::Ps(k) => k.sign(claims),
        }
        .unwrap()
    }
}

/// jwt-simple claims that serialize to `payload` and nothing else.
fn exact_claims(payload: &Value) -> JWTClaims<Map<String, Value>> {
    let mut claims = Claims::with_custom_claims(payload.as_object().unwrap().clone(), Default::default());
    claims.issued_at = None;
    claims.expires_at = None;
    claims.invalid_before = None;
    claims
}

/// `header.payload.signature` from JSON texts and a signature as given.
fn compact(header: &str, payload: &str, signature: &str) -> String {
    format!(
        "{}.{}.{signature}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    )
}

/// The claims of a good assertion of `client` for the token endpoint.
pub(super) fn good_claims(client: &str) -> Value {
    json!({
        "iss": client,
        "sub": client,
        "aud": TOKEN_URL,
        "iat": NOW,
        "exp": NOW + 60,
        "jti": SystemRandom.token(16),
    })
}

/// `good_claims` with `name` set to `value` (`None`: removed).
fn with(client: &str, name: &str, value: Option<Value>) -> Value {
    let mut claims = good_claims(client);
    let map = claims.as_object_mut().unwrap();
    match value {
        Some(value) => map.insert(name.into(), value),
        None => map.remove(name),
    };
    claims
}

/// The audiences of a request to the token endpoint.
pub(super) fn context() -> AuthContext {
    AuthContext {
        audiences: vec![ISSUER.into(), TOKEN_URL.into()],
        certificate: None,
    }
}

/// The client authentication of a body carrying `assertion` (and `extra`).
pub(super) fn assertion_auth(assertion: &str, extra: &[(&str, &str)]) -> Result<ClientAuth, OAuthError> {
    let mut pairs = vec![
        (
            "client_assertion_type".to_string(),
            crate::authn::JWT_BEARER_ASSERTION.to_string(),
        ),
        ("client_assertion".to_string(), assertion.to_string()),
    ];
    pairs.extend(extra.iter().map(|(n, v)| (n.to_string(), v.to_string())));
    ClientAuth::from_request(&mut Params::new(pairs).unwrap(), None)
}

/// A client's keys served now, and those served after the next refetch.
type KeySets = (Arc<ClientKeySet>, Option<Arc<ClientKeySet>>);

/// Clients' key sets as a `jwks_uri` fetcher would serve them: `current`, replaced
/// by `next` when asked again for an unknown `kid`. Records every call.
#[derive(Default)]
pub(super) struct TestKeys {
    sets: Mutex<HashMap<String, KeySets>>,
    calls: Mutex<Vec<(String, Option<String>)>>,
}

impl TestKeys {
    pub(super) fn with(self, client: &str, keys: Vec<ClientKey>) -> Self {
        self.sets
            .lock()
            .unwrap()
            .insert(client.into(), (Arc::new(ClientKeySet { keys }), None));
        self
    }

    /// Serves `keys` for `client` after the next refetch.
    fn rotate_to(&self, client: &str, keys: Vec<ClientKey>) {
        let mut sets = self.sets.lock().unwrap();
        sets.get_mut(client).unwrap().1 = Some(Arc::new(ClientKeySet { keys }));
    }

    fn calls(&self) -> Vec<(String, Option<String>)> {
        self.calls.lock().unwrap().clone()
    }
}

#[async_trait]
impl ClientKeys for TestKeys {
    async fn client_keys(
        &self,
        client: &Client,
        unknown_kid: Option<&str>,
    ) -> Result<Arc<ClientKeySet>, OAuthError> {
        self.calls
            .lock()
            .unwrap()
            .push((client.id.to_string(), unknown_kid.map(str::to_owned)));
        let mut sets = self.sets.lock().unwrap();
        let Some((current, next)) = sets.get_mut(client.id.as_str()) else {
            return Err(OAuthError::invalid_client(
                "The client has no registered keys.",
                false,
            ));
        };
        if unknown_kid.is_some() {
            if let Some(next) = next.take() {
                *current = next;
            }
        }
        Ok(current.clone())
    }
}

/// A client authenticating with `method`; its secret hash is of a value no one
/// knows, as for every client without a secret method.
pub(super) fn method_client(id: &str, method: AuthMethod) -> Client {
    let mut client = client(id, SecretHash::sha256(&ClientSecret::generate(&SystemRandom)));
    client.auth.method = method;
    client
}

/// A fixture whose clients' keys come from `keys`.
pub(super) fn keyed_fixture(clients: Vec<Client>, keys: Arc<TestKeys>) -> Fixture {
    let mut f = fixture(clients);
    f.service = f.service.with_client_keys(keys);
    f
}

/// The code and description of a refusal.
async fn refusal(f: &Fixture, auth: &ClientAuth) -> (String, String) {
    let err = f.service.authenticate(auth, &context()).await.unwrap_err();
    (err.code().to_owned(), err.description().to_owned())
}

/// Asserts `assertion` is refused with `invalid_client` and a description holding
/// `words`, and that the description does not echo the assertion.
async fn assert_refused(f: &Fixture, assertion: &str, words: &str, what: &str) {
    let auth = match assertion_auth(assertion, &[]) {
        Ok(auth) => auth,
        Err(err) => {
            assert_eq!(err.code(), "invalid_client", "{what}: {err:?}");
            assert!(err.description().contains(words), "{what}: {}", err.description());
            return;
        }
    };
    let (code, description) = refusal(f, &auth).await;
    assert_eq!(code, "invalid_client", "{what}: {description}");
    assert!(description.contains(words), "{what}: {description}");
    for part in assertion.split('.').filter(|part| part.len() > 8) {
        assert!(
            !description.contains(part),
            "{what}: the description echoes the assertion"
        );
    }
}

#[tokio::test]
async fn each_algorithm_authenticates_and_gets_a_token() {
    for alg in ["ES256", "EdDSA", "RS256", "PS256"] {
        let key = TestKey::generate(alg, Some("k1"));
        let keys = Arc::new(TestKeys::default().with("svc", vec![key.client_key()]));
        let f = keyed_fixture(vec![method_client("svc", AuthMethod::PrivateKeyJwt)], keys);

        let auth = assertion_auth(&key.sign(&good_claims("svc")), &[]).unwrap();
        let client = f.service.authenticate(&auth, &context()).await.unwrap();
        assert_eq!(client.id.as_str(), "svc", "{alg}");

        // Through the whole token request, `aud` as an array naming the issuer.
        let claims = with("svc", "aud", Some(json!(["https://elsewhere.test", ISSUER])));
        let req = request(&[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", crate::authn::JWT_BEARER_ASSERTION),
            ("client_assertion", &key.sign(&claims)),
            ("client_id", "svc"),
        ]);
        assert!(matches!(req.client_auth, ClientAuth::Assertion { .. }), "{alg}");
        let response = f.service.exchange(req).await.unwrap();
        assert_eq!(super::claims(&response.access_token)["client_id"], "svc", "{alg}");
    }
}

#[tokio::test]
async fn an_es256_signature_is_taken_in_either_s_spelling() {
    let key = TestKey::generate("ES256", None);
    let keys = Arc::new(TestKeys::default().with("svc", vec![key.client_key()]));
    let f = keyed_fixture(vec![method_client("svc", AuthMethod::PrivateKeyJwt)], keys);
    let mut seen = (false, false);
    while seen != (true, true) {
        let assertion = key.sign(&good_claims("svc"));
        let signature = URL_SAFE_NO_PAD
            .decode(assertion.rsplit('.').next().unwrap())
            .unwrap();
        let high = crate::ecdsa::is_high_s(&signature);
        let auth = assertion_auth(&assertion, &[]).unwrap();
        assert!(
            f.service.authenticate(&auth, &context()).await.is_ok(),
            "high s: {high}"
        );
        if high {
            seen.0 = true;
        } else {
            seen.1 = true;
        }
    }
}

#[tokio::test]
async fn without_a_kid_every_key_of_the_algorithm_is_tried() {
    let other = TestKey::generate("ES256", None);
    let signer = TestKey::generate("ES256", None);
    let rsa = TestKey::generate("RS256", None);
    let keys = Arc::new(TestKeys::default().with(
        "svc",
        vec![
            rsa.client_key_for(&[Algorithm::RS256, Algorithm::PS256]),
            other.client_key(),
            signer.client_key(),
        ],
    ));
    let f = keyed_fixture(vec![method_client("svc", AuthMethod::PrivateKeyJwt)], keys);
    let auth = assertion_auth(&signer.sign(&good_claims("svc")), &[]).unwrap();
    assert!(f.service.authenticate(&auth, &context()).await.is_ok());
    // An RSA key without `alg` verifies both RSA algorithms.
    let auth = assertion_auth(&rsa.sign(&good_claims("svc")), &[]).unwrap();
    assert!(f.service.authenticate(&auth, &context()).await.is_ok());
}

#[tokio::test]
async fn every_broken_rule_is_refused_precisely() {
    let key = TestKey::generate("ES256", Some("k1"));
    let ed = TestKey::generate("EdDSA", Some("e1"));
    let keys = Arc::new(TestKeys::default().with("svc", vec![key.client_key(), ed.client_key()]));
    let f = keyed_fixture(vec![method_client("svc", AuthMethod::PrivateKeyJwt)], keys);
    let sign = |claims: Value| key.sign(&claims);
    let good = sign(good_claims("svc"));
    let (signed, signature) = good.rsplit_once('.').unwrap();
    let payload = good_claims("svc").to_string();
    let es_header = r#"{"alg":"ES256","kid":"k1"}"#;
    let hs256 = HS256Key::from_bytes(b"a public key is no secret")
        .with_key_id("k1")
        .authenticate(exact_claims(&good_claims("svc")))
        .unwrap();

    let cases: Vec<(&str, String, &str)> = vec![
        ("two parts", signed.to_owned(), "compact JWS"),
        ("four parts", format!("{good}.{signature}"), "compact JWS"),
        ("empty signature", format!("{signed}."), "compact JWS"),
        (
            "padded header",
            format!(
                "{}=.{}.{signature}",
                URL_SAFE_NO_PAD.encode(es_header),
                URL_SAFE_NO_PAD.encode(&payload)
            ),
            "header is not base64url",
        ),
        (
            "header not JSON",
            compact("nope", &payload, signature),
            "header is not a JSON object",
        ),
        (
            "payload not JSON",
            compact(es_header, "nope", signature),
            "payload is not a JSON object",
        ),
        (
            "no alg",
            compact(r#"{"kid":"k1"}"#, &payload, signature),
            "has no alg",
        ),
        (
            "alg none",
            compact(r#"{"alg":"none"}"#, &payload, ""),
            "compact JWS",
        ),
        (
            "alg none with a signature",
            compact(r#"{"alg":"none"}"#, &payload, signature),
            "alg must be one of",
        ),
        ("alg HS256", hs256, "alg must be one of"),
        (
            "alg ES384",
            compact(r#"{"alg":"ES384","kid":"k1"}"#, &payload, signature),
            "alg must be one of",
        ),
        (
            "alg a number",
            compact(r#"{"alg":256}"#, &payload, signature),
            "alg must be a string",
        ),
        (
            "crit",
            compact(
                r#"{"alg":"ES256","kid":"k1","crit":["exp"]}"#,
                &payload,
                signature,
            ),
            "crit",
        ),
        (
            "kid a number",
            compact(r#"{"alg":"ES256","kid":1}"#, &payload, signature),
            "kid must be a string",
        ),
        (
            "unknown kid",
            TestKey::generate("ES256", Some("nobody")).sign(&good_claims("svc")),
            "unknown kid",
        ),
        (
            "an EdDSA signature under the EC key's kid",
            TestKey::generate("EdDSA", Some("k1")).sign(&good_claims("svc")),
            "not registered for its alg",
        ),
        (
            "RS256 without kid, no RSA key",
            TestKey::generate("RS256", None).sign(&good_claims("svc")),
            "None of the client's keys",
        ),
        (
            "another key under a known kid",
            TestKey::generate("ES256", Some("k1")).sign(&good_claims("svc")),
            "signature is invalid",
        ),
        (
            "a signature over other claims",
            compact(es_header, &good_claims("svc").to_string(), signature),
            "signature is invalid",
        ),
        ("no sub", sign(with("svc", "sub", None)), "has no sub"),
        (
            "sub a number",
            sign(with("svc", "sub", Some(json!(7)))),
            "sub must be a string",
        ),
        (
            "iss another",
            sign(with("svc", "iss", Some(json!("other")))),
            "iss must be the client id",
        ),
        (
            "no iss",
            sign(with("svc", "iss", None)),
            "iss must be the client id",
        ),
        ("no aud", sign(with("svc", "aud", None)), "has no aud"),
        (
            "aud elsewhere",
            sign(with("svc", "aud", Some(json!("https://elsewhere.test")))),
            "aud names neither",
        ),
        (
            "aud an object",
            sign(with("svc", "aud", Some(json!({"url": ISSUER})))),
            "string or an array",
        ),
        (
            "aud an empty array",
            sign(with("svc", "aud", Some(json!([])))),
            "string or an array",
        ),
        (
            "aud an array with a number",
            sign(with("svc", "aud", Some(json!([ISSUER, 1])))),
            "string or an array",
        ),
        (
            "aud an array elsewhere",
            sign(with("svc", "aud", Some(json!(["https://elsewhere.test"])))),
            "aud names neither",
        ),
        ("no exp", sign(with("svc", "exp", None)), "has no exp"),
        (
            "exp a string",
            sign(with("svc", "exp", Some(json!("soon")))),
            "exp must be a number",
        ),
        (
            "exp with a fraction",
            sign(with("svc", "exp", Some(json!(NOW as f64 + 60.5)))),
            "exp must be a whole number",
        ),
        (
            "exp past the leeway",
            sign(with("svc", "exp", Some(json!(NOW - 31)))),
            "has expired",
        ),
        (
            "exp beyond 60 minutes",
            sign(with("svc", "exp", Some(json!(NOW + 3631)))),
            "more than 60 minutes",
        ),
        (
            "nbf in the future",
            sign(with("svc", "nbf", Some(json!(NOW + 31)))),
            "nbf is in the future",
        ),
        (
            "iat in the future",
            sign(with("svc", "iat", Some(json!(NOW + 31)))),
            "iat is in the future",
        ),
        (
            "iat a string",
            sign(with("svc", "iat", Some(json!("now")))),
            "iat must be a number",
        ),
        ("no jti", sign(with("svc", "jti", None)), "has no jti"),
        (
            "jti empty",
            sign(with("svc", "jti", Some(json!("")))),
            "1 to 256 characters",
        ),
        (
            "jti of 257 characters",
            sign(with("svc", "jti", Some(json!("é".repeat(257))))),
            "1 to 256 characters",
        ),
        (
            "jti a number",
            sign(with("svc", "jti", Some(json!(5)))),
            "jti must be a string",
        ),
        (
            "over 8 KiB",
            sign(with("svc", "padding", Some(json!("x".repeat(8 * 1024))))),
            "longer than 8 KiB",
        ),
    ];
    for (what, assertion, words) in &cases {
        assert_refused(&f, assertion, words, what).await;
    }

    // The edges themselves are accepted.
    for (what, claims) in [
        ("exp at the leeway", with("svc", "exp", Some(json!(NOW - 30)))),
        (
            "exp 60 minutes and the leeway ahead",
            with("svc", "exp", Some(json!(NOW + 3630))),
        ),
        ("nbf at the leeway", with("svc", "nbf", Some(json!(NOW + 30)))),
        (
            "jti of 256 characters",
            with("svc", "jti", Some(json!("é".repeat(256)))),
        ),
        ("aud the issuer", with("svc", "aud", Some(json!(ISSUER)))),
    ] {
        let auth = assertion_auth(&sign(claims), &[]).unwrap();
        assert!(f.service.authenticate(&auth, &context()).await.is_ok(), "{what}");
    }
}

#[tokio::test]
async fn the_service_clock_decides_expiry() {
    let key = TestKey::generate("EdDSA", None);
    let keys = Arc::new(TestKeys::default().with("svc", vec![key.client_key()]));
    let f = keyed_fixture(vec![method_client("svc", AuthMethod::PrivateKeyJwt)], keys);
    let assertion = key.sign(&good_claims("svc"));
    f.clock.advance(91);
    assert_refused(
        &f,
        &assertion,
        "has expired",
        "61 s past exp by the service's clock",
    )
    .await;
}

#[tokio::test]
async fn an_assertion_is_accepted_once_and_a_forgery_uses_up_nothing() {
    let key = TestKey::generate("ES256", Some("k1"));
    let keys = Arc::new(TestKeys::default().with("svc", vec![key.client_key()]));
    let f = keyed_fixture(vec![method_client("svc", AuthMethod::PrivateKeyJwt)], keys);
    let claims = good_claims("svc");

    // A forgery carrying the jti first: refused, and the jti is still free.
    let forged = TestKey::generate("ES256", Some("k1")).sign(&claims);
    assert_refused(&f, &forged, "signature is invalid", "forged").await;

    let assertion = key.sign(&claims);
    let auth = assertion_auth(&assertion, &[]).unwrap();
    assert!(f.service.authenticate(&auth, &context()).await.is_ok());
    assert_refused(&f, &assertion, "used before", "the same assertion again").await;
    // The same jti in a new assertion (other iat) is the same use.
    let mut again = with("svc", "iat", Some(json!(NOW - 5)));
    again["jti"] = claims["jti"].clone();
    let again = key.sign(&again);
    assert_refused(&f, &again, "used before", "the same jti in another assertion").await;

    // The record lasts until exp plus the leeway, then the sweep removes it.
    f.store.purge_expired(NOW + 60 + 30, 100).await.unwrap();
    f.clock.set(NOW - 20);
    assert_refused(
        &f,
        &assertion,
        "used before",
        "a record in force survives the sweep",
    )
    .await;
    f.store.purge_expired(NOW + 60 + 31, 100).await.unwrap();
    let auth = assertion_auth(&assertion, &[]).unwrap();
    assert!(
        f.service.authenticate(&auth, &context()).await.is_ok(),
        "after the sweep (clock set back to test it)"
    );
}

#[tokio::test]
async fn two_clients_may_use_the_same_jti() {
    let a = TestKey::generate("ES256", None);
    let b = TestKey::generate("ES256", None);
    let keys = Arc::new(
        TestKeys::default()
            .with("a", vec![a.client_key()])
            .with("b", vec![b.client_key()]),
    );
    let f = keyed_fixture(
        vec![
            method_client("a", AuthMethod::PrivateKeyJwt),
            method_client("b", AuthMethod::PrivateKeyJwt),
        ],
        keys,
    );
    let jti = json!("shared-jti");
    for (key, id) in [(&a, "a"), (&b, "b")] {
        let auth = assertion_auth(&key.sign(&with(id, "jti", Some(jti.clone()))), &[]).unwrap();
        assert!(f.service.authenticate(&auth, &context()).await.is_ok(), "{id}");
    }
}

#[tokio::test]
async fn an_unknown_kid_fetches_the_keys_once_more() {
    let old = TestKey::generate("ES256", Some("old"));
    let new = TestKey::generate("ES256", Some("new"));
    let keys = Arc::new(TestKeys::default().with("svc", vec![old.client_key()]));
    keys.rotate_to("svc", vec![old.client_key(), new.client_key()]);
    let f = keyed_fixture(
        vec![method_client("svc", AuthMethod::PrivateKeyJwt)],
        keys.clone(),
    );

    let auth = assertion_auth(&new.sign(&good_claims("svc")), &[]).unwrap();
    assert!(f.service.authenticate(&auth, &context()).await.is_ok());
    assert_eq!(
        keys.calls(),
        [
            ("svc".to_string(), None),
            ("svc".to_string(), Some("new".to_string()))
        ]
    );

    // Still unknown after the second look: refused, after exactly one more call.
    let stranger = TestKey::generate("ES256", Some("stranger"));
    assert_refused(
        &f,
        &stranger.sign(&good_claims("svc")),
        "unknown kid",
        "a kid of no key",
    )
    .await;
    assert_eq!(keys.calls().len(), 4);
}

#[tokio::test]
async fn an_assertion_needs_the_audience_of_the_request() {
    let key = TestKey::generate("ES256", None);
    let keys = Arc::new(TestKeys::default().with("svc", vec![key.client_key()]));
    let f = keyed_fixture(vec![method_client("svc", AuthMethod::PrivateKeyJwt)], keys);
    let introspection = AuthContext {
        audiences: vec![ISSUER.into(), "https://issuer.test/oauth/introspect".into()],
        certificate: None,
    };
    let aud = |url: &str| with("svc", "aud", Some(json!(url)));
    for (url, accepted) in [
        ("https://issuer.test/oauth/introspect", true),
        (ISSUER, true),
        ("https://issuer.test/oauth/revoke", false),
        ("https://issuer.test/", false),
    ] {
        let auth = assertion_auth(&key.sign(&aud(url)), &[]).unwrap();
        let result = f.service.authenticate(&auth, &introspection).await;
        assert_eq!(result.is_ok(), accepted, "{url}: {result:?}");
    }
}

#[tokio::test]
async fn methods_do_not_cross_families() {
    let key = TestKey::generate("ES256", None);
    let secret_hash = SecretHash::sha256(&secret("s3cret-s3cret-s3cret"));
    let keys = Arc::new(
        TestKeys::default()
            .with("keyed", vec![key.client_key()])
            .with("secret", vec![key.client_key()]),
    );
    let mut by_post = client("post", secret_hash.clone());
    by_post.auth.method = AuthMethod::ClientSecretPost;
    let mut keyed = method_client("keyed", AuthMethod::PrivateKeyJwt);
    // Even the right secret: a key client has none it may use.
    keyed.secret_hash = secret_hash.clone();
    let f = keyed_fixture(
        vec![
            keyed,
            client("secret", secret_hash),
            by_post,
            method_client("tls", AuthMethod::TlsClientAuth),
        ],
        keys,
    );
    let failed = ("invalid_client".to_string(), CLIENT_AUTH_FAILED.to_string());

    // The two secret encodings serve either secret method.
    for id in ["secret", "post"] {
        for auth in [
            ClientAuth::Basic {
                client_id: id.into(),
                secret: secret("s3cret-s3cret-s3cret"),
            },
            ClientAuth::Post {
                client_id: id.into(),
                secret: secret("s3cret-s3cret-s3cret"),
            },
        ] {
            assert!(
                f.service.authenticate(&auth, &context()).await.is_ok(),
                "{id}: {auth:?}"
            );
        }
    }
    for auth in [
        ClientAuth::Basic {
            client_id: "keyed".into(),
            secret: secret("s3cret-s3cret-s3cret"),
        },
        ClientAuth::Post {
            client_id: "keyed".into(),
            secret: secret("s3cret-s3cret-s3cret"),
        },
        ClientAuth::Post {
            client_id: "tls".into(),
            secret: secret("s3cret-s3cret-s3cret"),
        },
    ] {
        let err = f.service.authenticate(&auth, &context()).await.unwrap_err();
        assert_eq!(
            (err.code().to_string(), err.description().to_string()),
            failed,
            "{auth:?}"
        );
        assert!(!err.is_unknown_client(), "{auth:?}");
    }
    // A secret client with an assertion signed by a key it would have, if it had keys.
    let auth = assertion_auth(&key.sign(&good_claims("secret")), &[]).unwrap();
    assert_eq!(
        refusal(&f, &auth).await,
        failed,
        "a secret client with an assertion"
    );
    let tls = assertion_auth(&key.sign(&good_claims("tls")), &[]).unwrap();
    assert_eq!(
        refusal(&f, &tls).await,
        failed,
        "a certificate client with an assertion"
    );
    // An unknown client with an assertion reads the same, marked unknown.
    let auth = assertion_auth(&key.sign(&good_claims("nobody")), &[]).unwrap();
    let err = f.service.authenticate(&auth, &context()).await.unwrap_err();
    assert_eq!((err.code().to_string(), err.description().to_string()), failed);
    assert!(err.is_unknown_client());
    // The key client still works its own way.
    let auth = assertion_auth(&key.sign(&good_claims("keyed")), &[]).unwrap();
    assert!(f.service.authenticate(&auth, &context()).await.is_ok());
}

#[tokio::test]
async fn key_lookup_failures_and_database_errors_pass_through() {
    let key = TestKey::generate("ES256", None);
    // No keys for the client: the lookup's own refusal.
    let f = keyed_fixture(
        vec![method_client("svc", AuthMethod::PrivateKeyJwt)],
        Arc::new(TestKeys::default()),
    );
    let auth = assertion_auth(&key.sign(&good_claims("svc")), &[]).unwrap();
    assert_eq!(refusal(&f, &auth).await.1, "The client has no registered keys.");

    // The replay store down: 503, not invalid_client.
    let keys = Arc::new(TestKeys::default().with("svc", vec![key.client_key()]));
    let mut f = fixture_with_replays(
        vec![method_client("svc", AuthMethod::PrivateKeyJwt)],
        Arc::new(ReplaysDown),
    );
    f.service = f.service.with_client_keys(keys);
    let err = f.service.authenticate(&auth, &context()).await.unwrap_err();
    assert_eq!(err.code(), "temporarily_unavailable");
}

/// A replay store whose database cannot be reached.
struct ReplaysDown;

#[async_trait]
impl ReplayStore for ReplaysDown {
    async fn first_use(&self, _digest: &[u8; 32], _expires_at: UnixTime) -> Result<bool, crate::StoreError> {
        Err(crate::StoreError::Unavailable("connection refused".into()))
    }
}

/// A certificate as the server would present it.
pub(super) fn certificate(
    der: &[u8],
    subject_dn: Option<&str>,
    chain_trusted: bool,
) -> Arc<PresentedCertificate> {
    Arc::new(PresentedCertificate {
        der: der.to_vec(),
        thumbprint: URL_SAFE_NO_PAD.encode(crate::secret::sha256(der)),
        subject_dn: subject_dn.map(str::to_owned),
        chain_trusted,
    })
}

/// The client authentication of a body with only `client_id`.
fn id_only(client_id: &str) -> ClientAuth {
    let mut params = Params::new(vec![("client_id".into(), client_id.into())]).unwrap();
    ClientAuth::from_request(&mut params, None).unwrap()
}

fn with_certificate(certificate: Arc<PresentedCertificate>) -> AuthContext {
    AuthContext {
        certificate: Some(certificate),
        ..context()
    }
}

#[tokio::test]
async fn tls_client_auth_needs_a_trusted_chain_and_the_registered_subject() {
    let mut tls = method_client("tls", AuthMethod::TlsClientAuth);
    tls.auth.tls_subject_dn = Some("CN=svc-1,O=Example Corp,C=DE".into());
    let f = fixture(vec![
        tls,
        client("secret", SecretHash::sha256(&secret("s3cret-s3cret-s3cret"))),
    ]);
    let failed = ("invalid_client".to_string(), CLIENT_AUTH_FAILED.to_string());
    let auth = id_only("tls");
    assert!(matches!(auth, ClientAuth::ClientIdOnly { .. }));

    let good = certificate(b"cert-1", Some("CN=svc-1,O=Example Corp,C=DE"), true);
    let client = f
        .service
        .authenticate(&auth, &with_certificate(good.clone()))
        .await
        .unwrap();
    assert_eq!(client.id.as_str(), "tls");

    for (what, cert) in [
        (
            "another subject",
            certificate(b"cert-2", Some("CN=svc-2,O=Example Corp,C=DE"), true),
        ),
        (
            "an untrusted chain",
            certificate(b"cert-3", Some("CN=svc-1,O=Example Corp,C=DE"), false),
        ),
        ("an unreadable subject", certificate(b"cert-4", None, true)),
    ] {
        let err = f
            .service
            .authenticate(&auth, &with_certificate(cert))
            .await
            .unwrap_err();
        assert_eq!(
            (err.code().to_string(), err.description().to_string()),
            failed,
            "{what}"
        );
    }
    let err = f.service.authenticate(&auth, &context()).await.unwrap_err();
    assert_eq!(err.code(), "invalid_client");
    assert!(
        err.description().starts_with("Client authentication is required"),
        "{}",
        err.description()
    );

    // A secret client with its id alone and a certificate: not its method.
    let err = f
        .service
        .authenticate(&id_only("secret"), &with_certificate(good.clone()))
        .await
        .unwrap_err();
    assert_eq!((err.code().to_string(), err.description().to_string()), failed);
    let err = f
        .service
        .authenticate(&id_only("nobody"), &with_certificate(good))
        .await
        .unwrap_err();
    assert!(err.is_unknown_client());
}

#[tokio::test]
async fn self_signed_tls_client_auth_matches_a_registered_certificate() {
    let key = TestKey::generate("ES256", Some("k1"));
    let mut registered = key.client_key();
    registered.certificate = Some(b"self-signed-cert".to_vec());
    let other = TestKey::generate("EdDSA", None).client_key();
    let keys = Arc::new(TestKeys::default().with("self", vec![other, registered]));
    let f = keyed_fixture(
        vec![method_client("self", AuthMethod::SelfSignedTlsClientAuth)],
        keys,
    );
    let auth = id_only("self");

    let mine = certificate(b"self-signed-cert", Some("CN=whatever"), false);
    assert!(f
        .service
        .authenticate(&auth, &with_certificate(mine))
        .await
        .is_ok());
    let another = certificate(b"another-cert", Some("CN=whatever"), true);
    let err = f
        .service
        .authenticate(&auth, &with_certificate(another))
        .await
        .unwrap_err();
    assert_eq!(err.description(), CLIENT_AUTH_FAILED);
    let err = f.service.authenticate(&auth, &context()).await.unwrap_err();
    assert!(err.description().starts_with("Client authentication is required"));
    // A self-signed client has no assertion method either.
    let auth = assertion_auth(&key.sign(&good_claims("self")), &[]).unwrap();
    assert_eq!(refusal(&f, &auth).await.1, CLIENT_AUTH_FAILED);
}

#[tokio::test]
async fn revocation_with_a_client_id_alone_revokes_as_the_holder_without_a_certificate() {
    let params = Params::new(vec![
        ("token".into(), "t".into()),
        ("client_id".into(), "tls".into()),
    ])
    .unwrap();
    let request = RevocationRequest::parse(params, None).unwrap();
    assert!(request.authentication(&context()).is_none());
    let with_cert = with_certificate(certificate(b"c", None, true));
    assert!(matches!(
        request.authentication(&with_cert),
        Some(ClientAuth::ClientIdOnly { .. })
    ));
}
