//! Client assertions of `private_key_jwt` (RFC 7523 §2.2, §3; RFC 7521 §4.2): a JWT
//! the client signed with one of its keys to authenticate one request.
//!
//! The checks, in order, and why in that order:
//! 1. The compact form and the header: three base64url parts without padding, `alg`
//!    one of [`ASSERTION_ALGORITHMS`] (never `none`, never HMAC: a client's keys are
//!    public, and an HMAC "keyed" with one proves nothing), no `crit` (RFC 7515
//!    §4.1.11: no extension is understood here).
//! 2. The signature, by the key `kid` names, or by every key of the client that fits
//!    `alg` when there is no `kid`. A key verifies only the algorithms it was
//!    registered for, and only those of its type, so a header cannot make an RSA
//!    key check an EdDSA signature. An ES256 signature is taken in either `s`
//!    spelling (unlike gatehouse's own tokens, see `ecdsa.rs`): client libraries send
//!    a high `s` half the time, and a second spelling gains nothing here, since the
//!    replay record is keyed by `jti`, not by the assertion's text.
//! 3. The claims (RFC 7523 §3), only once the client's key vouches for them: a
//!    forger learns nothing from the answer but "invalid signature".
//! 4. The replay record of `jti` (RFC 7523 §3, item 7), written last, so that a
//!    forged assertion never uses up the `jti` it carries.
//!
//! Every refusal is `invalid_client` (RFC 7521 §4.2.1) with a description naming the
//! rule broken, never any part of the assertion. The time is the service's
//! [`Clock`](crate::Clock)'s, never the system's, with [`LEEWAY`] seconds each way
//! for clocks that differ.

use std::borrow::Cow;

use aws_lc_rs::digest::{Context, SHA256};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, AlgorithmFamily};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

use crate::client_jwks::{ClientKey, ClientKeySet, ASSERTION_ALGORITHMS};
use crate::{OAuthError, UnixTime};

/// The longest assertion read, in bytes. A JWS of the four algorithms with the
/// claims RFC 7523 asks for is well under 2 KiB (RSA-4096 signatures included); 8 KiB
/// leaves room for extra claims and bounds the work an unauthenticated request buys.
pub const MAX_ASSERTION_BYTES: usize = 8 * 1024;

/// Seconds by which the client's clock may differ from ours, each way.
pub const LEEWAY: i64 = 30;

/// How far ahead `exp` may be (plus [`LEEWAY`]): an assertion authenticates one
/// request, and its replay record must be kept until `exp`, so a long-lived one costs
/// storage and widens the window for a stolen copy.
pub const MAX_LIFETIME: i64 = 3600;

/// The longest `jti` taken, in characters.
const MAX_JTI_CHARS: usize = 256;

/// A refusal of an assertion: `invalid_client` (RFC 7521 §4.2.1), never with HTTP
/// Basic (an assertion is sent in the body).
fn refused(description: impl Into<Cow<'static, str>>) -> OAuthError {
    OAuthError::InvalidClient {
        description: description.into(),
        basic: false,
        unknown_client: false,
    }
}

/// The three parts of a compact JWS (RFC 7515 §7.1).
struct Compact<'a> {
    /// `header.payload`, the signed text.
    signed: &'a str,
    header: &'a str,
    payload: &'a str,
    signature: &'a str,
}

impl<'a> Compact<'a> {
    fn split(text: &'a str) -> Result<Self, OAuthError> {
        let malformed = || refused("The client assertion is not a compact JWS (three base64url parts).");
        let (signed, signature) = text.rsplit_once('.').ok_or_else(malformed)?;
        let (header, payload) = signed.split_once('.').ok_or_else(malformed)?;
        if payload.contains('.') || header.is_empty() || payload.is_empty() || signature.is_empty() {
            return Err(malformed());
        }
        Ok(Self {
            signed,
            header,
            payload,
            signature,
        })
    }
}

