//! `private_key_jwt` (RFC 7523 §2.2, RFC 7521 §4.2): the client proves who it is
//! with a short-lived JWT signed by a private key only it holds, instead of a shared
//! secret. The server knows the public half (its `jwks` or `jwks_uri`).
//!
//! Signing uses aws-lc-rs directly rather than jsonwebtoken: the key type (and so
//! the `alg`) is found by parsing the PKCS#8 document, which aws-lc-rs does anyway,
//! and the parsed key is kept, where jsonwebtoken's `EncodingKey` would parse the
//! DER again on every signature. A compact JWS is two base64url segments and a
//! signature; nothing else of a JOSE library is needed.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::signature::{
    EcdsaKeyPair, Ed25519KeyPair, RsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING, RSA_PKCS1_SHA256,
    RSA_PSS_SHA256,
};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as BASE64URL;
use base64::Engine as _;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::PrivateKeyDer;
use secrecy::SecretString;
use serde_json::json;

use crate::error::Error;

/// The `client_assertion_type` of a JWT assertion (RFC 7523 §2.2).
pub(crate) const JWT_BEARER_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How long an assertion is valid: long enough for one request and its clock skew,
/// short enough that a copy taken in transit is soon worthless (the server also
/// refuses a `jti` it has seen).
const ASSERTION_LIFETIME: Duration = Duration::from_secs(60);

/// A private key the client signs its assertions with: EC P-256 (ES256), Ed25519
/// (EdDSA) or RSA (RS256, or PS256 with [`PrivateKey::rsa_pss`]). `Debug` does not
/// show it. Cheap to clone.
///
/// ```no_run
/// # fn example() -> Result<(), gatehouse_client::Error> {
/// use gatehouse_client::{ClientCredentials, PrivateKey};
///
/// let pem = std::fs::read_to_string("client-key.pem").unwrap_or_default();
/// let key = PrivateKey::from_pem(&pem)?.kid("2025-01");
/// let credentials = ClientCredentials::private_key_jwt("reports", key);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct PrivateKey {
    signer: Arc<Signer>,
    /// RSA only: PS256 rather than RS256.
    pss: bool,
    kid: Option<String>,
}

enum Signer {
    EcdsaP256(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
    Rsa(RsaKeyPair),
}

impl PrivateKey {
    /// The first private key in `pem`: a PKCS#8 `PRIVATE KEY` of EC P-256, Ed25519
    /// or RSA, or an RSA key in PKCS#1 (`RSA PRIVATE KEY`) or a P-256 key in SEC1
    /// (`EC PRIVATE KEY`), as OpenSSL writes them. Encrypted keys are not read.
    pub fn from_pem(pem: &str) -> Result<Self, Error> {
        let der = PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|e| {
            Error::Config(format!(
                "the client's private key is not an unencrypted PEM private key ({e})"
            ))
        })?;
        let signer = match &der {
            PrivateKeyDer::Pkcs8(pkcs8) => Signer::from_pkcs8(pkcs8.secret_pkcs8_der())?,
            PrivateKeyDer::Pkcs1(pkcs1) => RsaKeyPair::from_der(pkcs1.secret_pkcs1_der())
                .map(Signer::Rsa)
                .map_err(|e| unusable(&format!("this RSA PRIVATE KEY cannot be used ({e})")))?,
            PrivateKeyDer::Sec1(sec1) => {
                EcdsaKeyPair::from_private_key_der(&ECDSA_P256_SHA256_FIXED_SIGNING, sec1.secret_sec1_der())
                    .map(Signer::EcdsaP256)
                    .map_err(|_| unusable("this EC PRIVATE KEY is not on the curve P-256"))?
            }
            _ => return Err(unusable("the key's format is unknown")),
        };
        Ok(PrivateKey::new(signer))
    }

    /// A PKCS#8 private key in DER (EC P-256, Ed25519 or RSA).
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, Error> {
        Signer::from_pkcs8(der).map(PrivateKey::new)
    }

    fn new(signer: Signer) -> Self {
        PrivateKey {
            signer: Arc::new(signer),
            pss: false,
            kid: None,
        }
    }

