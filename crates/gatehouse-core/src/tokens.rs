//! Opaque tokens: refresh tokens and opaque access tokens. 256 random bits behind a
//! short prefix that says what the token is (and lets secret scanners find leaks);
//! stored only as a SHA-256 digest.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use crate::secret::sha256;
use crate::{ClientId, Random, Scope, UnixTime};

/// Prefix of refresh tokens.
pub const REFRESH_PREFIX: &str = "ghr_";
/// Prefix of opaque access tokens.
pub const OPAQUE_ACCESS_PREFIX: &str = "gho_";

/// What a presented token string is, by its form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// `ghr_…`
    Refresh,
    /// `gho_…`
    OpaqueAccess,
    /// Three base64url parts separated by dots.
    Jwt,
    /// Anything else: no token of ours.
    Unknown,
}

impl TokenKind {
    /// Classifies `token`.
    pub fn of(token: &str) -> Self {
        if token.starts_with(REFRESH_PREFIX) {
            Self::Refresh
        } else if token.starts_with(OPAQUE_ACCESS_PREFIX) {
            Self::OpaqueAccess
        } else if token.split('.').count() == 3 {
            Self::Jwt
        } else {
            Self::Unknown
        }
    }
}

/// The SHA-256 digest a token is stored and looked up by.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenDigest(pub [u8; 32]);

impl TokenDigest {
    /// The digest of `token`.
    pub fn of(token: &str) -> Self {
        Self(sha256(token.as_bytes()))
    }

    /// A short, non-secret identifier derived from the digest (for `jti` of opaque
    /// refresh tokens in introspection).
    pub fn id(&self) -> String {
        URL_SAFE_NO_PAD.encode(&self.0[..16])
    }
}

impl fmt::Debug for TokenDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenDigest({})", self.id())
    }
}

/// A freshly minted opaque token: the value for the client, the digest for the store.
pub struct MintedToken {
    /// Shown to the client once.
    pub value: String,
    /// Stored.
    pub digest: TokenDigest,
}

impl fmt::Debug for MintedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MintedToken")
            .field("digest", &self.digest)
            .finish_non_exhaustive()
    }
}

impl MintedToken {
    /// A new token with `prefix` and 256 random bits.
    pub fn generate(prefix: &str, rng: &dyn Random) -> Self {
        let value = format!("{prefix}{}", rng.token(32));
        let digest = TokenDigest::of(&value);
        Self { value, digest }
    }
}

/// A login (RFC 9700 §4.14.2 calls it a refresh token family): every refresh token
/// and access token descended from one password grant. Revoking it revokes them all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFamily {
    /// Random id; the `sid` claim of its JWT access tokens.
    pub family_id: String,
    /// The client that logged in.
    pub client_id: ClientId,
    /// The user, for the password grant.
    pub user_id: Option<String>,
    /// The scope granted at login: the most any later refresh may have.
    pub scope: Scope,
    /// When it started.
    pub created_at: UnixTime,
}

/// How long past its first refresh token's expiry a login is kept before the clean-up
/// deletes it (`TokenStore::purge_expired`), so that the access tokens issued from it
/// (whose `sid` names it) still introspect as active. Refresh tokens, opaque access
/// tokens and revoked `jti`s go as soon as they expire.
pub const LOGIN_GRACE_SECS: i64 = 86_400;

/// A refresh token to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRefreshToken {
    /// Its digest.
    pub digest: TokenDigest,
    /// Its family.
    pub family_id: String,
    /// The client it was issued to.
    pub client_id: ClientId,
    /// Issue time.
    pub issued_at: UnixTime,
    /// Expiry.
    pub expires_at: UnixTime,
}

/// An opaque access token to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOpaqueToken {
    /// Its digest.
    pub digest: TokenDigest,
    /// Its id, as introspection reports it.
    pub jti: String,
    /// Its family, if issued from a login.
    pub family_id: Option<String>,
    /// The client it was issued to.
    pub client_id: ClientId,
    /// `sub`: the client id or the user id.
    pub subject: String,
    /// The user's name, for user tokens.
    pub username: Option<String>,
    /// Granted scope.
    pub scope: Scope,
    /// `aud`.
    pub audience: String,
    /// Issue time.
    pub issued_at: UnixTime,
    /// Expiry.
    pub expires_at: UnixTime,
    /// What it is bound to (`cnf`), if anything.
    pub cnf: Option<crate::Confirmation>,
}

