//! A client's JWK Set (RFC 7517 §5), checked once when it is registered or fetched and
//! held parsed: public keys only, of the types and algorithms gatehouse verifies.
//!
//! Every rule is checked here, at registration, so that a mistake is reported to the
//! one who made it, in a sentence naming the key (`keys[2]: …`), and not found later
//! as an assertion that fails to verify for no visible reason:
//! - the document is at most [`MAX_JWKS_BYTES`] and holds 1 to [`MAX_KEYS`] keys;
//! - a key is EC P-256, OKP Ed25519 or RSA of 2048 to 8192 bits (RFC 7518 §3, RFC 8037),
//!   and its public members decode to a usable key (an EC point on the curve);
//! - no private member: a key pair registered by mistake is refused, not silently
//!   stripped, since its private half is then no longer private;
//! - `use`, if present, is `sig`; `alg`, if present, is one of
//!   [`ASSERTION_ALGORITHMS`] and fits the key type;
//! - `kid`s are unique, so that an assertion's `kid` names one key;
//! - `x5c`, if present, is standard base64 DER whose first certificate holds the same
//!   public key (RFC 7517 §4.7), kept for `self_signed_tls_client_auth`.
//!
//! Members this module does not know are ignored (RFC 7517 §4).

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use jsonwebtoken::jwk::AlgorithmParameters;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::{Map, Value};

/// The algorithms a client assertion may be signed with.
pub const ASSERTION_ALGORITHMS: [Algorithm; 4] = [
    Algorithm::ES256,
    Algorithm::EdDSA,
    Algorithm::RS256,
    Algorithm::PS256,
];

/// The largest JWK Set document accepted, inline or fetched.
pub const MAX_JWKS_BYTES: usize = 64 * 1024;

/// The most keys a JWK Set may hold: every assertion without a `kid` may be tried
/// against each of them.
pub const MAX_KEYS: usize = 100;

/// RSA moduli below this are refused (NIST SP 800-131A).
const MIN_RSA_BITS: usize = 2048;

/// RSA moduli above this are refused: the verifier supports no more, and a larger
/// key would make each verification an attacker-chosen cost.
const MAX_RSA_BITS: usize = 8192;

/// The members that hold private key material (RFC 7518 §6.2.2, §6.3.2, §6.4.1;
/// RFC 8037 §2).
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// A parsed, checked JWK Set.
#[derive(Clone)]
pub struct ClientKeySet {
    /// The keys, in document order.
    pub keys: Vec<ClientKey>,
}

/// One public key of a client.
#[derive(Clone)]
pub struct ClientKey {
    /// `kid`, if the JWK has one.
    pub kid: Option<String>,
    /// The algorithms this key verifies: its `alg` if the JWK names one, else those
    /// of its type (EC P-256: ES256; OKP Ed25519: EdDSA; RSA: RS256 and PS256).
    pub algorithms: Vec<Algorithm>,
    /// The key.
    pub key: DecodingKey,
    /// The DER of `x5c[0]`, the certificate a `self_signed_tls_client_auth` client
    /// connects with (RFC 8705 §2.2).
    pub certificate: Option<Vec<u8>>,
}

impl std::fmt::Debug for ClientKeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.keys.iter()).finish()
    }
}

impl std::fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientKey")
            .field("kid", &self.kid)
            .field("algorithms", &self.algorithms)
            .field("certificate", &self.certificate.as_ref().map(Vec::len))
            .finish_non_exhaustive()
    }
}

