//! The OAuth 2.0 protocol of gatehouse, free of any web framework and database driver.
//!
//! A handler in the server parses an HTTP request into the types of this crate, calls
//! [`TokenService`], and maps the result back to HTTP; it decides nothing itself.
//! Storage is reached through the small traits of [`store`], implemented for SQLite and
//! PostgreSQL in `gatehouse-store` (and cached in memory by the server).
//!
//! Design choices:
//! - Time and randomness come in as parameters ([`Clock`], [`Random`]) so the protocol
//!   tests run on a fixed clock; `clippy.toml` forbids reading the system clock here.
//! - Secrets and tokens have their own types whose `Debug` prints `[redacted]`.
//! - Generated client secrets carry 256 random bits and are stored as a SHA-256
//!   digest: a fast hash is safe for a high-entropy secret and keeps a slow KDF off the
//!   token hot path. Imported (human-chosen) secrets are stored with Argon2id, and a
//!   successful verification is remembered, keyed by a digest, never by the secret.
//! - JWT access tokens (RFC 9068) are signed with aws-lc-rs key pairs that are parsed
//!   once and held in memory, so issuing a token costs one signature and no I/O.
#![warn(missing_docs)]
// Tests may unwrap: a panic there is a failed test (the workspace lint is for the rest).
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod assertion;
pub mod authn;
pub mod client;
pub mod client_jwks;
pub mod clock;
mod dn;
mod ecdsa;
pub mod error;
pub mod grant;
pub mod jwt;
pub mod keys;
pub mod random;
pub mod request;
pub mod scope;
pub mod sealing;
pub mod secret;
pub mod service;
pub mod slow_hash;
pub mod store;
pub mod tokens;
pub mod user;

pub use authn::{AuthContext, AuthMethod, AuthSettings, ClientKeys, Confirmation, PresentedCertificate};
pub use client::{Client, ClientId, GrantType, GrantTypes, PreviousSecret, TokenFormat};
pub use client_jwks::ClientKeySet;
pub use clock::{Clock, FixedClock, SystemClock, UnixTime};
pub use error::{OAuthError, StoreError};
pub use grant::GrantRequest;
pub use keys::{KeyRing, SigningAlg, SigningKey};
pub use random::{Random, SystemRandom};
pub use request::{ClientAuth, IntrospectionRequest, RevocationRequest, TokenOptions, TokenRequest};
pub use scope::Scope;
pub use secret::{ClientSecret, SecretHash};
pub use service::{ActiveToken, Introspection, IssuerConfig, TokenResponse, TokenService};
pub use slow_hash::SlowHashGate;
