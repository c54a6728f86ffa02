//! Randomness, as a parameter: the server uses the operating system's CSPRNG.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

/// A source of cryptographically secure random bytes.
pub trait Random: Send + Sync {
    /// Fills `buf` with random bytes.
    fn fill(&self, buf: &mut [u8]);

    /// `n` random bytes, base64url-encoded without padding.
    fn token(&self, n: usize) -> String {
        let mut buf = vec![0u8; n];
        self.fill(&mut buf);
        URL_SAFE_NO_PAD.encode(buf)
    }
}

/// The operating system's CSPRNG, through aws-lc-rs.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemRandom;

impl Random for SystemRandom {
    fn fill(&self, buf: &mut [u8]) {
        // aws-lc's RNG fails only when the OS has no entropy source at all; no
        // request can cause that, and carrying on without randomness is not an option.
        #[allow(clippy::expect_used)]
        aws_lc_rs::rand::fill(buf).expect("the operating system's random source failed");
    }
}