/// What the store knows of a login when a refresh token is presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginState {
    /// The family.
    pub family_id: String,
    /// The scope granted at login.
    pub scope: Scope,
    /// The user, if the login was a password grant and the user still exists.
    pub user: Option<LoginUser>,
    /// Whether the login had a user (who may since have been deleted).
    pub had_user: bool,
}

/// The user behind a login, as they are now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginUser {
    /// Id.
    pub user_id: String,
    /// Name.
    pub username: String,
    /// Current scope; `None`: not restricted beyond the client.
    pub scope: Option<Scope>,
    /// Whether disabled.
    pub disabled: bool,
}

/// What to store when a rotation goes ahead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationWrites {
    /// The successor refresh token.
    pub refresh: NewRefreshToken,
    /// An opaque access token, for opaque clients.
    pub opaque: Option<NewOpaqueToken>,
    /// The scope of the new access token.
    pub access_scope: Scope,
}

/// A stored refresh token with its login, as the store found it: raw facts. What they
/// mean is decided here, in [`RefreshState::verdict`] and [`RefreshState::is_live`],
/// and nowhere in a store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshState {
    /// The client it was issued to.
    pub client_id: ClientId,
    /// Issue time.
    pub issued_at: UnixTime,
    /// Expiry.
    pub expires_at: UnixTime,
    /// Whether it had been consumed (rotated) before: for a rotation, before the
    /// store's consuming step, which only one caller ever finds it unused for.
    pub used: bool,
    /// When its login was revoked, if it was.
    pub login_revoked_at: Option<UnixTime>,
    /// Its login, with the user as they are now.
    pub login: LoginState,
}

/// What a presented refresh token allows, by RFC 6749 §6 and RFC 9700 §4.14.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshVerdict {
    /// Unused, unexpired, its login live: it may be rotated.
    Rotate,
    /// It was rotated before and came back: someone holds a copy, so its whole login
    /// is revoked (RFC 9700 §4.14.2).
    Reused,
    /// Another client's, expired, or of a revoked login: refused, nothing changes.
    Invalid,
}

impl RefreshState {
    /// Whether the token still works at `now`: never consumed, not expired, its login
    /// not revoked. (Its holders are checked apart, see [`HolderState`].)
    pub fn is_live(&self, now: UnixTime) -> bool {
        !self.used && self.login_revoked_at.is_none() && now < self.expires_at
    }

    /// What presenting this token as `client` at `now` does. RFC 6749 §6: the token
    /// must have been issued to the authenticated client; another client's token is
    /// invalid and does not count as a use. A token used before is reuse, whatever
    /// else holds of it: the login ends (RFC 9700 §4.14.2).
    pub fn verdict(&self, client: &ClientId, now: UnixTime) -> RefreshVerdict {
        if &self.client_id != client {
            RefreshVerdict::Invalid
        } else if self.used {
            RefreshVerdict::Reused
        } else if self.is_live(now) {
            RefreshVerdict::Rotate
        } else {
            RefreshVerdict::Invalid
        }
    }
}

/// What a rotation does, as core decides it from the [`RefreshState`] the store's
/// consuming step found (see [`crate::store::TokenStore::rotate_refresh_token`]).
#[derive(Debug)]
pub enum RotationStep {
    /// Keep the consumption and store the successor, in the same transaction.
    Rotate(Box<RotationWrites>),
    /// Revoke the token's login (RFC 9700 §4.14.2); write nothing else.
    RevokeLogin,
    /// Write nothing: a consumption made by this step is undone, so the token stays
    /// as it was. The error is the answer.
    Refuse(crate::OAuthError),
}

/// What a rotation found and did.
#[derive(Debug)]
pub struct Rotation {
    /// The presented token as it was before the rotation; `None` if unknown.
    pub presented: Option<RefreshState>,
    /// What was done.
    pub step: RotationStep,
}

/// A stored refresh token, for introspection and revocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshView {
    /// The token and its login.
    pub token: RefreshState,
    /// Its client and user as they are now.
    pub holders: HolderState,
}

/// The login a token names, as the store holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginRecord {
    /// No such login (never stored, or deleted with its client or by the clean-up).
    Missing,
    /// Stored and not revoked.
    Live,
    /// Revoked, at this time.
    Revoked(UnixTime),
}

