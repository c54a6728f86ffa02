//! One test per rule of [`ClientKeySet::parse`]: what is accepted, and the sentence
//! each refusal says.

use super::*;
use serde_json::json;

/// A P-256 public key and a self-signed certificate for it (made with openssl).
const EC_X: &str = "Y-rGTsyxipFzWgPQdWlUmFaCoMPj2gsuuQqFoRi4Z_M";
const EC_Y: &str = "RY3FsSQ72zP7r3JJNc3eiyohapgOEgj-sAgjg-cxA6I";
const EC_CERT: &str = "MIIBhDCCASmgAwIBAgIUWZXztlhodK4zx/f0eNs7/PpzzJIwCgYIKoZIzj0EAwIwFjEUMBIGA1UEAwwLandrczE1IHRlc3QwIBcNMjYxMjAxMDYxNjA4WhgPMjEyNjExMDcwNjE2MDhaMBYxFDASBgNVBAMMC2p3a3MxNSB0ZXN0MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEY+rGTsyxipFzWgPQdWlUmFaCoMPj2gsuuQqFoRi4Z/NFjcWxJDvbM/uvckk1zd6LKiFqmA4SCP6wCCOD5zEDoqNTMFEwHQYDVR0OBBYEFJJ0nLvNhxXNbPnle2j+2MywRRMlMB8GA1UdIwQYMBaAFJJ0nLvNhxXNbPnle2j+2MywRRMlMA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDSQAwRgIhALPHeDXlpxw+jp140HgvBe+VcIzVbfAa1FIDoPXAGN3XAiEAlcCTCOhF6fhvtJdFjvM1OA+habTXKX23TXdW4XErSpc=";
/// An Ed25519 public key and a self-signed certificate for it.
const ED_X: &str = "InW4ZAjGz1DgqiCylZ1Q6Zt_ObXfmvDOC71YBo2bR14";
const ED_CERT: &str = "MIIBPjCB8aADAgECAhQu9jI6zXnE5rbPSB45PST1o4+AoTAFBgMrZXAwFDESMBAGA1UEAwwJandrczE1IGVkMCAXDTI2MTIwMTA2MTYwOFoYDzIxMjYxMTA3MDYxNjA4WjAUMRIwEAYDVQQDDAlqd2tzMTUgZWQwKjAFBgMrZXADIQAidbhkCMbPUOCqILKVnVDpm385td+a8M4LvVgGjZtHXqNTMFEwHQYDVR0OBBYEFJixptYdtwxm+oRB1Jz+Kcib6+/0MB8GA1UdIwQYMBaAFJixptYdtwxm+oRB1Jz+Kcib6+/0MA8GA1UdEwEB/wQFMAMBAf8wBQYDK2VwA0EAR/FIftujeVLgtm0jv1j7vRVg2/IaMJi2IZStiUvQK67F3FNpvLStVaUqnEkB9ar+TzR8wgk++FEM4bAfq4SICQ==";

fn ec() -> Value {
    json!({"kty": "EC", "crv": "P-256", "x": EC_X, "y": EC_Y})
}

fn ed() -> Value {
    json!({"kty": "OKP", "crv": "Ed25519", "x": ED_X})
}

/// An RSA public key whose modulus has `bits` bits (not a product of primes: parse
/// checks the shape, and a signature check would fail, which no test here makes).
fn rsa(bits: usize) -> Value {
    let mut n = vec![0xC5u8; bits.div_ceil(8)];
    n[0] = 0xFF >> ((8 - bits % 8) % 8);
    json!({"kty": "RSA", "n": URL_SAFE_NO_PAD.encode(n), "e": "AQAB"})
}

fn with(mut key: Value, member: &str, value: Value) -> Value {
    key[member] = value;
    key
}

fn set(keys: Vec<Value>) -> String {
    json!({ "keys": keys }).to_string()
}