    /// Names the key in the assertion's header (`kid`): the server then tries that
    /// key alone. Without it, the server tries each of the client's keys that fits
    /// the algorithm.
    pub fn kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }

    /// Signs with RSASSA-PSS (PS256) instead of PKCS#1 v1.5 (RS256). Only RSA keys
    /// have the choice: for another key this is a configuration error.
    pub fn rsa_pss(mut self) -> Result<Self, Error> {
        if !matches!(*self.signer, Signer::Rsa(_)) {
            return Err(Error::Config(format!(
                "only RSA keys can sign with PS256; this key signs with {}",
                self.algorithm()
            )));
        }
        self.pss = true;
        Ok(self)
    }

    /// The JWS `alg` its signatures carry: `ES256`, `EdDSA`, `RS256` or `PS256`.
    pub fn algorithm(&self) -> &'static str {
        match (&*self.signer, self.pss) {
            (Signer::EcdsaP256(_), _) => "ES256",
            (Signer::Ed25519(_), _) => "EdDSA",
            (Signer::Rsa(_), false) => "RS256",
            (Signer::Rsa(_), true) => "PS256",
        }
    }

    /// The key's `kid`, if one was given.
    pub fn key_id(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The signature of `message`.
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        let rng = SystemRandom::new();
        let failed = |_| Error::ClientAssertion;
        match &*self.signer {
            Signer::EcdsaP256(key) => key
                .sign(&rng, message)
                .map(|signature| low_s(signature.as_ref()))
                .map_err(failed),
            Signer::Ed25519(key) => key
                .try_sign(message)
                .map(|signature| signature.as_ref().to_vec())
                .map_err(failed),
            Signer::Rsa(key) => {
                let padding: &'static dyn aws_lc_rs::signature::RsaEncoding = if self.pss {
                    &RSA_PSS_SHA256
                } else {
                    &RSA_PKCS1_SHA256
                };
                let mut signature = vec![0; key.public_modulus_len()];
                key.sign(padding, &rng, message, &mut signature).map_err(failed)?;
                Ok(signature)
            }
        }
    }

    /// A fresh client assertion for a request to `audience` (the URL of the endpoint
    /// it is sent to), issued at `now`.
    pub(crate) fn assertion(
        &self,
        client_id: &str,
        audience: &str,
        now: SystemTime,
    ) -> Result<SecretString, Error> {
        let issued_at = now.duration_since(UNIX_EPOCH).map_or(0, |since| since.as_secs());
        let mut header = json!({"alg": self.algorithm(), "typ": "JWT"});
        if let Some(kid) = &self.kid {
            header["kid"] = json!(kid);
        }
        // RFC 7523 §3: iss and sub are the client id, aud the authorization server
        // (the endpoint's URL here), exp bounds its life; jti lets the server refuse
        // a replay (RFC 7523 §3 item 7), so it is 128 random bits, never reused.
        let claims = json!({
            "iss": client_id,
            "sub": client_id,
            "aud": audience,
            "iat": issued_at,
            "exp": issued_at + ASSERTION_LIFETIME.as_secs(),
            "jti": random_jti()?,
        });
        let signing_input = format!(
            "{}.{}",
            BASE64URL.encode(header.to_string()),
            BASE64URL.encode(claims.to_string())
        );
        let signature = self.sign(signing_input.as_bytes())?;
        Ok(SecretString::from(format!(
            "{signing_input}.{}",
            BASE64URL.encode(signature)
        )))
    }
}

impl Signer {
    /// The key of a PKCS#8 document, by trying each supported type: the document
    /// names its algorithm, and each parser accepts only its own.
    fn from_pkcs8(der: &[u8]) -> Result<Signer, Error> {
        if let Ok(key) = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der) {
            return Ok(Signer::EcdsaP256(key));
        }
        if let Ok(key) = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der) {
            return Ok(Signer::Ed25519(key));
        }
        match RsaKeyPair::from_pkcs8(der) {
            Ok(key) => Ok(Signer::Rsa(key)),
            Err(_) => Err(unusable(
                "it is not an EC P-256, Ed25519 or RSA (2048 bits or more) PKCS#8 private key",
            )),
        }
    }
}

/// The order n of the P-256 group (SEC 2 §2.4.2), big-endian.
const P256_ORDER: [u8; 32] = [
    0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xBC,
    0xE6, 0xFA, 0xAD, 0xA7, 0x17, 0x9E, 0x84, 0xF3, 0xB9, 0xCA, 0xC2, 0xFC, 0x63, 0x25, 0x51,
];

