//! Private keys at rest: AES-256-GCM under the master key, bound to the key id.

use std::fmt;

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use crate::Random;

/// The 32-byte key that encrypts signing keys at rest. `Debug` prints `[redacted]`.
#[derive(Clone)]
pub struct MasterKey([u8; 32]);

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey([redacted])")
    }
}

/// Sealing or opening failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SealError(pub &'static str);

impl MasterKey {
    /// A fresh random key.
    pub fn generate(rng: &dyn Random) -> Self {
        let mut key = [0u8; 32];
        rng.fill(&mut key);
        Self(key)
    }

    /// Reads a key from standard base64 (surrounding white space ignored).
    pub fn from_base64(text: &str) -> Result<Self, SealError> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| SealError("is not valid base64"))?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|_| SealError("must be exactly 32 bytes (44 base64 characters)"))?;
        Ok(Self(key))
    }

    /// The key in standard base64, to write to the key file.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }

    fn aead(&self) -> Result<LessSafeKey, SealError> {
        let key = UnboundKey::new(&AES_256_GCM, &self.0).map_err(|_| SealError("bad AES key"))?;
        Ok(LessSafeKey::new(key))
    }

    /// Encrypts `plaintext`; `context` (the key id) is authenticated with it, so a
    /// sealed key cannot be moved to another row. Output: nonce || ciphertext || tag.
    pub fn seal(&self, rng: &dyn Random, context: &str, plaintext: &[u8]) -> Result<Vec<u8>, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill(&mut nonce);
        let mut sealed = plaintext.to_vec();
        self.aead()?
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context.as_bytes()),
                &mut sealed,
            )
            .map_err(|_| SealError("encryption failed"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Decrypts what [`MasterKey::seal`] made with the same `context`.
    pub fn open(&self, context: &str, sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        if sealed.len() < NONCE_LEN {
            return Err(SealError("sealed key is too short"));
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError("bad nonce"))?;
        let mut buf = ciphertext.to_vec();
        let plain = self
            .aead()?
            .open_in_place(nonce, Aad::from(context.as_bytes()), &mut buf)
            .map_err(|_| SealError("cannot decrypt a signing key: wrong master_key?"))?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SystemRandom;

    #[test]
    fn seal_and_open() {
        let key = MasterKey::generate(&SystemRandom);
        let sealed = key.seal(&SystemRandom, "kid-1", b"private").unwrap();
        assert_eq!(key.open("kid-1", &sealed).unwrap(), b"private");
        assert!(key.open("kid-2", &sealed).is_err());
        let other = MasterKey::generate(&SystemRandom);
        assert!(other.open("kid-1", &sealed).is_err());
    }

    #[test]
    fn base64_round_trip_and_errors() {
        let key = MasterKey::generate(&SystemRandom);
        assert!(MasterKey::from_base64(&key.to_base64()).is_ok());
        assert!(MasterKey::from_base64("not base64!").is_err());
        assert!(MasterKey::from_base64("AAAA").is_err());
    }
}
