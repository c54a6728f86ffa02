//! The access token handed to callers.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use http::HeaderValue;
use secrecy::SecretString;
use tokio::time::Instant;

use crate::error::Error;
use crate::renewal::{Age, Schedule};

/// Tells apart every token this process received, so that a rejection can
/// name the exact token that failed.
static NEXT_ISSUE: AtomicU64 = AtomicU64::new(1);

/// An access token, cheap to clone. Its `Debug` never shows the token.
///
/// Two `AccessToken`s are equal when they come from the same token response.
#[derive(Clone)]
pub struct AccessToken(Arc<Issued>);

struct Issued {
    issue: u64,
    secret: SecretString,
    /// `Bearer <token>`, marked sensitive so that HTTP tooling does not print it.
    authorization: HeaderValue,
    scope: Option<String>,
    schedule: Schedule,
}

impl AccessToken {
    /// Checks `token` (RFC 6749 appendix A.12: one or more printable ASCII
    /// characters, and nothing that cannot go into a header) and wraps it.
    pub(crate) fn new(token: &str, scope: Option<String>, schedule: Schedule) -> Result<Self, Error> {
        if token.is_empty() || !token.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
            return Err(Error::InvalidResponse(
                "access_token is empty or has characters a header cannot carry",
            ));
        }
        let mut authorization = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| Error::InvalidResponse("access_token cannot go into a header"))?;
        authorization.set_sensitive(true);
        Ok(AccessToken(Arc::new(Issued {
            issue: NEXT_ISSUE.fetch_add(1, Ordering::Relaxed),
            secret: SecretString::from(token),
            authorization,
            scope,
            schedule,
        })))
    }

    /// The token itself: `token.secret().expose_secret()`.
    pub fn secret(&self) -> &SecretString {
        &self.0.secret
    }

    /// The `Authorization` header value for RFC 6750 §2.1: `Bearer <token>`,
    /// marked sensitive.
    pub fn authorization_header(&self) -> HeaderValue {
        self.0.authorization.clone()
    }

    /// The scope granted, as the token response stated it, or as requested
    /// when the response left it out (RFC 6749 §5.1: it may when they agree).
    pub fn scope(&self) -> Option<&str> {
        self.0.scope.as_deref()
    }

    /// When the token stops being handed out: one second before the end of
    /// the lifetime the server announced, counted from the request.
    pub fn expires_at(&self) -> Instant {
        self.0.schedule.expires_at
    }

    /// When a renewal starts.
    pub fn renew_at(&self) -> Instant {
        self.0.schedule.renew_at
    }

    pub(crate) fn age(&self, now: Instant) -> Age {
        self.0.schedule.age(now)
    }
}

impl PartialEq for AccessToken {
    fn eq(&self, other: &Self) -> bool {
        self.0.issue == other.0.issue
    }
}

impl Eq for AccessToken {}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let now = Instant::now();
        f.debug_struct("AccessToken")
            .field("token", &"[redacted]")
            .field("scope", &self.0.scope)
            .field(
                "expires_in",
                &self.0.schedule.expires_at.saturating_duration_since(now),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::renewal::RenewalPolicy;
    use secrecy::ExposeSecret;

    fn token(value: &str) -> Result<AccessToken, Error> {
        let schedule = RenewalPolicy::default().schedule(Instant::now(), Some(60));
        AccessToken::new(value, Some("read".into()), schedule)
    }

    #[test]
    fn debug_never_shows_the_token() {
        let token = token("eyJhbGciOiJFUzI1NiJ9.c2VjcmV0.c2lnbmF0dXJl").unwrap();
        let debug = format!("{token:?}");
        assert!(debug.contains("[redacted]") && debug.contains("read"), "{debug}");
        assert!(!debug.contains("eyJ") && !debug.contains("c2VjcmV0"), "{debug}");
        assert!(token.authorization_header().is_sensitive());
        assert_eq!(
            token.authorization_header(),
            "Bearer eyJhbGciOiJFUzI1NiJ9.c2VjcmV0.c2lnbmF0dXJl"
        );
        assert_eq!(
            token.secret().expose_secret(),
            "eyJhbGciOiJFUzI1NiJ9.c2VjcmV0.c2lnbmF0dXJl"
        );
    }

    #[test]
    fn tokens_that_cannot_be_sent_are_refused() {
        for bad in ["", "with space", "new\nline", "caf\u{e9}"] {
            assert!(matches!(token(bad), Err(Error::InvalidResponse(_))), "{bad:?}");
        }
    }

    #[test]
    fn equality_is_identity_of_the_response() {
        let a = token("same").unwrap();
        let b = token("same").unwrap();
        assert_eq!(a, a.clone());
        assert_ne!(a, b, "two responses, two tokens, even with equal strings");
    }
}
