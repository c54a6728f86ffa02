//! The grant a token request asks for, as a tagged enum: never a string match.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};

use crate::request::Params;
use crate::{GrantType, OAuthError, Scope};

/// A password or token as presented; `Debug` prints `[redacted]`.
#[derive(Clone)]
pub struct Credential(SecretString);

impl Credential {
    /// Wraps a value.
    pub fn new(value: String) -> Self {
        Self(SecretString::from(value))
    }

    /// The value.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// What a token request asks for.
#[derive(Debug, Clone)]
pub enum GrantRequest {
    /// RFC 6749 §4.4.2.
    ClientCredentials {
        /// The requested scope, if any.
        scope: Option<Scope>,
    },
    /// RFC 6749 §4.3.2.
    Password {
        /// The resource owner's username.
        username: String,
        /// The resource owner's password.
        password: Credential,
        /// The requested scope, if any.
        scope: Option<Scope>,
    },
    /// RFC 6749 §6.
    RefreshToken {
        /// The refresh token.
        refresh_token: Credential,
        /// The requested scope, if any: it may narrow, never widen.
        scope: Option<Scope>,
    },
}

impl GrantRequest {
    /// Reads the parameters `grant_type` needs.
    pub fn parse(grant_type: GrantType, params: &mut Params) -> Result<Self, OAuthError> {
        let scope = params.take("scope").map(|s| Scope::parse(&s)).transpose()?;
        let mut required = |name: &'static str, missing: &'static str| {
            params.take(name).ok_or(OAuthError::invalid_request(missing))
        };
        Ok(match grant_type {
            GrantType::ClientCredentials => Self::ClientCredentials { scope },
            GrantType::Password => Self::Password {
                username: required("username", "The username parameter is missing.")?,
                password: Credential::new(required("password", "The password parameter is missing.")?),
                scope,
            },
            GrantType::RefreshToken => Self::RefreshToken {
                refresh_token: Credential::new(required(
                    "refresh_token",
                    "The refresh_token parameter is missing.",
                )?),
                scope,
            },
        })
    }

    /// The grant type.
    pub fn grant_type(&self) -> GrantType {
        match self {
            Self::ClientCredentials { .. } => GrantType::ClientCredentials,
            Self::Password { .. } => GrantType::Password,
            Self::RefreshToken { .. } => GrantType::RefreshToken,
        }
    }
}