fn refused(keys: Vec<Value>) -> String {
    ClientKeySet::parse(&set(keys)).unwrap_err()
}

#[test]
fn accepts_each_key_type_with_the_algorithms_of_its_type() {
    let parsed = ClientKeySet::parse(&set(vec![ec(), ed(), rsa(2048)])).unwrap();
    let algorithms: Vec<_> = parsed.keys.iter().map(|k| k.algorithms.clone()).collect();
    assert_eq!(
        algorithms,
        [
            vec![Algorithm::ES256],
            vec![Algorithm::EdDSA],
            vec![Algorithm::RS256, Algorithm::PS256]
        ]
    );
    assert!(parsed
        .keys
        .iter()
        .all(|k| k.kid.is_none() && k.certificate.is_none()));
}

#[test]
fn keeps_kid_and_a_named_alg() {
    let key = with(with(rsa(3072), "kid", json!("r1")), "alg", json!("PS256"));
    let parsed = ClientKeySet::parse(&set(vec![key, with(ec(), "kid", json!("e1"))])).unwrap();
    assert_eq!(parsed.keys[0].kid.as_deref(), Some("r1"));
    assert_eq!(parsed.keys[0].algorithms, [Algorithm::PS256]);
    assert_eq!(parsed.by_kid("e1").unwrap().algorithms, [Algorithm::ES256]);
    assert!(parsed.by_kid("nope").is_none());
}

#[test]
fn ignores_unknown_members_and_accepts_use_sig() {
    let key = with(
        with(ec(), "use", json!("sig")),
        "x-vendor",
        json!({"any": [1, 2]}),
    );
    // Members RFC 7517 defines but gatehouse does not use are not looked at either.
    let key = with(with(key, "key_ops", json!("verify")), "x5t", json!(5));
    let parsed = ClientKeySet::parse(&json!({"keys": [key], "other": true}).to_string()).unwrap();
    assert_eq!(parsed.keys.len(), 1);
}

