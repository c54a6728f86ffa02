//! Clients' public keys for `private_key_jwt` and `self_signed_tls_client_auth`: the
//! inline `jwks` parsed once, or the JWK Set at the client's `jwks_uri`, fetched and
//! cached ([`FetchedClientKeys`]).
//!
//! Fetching is driven by requests that anyone can send (an assertion names a client
//! before its signature is checked), so every fetch is bounded and rate-limited:
//! - a fetched set is fresh for 5 minutes; when a refresh fails, the last good copy
//!   serves for up to an hour, so a client's key host being down for a while does not
//!   lock it out;
//! - an unknown `kid` (a key the client just rotated in) fetches again at most once a
//!   minute per client, and a failed fetch is not retried for 10 seconds;
//! - concurrent askers for one client wait for one fetch (single-flight), and at most
//!   16 fetches run at once on the server; past that, a cached copy is used or the
//!   client is told to try again;
//! - a fetch is https only, to public addresses only (see `jwks_fetch/address.rs`), follows no
//!   redirect, uses no proxy, and ends within 5 seconds and 64 KiB.
//!
//! `allow_insecure_jwks_uri = true` lifts the https and public-address rules: it is
//! for development and tests on one machine.
//!
//! Every failure is `invalid_client` with a sentence that names what went wrong
//! without internal detail (no address, no response body); the server logs a warning
//! with the client id, the host and the reason, at most once a minute per client.

mod address;
mod http;
#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use gatehouse_core::secret::sha256;
use gatehouse_core::{Client, ClientKeySet, ClientKeys, OAuthError};
use quick_cache::sync::Cache;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use url::Url;

use self::http::{FetchError, HttpSource, KeySource};

/// How long a fetched JWK Set is used without fetching it again.
const FRESH_FOR: Duration = Duration::from_secs(5 * 60);

/// How long the last good copy serves while fetching it again fails.
const STALE_FOR: Duration = Duration::from_secs(60 * 60);

/// The shortest time between two fetches for an unknown `kid` (docs/protocol.md, "Clients without shared secrets").
const UNKNOWN_KID_INTERVAL: Duration = Duration::from_secs(60);

/// The shortest time between a failed fetch and the next: requests in between get
/// the cached copy, or the failure, at once instead of each waiting for a host that
/// is down.
const RETRY_INTERVAL: Duration = Duration::from_secs(10);

/// The shortest time between two warnings about one client's keys.
const WARN_INTERVAL: Duration = Duration::from_secs(60);

/// Fetches under way at once, server-wide.
const MAX_CONCURRENT_FETCHES: usize = 16;

/// Clients whose keys are held (fetched and inline, each).
const CACHE_CAPACITY: usize = 10_000;

/// The longest `jwks_uri` accepted.
const MAX_URI_LEN: usize = 2048;

/// Checks a `jwks_uri` given when a client is created or changed: an absolute https
/// URL (http only when `allow_insecure`, i.e. `allow_insecure_jwks_uri`), with a
/// host, no user name or password and no fragment, at most 2048 characters; an IP
/// literal host must be public unless `allow_insecure`. A host name is not resolved
/// here: the address rule is applied on every fetch. `Err` is a sentence for whoever
/// registers the client.
pub fn check_jwks_uri(uri: &str, allow_insecure: bool) -> Result<Url, String> {
    let url = parse_jwks_uri(uri, allow_insecure)?;
    if !allow_insecure && !address::literal_host_is_public(&url) {
        return Err("jwks_uri must name a public host.".into());
    }
    Ok(url)
}

