//! What a token is asked for, and the cache key built from it.
//!
//! A cached token may only be served to a request that would have got the
//! same token. A security advisory of Duende.AccessTokenManagement came from
//! keying its cache on less than that, which served tokens requested for one
//! scope to callers asking for another. So the key here
//! holds everything that changes the token: the token endpoint, the client,
//! the scope and the audience.

/// The scope and audience of a token request.
///
/// The scope is normalised (RFC 6749 §3.3: a set of space-delimited,
/// case-sensitive strings whose order does not matter), so `"b a"`, `"a b"`
/// and `" a  b a"` ask for, and are cached as, the same token.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct TokenParams {
    scope: Option<String>,
    audience: Option<String>,
}

impl TokenParams {
    /// No scope (the server grants the client's default) and no audience.
    pub fn new() -> Self {
        TokenParams::default()
    }

    /// Asks for `scope`, space-delimited. An empty scope is no scope.
    pub fn scope(mut self, scope: &str) -> Self {
        self.scope = normalise_scope(scope);
        self
    }

    /// Asks for a token for `audience`, sent as an `audience` form parameter
    /// (the convention of Auth0 and others; not part of RFC 6749). gatehouse
    /// itself ignores the parameter: a client's audience is set when it is
    /// created (`--audience`).
    pub fn audience(mut self, audience: &str) -> Self {
        self.audience = (!audience.is_empty()).then(|| audience.to_string());
        self
    }

    /// The normalised scope: sorted, without duplicates.
    pub fn scope_str(&self) -> Option<&str> {
        self.scope.as_deref()
    }

    /// The audience.
    pub fn audience_str(&self) -> Option<&str> {
        self.audience.as_deref()
    }
}

fn normalise_scope(scope: &str) -> Option<String> {
    // RFC 6749 §3.3 delimits with spaces; no scope token may contain any
    // whitespace, so splitting on all of it loses nothing.
    let mut tokens: Vec<&str> = scope.split_ascii_whitespace().collect();
    tokens.sort_unstable();
    tokens.dedup();
    (!tokens.is_empty()).then(|| tokens.join(" "))
}

/// Under what a token is cached: everything that changes it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct CacheKey {
    pub token_endpoint: String,
    pub client_id: String,
    pub params: TokenParams,
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn scope_order_and_repetition_do_not_matter() {
        let a = TokenParams::new().scope("write read");
        let b = TokenParams::new().scope(" read  write read ");
        assert_eq!(a, b);
        assert_eq!(a.scope_str(), Some("read write"));
        assert_eq!(TokenParams::new().scope("  "), TokenParams::new());
        assert_eq!(TokenParams::new().audience(""), TokenParams::new());
    }

    #[test]
    fn scope_is_case_sensitive() {
        assert_ne!(TokenParams::new().scope("Read"), TokenParams::new().scope("read"));
    }

    #[test]
    fn every_part_of_the_key_separates_tokens() {
        let key = |endpoint: &str, client: &str, params: TokenParams| CacheKey {
            token_endpoint: endpoint.into(),
            client_id: client.into(),
            params,
        };
        let read = TokenParams::new().scope("read");
        let keys = [
            key("https://a/token", "app", read.clone()),
            key("https://b/token", "app", read.clone()),
            key("https://a/token", "other", read.clone()),
            key("https://a/token", "app", TokenParams::new().scope("write")),
            key("https://a/token", "app", TokenParams::new().scope("read write")),
            key("https://a/token", "app", TokenParams::new()),
            key("https://a/token", "app", read.clone().audience("https://api-1")),
            key("https://a/token", "app", read.audience("https://api-2")),
        ];
        let distinct: HashSet<&CacheKey> = keys.iter().collect();
        assert_eq!(distinct.len(), keys.len());
    }
}
