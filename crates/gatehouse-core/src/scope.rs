//! Scopes (RFC 6749 §3.3): a set of space-delimited, case-sensitive tokens.

use std::collections::BTreeSet;
use std::fmt;

use crate::OAuthError;

/// A set of scope tokens, kept sorted so that its text form is stable.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Scope(BTreeSet<String>);

impl Scope {
    /// Parses a space-delimited list. RFC 6749 §3.3: `scope-token = 1*( %x21 /
    /// %x23-5B / %x5D-7E )`; anything else is `invalid_scope`.
    pub fn parse(text: &str) -> Result<Self, OAuthError> {
        let mut tokens = BTreeSet::new();
        for token in text.split(' ').filter(|t| !t.is_empty()) {
            let valid = token
                .bytes()
                .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b));
            if !valid {
                return Err(OAuthError::InvalidScope(
                    "A scope token holds a character RFC 6749 §3.3 does not allow.".into(),
                ));
            }
            tokens.insert(token.to_owned());
        }
        Ok(Self(tokens))
    }

    /// Whether every token of `self` is in `other`.
    pub fn is_subset(&self, other: &Scope) -> bool {
        self.0.is_subset(&other.0)
    }

    /// The tokens in both sets.
    pub fn intersection(&self, other: &Scope) -> Scope {
        Self(self.0.intersection(&other.0).cloned().collect())
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `token` is in the set.
    pub fn contains(&self, token: &str) -> bool {
        self.0.contains(token)
    }

    /// The scope to grant to `client`, and to `user` for a password login: `requested`
    /// if it is within what both may have, everything they may have when nothing was
    /// requested (RFC 6749 §3.3 lets the server pick a default). A user without a
    /// scope of their own (`None`) is limited by the client alone. A refusal names
    /// what limited the scope, and the tokens it left out.
    pub fn grant(
        requested: Option<&Scope>,
        client: &Scope,
        user: Option<&Scope>,
    ) -> Result<Scope, OAuthError> {
        let Some(requested) = requested else {
            return Ok(user.map_or_else(|| client.clone(), |user| client.intersection(user)));
        };
        let beyond_client = requested.difference(client);
        let beyond_user = user.map(|user| requested.difference(user)).unwrap_or_default();
        let limit = match (beyond_client.is_empty(), beyond_user.is_empty()) {
            (true, true) => return Ok(requested.clone()),
            (false, true) => "this client may have",
            (true, false) => "this user may have",
            (false, false) => "this client and this user may have",
        };
        let excess = Scope(&beyond_client.0 | &beyond_user.0);
        Err(OAuthError::InvalidScope(
            format!("The requested scope exceeds what {limit}: {excess}.").into(),
        ))
    }

    /// The scope of a refresh: RFC 6749 §6, `requested` "MUST NOT include any scope
    /// not originally granted by the resource owner, and if omitted is treated as
    /// equal to the scope originally granted".
    pub fn regrant(requested: Option<&Scope>, originally: &Scope) -> Result<Scope, OAuthError> {
        let Some(requested) = requested else {
            return Ok(originally.clone());
        };
        let excess = requested.difference(originally);
        if excess.is_empty() {
            return Ok(requested.clone());
        }
        Err(OAuthError::InvalidScope(
            format!("The requested scope exceeds the scope originally granted: {excess}.").into(),
        ))
    }

    /// The tokens of `self` that are not in `other`.
    fn difference(&self, other: &Scope) -> Scope {
        Self(self.0.difference(&other.0).cloned().collect())
    }

    /// Iterates over the tokens in order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for token in &self.0 {
            if !first {
                f.write_str(" ")?;
            }
            f.write_str(token)?;
            first = false;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_sorted() {
        let scope = Scope::parse("write  read").unwrap();
        assert_eq!(scope.to_string(), "read write");
    }

    #[test]
    fn rejects_forbidden_characters() {
        assert!(matches!(Scope::parse("a\"b"), Err(OAuthError::InvalidScope(_))));
        assert!(matches!(Scope::parse("a\\b"), Err(OAuthError::InvalidScope(_))));
        assert!(matches!(Scope::parse("é"), Err(OAuthError::InvalidScope(_))));
    }

    #[test]
    fn grants_default_and_subsets() {
        let allowed = Scope::parse("read write").unwrap();
        assert_eq!(Scope::grant(None, &allowed, None).unwrap(), allowed);
        let read = Scope::parse("read").unwrap();
        assert_eq!(Scope::grant(Some(&read), &allowed, None).unwrap(), read);
        let admin = Scope::parse("read admin").unwrap();
        assert_eq!(
            Scope::grant(Some(&admin), &allowed, None),
            Err(OAuthError::InvalidScope(
                "The requested scope exceeds what this client may have: admin.".into()
            ))
        );
    }

    #[test]
    fn a_user_without_a_scope_is_limited_by_the_client_alone() {
        let client = Scope::parse("read write").unwrap();
        assert_eq!(Scope::grant(None, &client, None).unwrap(), client);
        let read = Scope::parse("read").unwrap();
        assert_eq!(Scope::grant(Some(&read), &client, None).unwrap(), read);
    }

    #[test]
    fn a_refusal_names_what_limited_the_scope() {
        let client = Scope::parse("read write").unwrap();
        let user = Scope::parse("read orders").unwrap();
        assert_eq!(
            Scope::grant(None, &client, Some(&user)).unwrap(),
            Scope::parse("read").unwrap()
        );
        let refusal = |requested: &str| {
            let requested = Scope::parse(requested).unwrap();
            match Scope::grant(Some(&requested), &client, Some(&user)) {
                Err(OAuthError::InvalidScope(description)) => description.into_owned(),
                other => panic!("{requested} was not refused: {other:?}"),
            }
        };
        assert_eq!(
            refusal("read write"),
            "The requested scope exceeds what this user may have: write."
        );
        assert_eq!(
            refusal("read orders"),
            "The requested scope exceeds what this client may have: orders."
        );
        assert_eq!(
            refusal("admin read"),
            "The requested scope exceeds what this client and this user may have: admin."
        );
        assert_eq!(
            refusal("admin orders write"),
            "The requested scope exceeds what this client and this user may have: admin orders write."
        );
    }

    #[test]
    fn a_refresh_keeps_within_the_original_grant() {
        let originally = Scope::parse("read write").unwrap();
        assert_eq!(Scope::regrant(None, &originally).unwrap(), originally);
        let read = Scope::parse("read").unwrap();
        assert_eq!(Scope::regrant(Some(&read), &originally).unwrap(), read);
        let more = Scope::parse("read admin").unwrap();
        assert_eq!(
            Scope::regrant(Some(&more), &originally),
            Err(OAuthError::InvalidScope(
                "The requested scope exceeds the scope originally granted: admin.".into()
            ))
        );
    }
}