/// ⌊n/2⌋, big-endian: the largest low `s`.
const P256_HALF_ORDER: [u8; 32] = [
    0x7F, 0xFF, 0xFF, 0xFF, 0x80, 0x00, 0x00, 0x00, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xDE,
    0x73, 0x7D, 0x56, 0xD3, 0x8B, 0xCF, 0x42, 0x79, 0xDC, 0xE5, 0x61, 0x7E, 0x31, 0x92, 0xA8,
];

/// A P-256 signature (`r ‖ s`, RFC 7518 §3.4) in its low-S form, `s ≤ n/2`. ECDSA is
/// malleable (`(r, n − s)` verifies as well) and aws-lc-rs leaves `s` high half the
/// time; verifiers that insist on one spelling, gatehouse's own guard among them,
/// refuse the high form, so only the low one is sent.
fn low_s(signature: &[u8]) -> Vec<u8> {
    let mut signature = signature.to_vec();
    // Equal-length big-endian byte strings compare as numbers.
    if signature.len() == 64 && signature[32..] > P256_HALF_ORDER[..] {
        let mut borrow = false;
        for i in (0..32).rev() {
            let (difference, b1) = P256_ORDER[i].overflowing_sub(signature[32 + i]);
            let (difference, b2) = difference.overflowing_sub(u8::from(borrow));
            signature[32 + i] = difference;
            borrow = b1 || b2;
        }
    }
    signature
}

fn unusable(why: &str) -> Error {
    Error::Config(format!("the client's private key cannot be used: {why}"))
}