#[test]
fn the_document_must_be_a_json_object_with_keys() {
    assert!(ClientKeySet::parse("{")
        .unwrap_err()
        .starts_with("The JWK Set is not valid JSON ("));
    let shape = "The JWK Set must be a JSON object with a \"keys\" array.";
    assert_eq!(ClientKeySet::parse("[]").unwrap_err(), shape);
    assert_eq!(ClientKeySet::parse("{}").unwrap_err(), shape);
    assert_eq!(ClientKeySet::parse(r#"{"keys": {}}"#).unwrap_err(), shape);
    assert_eq!(ClientKeySet::parse(&ec().to_string()).unwrap_err(), shape);
    assert_eq!(
        ClientKeySet::parse(r#"{"keys": []}"#).unwrap_err(),
        "The JWK Set has no keys."
    );
}

#[test]
fn at_most_64_kib() {
    let padding = "a".repeat(MAX_JWKS_BYTES);
    let text = json!({"keys": [ec()], "padding": padding}).to_string();
    assert_eq!(
        ClientKeySet::parse(&text).unwrap_err(),
        "The JWK Set is larger than 64 KiB."
    );
}

#[test]
fn at_most_100_keys() {
    let keys = |n: usize| {
        (0..n)
            .map(|i| with(ed(), "kid", json!(i.to_string())))
            .collect::<Vec<_>>()
    };
    assert_eq!(ClientKeySet::parse(&set(keys(100))).unwrap().keys.len(), 100);
    assert_eq!(
        refused(keys(101)),
        "The JWK Set has 101 keys; at most 100 are allowed."
    );
}

#[test]
fn a_key_must_be_an_object() {
    assert_eq!(refused(vec![ec(), json!("EC")]), "keys[1]: is not a JSON object.");
}

#[test]
fn every_private_member_is_refused() {
    for member in PRIVATE_MEMBERS {
        assert_eq!(
            refused(vec![with(ec(), member, json!("AAAA"))]),
            format!("keys[0]: a private key was given (member \"{member}\"): register only the public key."),
        );
    }
    // A symmetric key is all private.
    assert_eq!(
        refused(vec![json!({"kty": "oct", "k": "c2VjcmV0"})]),
        "keys[0]: a private key was given (member \"k\"): register only the public key."
    );
}

#[test]
fn kty_must_be_ec_okp_or_rsa() {
    assert_eq!(
        refused(vec![json!({"crv": "P-256", "x": EC_X, "y": EC_Y})]),
        "keys[0]: \"kty\" is missing."
    );
    assert_eq!(
        refused(vec![with(ec(), "kty", json!("oct"))]),
        "keys[0]: kty \"oct\" is not supported (use EC, OKP or RSA)."
    );
    assert_eq!(
        refused(vec![with(ec(), "kty", json!(1))]),
        "keys[0]: \"kty\" must be a string."
    );
}

#[test]
fn ec_must_be_p256() {
    assert_eq!(
        refused(vec![with(ec(), "crv", json!("P-384"))]),
        "keys[0]: EC curve \"P-384\" is not supported (only P-256)."
    );
    let mut no_curve = ec();
    no_curve.as_object_mut().unwrap().remove("crv");
    assert_eq!(refused(vec![no_curve]), "keys[0]: \"crv\" is missing.");
}

#[test]
fn okp_must_be_ed25519() {
    assert_eq!(
        refused(vec![with(ed(), "crv", json!("X25519"))]),
        "keys[0]: OKP curve \"X25519\" is not supported (only Ed25519)."
    );
}

#[test]
fn public_members_must_be_there_and_decode() {
    let mut no_y = ec();
    no_y.as_object_mut().unwrap().remove("y");
    assert_eq!(refused(vec![no_y]), "keys[0]: \"y\" is missing.");
    assert_eq!(
        refused(vec![with(rsa(2048), "e", json!(65537))]),
        "keys[0]: \"e\" must be a string."
    );
    assert_eq!(
        refused(vec![with(ed(), "x", json!("not+base64url="))]),
        "keys[0]: \"x\" is not base64url without padding."
    );
    assert_eq!(
        refused(vec![with(ec(), "y", json!(EC_X[..40]))]),
        "keys[0]: \"x\" and \"y\" must be 32 bytes each for P-256."
    );
}

#[test]
fn an_ec_point_must_be_on_the_curve() {
    assert_eq!(
        refused(vec![with(ec(), "y", json!(EC_X))]),
        "keys[0]: \"x\" and \"y\" are not a point on P-256."
    );
}

#[test]
fn an_ed25519_key_has_32_bytes() {
    assert_eq!(
        refused(vec![with(ed(), "x", json!(EC_X[..20]))]),
        "keys[0]: \"x\" is not an Ed25519 public key."
    );
}

#[test]
fn rsa_modulus_from_2048_to_8192_bits() {
    assert_eq!(
        refused(vec![rsa(2047)]),
        "keys[0]: the RSA modulus has 2047 bits; at least 2048 are needed."
    );
    assert_eq!(
        refused(vec![rsa(1024)]),
        "keys[0]: the RSA modulus has 1024 bits; at least 2048 are needed."
    );
    assert!(ClientKeySet::parse(&set(vec![rsa(8192)])).is_ok());
    assert_eq!(
        refused(vec![rsa(8193)]),
        "keys[0]: the RSA modulus has 8193 bits; at most 8192 are supported."
    );
}

#[test]
fn a_leading_zero_of_the_modulus_does_not_count() {
    let n = [&[0u8][..], &[0xC5; 128]].concat();
    let key = json!({"kty": "RSA", "n": URL_SAFE_NO_PAD.encode(n), "e": "AQAB"});
    assert_eq!(
        refused(vec![key]),
        "keys[0]: the RSA modulus has 1024 bits; at least 2048 are needed."
    );
    let n = [&[0u8][..], &[0xC5; 256]].concat();
    let key = json!({"kty": "RSA", "n": URL_SAFE_NO_PAD.encode(n), "e": "AQAB"});
    assert!(ClientKeySet::parse(&set(vec![key])).is_ok());
}

#[test]
fn rsa_exponent_odd_at_least_3_at_most_32_bits() {
    let problem = "keys[0]: the RSA exponent \"e\" must be odd, at least 3 and at most 32 bits.";
    for e in [&[1u8][..], &[2], &[0x01, 0x00], &[1, 0, 0, 0, 1], &[]] {
        assert_eq!(
            refused(vec![with(rsa(2048), "e", json!(URL_SAFE_NO_PAD.encode(e)))]),
            problem,
            "e = {e:?}"
        );
    }
    assert!(ClientKeySet::parse(&set(vec![with(rsa(2048), "e", json!("Aw"))])).is_ok());
}

#[test]
fn use_must_be_sig() {
    assert_eq!(
        refused(vec![with(ec(), "use", json!("enc"))]),
        "keys[0]: \"use\" is \"enc\"; a signing key has \"use\": \"sig\" or no \"use\"."
    );
}

#[test]
fn alg_must_be_supported() {
    for alg in ["HS256", "RS384", "ES384", "none", "RSA-OAEP"] {
        assert_eq!(
            refused(vec![with(rsa(2048), "alg", json!(alg))]),
            format!("keys[0]: alg \"{alg}\" is not supported (use ES256, EdDSA, RS256 or PS256).")
        );
    }
}

#[test]
fn alg_must_fit_the_key_type() {
    assert_eq!(
        refused(vec![with(ec(), "alg", json!("RS256"))]),
        "keys[0]: alg \"RS256\" does not fit a key of kty EC."
    );
    assert_eq!(
        refused(vec![with(rsa(2048), "alg", json!("EdDSA"))]),
        "keys[0]: alg \"EdDSA\" does not fit a key of kty RSA."
    );
    assert_eq!(
        refused(vec![with(ed(), "alg", json!("ES256"))]),
        "keys[0]: alg \"ES256\" does not fit a key of kty OKP."
    );
}

#[test]
fn kids_are_strings_non_empty_and_unique() {
    let keys = vec![
        with(ec(), "kid", json!("a")),
        with(ed(), "kid", json!("b")),
        with(rsa(2048), "kid", json!("a")),
    ];
    assert_eq!(refused(keys), "keys[2]: kid \"a\" is also the kid of keys[0].");
    assert_eq!(
        refused(vec![with(ec(), "kid", json!(7))]),
        "keys[0]: \"kid\" must be a string."
    );
    assert_eq!(
        refused(vec![with(ec(), "kid", json!(""))]),
        "keys[0]: \"kid\" is empty."
    );
    // Keys without a kid may be several.
    assert!(ClientKeySet::parse(&set(vec![ec(), ed()])).is_ok());
}

#[test]
fn x5c_keeps_the_first_certificate() {
    let parsed = ClientKeySet::parse(&set(vec![
        with(ec(), "x5c", json!([EC_CERT, ED_CERT])),
        with(ed(), "x5c", json!([ED_CERT])),
    ]))
    .unwrap();
    assert_eq!(
        parsed.keys[0].certificate,
        Some(STANDARD.decode(EC_CERT).unwrap())
    );
    assert_eq!(
        parsed.keys[1].certificate,
        Some(STANDARD.decode(ED_CERT).unwrap())
    );
}

#[test]
fn x5c_must_be_standard_base64_der_of_the_same_key() {
    let problem = |x5c: Value| refused(vec![with(ec(), "x5c", x5c)]);
    assert_eq!(
        problem(json!([])),
        "keys[0]: \"x5c\" must be a non-empty array of certificates."
    );
    assert_eq!(
        problem(json!(EC_CERT)),
        "keys[0]: \"x5c\" must be a non-empty array of certificates."
    );
    let url_safe = URL_SAFE_NO_PAD.encode(STANDARD.decode(EC_CERT).unwrap());
    assert_eq!(
        problem(json!([url_safe])),
        "keys[0]: x5c[0] is not a standard base64 string."
    );
    assert_eq!(
        problem(json!([EC_CERT, 5])),
        "keys[0]: x5c[1] is not a standard base64 string."
    );
    assert_eq!(
        problem(json!(["aGVsbG8="])),
        "keys[0]: x5c[0] is not a DER certificate."
    );
    let der = STANDARD.decode(EC_CERT).unwrap();
    let truncated = STANDARD.encode(&der[..der.len() - 1]);
    assert_eq!(
        problem(json!([truncated])),
        "keys[0]: x5c[0] is not a DER certificate."
    );
    assert_eq!(
        problem(json!([ED_CERT])),
        "keys[0]: x5c[0] is a certificate for another key."
    );
}

#[test]
fn der_sequence_lengths() {
    assert!(is_der_sequence(&[0x30, 0x00]));
    assert!(is_der_sequence(&[0x30, 0x02, 1, 2]));
    assert!(!is_der_sequence(&[0x30, 0x03, 1, 2]));
    assert!(is_der_sequence(
        &[&[0x30, 0x82, 0x01, 0x00][..], &[0; 256]].concat()
    ));
    assert!(!is_der_sequence(&[0x30, 0x80]));
    assert!(!is_der_sequence(&[0x31, 0x00]));
    assert!(!is_der_sequence(&[0x30, 0x82, 0x01]));
}

/// The keys parse makes verify what the matching private keys sign, for each
/// algorithm: what the assertion check relies on.
#[test]
fn parsed_keys_verify_signatures() {
    use jwt_simple::prelude::*;

    fn verifies(key: &ClientKey, alg: Algorithm, token: &str) -> bool {
        let mut validation = jsonwebtoken::Validation::new(alg);
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        jsonwebtoken::decode::<Value>(token, &key.key, &validation).is_ok()
    }

    let claims = || Claims::create(Duration::from_mins(5)).with_subject("client");
    let es = ES256KeyPair::generate();
    let point = es.public_key().public_key().to_bytes_uncompressed();
    let ed = Ed25519KeyPair::generate();
    let rs = RS256KeyPair::generate(2048).unwrap();
    let ps = PS256KeyPair::generate(2048).unwrap();
    let rsa_jwk = |c: RSAPublicKeyComponents, leading_zero: bool| {
        let n = if leading_zero {
            [&[0u8][..], &c.n].concat()
        } else {
            c.n
        };
        json!({"kty": "RSA", "n": URL_SAFE_NO_PAD.encode(n), "e": URL_SAFE_NO_PAD.encode(c.e)})
    };
    let parsed = ClientKeySet::parse(&set(vec![
        json!({"kty": "EC", "crv": "P-256", "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..])}),
        json!({"kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode(ed.public_key().to_bytes())}),
        rsa_jwk(rs.public_key().to_components(), false),
        rsa_jwk(ps.public_key().to_components(), true),
    ]))
    .unwrap();
    let [ec, okp, rsa, pss] = &parsed.keys[..] else {
        panic!("four keys")
    };
    let es_token = es.sign(claims()).unwrap();
    assert!(verifies(ec, Algorithm::ES256, &es_token));
    assert!(!verifies(okp, Algorithm::EdDSA, &es_token));
    assert!(verifies(okp, Algorithm::EdDSA, &ed.sign(claims()).unwrap()));
    assert!(verifies(rsa, Algorithm::RS256, &rs.sign(claims()).unwrap()));
    assert!(!verifies(pss, Algorithm::RS256, &rs.sign(claims()).unwrap()));
    assert!(verifies(pss, Algorithm::PS256, &ps.sign(claims()).unwrap()));
}