impl ClientKeySet {
    /// Parses and checks a JWK Set document; `Err` says what is wrong, for the one who
    /// registered it.
    pub fn parse(json: &str) -> Result<Self, String> {
        if json.len() > MAX_JWKS_BYTES {
            return Err("The JWK Set is larger than 64 KiB.".into());
        }
        let document: Value =
            serde_json::from_str(json).map_err(|e| format!("The JWK Set is not valid JSON ({e})."))?;
        let Some(members) = document
            .as_object()
            .and_then(|o| o.get("keys"))
            .and_then(Value::as_array)
        else {
            return Err("The JWK Set must be a JSON object with a \"keys\" array.".into());
        };
        if members.is_empty() {
            return Err("The JWK Set has no keys.".into());
        }
        if members.len() > MAX_KEYS {
            return Err(format!(
                "The JWK Set has {} keys; at most {MAX_KEYS} are allowed.",
                members.len()
            ));
        }
        let mut keys: Vec<ClientKey> = Vec::with_capacity(members.len());
        for (index, member) in members.iter().enumerate() {
            let key = parse_key(member).map_err(|problem| format!("keys[{index}]: {problem}."))?;
            if let Some(kid) = &key.kid {
                if let Some(first) = keys.iter().position(|k| k.kid.as_ref() == Some(kid)) {
                    return Err(format!(
                        "keys[{index}]: kid {kid:?} is also the kid of keys[{first}]."
                    ));
                }
            }
            keys.push(key);
        }
        Ok(Self { keys })
    }

    /// The key whose `kid` is `kid`.
    pub fn by_kid(&self, kid: &str) -> Option<&ClientKey> {
        self.keys.iter().find(|k| k.kid.as_deref() == Some(kid))
    }
}

/// The three key types accepted.
#[derive(Clone, Copy)]
enum KeyType {
    Ec,
    Okp,
    Rsa,
}

impl KeyType {
    fn name(self) -> &'static str {
        match self {
            Self::Ec => "EC",
            Self::Okp => "OKP",
            Self::Rsa => "RSA",
        }
    }

    /// The algorithms a key of this type verifies when its JWK names none.
    fn algorithms(self) -> Vec<Algorithm> {
        match self {
            Self::Ec => vec![Algorithm::ES256],
            Self::Okp => vec![Algorithm::EdDSA],
            Self::Rsa => vec![Algorithm::RS256, Algorithm::PS256],
        }
    }
}

/// One key of the set; `Err` is the problem, without the key's index.
fn parse_key(member: &Value) -> Result<ClientKey, String> {
    let Some(object) = member.as_object() else {
        return Err("is not a JSON object".into());
    };
    if let Some(private) = PRIVATE_MEMBERS.iter().find(|m| object.contains_key(**m)) {
        return Err(format!(
            "a private key was given (member {private:?}): register only the public key"
        ));
    }
    let key_type = key_type(object)?;
    check_use(object)?;
    let algorithms = match optional_string(object, "alg")? {
        Some(alg) => vec![algorithm(alg, key_type)?],
        None => key_type.algorithms(),
    };
    let kid = match optional_string(object, "kid")? {
        Some("") => return Err("\"kid\" is empty".into()),
        Some(kid) => Some(kid.to_owned()),
        None => None,
    };
    let (key, public_bytes) = decoding_key(&key_parameters(object, key_type)?)?;
    let certificate = match object.get("x5c") {
        Some(chain) => Some(first_certificate(chain, &public_bytes)?),
        None => None,
    };
    Ok(ClientKey {
        kid,
        algorithms,
        key,
        certificate,
    })
}

/// The key members as jsonwebtoken's JWK type holds them. Only the members that make
/// the key are read, so that the type's opinions on others (`key_ops`, `x5t`, …)
/// cannot refuse a key that RFC 7517 allows.
fn key_parameters(object: &Map<String, Value>, key_type: KeyType) -> Result<AlgorithmParameters, String> {
    let members: Map<String, Value> = ["kty", "crv", "x", "y", "n", "e"]
        .into_iter()
        .filter_map(|name| object.get(name).map(|value| (name.to_owned(), value.clone())))
        .collect();
    // The members were checked to be there and be strings: this cannot fail.
    serde_json::from_value(Value::Object(members))
        .map_err(|_| format!("is not a valid {} key", key_type.name()))
}

