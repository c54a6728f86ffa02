//! Signing keys: generation, the public JWK (RFC 7517), the key id (an RFC 7638
//! thumbprint) and the set of keys a server signs with and publishes.
//!
//! Key pairs are aws-lc-rs types, parsed once when loaded: signing a token then costs
//! one signature (ES256 ≈ 19 µs here) and nothing else.

use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, RwLock};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom as AwsRandom;
use aws_lc_rs::rsa::{KeySize, PublicKeyComponents};
use aws_lc_rs::signature::{
    EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RsaKeyPair, UnparsedPublicKey, VerificationAlgorithm,
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, ED25519, RSA_PKCS1_2048_8192_SHA256,
    RSA_PKCS1_SHA256, RSA_PSS_2048_8192_SHA256, RSA_PSS_SHA256,
};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};

use crate::ecdsa;
use crate::secret::sha256;
use crate::UnixTime;

/// The JWS algorithms gatehouse signs with (RFC 7518 §3, RFC 8037 for EdDSA).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SigningAlg {
    /// ECDSA on P-256 with SHA-256. The default: small keys, fast signatures.
    ES256,
    /// Ed25519.
    EdDSA,
    /// RSASSA-PKCS1-v1_5 with SHA-256, 2048-bit keys.
    RS256,
    /// RSASSA-PSS with SHA-256, 2048-bit keys.
    PS256,
}

impl SigningAlg {
    /// Every algorithm, in a stable order.
    pub const ALL: [SigningAlg; 4] = [Self::ES256, Self::EdDSA, Self::RS256, Self::PS256];

    /// The JOSE `alg` name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ES256 => "ES256",
            Self::EdDSA => "EdDSA",
            Self::RS256 => "RS256",
            Self::PS256 => "PS256",
        }
    }
}

impl FromStr for SigningAlg {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        Self::ALL.into_iter().find(|a| a.as_str() == s).ok_or(())
    }
}

impl fmt::Display for SigningAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A key could not be made, read or used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("signing key: {0}")]
pub struct KeyError(pub String);

enum KeyPair {
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
    Rsa(RsaKeyPair),
}

/// A private signing key, ready to sign.
pub struct SigningKey {
    kid: String,
    alg: SigningAlg,
    pair: KeyPair,
    /// The base64url JWS header `{"alg","typ":"at+jwt","kid"}`, made once.
    access_token_header: String,
    public_jwk: Value,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

impl SigningKey {
    /// Generates a new key; returns it with its PKCS#8 DER encoding, for storage.
    pub fn generate(alg: SigningAlg) -> Result<(Self, Vec<u8>), KeyError> {
        let rng = AwsRandom::new();
        let fail = |e: aws_lc_rs::error::Unspecified| KeyError(format!("generate {alg}: {e}"));
        let pkcs8 = match alg {
            SigningAlg::ES256 => EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                .map_err(fail)?
                .as_ref()
                .to_vec(),
            SigningAlg::EdDSA => Ed25519KeyPair::generate_pkcs8(&rng)
                .map_err(fail)?
                .as_ref()
                .to_vec(),
            SigningAlg::RS256 | SigningAlg::PS256 => RsaKeyPair::generate(KeySize::Rsa2048)
                .map_err(fail)?
                .as_der()
                .map_err(fail)?
                .as_ref()
                .to_vec(),
        };
        let key = Self::from_pkcs8(alg, &pkcs8)?;
        Ok((key, pkcs8))
    }

