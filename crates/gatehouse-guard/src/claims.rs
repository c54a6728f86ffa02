//! What a validated access token says, and the extractor that hands it to handlers.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use http::request::Parts;
use serde::de::Deserializer;
use serde::{Deserialize, Serialize};

use crate::error::Rejection;

/// The claims of a validated access token: RFC 9068 §2.2 for a JWT, RFC 7662 §2.2 for
/// an introspection answer. Extract it in a handler behind the guard:
/// `async fn handler(claims: Claims)`, or `Option<Claims>` where a token is optional.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The subject: a user id, or the client id for client_credentials.
    pub sub: String,
    /// The client the token was issued to.
    pub client_id: String,
    /// The granted scope.
    #[serde(default)]
    pub scope: Scope,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Issue time.
    #[serde(default)]
    pub iat: Option<i64>,
    /// Not before.
    #[serde(default)]
    pub nbf: Option<i64>,
    /// The issuer.
    #[serde(default)]
    pub iss: Option<String>,
    /// The audiences (a JSON string or array).
    #[serde(default, deserialize_with = "one_or_many")]
    pub aud: Vec<String>,
    /// The token's id.
    #[serde(default)]
    pub jti: Option<String>,
    /// The user's name, for tokens from a password login.
    #[serde(default)]
    pub username: Option<String>,
    /// The login (token family) the token belongs to, if any.
    #[serde(default)]
    pub sid: Option<String>,
    /// What the token is bound to (RFC 7800 `cnf`): the TLS client certificate of
    /// RFC 8705 §3. The guard has checked it against the request's certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
}

impl Claims {
    /// Whether the token was granted `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scope.contains(scope)
    }

    /// The `x5t#S256` the token is bound to (RFC 8705 §3.1): the base64url SHA-256
    /// of the client certificate it may be used with. `None` for a bearer token.
    pub fn certificate_thumbprint(&self) -> Option<&str> {
        self.cnf.as_ref()?.x5t_s256.as_deref()
    }
}

/// `cnf` (RFC 7800 §3.1): the proof of possession a token is bound to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Confirmation {
    /// SHA-256 thumbprint of the TLS client certificate (RFC 8705 §3.1), base64url.
    #[serde(rename = "x5t#S256", default, skip_serializing_if = "Option::is_none")]
    pub x5t_s256: Option<String>,
    /// Confirmation methods the guard does not check (a DPoP key's `jkt`, ...): kept
    /// so that a token bound to one is refused rather than taken as a bearer token.
    #[serde(flatten)]
    others: BTreeMap<String, serde_json::Value>,
}

impl Confirmation {
    /// A binding to the certificate with this `x5t#S256` (for a [`crate::TokenValidator`]
    /// reporting what its token store says).
    pub fn certificate(thumbprint: impl Into<String>) -> Self {
        Self {
            x5t_s256: Some(thumbprint.into()),
            others: BTreeMap::new(),
        }
    }

    pub(crate) fn has_unknown_members(&self) -> bool {
        !self.others.is_empty()
    }
}

/// A space-separated scope (RFC 6749 §3.3).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Scope(String);

impl Scope {
    /// Whether `scope` is one of the tokens.
    pub fn contains(&self, scope: &str) -> bool {
        self.iter().any(|s| s == scope)
    }

    /// The scope tokens.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.split(' ').filter(|s| !s.is_empty())
    }

    /// As sent: space-separated.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Scope {
    fn from(scope: &str) -> Self {
        Self(scope.to_owned())
    }
}

impl From<String> for Scope {
    fn from(scope: String) -> Self {
        Self(scope)
    }
}

impl fmt::Debug for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn one_or_many<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<OneOrMany>::deserialize(deserializer)? {
        None => Vec::new(),
        Some(OneOrMany::One(aud)) => vec![aud],
        Some(OneOrMany::Many(auds)) => auds,
    })
}

impl<S: Send + Sync> FromRequestParts<S> for Claims {
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Rejection> {
        // The guard put them there; without a guard before the handler, refuse.
        parts
            .extensions
            .get::<Arc<Claims>>()
            .map(|claims| Claims::clone(claims))
            .ok_or(Rejection::NotGuarded)
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for Claims {
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Option<Self>, Rejection> {
        Ok(parts
            .extensions
            .get::<Arc<Claims>>()
            .map(|claims| Claims::clone(claims)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audience_is_a_string_or_an_array() {
        let one: Claims =
            serde_json::from_str(r#"{"sub":"s","client_id":"c","exp":1,"aud":"a","scope":"read  write"}"#)
                .unwrap();
        assert_eq!(one.aud, ["a"]);
        assert!(one.has_scope("read") && one.has_scope("write") && !one.has_scope("rea"));
        let many: Claims =
            serde_json::from_str(r#"{"sub":"s","client_id":"c","exp":1,"aud":["a","b"]}"#).unwrap();
        assert_eq!(many.aud, ["a", "b"]);
        assert_eq!(many.scope, Scope::default());
        assert_eq!(many.certificate_thumbprint(), None);
    }

    #[test]
    fn cnf_names_the_certificate_and_keeps_what_it_does_not_know() {
        let bound: Claims =
            serde_json::from_str(r#"{"sub":"s","client_id":"c","exp":1,"cnf":{"x5t#S256":"abc"}}"#).unwrap();
        assert_eq!(bound.certificate_thumbprint(), Some("abc"));
        assert_eq!(bound.cnf, Some(Confirmation::certificate("abc")));
        assert!(!bound.cnf.as_ref().unwrap().has_unknown_members());
        let dpop: Claims =
            serde_json::from_str(r#"{"sub":"s","client_id":"c","exp":1,"cnf":{"jkt":"k"}}"#).unwrap();
        assert_eq!(dpop.certificate_thumbprint(), None);
        assert!(dpop.cnf.as_ref().unwrap().has_unknown_members());
        let round_trip = serde_json::to_value(&bound).unwrap();
        assert_eq!(round_trip["cnf"], serde_json::json!({"x5t#S256": "abc"}));
    }
}