/// `kty`, and `crv` for the curve types, checked to be ones gatehouse verifies.
fn key_type(object: &Map<String, Value>) -> Result<KeyType, String> {
    let key_type = match optional_string(object, "kty")? {
        None => return Err("\"kty\" is missing".into()),
        Some("EC") => KeyType::Ec,
        Some("OKP") => KeyType::Okp,
        Some("RSA") => KeyType::Rsa,
        Some(other) => return Err(format!("kty {other:?} is not supported (use EC, OKP or RSA)")),
    };
    let (curve, required): (Option<&str>, &[&str]) = match key_type {
        KeyType::Ec => (Some("P-256"), &["x", "y"]),
        KeyType::Okp => (Some("Ed25519"), &["x"]),
        KeyType::Rsa => (None, &["n", "e"]),
    };
    if let Some(expected) = curve {
        match optional_string(object, "crv")? {
            None => return Err("\"crv\" is missing".into()),
            Some(crv) if crv == expected => {}
            Some(crv) => {
                return Err(format!(
                    "{} curve {crv:?} is not supported (only {expected})",
                    key_type.name()
                ))
            }
        }
    }
    for name in required {
        if optional_string(object, name)?.is_none() {
            return Err(format!("{:?} is missing", name));
        }
    }
    Ok(key_type)
}

/// `use`, if present, must be `sig` (RFC 7517 §4.2): a key published for encryption
/// does not sign assertions.
fn check_use(object: &Map<String, Value>) -> Result<(), String> {
    match optional_string(object, "use")? {
        None | Some("sig") => Ok(()),
        Some(other) => Err(format!(
            "\"use\" is {other:?}; a signing key has \"use\": \"sig\" or no \"use\""
        )),
    }
}

/// The `alg` a key names: one of [`ASSERTION_ALGORITHMS`], of the key's type.
fn algorithm(alg: &str, key_type: KeyType) -> Result<Algorithm, String> {
    let algorithm = match alg {
        "ES256" => Algorithm::ES256,
        "EdDSA" => Algorithm::EdDSA,
        "RS256" => Algorithm::RS256,
        "PS256" => Algorithm::PS256,
        other => {
            return Err(format!(
                "alg {other:?} is not supported (use ES256, EdDSA, RS256 or PS256)"
            ))
        }
    };
    if !key_type.algorithms().contains(&algorithm) {
        return Err(format!(
            "alg {alg:?} does not fit a key of kty {}",
            key_type.name()
        ));
    }
    Ok(algorithm)
}

/// A member that must be a string if present.
fn optional_string<'a>(object: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, String> {
    match object.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("{name:?} must be a string")),
    }
}

/// A base64url member (RFC 7518 §2, no padding).
fn base64url(name: &str, text: &str) -> Result<Vec<u8>, String> {
    URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| format!("{name:?} is not base64url without padding"))
}

