//! The server's own resource-server guard: the admin API and token-protected
//! registration accept bearer tokens issued by this server, checked in-process.
//!
//! The guard is gatehouse-guard's, the same a resource server uses (RFC 6750 §3
//! answers, `RequireScope`), with a validator that asks the server's own
//! introspection ([`TokenService::inspect`]) instead of a JWKS or a remote RFC 7662
//! endpoint. Nothing is cached: every request reads the token's state from storage,
//! so a revocation (RFC 7009, a client deleted, its tokens revoked, a user disabled)
//! is seen on the very next request, on every node.
//!
//! [`TokenService::inspect`]: gatehouse_core::TokenService::inspect

use futures::future::BoxFuture;
use gatehouse_core::ActiveToken;
use gatehouse_guard::{Claims, Guard, Rejection, TokenValidator};

use super::AppState;

/// The realm named in the challenges of the server's own guard.
pub const REALM: &str = "gatehouse";

/// A guard that accepts access tokens this server issued and that are active now.
pub fn server_guard(state: &AppState) -> Guard {
    Guard::from_validator(REALM, ServerTokens(state.clone()))
}

/// Validates a bearer token with the server's own introspection.
struct ServerTokens(AppState);

impl TokenValidator for ServerTokens {
    fn validate<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<Claims, Rejection>> {
        Box::pin(async move {
            match self.0.tokens.inspect(token).await {
                // RFC 6750 §1: a bearer token is an access token. A refresh token is
                // active too, but is for the token endpoint alone (RFC 6749 §1.5).
                Ok(Some(active)) if active.token_type == "Bearer" => Ok(claims_of(active)),
                Ok(_) => Err(Rejection::InvalidToken(
                    "The access token is expired, revoked, or not one this server issued.",
                )),
                Err(err) => {
                    // The token may well be valid: 503, not 401 (a client would renew
                    // it for nothing). The cause is for the log, never the answer.
                    match err.cause() {
                        Some(cause) => tracing::warn!(%cause, "cannot check an admin bearer token"),
                        None => tracing::warn!(error = err.code(), "cannot check an admin bearer token"),
                    }
                    Err(Rejection::Unavailable)
                }
            }
        })
    }
}

/// The claims of an active token, as RFC 7662 §2.2 names them.
fn claims_of(active: ActiveToken) -> Claims {
    Claims {
        sub: active.sub,
        client_id: active.client_id,
        scope: active.scope.as_str().into(),
        exp: active.exp,
        iat: Some(active.iat),
        nbf: None,
        iss: Some(active.iss),
        aud: vec![active.aud],
        jti: Some(active.jti),
        username: active.username,
        sid: None,
        cnf: active.cnf.and_then(|cnf| confirmation(&cnf)),
    }
}

/// The guard's `cnf` for the core's: every member goes across (a DPoP `jkt` as well
/// as `x5t#S256`), so that the guard refuses a token bound to what it cannot check.
fn confirmation(cnf: &gatehouse_core::Confirmation) -> Option<gatehouse_guard::Confirmation> {
    serde_json::to_value(cnf).and_then(serde_json::from_value).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_carry_what_introspection_says() {
        let claims = claims_of(ActiveToken {
            scope: "gatehouse:admin read".into(),
            client_id: "ops".into(),
            username: None,
            token_type: "Bearer",
            exp: 200,
            iat: 100,
            sub: "ops".into(),
            aud: "https://api.example".into(),
            iss: "https://auth.example".into(),
            jti: "j1".into(),
            cnf: None,
        });
        assert!(claims.has_scope("gatehouse:admin") && claims.has_scope("read"));
        assert_eq!(claims.client_id, "ops");
        assert_eq!(claims.aud, ["https://api.example"]);
        assert_eq!((claims.exp, claims.iat), (200, Some(100)));
        assert_eq!(claims.cnf, None);
    }

    #[test]
    fn a_bound_tokens_confirmation_reaches_the_guard() {
        let cnf = gatehouse_core::Confirmation {
            x5t_s256: Some("thumb".into()),
            jkt: None,
        };
        assert_eq!(
            confirmation(&cnf),
            Some(gatehouse_guard::Confirmation::certificate("thumb"))
        );
    }
}