/// [`check_jwks_uri`] without the address rule, which a fetch reports as its own
/// failure.
fn parse_jwks_uri(uri: &str, allow_insecure: bool) -> Result<Url, String> {
    if uri.len() > MAX_URI_LEN {
        return Err(format!("jwks_uri is longer than {MAX_URI_LEN} characters."));
    }
    let url = Url::parse(uri).map_err(|_| "jwks_uri must be an absolute URL.".to_owned())?;
    match url.scheme() {
        "https" => {}
        "http" if allow_insecure => {}
        "http" => return Err("jwks_uri must use https.".into()),
        _ => return Err("jwks_uri must be an https URL.".into()),
    }
    if url.host().is_none() {
        return Err("jwks_uri must name a host.".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("jwks_uri must not contain a user name or password.".into());
    }
    if url.fragment().is_some() {
        return Err("jwks_uri must not have a fragment.".into());
    }
    Ok(url)
}

/// Clients' keys: inline ones parsed once per version of the text, fetched ones
/// cached per client and URI. See the module documentation for the rules.
pub struct FetchedClientKeys {
    source: Arc<dyn KeySource>,
    /// Parsed inline sets by client id and SHA-256 of the text, so that a changed
    /// `jwks` takes effect at once; `None` for a text that does not parse (checked
    /// when stored, so only a database edited by hand has one).
    inline: Cache<(String, [u8; 32]), Option<Arc<ClientKeySet>>>,
    /// Fetched sets by client id and `jwks_uri`.
    fetched: Cache<(String, String), Arc<Fetched>>,
    /// Slots for fetches under way.
    fetch_slots: Arc<Semaphore>,
}

/// One client's fetched keys.
#[derive(Default)]
struct Fetched {
    /// The last good copy.
    copy: Mutex<Option<Snapshot>>,
    /// Held while fetching, so that concurrent askers wait for one fetch.
    attempts: tokio::sync::Mutex<Attempts>,
    /// How many fetches have ended (counted under `attempts`, read without it).
    fetches: AtomicU64,
}

/// A fetched set and when it was fetched.
#[derive(Clone)]
struct Snapshot {
    keys: Arc<ClientKeySet>,
    at: Instant,
}

impl Snapshot {
    fn fresh(&self, now: Instant) -> bool {
        now.duration_since(self.at) < FRESH_FOR
    }

    fn usable(&self, now: Instant) -> bool {
        now.duration_since(self.at) < STALE_FOR
    }
}

/// What the fetches of one client did.
#[derive(Default)]
struct Attempts {
    /// When the last fetch started.
    last: Option<Instant>,
    /// When the last fetch for an unknown `kid` started: those are limited apart, so
    /// that a client's first assertion with a key it just added is not refused
    /// because its set happened to be fetched a moment before.
    last_for_kid: Option<Instant>,
    /// Why the last fetch failed, if it did: what askers are told until the next.
    failure: Option<&'static str>,
    /// When the last warning was logged.
    warned: Option<Instant>,
}

impl FetchedClientKeys {
    /// Fetches over HTTP; `allow_insecure` is `allow_insecure_jwks_uri`. Fails only if
    /// the HTTP client cannot be built (its TLS setup).
    pub fn new(allow_insecure: bool) -> Result<Self, String> {
        let source = HttpSource::new(allow_insecure)
            .map_err(|e| format!("cannot set up fetching of jwks_uri: {e}"))?;
        Ok(Self::with_source(Arc::new(source)))
    }

    fn with_source(source: Arc<dyn KeySource>) -> Self {
        Self {
            source,
            inline: Cache::new(CACHE_CAPACITY),
            fetched: Cache::new(CACHE_CAPACITY),
            fetch_slots: Arc::new(Semaphore::new(MAX_CONCURRENT_FETCHES)),
        }
    }

    fn inline_keys(&self, client: &Client, jwks: &str) -> Result<Arc<ClientKeySet>, OAuthError> {
        let key = (client.id.as_str().to_owned(), sha256(jwks.as_bytes()));
        let parsed = match self.inline.get(&key) {
            Some(parsed) => parsed,
            None => {
                let parsed = ClientKeySet::parse(jwks)
                    .inspect_err(|problem| {
                        tracing::warn!(client_id = %client.id, problem, "the client's registered jwks cannot be used");
                    })
                    .ok()
                    .map(Arc::new);
                self.inline.insert(key, parsed.clone());
                parsed
            }
        };
        parsed
            .ok_or_else(|| OAuthError::invalid_client("The client's registered keys cannot be used.", false))
    }

    async fn fetched_keys(
        &self,
        client: &Client,
        uri: &str,
        unknown_kid: Option<&str>,
    ) -> Result<Arc<ClientKeySet>, OAuthError> {
        let entry = self.entry(client, uri);
        if let Some(keys) = entry.answer_at_once(unknown_kid) {
            return Ok(keys);
        }
        let seen = entry.fetches.load(Ordering::Acquire);
        let mut attempts = entry.attempts.lock().await;
        let now = Instant::now();
        let copy = entry.copy();
        if entry.fetches.load(Ordering::Acquire) != seen {
            // A fetch ended while this one waited: what it got is what a fetch now
            // would get.
            return usable_or(
                copy,
                now,
                attempts.failure.unwrap_or(FetchError::Busy.description()),
            );
        }
        // With a fresh copy, the fetch is for an unknown kid; else the copy is old
        // or missing.
        let for_kid = copy.as_ref().is_some_and(|copy| copy.fresh(now));
        let (last, wait) = match for_kid {
            true => (attempts.last_for_kid, UNKNOWN_KID_INTERVAL),
            false => (attempts.last, RETRY_INTERVAL),
        };
        if last.is_some_and(|last| now.duration_since(last) < wait) {
            return usable_or(
                copy,
                now,
                attempts.failure.unwrap_or(FetchError::Busy.description()),
            );
        }
        let Ok(_slot) = self.fetch_slots.clone().try_acquire_owned() else {
            self.warn(&mut attempts, client, uri, &FetchError::Busy, now);
            return usable_or(copy, now, FetchError::Busy.description());
        };
        attempts.last = Some(now);
        if for_kid {
            attempts.last_for_kid = Some(now);
        }
        let fetched = self.source.fetch(uri).await;
        entry.fetches.fetch_add(1, Ordering::Release);
        match fetched {
            Ok(keys) => {
                let keys = Arc::new(keys);
                entry.store(Snapshot {
                    keys: keys.clone(),
                    at: Instant::now(),
                });
                attempts.failure = None;
                Ok(keys)
            }
            Err(err) => {
                attempts.failure = Some(err.description());
                self.warn(&mut attempts, client, uri, &err, now);
                usable_or(copy, Instant::now(), err.description())
            }
        }
    }

    fn entry(&self, client: &Client, uri: &str) -> Arc<Fetched> {
        let key = (client.id.as_str().to_owned(), uri.to_owned());
        match self
            .fetched
            .get_or_insert_with(&key, || Ok::<_, std::convert::Infallible>(Arc::default()))
        {
            Ok(entry) => entry,
            Err(never) => match never {},
        }
    }

    /// Logs why fetching `client`'s keys failed, at most once per [`WARN_INTERVAL`].
    fn warn(&self, attempts: &mut Attempts, client: &Client, uri: &str, err: &FetchError, now: Instant) {
        if attempts
            .warned
            .is_some_and(|at| now.duration_since(at) < WARN_INTERVAL)
        {
            return;
        }
        attempts.warned = Some(now);
        let host = Url::parse(uri)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_default();
        tracing::warn!(client_id = %client.id, host, reason = %err, "cannot fetch the client's jwks_uri");
    }
}

impl Fetched {
    fn copy(&self) -> Option<Snapshot> {
        self.copy.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn store(&self, copy: Snapshot) {
        *self.copy.lock().unwrap_or_else(PoisonError::into_inner) = Some(copy);
    }

    /// The keys, if they can be answered without fetching: a fresh copy that has
    /// `unknown_kid` (if one is asked for).
    fn answer_at_once(&self, unknown_kid: Option<&str>) -> Option<Arc<ClientKeySet>> {
        let copy = self.copy()?;
        let has_kid = unknown_kid.is_none_or(|kid| copy.keys.by_kid(kid).is_some());
        (copy.fresh(Instant::now()) && has_kid).then_some(copy.keys)
    }
}

/// The copy if it may still serve, else `invalid_client` with `description`.
fn usable_or(
    copy: Option<Snapshot>,
    now: Instant,
    description: &'static str,
) -> Result<Arc<ClientKeySet>, OAuthError> {
    match copy {
        Some(copy) if copy.usable(now) => Ok(copy.keys),
        _ => Err(OAuthError::invalid_client(description, false)),
    }
}

#[async_trait]
impl ClientKeys for FetchedClientKeys {
    async fn client_keys(
        &self,
        client: &Client,
        unknown_kid: Option<&str>,
    ) -> Result<Arc<ClientKeySet>, OAuthError> {
        // A client has one of the two (checked when stored); inline keys need no
        // network, so they win if both are somehow there.
        if let Some(jwks) = client.auth.jwks.as_deref() {
            return self.inline_keys(client, jwks);
        }
        if let Some(uri) = client.auth.jwks_uri.as_deref() {
            return self.fetched_keys(client, uri, unknown_kid).await;
        }
        Err(OAuthError::invalid_client(
            "The client has no registered keys.",
            false,
        ))
    }
}