/// Decodes one base64url part (RFC 7515 §2: no padding) and parses it as a JSON
/// object of `T`. serde_json's nesting limit bounds the work of deep input; a member
/// given twice is refused (so `sub` cannot say one thing to one reader and another
/// to the next); an array is refused before serde, which would read it as a struct.
fn json_part<T: DeserializeOwned>(part: &str, which: &'static str) -> Result<T, OAuthError> {
    let bytes = URL_SAFE_NO_PAD.decode(part).map_err(|_| {
        refused(format!(
            "The client assertion's {which} is not base64url without padding."
        ))
    })?;
    let not_an_object = || {
        refused(format!(
            "The client assertion's {which} is not a JSON object of the expected members."
        ))
    };
    if bytes.trim_ascii_start().first() != Some(&b'{') {
        return Err(not_an_object());
    }
    serde_json::from_slice(&bytes).map_err(|_| not_an_object())
}

/// The header members the checks read; others are ignored.
#[derive(Deserialize)]
struct RawHeader {
    #[serde(default)]
    alg: Option<Value>,
    #[serde(default)]
    kid: Option<Value>,
    #[serde(default)]
    crit: Option<Value>,
}

/// The claims the checks read (RFC 7523 §3), each as it came, so that a wrong type
/// is named precisely; others are ignored.
#[derive(Deserialize)]
struct RawClaims {
    #[serde(default)]
    iss: Option<Value>,
    #[serde(default)]
    sub: Option<Value>,
    #[serde(default)]
    aud: Option<Value>,
    #[serde(default)]
    exp: Option<Value>,
    #[serde(default)]
    nbf: Option<Value>,
    #[serde(default)]
    iat: Option<Value>,
    #[serde(default)]
    jti: Option<Value>,
}

/// Only `sub`, for reading the client id before anything is verified.
#[derive(Deserialize)]
struct SubjectOnly {
    #[serde(default)]
    sub: Option<Value>,
}

/// The client an assertion claims to come from: its `sub` (RFC 7523 §3, item 2),
/// read without any check of the signature, so that the client and its keys can be
/// looked up. Refused when the assertion is not a compact JWS whose payload is a JSON
/// object with a string `sub`.
pub fn unverified_subject(assertion: &str) -> Result<String, OAuthError> {
    let parts = Compact::split(assertion)?;
    let claims: SubjectOnly = json_part(parts.payload, "payload")?;
    match claims.sub {
        Some(Value::String(sub)) => Ok(sub),
        Some(_) => Err(refused(
            "The client assertion's sub must be a string: the client id.",
        )),
        None => Err(refused(
            "The client assertion has no sub: it must be the client id.",
        )),
    }
}

/// Why a signature was not accepted.
#[derive(Debug)]
pub enum SignatureRefusal {
    /// The header's `kid` names none of the keys given: the caller may fetch the
    /// client's keys again (its key set may have changed) and try once more.
    UnknownKid,
    /// Refused for good.
    Refused(OAuthError),
}

/// What an accepted assertion leaves to record: its `jti` and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// `jti`.
    pub jti: String,
    /// `exp`.
    pub exp: UnixTime,
}

impl Accepted {
    /// The key of its replay record: SHA-256 of `"assertion\0" client_id "\0" jti`,
    /// so that two clients' `jti`s never collide and the store holds no raw value.
    pub fn replay_digest(&self, client_id: &str) -> [u8; 32] {
        let mut context = Context::new(&SHA256);
        context.update(b"assertion\0");
        context.update(client_id.as_bytes());
        context.update(b"\0");
        context.update(self.jti.as_bytes());
        let mut digest = [0u8; 32];
        digest.copy_from_slice(context.finish().as_ref());
        digest
    }

    /// Until when the record must be kept: past that, the assertion's `exp` (with
    /// the leeway) refuses it anyway.
    pub fn record_until(&self) -> UnixTime {
        self.exp.saturating_add(LEEWAY)
    }
}

