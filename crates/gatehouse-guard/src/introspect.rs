//! Validation by introspection (RFC 7662), with a small cache whose entries never
//! outlive the token.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::digest;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use quick_cache::sync::Cache;
use serde::Deserialize;
use tokio::time::Instant;

use crate::claims::Claims;
use crate::discovery::Discovery;
use crate::error::Rejection;
use crate::local::{now, unexpired};

/// The resource server's own credentials at the introspection endpoint.
#[derive(Clone)]
pub struct IntrospectionCredentials {
    pub client_id: String,
    pub client_secret: String,
}

impl fmt::Debug for IntrospectionCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntrospectionCredentials")
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .finish()
    }
}

/// An answer, remembered until `until`.
#[derive(Clone)]
struct Remembered {
    /// `None`: inactive.
    claims: Option<Arc<Claims>>,
    until: Instant,
}

pub struct Introspector {
    discovery: Arc<Discovery>,
    /// `Authorization: Basic …` of the credentials, form-encoded first (RFC 6749
    /// §2.3.1), built once.
    authorization: String,
    issuer: String,
    audience: String,
    leeway: u64,
    ttl: Duration,
    /// Answers by the SHA-256 of the token: bounded memory whatever the tokens.
    answers: Cache<[u8; 32], Remembered>,
}

/// The RFC 7662 §2.2 answer: `active`, and the claims when active.
#[derive(Deserialize)]
struct Answer {
    active: bool,
    #[serde(default)]
    token_type: Option<String>,
    /// The whole answer again, read as [`Claims`] when active.
    #[serde(flatten)]
    rest: serde_json::Map<String, serde_json::Value>,
}

const INACTIVE: &str = "The access token is not active (expired, revoked or unknown).";

impl Introspector {
    pub fn new(
        discovery: Arc<Discovery>,
        credentials: &IntrospectionCredentials,
        audience: &str,
        leeway: Duration,
        ttl: Duration,
        cache_capacity: usize,
    ) -> Self {
        let encode = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let basic = format!(
            "{}:{}",
            encode(&credentials.client_id),
            encode(&credentials.client_secret)
        );
        let authorization = format!("Basic {}", BASE64.encode(basic));
        Self {
            issuer: discovery.issuer.clone(),
            discovery,
            authorization,
            audience: audience.to_owned(),
            leeway: leeway.as_secs(),
            ttl,
            answers: Cache::new(cache_capacity.max(1)),
        }
    }

    pub async fn validate(&self, token: &str) -> Result<Arc<Claims>, Rejection> {
        let key = sha256(token);
        if let Some(remembered) = self.answers.get(&key) {
            if remembered.until > Instant::now() {
                return remembered.claims.ok_or(Rejection::InvalidToken(INACTIVE));
            }
            self.answers.remove(&key);
        }
        let answer = self.introspect(token).await?;
        let claims = self.accept(answer).map(Arc::new);
        let until = match &claims {
            Some(claims) => Instant::now() + self.ttl.min(seconds_until(claims.exp)),
            None => Instant::now() + self.ttl,
        };
        self.answers.insert(
            key,
            Remembered {
                claims: claims.clone(),
                until,
            },
        );
        claims.ok_or(Rejection::InvalidToken(INACTIVE))
    }

    async fn introspect(&self, token: &str) -> Result<Answer, Rejection> {
        let metadata = self.discovery.metadata().await?;
        let Some(endpoint) = &metadata.introspection_endpoint else {
            tracing::error!("the issuer's metadata names no introspection_endpoint");
            return Err(Rejection::Unavailable);
        };
        let response = self
            .discovery
            .http
            .post(endpoint)
            .header(http::header::AUTHORIZATION, &self.authorization)
            .form(&[("token", token), ("token_type_hint", "access_token")])
            .send()
            .await
            .map_err(|e| {
                tracing::warn!(error = %e.without_url(), "introspection request failed");
                Rejection::Unavailable
            })?;
        let status = response.status();
        if !status.is_success() {
            // 401 means the guard's own credentials are wrong: a configuration error,
            // not the caller's fault.
            tracing::error!(status = status.as_u16(), "introspection refused");
            return Err(Rejection::Unavailable);
        }
        response.json::<Answer>().await.map_err(|e| {
            tracing::error!(error = %e.without_url(), "introspection answer is not RFC 7662 JSON");
            Rejection::Unavailable
        })
    }

    /// The claims of an active access token meant for this API, or `None`.
    fn accept(&self, answer: Answer) -> Option<Claims> {
        if !answer.active {
            return None;
        }
        // A refresh token is active too, but is no access token.
        if let Some(token_type) = &answer.token_type {
            if !token_type.eq_ignore_ascii_case("bearer") && token_type != "access_token" {
                return None;
            }
        }
        let claims: Claims = serde_json::from_value(serde_json::Value::Object(answer.rest)).ok()?;
        let issuer_ok = claims.iss.as_deref().is_none_or(|iss| iss == self.issuer);
        let audience_ok = claims.aud.contains(&self.audience);
        (issuer_ok && audience_ok && unexpired(claims.exp, self.leeway)).then_some(claims)
    }
}

fn sha256(token: &str) -> [u8; 32] {
    let mut out = [0; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, token.as_bytes()).as_ref());
    out
}

fn seconds_until(exp: i64) -> Duration {
    Duration::from_secs(u64::try_from(exp.saturating_sub(now())).unwrap_or(0))
}