    /// Reads a key from its PKCS#8 DER encoding.
    pub fn from_pkcs8(alg: SigningAlg, pkcs8: &[u8]) -> Result<Self, KeyError> {
        let reject = |e: aws_lc_rs::error::KeyRejected| KeyError(format!("read {alg} key: {e}"));
        let (pair, public_jwk) = match alg {
            SigningAlg::ES256 => {
                let pair =
                    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8).map_err(reject)?;
                // Uncompressed SEC1 point: 0x04 || x (32 bytes) || y (32 bytes).
                let point = pair.public_key().as_ref();
                if point.len() != 65 {
                    return Err(KeyError("P-256 public key is not an uncompressed point".into()));
                }
                let jwk =
                    json!({"crv": "P-256", "kty": "EC", "x": b64(&point[1..33]), "y": b64(&point[33..])});
                (KeyPair::Ecdsa(pair), jwk)
            }
            SigningAlg::EdDSA => {
                let pair = Ed25519KeyPair::from_pkcs8(pkcs8).map_err(reject)?;
                let jwk = json!({"crv": "Ed25519", "kty": "OKP", "x": b64(pair.public_key().as_ref())});
                (KeyPair::Ed25519(pair), jwk)
            }
            SigningAlg::RS256 | SigningAlg::PS256 => {
                let pair = RsaKeyPair::from_pkcs8(pkcs8).map_err(reject)?;
                let parts: PublicKeyComponents<Vec<u8>> = pair.public_key().into();
                let jwk = json!({"e": b64(&parts.e), "kty": "RSA", "n": b64(&parts.n)});
                (KeyPair::Rsa(pair), jwk)
            }
        };
        // RFC 7638: the thumbprint hashes the required members in lexicographic order
        // with no white space, which is exactly how serde_json prints these objects.
        let kid = b64(&sha256(public_jwk.to_string().as_bytes()));
        let mut public_jwk = public_jwk;
        if let Value::Object(members) = &mut public_jwk {
            members.insert("kid".into(), Value::String(kid.clone()));
            members.insert("alg".into(), Value::String(alg.as_str().into()));
            members.insert("use".into(), Value::String("sig".into()));
        }
        let header = json!({"alg": alg.as_str(), "kid": kid, "typ": "at+jwt"});
        Ok(Self {
            access_token_header: b64(header.to_string().as_bytes()),
            kid,
            alg,
            pair,
            public_jwk,
        })
    }

    /// The key id: the RFC 7638 thumbprint of the public key.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The algorithm this key signs with.
    pub fn alg(&self) -> SigningAlg {
        self.alg
    }

    /// The public key as a JWK with `kid`, `alg` and `use`.
    pub fn public_jwk(&self) -> &Value {
        &self.public_jwk
    }

    /// The base64url header of an RFC 9068 access token signed by this key.
    pub fn access_token_header(&self) -> &str {
        &self.access_token_header
    }

    /// Checks a signature this key (or its public half) made over `message`. An ES256
    /// signature in the high-S form is refused: this key never makes one (see
    /// [`crate::ecdsa`]), so it can only be someone's rewrite of a real one.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        let (alg, public): (&'static dyn VerificationAlgorithm, &[u8]) = match (&self.pair, self.alg) {
            (KeyPair::Ecdsa(_), _) if ecdsa::is_high_s(signature) => return false,
            (KeyPair::Ecdsa(pair), _) => (&ECDSA_P256_SHA256_FIXED, pair.public_key().as_ref()),
            (KeyPair::Ed25519(pair), _) => (&ED25519, pair.public_key().as_ref()),
            (KeyPair::Rsa(pair), SigningAlg::PS256) => {
                (&RSA_PSS_2048_8192_SHA256, pair.public_key().as_ref())
            }
            (KeyPair::Rsa(pair), _) => (&RSA_PKCS1_2048_8192_SHA256, pair.public_key().as_ref()),
        };
        UnparsedPublicKey::new(alg, public)
            .verify(message, signature)
            .is_ok()
    }

    /// Signs `message` (a JWS signing input) and returns the raw signature.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        let fail = |e: aws_lc_rs::error::Unspecified| KeyError(format!("sign: {e}"));
        match &self.pair {
            KeyPair::Ecdsa(pair) => {
                let mut signature = pair
                    .sign(&AwsRandom::new(), message)
                    .map_err(fail)?
                    .as_ref()
                    .to_vec();
                ecdsa::normalize_low_s(&mut signature);
                Ok(signature)
            }
            KeyPair::Ed25519(pair) => Ok(pair.sign(message).as_ref().to_vec()),
            KeyPair::Rsa(pair) => {
                let padding = if self.alg == SigningAlg::PS256 {
                    &RSA_PSS_SHA256
                } else {
                    &RSA_PKCS1_SHA256
                };
                let mut signature = vec![0u8; pair.public_modulus_len()];
                pair.sign(padding, &AwsRandom::new(), message, &mut signature)
                    .map_err(fail)?;
                Ok(signature)
            }
        }
    }
}

/// A key the server still publishes (and accepts in introspection), and until when.
#[derive(Debug, Clone)]
pub struct PublishedKey {
    /// The key.
    pub key: Arc<SigningKey>,
    /// Stop publishing after this time; `None` for the current key.
    pub publish_until: Option<UnixTime>,
}

impl PublishedKey {
    /// Whether it is still published at `now`.
    pub fn is_live(&self, now: UnixTime) -> bool {
        self.publish_until.is_none_or(|until| until > now)
    }
}