impl LoginRecord {
    /// Whether the tokens of this login stand: a missing login counts as revoked.
    pub fn stands(self) -> bool {
        self == Self::Live
    }
}

/// A stored opaque access token, for introspection and revocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpaqueView {
    /// As stored.
    pub token: NewOpaqueToken,
    /// When it was revoked itself, if it was.
    pub revoked_at: Option<UnixTime>,
    /// Its login, for a token issued from one (`family_id`).
    pub login: Option<LoginRecord>,
    /// Its client and user as they are now.
    pub holders: HolderState,
}

impl OpaqueView {
    /// Whether the token still works at `now`: not revoked, nor its login, not expired,
    /// its holders standing.
    pub fn is_live(&self, now: UnixTime) -> bool {
        self.revoked_at.is_none()
            && self.login.is_none_or(LoginRecord::stands)
            && now < self.token.expires_at
            && self.holders.allows(self.token.issued_at)
    }
}

/// What the store holds about a JWT access token, which is not stored itself: read in
/// one statement, so that introspecting it costs one round trip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtState {
    /// Whether its `jti` was revoked.
    pub jti_revoked: bool,
    /// The login its `sid` names ([`LoginRecord::Missing`] without a `sid`).
    pub login: LoginRecord,
    /// Its client and user as they are now.
    pub holders: HolderState,
}

/// The client (and, for a user's token, the user) a token was issued to, as they are
/// now. A token outlives neither: deleting a client or disabling or deleting a user
/// ends their tokens at once, and so does a revocation mark (`revoked_subjects`),
/// which ends every token of a client id or user id issued up to that second.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HolderState {
    /// Whether a client with the token's client id exists.
    pub client_exists: bool,
    /// The client id's revocation mark, if any.
    pub client_revoked_at: Option<UnixTime>,
    /// For a user's token, the user; `None` for a client's own token.
    pub user: Option<UserHolder>,
}

/// The user a token was issued for, as they are now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserHolder {
    /// Whether the user is disabled; `None` once the user is deleted.
    pub disabled: Option<bool>,
    /// The user id's revocation mark, if any.
    pub revoked_at: Option<UnixTime>,
}

impl HolderState {
    /// Whether a token issued at `issued_at` still stands: its client exists, its user
    /// exists and is enabled, and no revocation mark of either is at or after
    /// `issued_at`. At, not only after: a mark is made in the same second as tokens
    /// that it must end (a client deleted, then re-created with the same id, must not
    /// inherit a token issued in the second of the deletion). The price: the tokens a
    /// re-created client gets in the second its predecessor was deleted are inactive.
    pub fn allows(&self, issued_at: UnixTime) -> bool {
        let ends = |mark: Option<UnixTime>| mark.is_some_and(|at| at >= issued_at);
        let user_allows = self
            .user
            .as_ref()
            .is_none_or(|user| user.disabled == Some(false) && !ends(user.revoked_at));
        self.client_exists && !ends(self.client_revoked_at) && user_allows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISSUED: UnixTime = 1_800_000_000;

    fn client_token() -> HolderState {
        HolderState {
            client_exists: true,
            client_revoked_at: None,
            user: None,
        }
    }

    fn user_token(disabled: Option<bool>, revoked_at: Option<UnixTime>) -> HolderState {
        HolderState {
            user: Some(UserHolder { disabled, revoked_at }),
            ..client_token()
        }
    }

    #[test]
    fn a_token_stands_while_its_client_and_user_do() {
        assert!(client_token().allows(ISSUED));
        assert!(user_token(Some(false), None).allows(ISSUED));
        let gone = HolderState {
            client_exists: false,
            ..client_token()
        };
        assert!(!gone.allows(ISSUED));
        assert!(!user_token(Some(true), None).allows(ISSUED), "disabled user");
        assert!(!user_token(None, None).allows(ISSUED), "deleted user");
    }

    #[test]
    fn a_mark_ends_tokens_issued_up_to_its_second() {
        for (mark, allows) in [(ISSUED - 1, true), (ISSUED, false), (ISSUED + 1, false)] {
            let client_marked = HolderState {
                client_revoked_at: Some(mark),
                ..client_token()
            };
            assert_eq!(client_marked.allows(ISSUED), allows, "client mark {mark}");
            assert_eq!(
                user_token(Some(false), Some(mark)).allows(ISSUED),
                allows,
                "user mark {mark}"
            );
        }
    }
}
