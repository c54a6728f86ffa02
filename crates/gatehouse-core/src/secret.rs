//! Client secrets and how they are kept: never in the clear, compared in constant time.

use std::collections::HashSet;
use std::fmt;
use std::sync::Mutex;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use aws_lc_rs::digest::{digest, SHA256};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

use crate::Random;

/// Bytes of randomness in a generated secret: 256 bits (43 base64url characters).
pub const GENERATED_SECRET_BYTES: usize = 32;

/// The most Argon2 memory a stored hash may ask for: 64 MiB (ours use 19 MiB).
pub const MAX_ARGON2_MEMORY_BLOCKS: usize = 64 * 1024;

/// The shortest secret `client create --secret-stdin` accepts.
pub const MIN_IMPORTED_SECRET_LEN: usize = 16;

/// A client secret as presented or generated. `Debug` prints `[redacted]`.
#[derive(Clone)]
pub struct ClientSecret(SecretString);

impl ClientSecret {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(SecretString::from(secret.into()))
    }

    /// A fresh secret of 256 random bits.
    pub fn generate(rng: &dyn Random) -> Self {
        Self::new(rng.token(GENERATED_SECRET_BYTES))
    }

    /// The secret itself, to show once to whoever created it.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// How a secret is stored.
#[derive(Clone, PartialEq, Eq)]
pub enum SecretHash {
    /// SHA-256 of a generated, high-entropy secret. Brute force of 256 random bits is
    /// out of reach whatever the hash, so a fast one keeps the hot path fast.
    Sha256([u8; 32]),
    /// Argon2id (PHC string) of an imported secret, which may be guessable.
    Argon2id(String),
}

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sha256(_) => f.write_str("SecretHash::Sha256([redacted])"),
            Self::Argon2id(_) => f.write_str("SecretHash::Argon2id([redacted])"),
        }
    }
}

const SHA256_PREFIX: &str = "sha256$";

impl SecretHash {
    /// The stored form of a generated secret.
    pub fn sha256(secret: &ClientSecret) -> Self {
        Self::Sha256(sha256(secret.expose().as_bytes()))
    }

    /// The stored form of an imported secret: Argon2id with OWASP's parameters (19 MiB,
    /// 2 iterations, 1 lane, the argon2 crate's defaults).
    pub fn argon2id(secret: &ClientSecret, rng: &dyn Random) -> Result<Self, String> {
        let mut salt = [0u8; 16];
        rng.fill(&mut salt);
        let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
        let hash = Argon2::default()
            .hash_password(secret.expose().as_bytes(), &salt)
            .map_err(|e| e.to_string())?;
        Ok(Self::Argon2id(hash.to_string()))
    }

    /// Whether this hash is slow to verify (and worth remembering a success of).
    pub fn is_slow(&self) -> bool {
        matches!(self, Self::Argon2id(_))
    }

    /// Checks `secret` against the hash in constant time (Argon2's own comparison is
    /// constant-time too).
    pub fn verify(&self, secret: &ClientSecret) -> bool {
        match self {
            Self::Sha256(expected) => {
                let presented = sha256(secret.expose().as_bytes());
                bool::from(presented.ct_eq(expected))
            }
            Self::Argon2id(phc) => match PasswordHash::new(phc) {
                Ok(hash) => Argon2::default()
                    .verify_password(secret.expose().as_bytes(), &hash)
                    .is_ok(),
                Err(_) => false,
            },
        }
    }

    /// Like [`SecretHash::verify`], with the Argon2 working memory (19 MiB for our
    /// parameters) taken from `memory` and left there for the next call, rather
    /// than allocated and freed each time: the allocator keeps such freed blocks
    /// (glibc raises its mmap threshold after the first), so a thread hashing with
    /// fresh memory each time grew the process by tens of MiB that never returned.
    /// A stored hash asking for more than [`MAX_ARGON2_MEMORY_BLOCKS`] never verifies.
    pub fn verify_with_memory(&self, secret: &ClientSecret, memory: &mut Vec<argon2::Block>) -> bool {
        let Self::Argon2id(phc) = self else {
            return self.verify(secret);
        };
        let Ok(hash) = PasswordHash::new(phc) else {
            return false;
        };
        let (Some(expected), Some(salt)) = (hash.hash, hash.salt) else {
            return false;
        };
        let (Ok(algorithm), Ok(params)) = (
            argon2::Algorithm::try_from(hash.algorithm),
            argon2::Params::try_from(&hash),
        ) else {
            return false;
        };
        let version = match hash.version.map(argon2::Version::try_from).transpose() {
            Ok(version) => version.unwrap_or_default(),
            Err(_) => return false,
        };
        let blocks = params.block_count();
        if blocks > MAX_ARGON2_MEMORY_BLOCKS {
            return false;
        }
        let mut salt_bytes = [0u8; 64];
        let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
            return false;
        };
        if memory.len() < blocks {
            memory.resize(blocks, argon2::Block::default());
        }
        let mut computed = vec![0u8; expected.len()];
        let hashed = Argon2::new(algorithm, version, params).hash_password_into_with_memory(
            secret.expose().as_bytes(),
            salt,
            &mut computed,
            &mut memory[..blocks],
        );
        hashed.is_ok() && bool::from(computed.ct_eq(expected.as_bytes()))
    }

    /// The text kept in the database.
    pub fn to_stored(&self) -> String {
        match self {
            Self::Sha256(d) => format!("{SHA256_PREFIX}{}", URL_SAFE_NO_PAD.encode(d)),
            Self::Argon2id(phc) => phc.clone(),
        }
    }

    /// Reads the text kept in the database.
    pub fn from_stored(text: &str) -> Result<Self, String> {
        if let Some(b64) = text.strip_prefix(SHA256_PREFIX) {
            let bytes = URL_SAFE_NO_PAD
                .decode(b64)
                .map_err(|_| "stored SHA-256 secret digest is not base64url".to_owned())?;
            let digest: [u8; 32] = bytes
                .try_into()
                .map_err(|_| "stored SHA-256 secret digest is not 32 bytes".to_owned())?;
            Ok(Self::Sha256(digest))
        } else if text.starts_with("$argon2id$") {
            Ok(Self::Argon2id(text.to_owned()))
        } else {
            Err("stored secret hash has an unknown format".to_owned())
        }
    }
}

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, bytes).as_ref());
    out
}

