//! Reading and verifying access tokens the way a resource server would: with
//! the JWKS alone, through jwt-simple, a JOSE implementation independent of
//! the one that signs in the server.

use std::collections::HashSet;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as BASE64URL;
use base64::Engine as _;
use jwt_simple::algorithms::{
    ECDSAP256PublicKeyLike as _, ES256PublicKey, Ed25519PublicKey, EdDSAPublicKeyLike as _, PS256PublicKey,
    RS256PublicKey, RSAPublicKeyLike as _,
};
use jwt_simple::claims::JWTClaims;
use jwt_simple::common::VerificationOptions;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The claims RFC 9068 adds to the registered ones.
#[derive(Debug, Serialize, Deserialize)]
pub struct AccessClaims {
    pub client_id: String,
    pub scope: String,
}

/// A JWT's header and claims, decoded without any verification.
#[derive(Debug)]
pub struct Decoded {
    pub header: Value,
    pub claims: Value,
}

fn decode_part(part: &str) -> Value {
    let bytes = BASE64URL
        .decode(part)
        .unwrap_or_else(|e| panic!("JWT part is not base64url ({e}): {part}"));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("JWT part is not JSON ({e})"))
}

/// Splits a compact JWS and decodes its header and claims.
pub fn decode(token: &str) -> Decoded {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "not a compact JWS: {token}");
    Decoded {
        header: decode_part(parts[0]),
        claims: decode_part(parts[1]),
    }
}

/// The `kid` of a token's header.
pub fn kid(token: &str) -> String {
    let header = decode(token).header;
    header["kid"]
        .as_str()
        .unwrap_or_else(|| panic!("no kid in header {header}"))
        .to_string()
}

/// The kids a JWKS publishes.
pub fn kids(jwks: &Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|key| key["kid"].as_str().expect("every JWK has a kid").to_string())
        .collect()
}

/// The key with `kid` in a JWKS.
pub fn find_key<'a>(jwks: &'a Value, kid: &str) -> &'a Value {
    jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|key| key["kid"] == kid)
        .unwrap_or_else(|| panic!("kid {kid} is not in the JWKS {jwks}"))
}

fn member(jwk: &Value, name: &str) -> Vec<u8> {
    let value = jwk[name]
        .as_str()
        .unwrap_or_else(|| panic!("JWK member {name} missing: {jwk}"));
    BASE64URL
        .decode(value)
        .unwrap_or_else(|e| panic!("JWK member {name} is not base64url ({e})"))
}

/// Verifies `token` with the JWKS key its `kid` names, requiring `typ: at+jwt`,
/// the issuer and the audience; returns the verified claims.
pub fn verify(token: &str, jwks: &Value, issuer: &str, audience: &str) -> JWTClaims<AccessClaims> {
    try_verify(token, jwks, issuer, audience)
        .unwrap_or_else(|e| panic!("token does not verify ({e}): {token}"))
}

/// [`verify`], reporting a bad signature or claim as an error.
pub fn try_verify(
    token: &str,
    jwks: &Value,
    issuer: &str,
    audience: &str,
) -> Result<JWTClaims<AccessClaims>, String> {
    let kid = kid(token);
    let jwk = find_key(jwks, &kid);
    let options = VerificationOptions {
        required_signature_type: Some("at+jwt".into()),
        required_key_id: Some(kid.clone()),
        allowed_issuers: Some(HashSet::from([issuer.to_string()])),
        allowed_audiences: Some(HashSet::from([audience.to_string()])),
        ..VerificationOptions::default()
    };
    let alg = jwk["alg"].as_str().unwrap_or_default();
    let verified = match alg {
        "ES256" => {
            assert_eq!(jwk["kty"], "EC", "{jwk}");
            assert_eq!(jwk["crv"], "P-256", "{jwk}");
            let mut point = vec![0x04];
            point.extend(member(jwk, "x"));
            point.extend(member(jwk, "y"));
            ES256PublicKey::from_bytes(&point)
                .expect("P-256 public key")
                .verify_token::<AccessClaims>(token, Some(options))
        }
        "EdDSA" => {
            assert_eq!(jwk["kty"], "OKP", "{jwk}");
            assert_eq!(jwk["crv"], "Ed25519", "{jwk}");
            Ed25519PublicKey::from_bytes(&member(jwk, "x"))
                .expect("Ed25519 public key")
                .verify_token::<AccessClaims>(token, Some(options))
        }
        "RS256" => {
            assert_eq!(jwk["kty"], "RSA", "{jwk}");
            RS256PublicKey::from_components(&member(jwk, "n"), &member(jwk, "e"))
                .expect("RSA public key")
                .verify_token::<AccessClaims>(token, Some(options))
        }
        "PS256" => {
            assert_eq!(jwk["kty"], "RSA", "{jwk}");
            PS256PublicKey::from_components(&member(jwk, "n"), &member(jwk, "e"))
                .expect("RSA public key")
                .verify_token::<AccessClaims>(token, Some(options))
        }
        other => panic!("JWK {kid} has an unexpected alg {other:?}: {jwk}"),
    };
    verified.map_err(|e| format!("JWK {kid}: {e}"))
}

/// `aud` as a list, whether the token holds a string or an array.
pub fn audiences(claims: &Value) -> Vec<String> {
    match &claims["aud"] {
        Value::String(aud) => vec![aud.clone()],
        Value::Array(auds) => auds
            .iter()
            .map(|a| a.as_str().expect("aud entries are strings").to_string())
            .collect(),
        other => panic!("aud is neither a string nor an array: {other}"),
    }
}
