//! Registered clients: who may ask for tokens, with which grants, scopes and lifetimes.

use std::fmt;
use std::str::FromStr;

use crate::{AuthSettings, Scope, SecretHash, UnixTime};

/// A client identifier. RFC 6749 appendix A.1: `client-id = *VSCHAR` (printable ASCII
/// and space); gatehouse also requires 1 to 255 characters. Checking this before any
/// lookup keeps NUL bytes and other junk away from the database.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(String);

/// The longest client id accepted.
pub const MAX_CLIENT_ID_LEN: usize = 255;

impl ClientId {
    /// Checks and wraps a client id; `None` if it breaks the rules above.
    pub fn parse(text: &str) -> Option<Self> {
        let valid = !text.is_empty()
            && text.len() <= MAX_CLIENT_ID_LEN
            && text.bytes().all(|b| (0x20..=0x7E).contains(&b));
        valid.then(|| Self(text.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The grant types gatehouse implements (RFC 6749 §4.3, §4.4, §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GrantType {
    /// RFC 6749 §4.4.
    ClientCredentials,
    /// RFC 6749 §4.3, resource owner password credentials.
    Password,
    /// RFC 6749 §6.
    RefreshToken,
}

impl GrantType {
    /// Every grant type, in a stable order.
    pub const ALL: [GrantType; 3] = [Self::ClientCredentials, Self::Password, Self::RefreshToken];

    /// The `grant_type` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientCredentials => "client_credentials",
            Self::Password => "password",
            Self::RefreshToken => "refresh_token",
        }
    }
}

impl FromStr for GrantType {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        Self::ALL.into_iter().find(|g| g.as_str() == s).ok_or(())
    }
}

impl fmt::Display for GrantType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of grant types, as a small bit set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GrantTypes(u8);

impl GrantTypes {
    fn bit(grant: GrantType) -> u8 {
        1 << (grant as u8)
    }

    /// Whether `grant` is in the set.
    pub fn contains(self, grant: GrantType) -> bool {
        self.0 & Self::bit(grant) != 0
    }

    /// Adds `grant`.
    pub fn insert(&mut self, grant: GrantType) {
        self.0 |= Self::bit(grant);
    }

    /// The grant types in the set, in a stable order.
    pub fn iter(self) -> impl Iterator<Item = GrantType> {
        GrantType::ALL.into_iter().filter(move |g| self.contains(*g))
    }

    /// Parses a list separated by commas or spaces; `Err` names the first unknown one.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut set = Self::default();
        for name in text.split([',', ' ']).filter(|s| !s.is_empty()) {
            let grant = name.parse().map_err(|()| name.to_owned())?;
            set.insert(grant);
        }
        Ok(set)
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl fmt::Display for GrantTypes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.iter().map(GrantType::as_str).collect();
        f.write_str(&names.join(" "))
    }
}

impl FromIterator<GrantType> for GrantTypes {
    fn from_iter<I: IntoIterator<Item = GrantType>>(iter: I) -> Self {
        let mut set = Self::default();
        for grant in iter {
            set.insert(grant);
        }
        set
    }
}

/// The form of a client's access tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TokenFormat {
    /// RFC 9068 JWTs, checked with the JWKS alone.
    #[default]
    Jwt,
    /// Random strings, checked by introspection.
    Opaque,
}

impl TokenFormat {
    /// The name used in the CLI and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Jwt => "jwt",
            Self::Opaque => "opaque",
        }
    }
}

impl FromStr for TokenFormat {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "jwt" => Ok(Self::Jwt),
            "opaque" => Ok(Self::Opaque),
            _ => Err(()),
        }
    }
}

/// A registered client, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    /// Its identifier.
    pub id: ClientId,
    /// A name for people.
    pub name: String,
    /// How its secret is kept.
    pub secret_hash: SecretHash,
    /// The secret it had before the last rotation, still accepted until the end of the
    /// grace period that rotation gave (`client rotate-secret --grace`).
    pub previous_secret: Option<PreviousSecret>,
    /// The scopes it may ask for.
    pub scope: Scope,
    /// The grants it may use.
    pub grant_types: GrantTypes,
    /// The `aud` of its access tokens; the server's default when `None`.
    pub audience: Option<String>,
    /// Access token lifetime in seconds; the server's default when `None`.
    pub access_token_ttl: Option<i64>,
    /// Refresh token lifetime in seconds; the server's default when `None`.
    pub refresh_token_ttl: Option<i64>,
    /// JWT or opaque access tokens.
    pub token_format: TokenFormat,
    /// Whether it may introspect any token (a resource server).
    pub can_introspect: bool,
    /// How it authenticates (a secret, a key, a certificate), and what its tokens
    /// are bound to.
    pub auth: AuthSettings,
    /// Whether it registered itself (RFC 7591) rather than being made by an
    /// operator: such a client never gets a `gatehouse:*` scope.
    pub registered: bool,
    /// When it was created.
    pub created_at: UnixTime,
}

/// A replaced secret that still works for a while, so that a fleet can roll over to the
/// new one without downtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviousSecret {
    /// How it is kept.
    pub hash: SecretHash,
    /// The end of its grace period: accepted while the time is before this.
    pub expires_at: UnixTime,
}

impl Client {
    /// The previous secret, if it is still inside its grace period at `now`.
    pub fn previous_secret_at(&self, now: UnixTime) -> Option<&SecretHash> {
        self.previous_secret
            .as_ref()
            .filter(|previous| now < previous.expires_at)
            .map(|previous| &previous.hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_id_rules() {
        assert!(ClientId::parse("svc:a b%").is_some());
        assert!(ClientId::parse("").is_none());
        assert!(ClientId::parse("nul\0byte").is_none());
        assert!(ClientId::parse("é").is_none());
        assert!(ClientId::parse(&"x".repeat(256)).is_none());
    }

    #[test]
    fn grant_types_parse_and_print() {
        let set = GrantTypes::parse("refresh_token,client_credentials").unwrap();
        assert!(set.contains(GrantType::ClientCredentials));
        assert!(!set.contains(GrantType::Password));
        assert_eq!(set.to_string(), "client_credentials refresh_token");
        assert_eq!(GrantTypes::parse("implicit"), Err("implicit".to_owned()));
    }
}