/// An assertion whose form and header are checked, and whose signature and claims
/// are not yet.
pub struct ClientAssertion<'a> {
    parts: Compact<'a>,
    alg: Algorithm,
    kid: Option<String>,
}

impl<'a> ClientAssertion<'a> {
    /// Splits `text` and checks its header (step 1 of the module docs).
    pub fn parse(text: &'a str) -> Result<Self, OAuthError> {
        if text.len() > MAX_ASSERTION_BYTES {
            return Err(refused("The client assertion is longer than 8 KiB."));
        }
        let parts = Compact::split(text)?;
        let header: RawHeader = json_part(parts.header, "header")?;
        let alg = match header.alg {
            Some(Value::String(name)) => name
                .parse::<Algorithm>()
                .ok()
                .filter(|alg| ASSERTION_ALGORITHMS.contains(alg))
                .ok_or_else(|| {
                    refused("The client assertion's alg must be one of ES256, EdDSA, RS256, PS256.")
                })?,
            Some(_) => return Err(refused("The client assertion's alg must be a string.")),
            None => return Err(refused("The client assertion's header has no alg.")),
        };
        if header.crit.is_some() {
            return Err(refused(
                "The client assertion's header has crit: no extension is understood here.",
            ));
        }
        let kid = match header.kid {
            Some(Value::String(kid)) => Some(kid),
            Some(_) => return Err(refused("The client assertion's kid must be a string.")),
            None => None,
        };
        Ok(Self { parts, alg, kid })
    }

    /// The header's `kid`, if it has one.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// Checks the signature with `keys` (step 2 of the module docs): the keys the
    /// `kid` names, or without one every key that fits `alg`.
    pub fn verify_signature(&self, keys: &ClientKeySet) -> Result<(), SignatureRefusal> {
        let fits =
            |key: &&ClientKey| key.algorithms.contains(&self.alg) && key.key.family() == family_of(self.alg);
        let candidates = match self.kid() {
            Some(kid) => {
                let mut named = keys
                    .keys
                    .iter()
                    .filter(|key| key.kid.as_deref() == Some(kid))
                    .peekable();
                if named.peek().is_none() {
                    return Err(SignatureRefusal::UnknownKid);
                }
                let usable: Vec<&ClientKey> = named.filter(fits).collect();
                if usable.is_empty() {
                    return Err(SignatureRefusal::Refused(refused(
                        "The key the client assertion's kid names is not registered for its alg.",
                    )));
                }
                usable
            }
            None => keys.keys.iter().filter(fits).collect(),
        };
        if candidates.is_empty() {
            return Err(SignatureRefusal::Refused(refused(
                "None of the client's keys is registered for the client assertion's alg.",
            )));
        }
        let verifies = |key: &ClientKey| {
            jsonwebtoken::crypto::verify(
                self.parts.signature,
                self.parts.signed.as_bytes(),
                &key.key,
                self.alg,
            )
            .unwrap_or(false)
        };
        if candidates.into_iter().any(verifies) {
            Ok(())
        } else {
            Err(SignatureRefusal::Refused(refused(
                "The client assertion's signature is invalid.",
            )))
        }
    }

