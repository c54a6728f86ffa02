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

    /// The scope to grant: `requested` if it is within `allowed`, all of `allowed` when
    /// nothing was requested (RFC 6749 §3.3 lets the server pick a default).
    pub fn grant(requested: Option<&Scope>, allowed: &Scope) -> Result<Scope, OAuthError> {
        match requested {
            None => Ok(allowed.clone()),
            Some(requested) if requested.is_subset(allowed) => Ok(requested.clone()),
            Some(_) => Err(OAuthError::InvalidScope(
                "The requested scope exceeds what this client may have.".into(),
            )),
        }
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
        assert_eq!(Scope::grant(None, &allowed).unwrap(), allowed);
        let read = Scope::parse("read").unwrap();
        assert_eq!(Scope::grant(Some(&read), &allowed).unwrap(), read);
        let admin = Scope::parse("read admin").unwrap();
        assert!(matches!(
            Scope::grant(Some(&admin), &allowed),
            Err(OAuthError::InvalidScope(_))
        ));
    }
}
