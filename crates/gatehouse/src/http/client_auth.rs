//! Client authentication as the token, revocation and introspection endpoints share
//! it: the order of the abuse checks around the core's [`TokenService::authenticate`].
//!
//! 1. The request counts against its source address before anything else
//!    ([`admit_address`]): failed authentications spend the address's budget.
//! 2. The core authenticates the client (an unknown id costs the same work as a
//!    wrong generated secret, and no database query: see [`crate::cache`]).
//! 3. A failure is answered no sooner than [`FAILURE_FLOOR`] after the request began,
//!    so that the time of an `invalid_client` does not tell whether the id exists (a
//!    known client may need a database read, an unknown one never does).
//! 4. Only then does the request count against the client's own quota: a stranger
//!    claiming a client's id cannot spend it.
//!
//! [`TokenService::authenticate`]: gatehouse_core::TokenService::authenticate

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use gatehouse_core::{AuthContext, Client, ClientAuth, OAuthError};
use tokio::time::Instant;

use super::AppState;

/// The least time a failed client authentication takes to be answered. Well above
/// what either path costs (a cached client and SHA-256: ~0.3 ms; a database read:
/// ~0.5 ms), so both answer at the floor; a sleep, so it costs no CPU.
pub const FAILURE_FLOOR: Duration = Duration::from_millis(5);

/// Why a client was not admitted.
pub enum Refusal {
    /// Authentication failed, or could not be done (database, busy hashing).
    OAuth(OAuthError),
    /// Over the address's or the authenticated client's rate limit: wait this long.
    RateLimited(Duration),
}

impl From<OAuthError> for Refusal {
    fn from(err: OAuthError) -> Self {
        Self::OAuth(err)
    }
}

/// Step 1: counts the request against its source address.
pub fn admit_address(state: &AppState, peer: Option<IpAddr>) -> Result<(), Refusal> {
    state.protection.admit_address(peer).map_err(Refusal::RateLimited)
}

/// Steps 2 to 4 for a request that began at `started`.
pub async fn authenticate(
    state: &AppState,
    auth: &ClientAuth,
    context: &AuthContext,
    started: Instant,
) -> Result<Arc<Client>, Refusal> {
    let client = match state.tokens.authenticate(auth, context).await {
        Ok(client) => client,
        Err(err) => {
            if matches!(err, OAuthError::InvalidClient { .. }) {
                tokio::time::sleep_until(started + FAILURE_FLOOR).await;
            }
            return Err(Refusal::OAuth(err));
        }
    };
    state
        .protection
        .admit_client(client.id.as_str())
        .map_err(Refusal::RateLimited)?;
    Ok(client)
}
