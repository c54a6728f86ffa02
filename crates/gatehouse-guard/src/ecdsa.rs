//! One spelling for each ES256 token. ECDSA is malleable: when `(r, s)` verifies, so
//! does `(r, n − s)`. gatehouse signs only with `s ≤ n/2` (the "low-S" form, its
//! core's `ecdsa.rs`), so a token in the high-S form is someone's rewrite of a real
//! token: refused, so that one token has one text (and one entry in the cache).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

/// ⌊n/2⌋ for the order n of the P-256 group (SEC 2 §2.4.2), big-endian: the
/// largest low `s`. n = FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551.
const HALF_ORDER: [u8; 32] = [
    0x7F, 0xFF, 0xFF, 0xFF, 0x80, 0x00, 0x00, 0x00, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xDE,
    0x73, 0x7D, 0x56, 0xD3, 0x8B, 0xCF, 0x42, 0x79, 0xDC, 0xE5, 0x61, 0x7E, 0x31, 0x92, 0xA8,
];

/// Whether the signature of an ES256 compact JWS is in the high-S form. A
/// signature that is not 64 bytes of base64url is left to the verifier to refuse.
pub fn has_high_s(token: &str) -> bool {
    let Some((_, signature)) = token.rsplit_once('.') else {
        return false;
    };
    let mut bytes = [0u8; 64];
    // r ‖ s, 32 bytes each (RFC 7518 §3.4); equal-length big-endian byte strings
    // compare as numbers.
    matches!(URL_SAFE_NO_PAD.decode_slice(signature, &mut bytes), Ok(64)) && bytes[32..] > HALF_ORDER[..]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token_with_s(s: &[u8; 32]) -> String {
        let mut signature = vec![0x11; 32];
        signature.extend_from_slice(s);
        format!("e30.e30.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    #[test]
    fn the_boundary_is_n_over_two() {
        assert!(!has_high_s(&token_with_s(&HALF_ORDER)));
        let mut above = HALF_ORDER;
        above[31] += 1;
        assert!(has_high_s(&token_with_s(&above)));
        assert!(has_high_s(&token_with_s(&[0xFF; 32])));
        assert!(!has_high_s(&token_with_s(&[0; 32])));
        assert!(!has_high_s("e30.e30"), "no signature to judge");
        assert!(!has_high_s(&format!(
            "e30.e30.{}",
            URL_SAFE_NO_PAD.encode([0xFF; 65])
        )));
    }
}