/// The keys of one moment: the one that signs, and all that are published.
#[derive(Debug)]
pub struct KeySet {
    /// The key that signs new tokens.
    pub current: Arc<SigningKey>,
    /// Every published public key, the current one included.
    pub published: Vec<PublishedKey>,
}

impl KeySet {
    /// The JWKS document (RFC 7517 §5) at `now`: every key whose tokens may still be
    /// alive.
    pub fn jwks(&self, now: UnixTime) -> Value {
        let keys: Vec<&Value> = self
            .published
            .iter()
            .filter(|k| k.is_live(now))
            .map(|k| k.key.public_jwk())
            .collect();
        json!({ "keys": keys })
    }

    /// The published key with this `kid`, if live at `now`.
    pub fn find(&self, kid: &str, now: UnixTime) -> Option<&SigningKey> {
        self.published
            .iter()
            .find(|k| k.key.kid() == kid && k.is_live(now))
            .map(|k| k.key.as_ref())
    }
}

/// The key set in force, swapped whole when keys change (rotation, reload).
#[derive(Debug, Default)]
pub struct KeyRing(RwLock<Option<Arc<KeySet>>>);

impl KeyRing {
    /// A ring holding `set`.
    pub fn new(set: KeySet) -> Self {
        Self(RwLock::new(Some(Arc::new(set))))
    }

    /// The key set in force, if one was loaded.
    pub fn get(&self) -> Option<Arc<KeySet>> {
        self.0.read().ok().and_then(|guard| guard.clone())
    }

    /// Replaces the key set.
    pub fn replace(&self, set: KeySet) {
        if let Ok(mut guard) = self.0.write() {
            *guard = Some(Arc::new(set));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_alg_generates_reloads_and_keeps_its_kid() {
        for alg in SigningAlg::ALL {
            let (key, pkcs8) = SigningKey::generate(alg).unwrap();
            let again = SigningKey::from_pkcs8(alg, &pkcs8).unwrap();
            assert_eq!(key.kid(), again.kid());
            assert_eq!(key.public_jwk()["alg"], alg.as_str());
            assert_eq!(key.public_jwk()["use"], "sig");
            let signature = key.sign(b"message").unwrap();
            assert!(key.verify(b"message", &signature));
            assert!(!key.verify(b"messagE", &signature));
        }
    }

    #[test]
    fn es256_signs_low_s_only_and_refuses_the_high_s_twin() {
        let (key, _) = SigningKey::generate(SigningAlg::ES256).unwrap();
        let KeyPair::Ecdsa(pair) = &key.pair else {
            unreachable!()
        };
        // The premise: aws-lc-rs alone gives a high s about half the time.
        let raw_high = (0..64)
            .filter(|_| ecdsa::is_high_s(pair.sign(&AwsRandom::new(), b"m").unwrap().as_ref()))
            .count();
        assert!(raw_high > 0, "aws-lc-rs gave no high-S signature in 64");
        let public = UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, pair.public_key().as_ref().to_vec());
        for i in 0..256 {
            let message = format!("message {i}");
            let signature = key.sign(message.as_bytes()).unwrap();
            assert!(!ecdsa::is_high_s(&signature), "signature {i} is high-S");
            assert!(
                key.verify(message.as_bytes(), &signature),
                "signature {i} does not verify"
            );
            // The twin is a valid ECDSA signature; only the low-S rule refuses it.
            let twin = ecdsa::high_s_twin(&signature);
            assert!(public.verify(message.as_bytes(), &twin).is_ok());
            assert!(
                !key.verify(message.as_bytes(), &twin),
                "the high-S twin of {i} verifies"
            );
        }
    }

    #[test]
    fn jwks_drops_keys_past_their_publish_time() {
        let key = Arc::new(SigningKey::generate(SigningAlg::EdDSA).unwrap().0);
        let (old, _) = SigningKey::generate(SigningAlg::EdDSA).unwrap();
        let set = KeySet {
            published: vec![
                PublishedKey {
                    key: key.clone(),
                    publish_until: None,
                },
                PublishedKey {
                    key: Arc::new(old),
                    publish_until: Some(100),
                },
            ],
            current: key,
        };
        assert_eq!(set.jwks(99)["keys"].as_array().unwrap().len(), 2);
        assert_eq!(set.jwks(100)["keys"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn debug_hides_the_private_key() {
        let (key, _) = SigningKey::generate(SigningAlg::ES256).unwrap();
        let printed = format!("{key:?}");
        assert!(printed.starts_with("SigningKey { kid:"));
    }
}