    /// Checks the claims (RFC 7523 §3; step 3 of the module docs), for an assertion
    /// whose signature was verified with a key of `client_id`: `iss` and `sub` are
    /// the client, `aud` names one of `audiences`, `exp` is there, not past and at
    /// most [`MAX_LIFETIME`] ahead, `nbf` and `iat` (optional) not in the future,
    /// `jti` of 1 to 256 characters.
    pub fn check_claims(
        &self,
        client_id: &str,
        audiences: &[String],
        now: UnixTime,
    ) -> Result<Accepted, OAuthError> {
        let claims: RawClaims = json_part(self.parts.payload, "payload")?;
        if !is_string(claims.iss.as_ref(), client_id) {
            return Err(refused("The client assertion's iss must be the client id."));
        }
        if !is_string(claims.sub.as_ref(), client_id) {
            return Err(refused("The client assertion's sub must be the client id."));
        }
        check_audience(claims.aud.as_ref(), audiences)?;
        let exp = numeric_date(claims.exp.as_ref(), "exp")?
            .ok_or_else(|| refused("The client assertion has no exp."))?;
        if exp < now.saturating_sub(LEEWAY) {
            return Err(refused("The client assertion has expired."));
        }
        if exp > now.saturating_add(MAX_LIFETIME + LEEWAY) {
            return Err(refused(
                "The client assertion's exp is more than 60 minutes ahead.",
            ));
        }
        for (claim, name) in [(&claims.nbf, "nbf"), (&claims.iat, "iat")] {
            if numeric_date(claim.as_ref(), name)?.is_some_and(|at| at > now.saturating_add(LEEWAY)) {
                return Err(refused(format!(
                    "The client assertion's {name} is in the future."
                )));
            }
        }
        let jti = match claims.jti {
            Some(Value::String(jti)) if (1..=MAX_JTI_CHARS).contains(&jti.chars().count()) => jti,
            Some(Value::String(_)) => {
                return Err(refused(
                    "The client assertion's jti must have 1 to 256 characters.",
                ))
            }
            Some(_) => return Err(refused("The client assertion's jti must be a string.")),
            None => return Err(refused("The client assertion has no jti.")),
        };
        Ok(Accepted { jti, exp })
    }
}

/// Whether `value` is the string `expected`.
fn is_string(value: Option<&Value>, expected: &str) -> bool {
    matches!(value, Some(Value::String(s)) if s == expected)
}

/// RFC 7523 §3, item 3: "The JWT MUST contain an "aud" (audience) claim containing a
/// value that identifies the authorization server as an intended audience", a string
/// or an array of strings (RFC 7519 §4.1.3).
fn check_audience(aud: Option<&Value>, audiences: &[String]) -> Result<(), OAuthError> {
    let ours = |value: &str| audiences.iter().any(|a| a == value);
    let named = match aud {
        None => return Err(refused("The client assertion has no aud.")),
        Some(Value::String(one)) => ours(one),
        Some(Value::Array(many)) => {
            if many.is_empty() || !many.iter().all(Value::is_string) {
                return Err(refused(
                    "The client assertion's aud must be a string or an array of strings.",
                ));
            }
            many.iter().filter_map(Value::as_str).any(ours)
        }
        Some(_) => {
            return Err(refused(
                "The client assertion's aud must be a string or an array of strings.",
            ))
        }
    };
    if named {
        Ok(())
    } else {
        Err(refused(
            "The client assertion's aud names neither this server's issuer nor the endpoint it was sent to.",
        ))
    }
}

/// A NumericDate claim (RFC 7519 §2), in whole seconds: a fraction is refused rather
/// than rounded, since which way to round would be a guess.
fn numeric_date(value: Option<&Value>, name: &'static str) -> Result<Option<UnixTime>, OAuthError> {
    match value {
        None => Ok(None),
        Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(|| {
            refused(format!(
                "The client assertion's {name} must be a whole number of seconds."
            ))
        }),
        Some(_) => Err(refused(format!(
            "The client assertion's {name} must be a number of seconds."
        ))),
    }
}

/// The key type `alg` needs.
fn family_of(alg: Algorithm) -> AlgorithmFamily {
    match alg {
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => AlgorithmFamily::Hmac,
        Algorithm::ES256 | Algorithm::ES384 => AlgorithmFamily::Ec,
        Algorithm::EdDSA => AlgorithmFamily::Ed,
        Algorithm::RS256
        | Algorithm::RS384
        | Algorithm::RS512
        | Algorithm::PS256
        | Algorithm::PS384
        | Algorithm::PS512 => AlgorithmFamily::Rsa,
    }
}
