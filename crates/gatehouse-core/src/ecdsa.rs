//! One spelling for each ES256 signature. ECDSA is malleable: when `(r, s)` verifies,
//! so does `(r, n − s)`, a second text for the same token. gatehouse signs only the
//! "low-S" form, `s ≤ n/2` (the rule BIP 62 and Ethereum's EIP-2 use), and refuses
//! the other one when it verifies. aws-lc-rs leaves `s` as it comes, high about half
//! the time, so every signature is normalised after signing.
//!
//! gatehouse-guard applies the same rule to the tokens it checks (its `ecdsa.rs`).

/// The order n of the P-256 group (SEC 2 §2.4.2; FIPS 186-4 §D.1.2.3), big-endian.
const ORDER: [u8; 32] = [
    0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xBC,
    0xE6, 0xFA, 0xAD, 0xA7, 0x17, 0x9E, 0x84, 0xF3, 0xB9, 0xCA, 0xC2, 0xFC, 0x63, 0x25, 0x51,
];

/// ⌊n/2⌋, big-endian: the largest low `s`.
const HALF_ORDER: [u8; 32] = [
    0x7F, 0xFF, 0xFF, 0xFF, 0x80, 0x00, 0x00, 0x00, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xDE,
    0x73, 0x7D, 0x56, 0xD3, 0x8B, 0xCF, 0x42, 0x79, 0xDC, 0xE5, 0x61, 0x7E, 0x31, 0x92, 0xA8,
];

/// Whether a fixed-size P-256 signature (`r ‖ s`, 32 bytes each, as in JWS, RFC 7518
/// §3.4) has `s > n/2`. Equal-length big-endian byte strings compare as numbers.
pub(crate) fn is_high_s(signature: &[u8]) -> bool {
    signature.len() == 64 && signature[32..] > HALF_ORDER[..]
}

/// Rewrites a fixed-size P-256 signature to its low-S twin, `(r, n − s)`, when `s > n/2`.
pub(crate) fn normalize_low_s(signature: &mut [u8]) {
    if is_high_s(signature) {
        let mut s = [0u8; 32];
        s.copy_from_slice(&signature[32..]);
        signature[32..].copy_from_slice(&order_minus(&s));
    }
}

/// `n − s`, for `s < n` (a valid signature's `s` is).
fn order_minus(s: &[u8; 32]) -> [u8; 32] {
    let mut difference = [0u8; 32];
    let mut borrow = false;
    for i in (0..32).rev() {
        let (d, b1) = ORDER[i].overflowing_sub(s[i]);
        let (d, b2) = d.overflowing_sub(u8::from(borrow));
        difference[i] = d;
        borrow = b1 || b2;
    }
    difference
}

/// The other spelling of a low-S signature: `(r, n − s)`.
#[cfg(test)]
pub(crate) fn high_s_twin(signature: &[u8]) -> Vec<u8> {
    let mut s = [0u8; 32];
    s.copy_from_slice(&signature[32..]);
    let mut twin = signature[..32].to_vec();
    twin.extend_from_slice(&order_minus(&s));
    twin
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_order_is_half_the_order() {
        // n is odd: n − ⌊n/2⌋ = ⌊n/2⌋ + 1.
        let mut half_plus_one = HALF_ORDER;
        *half_plus_one.last_mut().unwrap() += 1;
        assert_eq!(order_minus(&HALF_ORDER), half_plus_one);
        assert_eq!(order_minus(&[0; 32]), ORDER);
        let mut one = [0u8; 32];
        one[31] = 1;
        let mut n_minus_one = ORDER;
        n_minus_one[31] -= 1;
        assert_eq!(order_minus(&one), n_minus_one);
    }

    #[test]
    fn the_boundary_is_n_over_two() {
        let mut signature = [0u8; 64];
        signature[32..].copy_from_slice(&HALF_ORDER);
        assert!(!is_high_s(&signature));
        normalize_low_s(&mut signature);
        assert_eq!(signature[32..], HALF_ORDER, "a low s stays");
        signature[32..].copy_from_slice(&order_minus(&HALF_ORDER));
        assert!(is_high_s(&signature));
        normalize_low_s(&mut signature);
        assert_eq!(signature[32..], HALF_ORDER, "n − (⌊n/2⌋ + 1) = ⌊n/2⌋");
        assert!(!is_high_s(&[0xFF; 63]), "not a fixed-size P-256 signature");
    }
}
