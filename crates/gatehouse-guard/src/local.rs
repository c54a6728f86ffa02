//! Local validation of RFC 9068 JWT access tokens against the issuer's JWKS.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{decode, decode_header, Algorithm, Validation};
use quick_cache::sync::Cache;

use crate::claims::Claims;
use crate::error::Rejection;
use crate::jwks::{Jwks, KeyLookup};

/// Validates JWTs, and remembers the ones that passed until they expire.
pub struct LocalValidator {
    jwks: Arc<Jwks>,
    /// One prepared set of checks per allowed algorithm: `iss`, `aud`, `exp`, `nbf`.
    validations: HashMap<Algorithm, Validation>,
    leeway: u64,
    /// Verified tokens by their exact text. A hit is the same bytes that verified,
    /// so it needs no signature check, only the expiry check.
    verified: Cache<String, Arc<Claims>>,
}

impl LocalValidator {
    pub fn new(
        jwks: Arc<Jwks>,
        algorithms: &[Algorithm],
        issuer: &str,
        audience: &str,
        leeway: Duration,
        cache_capacity: usize,
    ) -> Self {
        let validations = algorithms
            .iter()
            .map(|&alg| {
                let mut validation = Validation::new(alg);
                validation.set_issuer(&[issuer]);
                validation.set_audience(&[audience]);
                validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
                validation.leeway = leeway.as_secs();
                validation.validate_nbf = true;
                (alg, validation)
            })
            .collect();
        Self {
            jwks,
            validations,
            leeway: leeway.as_secs(),
            verified: Cache::new(cache_capacity.max(1)),
        }
    }

    pub async fn validate(&self, token: &str) -> Result<Arc<Claims>, Rejection> {
        if let Some(claims) = self.verified.get(token) {
            if unexpired(claims.exp, self.leeway) {
                return Ok(claims);
            }
            self.verified.remove(token);
            return Err(Rejection::InvalidToken("The access token has expired."));
        }
        let malformed = Rejection::InvalidToken("The access token is not a well-formed JWT.");
        let header = decode_header(token).map_err(|_| malformed.clone())?;
        // RFC 9068 §4: "Resource servers MUST verify that the typ header value is
        // at+jwt or application/at+jwt and reject tokens carrying any other value."
        let typ_ok = header.typ.as_deref().is_some_and(|typ| {
            typ.eq_ignore_ascii_case("at+jwt") || typ.eq_ignore_ascii_case("application/at+jwt")
        });
        if !typ_ok {
            return Err(Rejection::InvalidToken(
                "The token is not a JWT access token (typ).",
            ));
        }
        let validation = self.validations.get(&header.alg).ok_or(Rejection::InvalidToken(
            "The access token's algorithm is not accepted.",
        ))?;
        let kid = header.kid.as_deref().ok_or(Rejection::InvalidToken(
            "The access token names no signing key (kid).",
        ))?;
        let (lookup, keys_removed) = self.jwks.key(kid).await;
        if keys_removed {
            // A key was withdrawn: tokens it signed must not live on in the cache.
            self.verified.clear();
        }
        let key = match lookup {
            KeyLookup::Found(key) => key,
            KeyLookup::Unknown => {
                return Err(Rejection::InvalidToken(
                    "The access token is signed by an unknown key.",
                ))
            }
            KeyLookup::Unavailable => return Err(Rejection::Unavailable),
        };
        // The key verifies only with the algorithm it was published for.
        if key.alg != header.alg {
            return Err(Rejection::InvalidToken(
                "The access token's algorithm does not match its key.",
            ));
        }
        // ECDSA's second spelling of a signature, (r, n − s): see `ecdsa.rs`.
        if header.alg == Algorithm::ES256 && crate::ecdsa::has_high_s(token) {
            return Err(Rejection::InvalidToken(
                "The access token's signature is invalid.",
            ));
        }
        let claims = decode::<Claims>(token, &key.key, validation)
            .map_err(|e| {
                Rejection::InvalidToken(match e.kind() {
                    ErrorKind::ExpiredSignature => "The access token has expired.",
                    ErrorKind::ImmatureSignature => "The access token is not valid yet (nbf).",
                    ErrorKind::InvalidAudience => "The access token is not meant for this API (aud).",
                    ErrorKind::InvalidIssuer => "The access token is from another issuer (iss).",
                    ErrorKind::InvalidSignature => "The access token's signature is invalid.",
                    _ => "The access token is invalid.",
                })
            })?
            .claims;
        // RFC 7519 §4.1.4: valid only while the time is *before* exp; jsonwebtoken
        // still accepts the second of exp itself. One rule for fresh and cached.
        if !unexpired(claims.exp, self.leeway) {
            return Err(Rejection::InvalidToken("The access token has expired."));
        }
        let claims = Arc::new(claims);
        self.verified.insert(token.to_owned(), claims.clone());
        Ok(claims)
    }
}

/// Seconds since the epoch.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Whether `exp` (with `leeway` seconds of clock skew) is still ahead.
pub fn unexpired(exp: i64, leeway: u64) -> bool {
    exp.saturating_add(i64::try_from(leeway).unwrap_or(i64::MAX)) > now()
}
