//! An ES256 signature `(r, s)` has a twin `(r, n − s)` that
//! ECDSA also accepts. gatehouse signs only the low-S form (`s ≤ n/2`), and its
//! introspection and gatehouse-guard refuse the high-S twin: one token, one text.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as BASE64URL;
use base64::Engine as _;
use reqwest::StatusCode;

use crate::api::{assert_refused, guard_for, Api};
use crate::helpers::*;

/// The order n of the P-256 group, big-endian (SEC 2 section 2.4.2).
const ORDER: [u8; 32] = [
    0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xBC,
    0xE6, 0xFA, 0xAD, 0xA7, 0x17, 0x9E, 0x84, 0xF3, 0xB9, 0xCA, 0xC2, 0xFC, 0x63, 0x25, 0x51,
];

/// `s` of an ES256 compact JWS (the last 32 of its 64 signature bytes).
fn signature_s(token: &str) -> [u8; 32] {
    let (_, signature) = token.rsplit_once('.').expect("JWS");
    let bytes = BASE64URL.decode(signature).expect("base64url signature");
    assert_eq!(bytes.len(), 64, "an ES256 signature is r and s, 32 bytes each");
    bytes[32..].try_into().expect("32 bytes")
}

/// Whether `s > n/2`, that is `2s > n`.
fn is_high(s: &[u8; 32]) -> bool {
    // 2s as 33 bytes, compared with n as 33 bytes.
    let mut doubled = [0u8; 33];
    let mut carry = 0u16;
    for i in (0..32).rev() {
        let v = u16::from(s[i]) * 2 + carry;
        doubled[i + 1] = v as u8;
        carry = v >> 8;
    }
    doubled[0] = carry as u8;
    let mut order = [0u8; 33];
    order[1..].copy_from_slice(&ORDER);
    doubled > order
}

/// `token` with its signature `(r, s)` rewritten to `(r, n − s)`.
fn high_s_twin(token: &str) -> String {
    let (message, signature) = token.rsplit_once('.').expect("JWS");
    let mut bytes = BASE64URL.decode(signature).expect("base64url signature");
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let mut d = i16::from(ORDER[i]) - i16::from(bytes[32 + i]) - borrow;
        borrow = i16::from(d < 0);
        if d < 0 {
            d += 256;
        }
        bytes[32 + i] = d as u8;
    }
    assert_eq!(borrow, 0, "s < n");
    format!("{message}.{}", BASE64URL.encode(bytes))
}

backend_tests! {
    /// Many tokens, every one low-S and accepted by introspection and the
    /// guard (aws-lc-rs alone gives a high s half the time, so without the
    /// normalisation about half of them would be refused); the high-S twin of
    /// a real token is inactive and refused by the guard, and the original
    /// still works.
    async fn only_low_s_signatures_are_issued_and_accepted(backend) {
        let db = TestDb::new(backend).await;
        let client = db.create_client("svc", &["--scope", "read"]).await;
        let resource_server = db.create_client("api", &["--can-introspect"]).await;
        let server = db.start(&["--signing-alg", "ES256"]).await;
        let api = Api::start(guard_for(&server)).await;

        let mut tokens = Vec::new();
        for _ in 0..48 {
            let token = server.access_token(&client).await;
            assert!(!is_high(&signature_s(&token)), "a high-S token was issued: {token}");
            tokens.push(token);
        }
        for token in &tokens {
            assert!(server.is_active(&resource_server, token).await, "{token}");
            api.get("/api/v3/cities", Some(token)).await.assert_status(StatusCode::OK);
        }

        let (jwks, issuer) = (server.jwks().await, server.issuer().await);
        for token in &tokens[..4] {
            let twin = high_s_twin(token);
            assert!(is_high(&signature_s(&twin)), "the twin is high-S");
            assert_ne!(&twin, token);
            // A valid ECDSA signature all the same: only the low-S rule refuses it.
            crate::jose::try_verify(&twin, &jwks, &issuer, &issuer)
                .unwrap_or_else(|e| panic!("the twin is no valid signature ({e}): the test proves nothing"));
            assert!(!server.is_active(&resource_server, &twin).await, "the high-S twin is active");
            assert!(!server.is_active(&client, &twin).await, "the high-S twin is active for its client");
            assert_refused(&api.get("/api/v3/cities", Some(&twin)).await, StatusCode::UNAUTHORIZED, "invalid_token");
            // The original is untouched by its twin's refusal.
            assert!(server.is_active(&resource_server, token).await);
            api.get("/api/v3/cities", Some(token)).await.assert_status(StatusCode::OK);
        }
    }
}