/// 128 random bits, base64url: a `jti` no other assertion will carry.
fn random_jti() -> Result<String, Error> {
    let mut bytes = [0u8; 16];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| Error::ClientAssertion)?;
    Ok(BASE64URL.encode(bytes))
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey")
            .field("alg", &self.algorithm())
            .field("kid", &self.kid)
            .field("key", &"[redacted]")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::signature::{
        KeyPair as _, UnparsedPublicKey, ECDSA_P256_SHA256_FIXED, ED25519, RSA_PKCS1_2048_8192_SHA256,
        RSA_PSS_2048_8192_SHA256,
    };
    use secrecy::ExposeSecret as _;
    use serde_json::Value;

    use super::*;

    fn pem(label: &str, der: &[u8]) -> String {
        use base64::engine::general_purpose::STANDARD;
        format!(
            "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
            STANDARD.encode(der)
        )
    }

    fn part(token: &str, index: usize) -> Value {
        let segment = token.split('.').nth(index).unwrap();
        serde_json::from_slice(&BASE64URL.decode(segment).unwrap()).unwrap()
    }

    fn verify(
        token: &str,
        algorithm: &'static dyn aws_lc_rs::signature::VerificationAlgorithm,
        public: &[u8],
    ) {
        let (input, signature) = token.rsplit_once('.').unwrap();
        UnparsedPublicKey::new(algorithm, public)
            .verify(input.as_bytes(), &BASE64URL.decode(signature).unwrap())
            .expect("the signature verifies");
    }

    const NOW: u64 = 1_700_000_000;

    fn at(seconds: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(seconds)
    }

    #[test]
    fn ec_assertions_carry_the_rfc_7523_claims() {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let public = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
            .unwrap()
            .public_key()
            .as_ref()
            .to_vec();
        let key = PrivateKey::from_pem(&pem("PRIVATE KEY", pkcs8.as_ref()))
            .unwrap()
            .kid("k1");
        assert_eq!(key.algorithm(), "ES256");

        let token = key
            .assertion("reports", "https://as.example/oauth/token", at(NOW))
            .unwrap();
        let token = token.expose_secret();
        assert_eq!(part(token, 0), json!({"alg": "ES256", "typ": "JWT", "kid": "k1"}));
        let claims = part(token, 1);
        assert_eq!(claims["iss"], "reports");
        assert_eq!(claims["sub"], "reports");
        assert_eq!(claims["aud"], "https://as.example/oauth/token");
        assert_eq!(claims["iat"], NOW);
        assert_eq!(claims["exp"], NOW + 60);
        let jti = claims["jti"].as_str().unwrap();
        assert_eq!(BASE64URL.decode(jti).unwrap().len(), 16);
        verify(token, &ECDSA_P256_SHA256_FIXED, &public);

        let again = key
            .assertion("reports", "https://as.example/oauth/token", at(NOW))
            .unwrap();
        assert_ne!(
            part(again.expose_secret(), 1)["jti"],
            claims["jti"],
            "a fresh jti each time"
        );

        // Only low-S signatures, which still verify: 64 signatures, each high half
        // the time before normalising.
        for _ in 0..64 {
            let token = key.assertion("reports", "aud", at(NOW)).unwrap();
            let token = token.expose_secret();
            let signature = BASE64URL.decode(token.rsplit_once('.').unwrap().1).unwrap();
            assert!(signature[32..] <= P256_HALF_ORDER[..], "high S");
            verify(token, &ECDSA_P256_SHA256_FIXED, &public);
        }
    }

    #[test]
    fn the_low_s_twin_is_n_minus_s() {
        // s = n − 1 is high; its twin is 1. A low s stays.
        let mut n_minus_one = P256_ORDER;
        n_minus_one[31] -= 1;
        let high: Vec<u8> = [[7u8; 32], n_minus_one].concat();
        let mut one = [0u8; 32];
        one[31] = 1;
        assert_eq!(low_s(&high), [[7u8; 32], one].concat());
        assert_eq!(low_s(&[[7u8; 32], one].concat()), [[7u8; 32], one].concat());
        assert_eq!(
            low_s(&[[7u8; 32], P256_HALF_ORDER].concat())[32..],
            P256_HALF_ORDER
        );
    }

    #[test]
    fn ed25519_and_rsa_keys_choose_their_algorithm() {
        let rng = SystemRandom::new();
        let ed = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let ed_public = Ed25519KeyPair::from_pkcs8(ed.as_ref())
            .unwrap()
            .public_key()
            .as_ref()
            .to_vec();
        let key = PrivateKey::from_pkcs8_der(ed.as_ref()).unwrap();
        assert_eq!(key.algorithm(), "EdDSA");
        let token = key.assertion("c", "https://as/token", at(NOW)).unwrap();
        assert_eq!(
            part(token.expose_secret(), 0),
            json!({"alg": "EdDSA", "typ": "JWT"})
        );
        verify(token.expose_secret(), &ED25519, &ed_public);
        assert!(key.rsa_pss().is_err(), "PS256 is for RSA keys");

        let rsa = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let rsa_public = rsa.public_key().as_ref().to_vec();
        let pkcs8 = aws_lc_rs::encoding::AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&rsa).unwrap();
        let key = PrivateKey::from_pem(&pem("PRIVATE KEY", pkcs8.as_ref())).unwrap();
        assert_eq!(key.algorithm(), "RS256");
        let token = key.assertion("c", "https://as/token", at(NOW)).unwrap();
        verify(token.expose_secret(), &RSA_PKCS1_2048_8192_SHA256, &rsa_public);
        let pss = key.rsa_pss().unwrap();
        assert_eq!(pss.algorithm(), "PS256");
        let token = pss.assertion("c", "https://as/token", at(NOW)).unwrap();
        assert_eq!(part(token.expose_secret(), 0)["alg"], "PS256");
        verify(token.expose_secret(), &RSA_PSS_2048_8192_SHA256, &rsa_public);
    }

    #[test]
    fn unusable_keys_are_configuration_errors() {
        for bad in [
            String::new(),
            "not pem".to_string(),
            pem("PRIVATE KEY", b"not der"),
            pem("CERTIFICATE", b"x"),
        ] {
            let error = PrivateKey::from_pem(&bad).unwrap_err();
            assert!(matches!(error, Error::Config(_)), "{bad:?}: {error:?}");
        }
        // A P-384 key: an EC key, of a curve no assertion algorithm here uses.
        let rng = SystemRandom::new();
        let p384 = EcdsaKeyPair::generate_pkcs8(&aws_lc_rs::signature::ECDSA_P384_SHA384_FIXED_SIGNING, &rng)
            .unwrap();
        let error = PrivateKey::from_pkcs8_der(p384.as_ref()).unwrap_err();
        assert!(error.to_string().contains("P-256, Ed25519 or RSA"), "{error}");
    }

    #[test]
    fn debug_hides_the_key() {
        let rng = SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let key = PrivateKey::from_pkcs8_der(pkcs8.as_ref()).unwrap().kid("k9");
        let debug = format!("{key:?}");
        assert_eq!(
            debug,
            r#"PrivateKey { alg: "EdDSA", kid: Some("k9"), key: "[redacted]" }"#
        );
    }
}
