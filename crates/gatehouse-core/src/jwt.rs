//! RFC 9068 JWT access tokens: the claims, and the compact JWS that carries them.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::keys::{KeyError, KeySet, SigningKey};
use crate::UnixTime;

/// The claims of an access token (RFC 9068 §2.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessTokenClaims {
    /// The issuer.
    pub iss: String,
    /// The client id (client_credentials) or the user's id (password).
    pub sub: String,
    /// The resource server(s) the token is for.
    pub aud: String,
    /// Expiry.
    pub exp: UnixTime,
    /// Issue time.
    pub iat: UnixTime,
    /// A unique id, used to revoke the token.
    pub jti: String,
    /// The client the token was issued to.
    pub client_id: String,
    /// The granted scope, space-separated.
    pub scope: String,
    /// The login (token family) the token descends from, for user tokens: revoking
    /// the login revokes the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// The user's name, for user tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// What the token is bound to (RFC 8705 §3.1, RFC 9449 §6.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<crate::Confirmation>,
}

impl AccessTokenClaims {
    /// The user's id, for a user's token (`sub`, when the token names a user).
    pub fn user_id(&self) -> Option<&str> {
        self.username.is_some().then_some(self.sub.as_str())
    }
}

/// Signs `claims` as a compact JWS with header `{"alg","kid","typ":"at+jwt"}`.
pub fn sign_access_token(key: &SigningKey, claims: &AccessTokenClaims) -> Result<String, KeyError> {
    let payload = serde_json::to_vec(claims).map_err(|e| KeyError(format!("encode claims: {e}")))?;
    let header = key.access_token_header();
    let mut token = String::with_capacity(header.len() + payload.len() * 4 / 3 + 400);
    token.push_str(header);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(&payload, &mut token);
    let signature = key.sign(token.as_bytes())?;
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(&signature, &mut token);
    Ok(token)
}

/// Checks an access token this server signed: an RFC 9068 header (`typ` `at+jwt`, the
/// `alg` of the published key named by `kid`), a valid signature, an unexpired `exp`.
/// `None` for anything else; the caller learns nothing more (RFC 7662 §2.2).
pub fn verify_access_token(keys: &KeySet, token: &str, now: UnixTime) -> Option<AccessTokenClaims> {
    #[derive(Deserialize)]
    struct Header {
        alg: String,
        kid: String,
        typ: String,
    }
    let (signing_input, signature) = token.rsplit_once('.')?;
    let (header, payload) = signing_input.split_once('.')?;
    let header: Header = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).ok()?).ok()?;
    let key = keys.find(&header.kid, now)?;
    if header.alg != key.alg().as_str() || !header.typ.eq_ignore_ascii_case("at+jwt") {
        return None;
    }
    let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
    if !key.verify(signing_input.as_bytes(), &signature) {
        return None;
    }
    let claims: AccessTokenClaims = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    (claims.exp > now).then_some(claims)
}

/// JWT access tokens already verified, by SHA-256 of the token, until their `exp`: an
/// ES256 verification costs ~60 µs, a lookup well under one. Bounded: when full it
/// starts afresh. Revocation is never cached here; only the signature check is.
#[derive(Debug, Default)]
pub struct VerifiedTokens {
    seen: std::sync::Mutex<std::collections::HashMap<[u8; 32], std::sync::Arc<AccessTokenClaims>>>,
}

/// How many verified tokens to remember.
const VERIFIED_TOKENS_CAPACITY: usize = 100_000;

impl VerifiedTokens {
    /// The claims of `token` if it is a live access token signed by one of `keys`.
    pub fn verify(
        &self,
        keys: &KeySet,
        token: &str,
        now: UnixTime,
    ) -> Option<std::sync::Arc<AccessTokenClaims>> {
        let digest = crate::secret::sha256(token.as_bytes());
        if let Some(claims) = self.seen.lock().ok().and_then(|seen| seen.get(&digest).cloned()) {
            // A key retired since still has to be published for its tokens to count.
            let kid_live = token_kid(token).is_some_and(|kid| keys.find(&kid, now).is_some());
            return (claims.exp > now && kid_live).then_some(claims);
        }
        let claims = std::sync::Arc::new(verify_access_token(keys, token, now)?);
        if let Ok(mut seen) = self.seen.lock() {
            if seen.len() >= VERIFIED_TOKENS_CAPACITY {
                seen.clear();
            }
            seen.insert(digest, claims.clone());
        }
        Some(claims)
    }
}

/// The `kid` of a compact JWS header, unverified.
fn token_kid(token: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Header {
        kid: String,
    }
    let header = token.split('.').next()?;
    let header: Header = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).ok()?).ok()?;
    Some(header.kid)
}