/// The key, checked to be usable, and the bytes of its public key as a certificate
/// holds them (the EC point, the Ed25519 key, the RSA modulus), for the `x5c` check.
fn decoding_key(params: &AlgorithmParameters) -> Result<(DecodingKey, Vec<u8>), String> {
    use aws_lc_rs::signature::{ParsedPublicKey, ECDSA_P256_SHA256_FIXED, ED25519};
    match params {
        AlgorithmParameters::EllipticCurve(ec) => {
            let (x, y) = (base64url("x", &ec.x)?, base64url("y", &ec.y)?);
            if x.len() != 32 || y.len() != 32 {
                return Err("\"x\" and \"y\" must be 32 bytes each for P-256".into());
            }
            let point = [&[0x04][..], &x, &y].concat();
            ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &point)
                .map_err(|_| "\"x\" and \"y\" are not a point on P-256".to_owned())?;
            let key =
                DecodingKey::from_ec_components(&ec.x, &ec.y).map_err(|e| format!("is not usable ({e})"))?;
            Ok((key, point))
        }
        AlgorithmParameters::OctetKeyPair(okp) => {
            let x = base64url("x", &okp.x)?;
            ParsedPublicKey::new(&ED25519, &x)
                .map_err(|_| "\"x\" is not an Ed25519 public key".to_owned())?;
            let key = DecodingKey::from_ed_components(&okp.x).map_err(|e| format!("is not usable ({e})"))?;
            Ok((key, x))
        }
        AlgorithmParameters::RSA(rsa) => {
            let n = base64url("n", &rsa.n)?;
            let e = base64url("e", &rsa.e)?;
            // RFC 7518 §6.3.1.1 forbids a leading zero octet; some libraries add one,
            // and it changes nothing, so it is dropped rather than refused.
            let n = strip_leading_zeros(&n);
            let e = strip_leading_zeros(&e);
            let bits = n
                .first()
                .map_or(0, |top| (n.len() - 1) * 8 + (8 - top.leading_zeros() as usize));
            if bits < MIN_RSA_BITS {
                return Err(format!(
                    "the RSA modulus has {bits} bits; at least {MIN_RSA_BITS} are needed"
                ));
            }
            if bits > MAX_RSA_BITS {
                return Err(format!(
                    "the RSA modulus has {bits} bits; at most {MAX_RSA_BITS} are supported"
                ));
            }
            let odd = e.last().is_some_and(|low| low & 1 == 1);
            if !odd || e.len() > 4 || e == [1] {
                return Err("the RSA exponent \"e\" must be odd, at least 3 and at most 32 bits".into());
            }
            Ok((DecodingKey::from_rsa_raw_components(n, e), n.to_vec()))
        }
        // kty was checked to be EC, OKP or RSA before: an `oct` key cannot get here.
        AlgorithmParameters::OctetKey(_) => Err("kty \"oct\" is not supported (use EC, OKP or RSA)".into()),
    }
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[first..]
}

/// `x5c` (RFC 7517 §4.7): a non-empty array of standard base64 DER certificates, the
/// first of which holds this key. Returns that first certificate's DER.
///
/// The certificate's key is compared by finding the JWK's public key bytes in it: a
/// check for a registrant's mistake (a certificate of another key), not a security
/// boundary, since `self_signed_tls_client_auth` compares the presented
/// certificate's DER with this one, and TLS proves the holder has its private key.
fn first_certificate(chain: &Value, public_bytes: &[u8]) -> Result<Vec<u8>, String> {
    let Some(chain) = chain.as_array().filter(|c| !c.is_empty()) else {
        return Err("\"x5c\" must be a non-empty array of certificates".into());
    };
    let mut first = None;
    for (index, certificate) in chain.iter().enumerate() {
        let der = certificate
            .as_str()
            .and_then(|text| STANDARD.decode(text).ok())
            .ok_or_else(|| format!("x5c[{index}] is not a standard base64 string"))?;
        if !is_der_sequence(&der) {
            return Err(format!("x5c[{index}] is not a DER certificate"));
        }
        first.get_or_insert(der);
    }
    let first = first.unwrap_or_default();
    if !first
        .windows(public_bytes.len())
        .any(|window| window == public_bytes)
    {
        return Err("x5c[0] is a certificate for another key".into());
    }
    Ok(first)
}

/// Whether `der` is exactly one DER SEQUENCE (a certificate's outer shape).
fn is_der_sequence(der: &[u8]) -> bool {
    let [0x30, first_length, rest @ ..] = der else {
        return false;
    };
    let (length, body) = match *first_length {
        short @ 0..=0x7F => (short as usize, rest),
        long @ 0x81..=0x84 => {
            let octets = (long & 0x7F) as usize;
            if rest.len() < octets || rest[0] == 0 {
                return false;
            }
            let length = rest[..octets]
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | *b as usize);
            (length, &rest[octets..])
        }
        _ => return false,
    };
    body.len() == length
}

#[cfg(test)]
mod tests;