/// Remembers successful Argon2id verifications so that a client with an imported
/// secret pays the slow hash once, not on every request. Entries are keyed by a digest
/// of (client id, stored hash, secret): never the secret itself, and a rotated secret
/// (a new stored hash) can never match an old entry.
#[derive(Debug, Default)]
pub struct VerifiedSecrets {
    seen: Mutex<HashSet<[u8; 32]>>,
}

/// How many remembered verifications to keep before starting afresh.
const VERIFIED_SECRETS_CAPACITY: usize = 100_000;

impl VerifiedSecrets {
    /// The key of one (client, hash, secret) triple.
    pub fn key(client_id: &str, hash: &SecretHash, secret: &ClientSecret) -> [u8; 32] {
        let mut material = Vec::with_capacity(256);
        for part in [
            client_id.as_bytes(),
            hash.to_stored().as_bytes(),
            secret.expose().as_bytes(),
        ] {
            material.extend_from_slice(&(part.len() as u64).to_be_bytes());
            material.extend_from_slice(part);
        }
        sha256(&material)
    }

    /// Whether this triple verified before.
    pub fn contains(&self, key: &[u8; 32]) -> bool {
        self.seen.lock().map(|s| s.contains(key)).unwrap_or(false)
    }

    /// Remembers a successful verification; bounded, so a flood cannot grow it.
    pub fn insert(&self, key: [u8; 32]) {
        if let Ok(mut seen) = self.seen.lock() {
            if seen.len() >= VERIFIED_SECRETS_CAPACITY {
                seen.clear();
            }
            seen.insert(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SystemRandom;

    #[test]
    fn generated_secret_has_256_bits() {
        let secret = ClientSecret::generate(&SystemRandom);
        assert_eq!(secret.expose().len(), 43);
        assert_eq!(format!("{secret:?}"), "[redacted]");
    }

    #[test]
    fn sha256_round_trip_and_verify() {
        let secret = ClientSecret::generate(&SystemRandom);
        let stored = SecretHash::sha256(&secret).to_stored();
        assert!(!stored.contains(secret.expose()));
        let hash = SecretHash::from_stored(&stored).unwrap();
        assert!(hash.verify(&secret));
        assert!(!hash.verify(&ClientSecret::new("wrong")));
    }

    #[test]
    fn argon2id_round_trip_and_verify() {
        let secret = ClientSecret::new("an imported secret!");
        let hash = SecretHash::argon2id(&secret, &SystemRandom).unwrap();
        let stored = hash.to_stored();
        assert!(stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        let hash = SecretHash::from_stored(&stored).unwrap();
        assert!(hash.verify(&secret));
        assert!(!hash.verify(&ClientSecret::new("an imported secret?")));
    }

    #[test]
    fn verifying_with_reused_memory_agrees_with_verify() {
        let secret = ClientSecret::new("an imported secret!");
        let hash = SecretHash::argon2id(&secret, &SystemRandom).unwrap();
        let mut memory = Vec::new();
        for _ in 0..2 {
            assert!(hash.verify_with_memory(&secret, &mut memory));
            assert!(!hash.verify_with_memory(&ClientSecret::new("an imported secret?"), &mut memory));
        }
        assert_eq!(memory.len(), 19456, "19 MiB of 1 KiB blocks, allocated once");
        let generated = ClientSecret::generate(&SystemRandom);
        assert!(SecretHash::sha256(&generated).verify_with_memory(&generated, &mut memory));
        // Another library's Argon2id hash (PHC string) verifies too.
        let phc = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG";
        let other = SecretHash::from_stored(phc).unwrap();
        assert_eq!(
            other.verify_with_memory(&ClientSecret::new("password"), &mut memory),
            other.verify(&ClientSecret::new("password"))
        );
    }

    #[test]
    fn unknown_stored_format_is_an_error() {
        assert!(SecretHash::from_stored("plain").is_err());
    }
}
