//! How a client authenticates (docs/admin-api.md, RFC 7523, RFC 8705): the rules that tie its method to its
//! keys, certificate subject and secret, checked once here for the command line, the
//! admin API and registration.
//!
//! - `client_secret_basic` and `client_secret_post` are one credential in two
//!   encodings: a client registered for either may send its secret either way. Such a
//!   client has no keys and no certificate subject.
//! - `private_key_jwt` needs its public keys: a JWK Set (`jwks`) or the URL of one
//!   (`jwks_uri`), exactly one of the two.
//! - `self_signed_tls_client_auth` likewise, and an inline set must hold a key with
//!   the certificate the client connects with (`x5c`, RFC 8705 §2.2).
//! - `tls_client_auth` needs the subject DN its certificate must carry, stored in the
//!   canonical form of [`canonical_dn`], and no keys.
//! - `bound_tokens` goes with any method: the certificate is asked for at token time.
//!
//! A client without a secret method has no secret at all: its stored hash is of 256
//! random bits that were never shown to anyone ([`unknown_secret_hash`]), so nothing
//! can authenticate with one.
//!
//! The messages name methods and what is missing, not members: the field the error
//! carries names the member, and each front end words it (a flag on the command
//! line, a member in the API, a metadata name in registration).

use gatehouse_core::authn::canonical_dn;
use gatehouse_core::client_jwks::ClientKeySet;
use gatehouse_core::{AuthMethod, AuthSettings, ClientSecret, Random, SecretHash};
use gatehouse_store::ClientChanges;

use super::clients::check_imported_secret;
use super::{ManageError, Manager};

/// The longest subject DN taken.
pub const MAX_SUBJECT_DN_LEN: usize = 1024;

/// A JWK Set as it was given: the text of a file (the command line) or a JSON value
/// (the API, registration).
#[derive(Debug, Clone, PartialEq)]
pub enum JwksDocument {
    /// JSON text.
    Text(String),
    /// A parsed JSON value; it must be an object.
    Json(serde_json::Value),
}

/// A method name, checked.
pub(crate) fn parse_auth_method(name: &str) -> Result<AuthMethod, ManageError> {
    name.parse().map_err(|()| {
        let known: Vec<&str> = AuthMethod::ALL.iter().map(|m| m.as_str()).collect();
        ManageError::invalid(
            "auth_method",
            format!("unknown method; one of {}", known.join(", ")),
        )
    })
}

/// The JWK Set as stored: one JSON object in compact form. Whether it holds usable
/// keys is [`check_auth`]'s to say, once the method is known.
pub(crate) fn normalize_jwks(document: JwksDocument) -> Result<String, ManageError> {
    let value = match document {
        JwksDocument::Json(value) => value,
        JwksDocument::Text(text) => serde_json::from_str(&text).map_err(|e| {
            ManageError::invalid(
                "jwks",
                format!("not a JSON document (line {}, column {})", e.line(), e.column()),
            )
        })?,
    };
    if !value.is_object() {
        return Err(ManageError::invalid(
            "jwks",
            "must be a JWK Set: a JSON object with a \"keys\" array (RFC 7517 §5)",
        ));
    }
    serde_json::to_string(&value).map_err(|e| ManageError::Failed(format!("cannot store the JWK Set: {e}")))
}

/// A `jwks_uri` as its fetcher takes it ([`crate::jwks_fetch::check_jwks_uri`]: an
/// absolute `https` URL to a public host; `http` and private addresses only with
/// `allow_insecure`, i.e. `allow_insecure_jwks_uri`, for development and tests).
/// Where a host name points is checked on every fetch.
pub(crate) fn check_jwks_uri(uri: &str, allow_insecure: bool) -> Result<String, ManageError> {
    crate::jwks_fetch::check_jwks_uri(uri, allow_insecure)
        .map(|_| uri.to_owned())
        .map_err(|sentence| {
            // The fetcher's sentence names the member; the error carries it already.
            let problem = sentence.strip_prefix("jwks_uri ").unwrap_or(&sentence);
            let mut problem = problem.trim_end_matches('.').to_owned();
            if !allow_insecure && uri.get(..5).is_some_and(|s| s.eq_ignore_ascii_case("http:")) {
                problem.push_str(" (http is taken only with allow_insecure_jwks_uri = true)");
            }
            ManageError::invalid("jwks_uri", problem)
        })
}

/// A subject DN in its canonical form.
pub(crate) fn check_subject_dn(dn: &str) -> Result<String, ManageError> {
    let invalid = || {
        ManageError::invalid(
            "tls_subject_dn",
            "is not a distinguished name in RFC 4514 form, such as CN=billing,O=Example Corp,C=DE",
        )
    };
    if dn.len() > MAX_SUBJECT_DN_LEN {
        return Err(ManageError::invalid(
            "tls_subject_dn",
            format!("must be at most {MAX_SUBJECT_DN_LEN} bytes"),
        ));
    }
    if dn.chars().any(char::is_control) {
        return Err(invalid());
    }
    canonical_dn(dn).ok_or_else(invalid)
}

/// Checks that the method, keys and subject DN of `auth` (each already in its
/// stored form) make a client that can authenticate, and nothing more.
pub(crate) fn check_auth(auth: &AuthSettings) -> Result<(), ManageError> {
    let method = auth.method;
    let has_keys = auth.jwks.is_some() || auth.jwks_uri.is_some();
    if method.uses_secret() && has_keys {
        return Err(ManageError::invalid(
            keys_field(auth),
            format!(
                "a {method} client authenticates with its secret and has no keys; \
                 keys serve private_key_jwt or self_signed_tls_client_auth: choose one of them as its method"
            ),
        ));
    }
    if method == AuthMethod::TlsClientAuth && has_keys {
        return Err(ManageError::invalid(
            keys_field(auth),
            "tls_client_auth matches the certificate's subject DN and takes no keys \
             (self_signed_tls_client_auth takes them)",
        ));
    }
    if auth.tls_subject_dn.is_some() && method != AuthMethod::TlsClientAuth {
        return Err(ManageError::invalid(
            "tls_subject_dn",
            format!("a subject DN serves tls_client_auth only; this client's method is {method}"),
        ));
    }
    if method == AuthMethod::TlsClientAuth && auth.tls_subject_dn.is_none() {
        return Err(ManageError::invalid(
            "tls_subject_dn",
            "tls_client_auth needs the subject DN the client's certificate carries",
        ));
    }
    if method.uses_keys() {
        check_keys(method, auth)?;
    }
    Ok(())
}

/// The member a refusal of keys names: the one given.
fn keys_field(auth: &AuthSettings) -> &'static str {
    if auth.jwks.is_some() {
        "jwks"
    } else {
        "jwks_uri"
    }
}

/// The keys of a `private_key_jwt` or `self_signed_tls_client_auth` client: exactly
/// one of an inline set and a URL; an inline set must parse, and for
/// `self_signed_tls_client_auth` hold a certificate.
fn check_keys(method: AuthMethod, auth: &AuthSettings) -> Result<(), ManageError> {
    match (&auth.jwks, &auth.jwks_uri) {
        (Some(_), Some(_)) => Err(ManageError::invalid(
            "jwks_uri",
            "the keys are given both inline and by URL: give one of the two",
        )),
        (None, None) => Err(ManageError::invalid(
            "jwks",
            format!("{method} needs the client's public keys: a JWK Set, or the URL of one"),
        )),
        (None, Some(_)) => Ok(()),
        (Some(jwks), None) => {
            let keys = ClientKeySet::parse(jwks).map_err(|problem| ManageError::invalid("jwks", problem))?;
            if keys.keys.is_empty() {
                return Err(ManageError::invalid("jwks", "holds no keys"));
            }
            if method == AuthMethod::SelfSignedTlsClientAuth
                && keys.keys.iter().all(|k| k.certificate.is_none())
            {
                return Err(ManageError::invalid(
                    "jwks",
                    "self_signed_tls_client_auth needs the client's certificate: no key has one (x5c, RFC 8705 §2.2)",
                ));
            }
            Ok(())
        }
    }
}

/// The hash a client without a secret keeps in place of one: of 256 random bits
/// that are dropped here, so no secret can ever match it.
pub(crate) fn unknown_secret_hash(rng: &dyn Random) -> SecretHash {
    SecretHash::sha256(&ClientSecret::generate(rng))
}

/// The refusal of a secret for a client whose method uses none.
pub(crate) fn no_secret(method: AuthMethod) -> String {
    format!("this client authenticates with {method}: it has no secret")
}

/// The store change that writes `auth` whole: the settings are checked as one, so
/// they are stored as one (of two concurrent changes, the last wins all of them,
/// never a mix that was not checked).
pub(crate) fn auth_changes(auth: AuthSettings) -> ClientChanges {
    ClientChanges {
        auth_method: Some(auth.method),
        jwks: Some(auth.jwks),
        jwks_uri: Some(auth.jwks_uri),
        tls_subject_dn: Some(auth.tls_subject_dn),
        bound_tokens: Some(auth.bound_tokens),
        ..ClientChanges::default()
    }
}

/// The authentication members of a change, each checked on its own (their
/// combination is checked once merged with the client's).
#[derive(Default)]
pub(super) struct AuthChange {
    method: Option<AuthMethod>,
    jwks: Option<Option<String>>,
    jwks_uri: Option<Option<String>>,
    tls_subject_dn: Option<Option<String>>,
    bound_tokens: Option<bool>,
}

impl AuthChange {
    /// `current` with this change made, checked as a whole.
    pub(super) fn applied_to(self, current: &AuthSettings) -> Result<AuthSettings, ManageError> {
        let mut auth = current.clone();
        if let Some(method) = self.method {
            auth.method = method;
        }
        if let Some(jwks) = self.jwks {
            auth.jwks = jwks;
        }
        if let Some(jwks_uri) = self.jwks_uri {
            auth.jwks_uri = jwks_uri;
        }
        if let Some(dn) = self.tls_subject_dn {
            auth.tls_subject_dn = dn;
        }
        if let Some(bound) = self.bound_tokens {
            auth.bound_tokens = bound;
        }
        check_auth(&auth)?;
        Ok(auth)
    }
}

/// The authentication settings of a new client, checked; `http` jwks URIs only with
/// `allow_insecure`.
pub(crate) fn new_auth(
    allow_insecure: bool,
    method: Option<&str>,
    jwks: Option<JwksDocument>,
    jwks_uri: Option<&str>,
    tls_subject_dn: Option<&str>,
    bound_tokens: bool,
) -> Result<AuthSettings, ManageError> {
    let change = auth_change(
        allow_insecure,
        method,
        jwks.map(Some),
        jwks_uri.map(Some),
        tls_subject_dn.map(Some),
        Some(bound_tokens),
    )?;
    change.applied_to(&AuthSettings::default())
}

/// Each authentication member of a change checked on its own, in its stored form.
pub(super) fn auth_change(
    allow_insecure: bool,
    method: Option<&str>,
    jwks: Option<Option<JwksDocument>>,
    jwks_uri: Option<Option<&str>>,
    tls_subject_dn: Option<Option<&str>>,
    bound_tokens: Option<bool>,
) -> Result<AuthChange, ManageError> {
    Ok(AuthChange {
        method: method.map(parse_auth_method).transpose()?,
        jwks: jwks.map(|j| j.map(normalize_jwks).transpose()).transpose()?,
        jwks_uri: jwks_uri
            .map(|u| u.map(|u| check_jwks_uri(u, allow_insecure)).transpose())
            .transpose()?,
        tls_subject_dn: tls_subject_dn
            .map(|dn| dn.map(check_subject_dn).transpose())
            .transpose()?,
        bound_tokens,
    })
}

impl Manager {
    /// The secret of a new client of `method` and its hash: `given` (imported) or a
    /// generated one for the secret methods; none, and a hash nothing matches, for
    /// the others.
    pub(super) async fn new_secret(
        &self,
        method: AuthMethod,
        given: Option<ClientSecret>,
    ) -> Result<(Option<ClientSecret>, SecretHash), ManageError> {
        if !method.uses_secret() {
            if given.is_some() {
                return Err(ManageError::invalid("client_secret", no_secret(method)));
            }
            return Ok((None, unknown_secret_hash(self.rng().as_ref())));
        }
        match given {
            Some(secret) => {
                check_imported_secret(&secret)?;
                let hash = self.argon2id(&secret).await?;
                Ok((Some(secret), hash))
            }
            None => {
                let secret = ClientSecret::generate(self.rng().as_ref());
                let hash = SecretHash::sha256(&secret);
                Ok((Some(secret), hash))
            }
        }
    }

    /// The secret hash a change stores, if any. `methods` is the client's method
    /// before and after the change (`None` when neither the method nor the secret
    /// changes). An imported secret needs a secret method; a client leaving the secret
    /// methods loses its secret at once (a hash nothing matches takes its place, and
    /// any previous secret in its grace period stops too). A client joining them has
    /// no usable secret until one is given or rotated in.
    pub(super) async fn changed_secret(
        &self,
        methods: Option<(AuthMethod, AuthMethod)>,
        given: Option<&ClientSecret>,
    ) -> Result<Option<SecretHash>, ManageError> {
        let Some((before, after)) = methods else {
            return Ok(None);
        };
        match given {
            Some(_) if !after.uses_secret() => Err(ManageError::invalid("client_secret", no_secret(after))),
            Some(secret) => Ok(Some(self.argon2id(secret).await?)),
            None if before.uses_secret() && !after.uses_secret() => {
                Ok(Some(unknown_secret_hash(self.rng().as_ref())))
            }
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(result: Result<impl std::fmt::Debug, ManageError>) -> &'static str {
        match result {
            Err(ManageError::Invalid { field, .. }) => field,
            other => panic!("not refused as invalid: {other:?}"),
        }
    }

    fn settings(method: AuthMethod) -> AuthSettings {
        AuthSettings {
            method,
            ..AuthSettings::default()
        }
    }

    #[test]
    fn method_names() {
        assert_eq!(
            parse_auth_method("private_key_jwt").ok(),
            Some(AuthMethod::PrivateKeyJwt)
        );
        assert_eq!(field(parse_auth_method("none")), "auth_method");
        assert_eq!(field(parse_auth_method("PRIVATE_KEY_JWT")), "auth_method");
    }

    #[test]
    fn jwks_documents_are_objects_stored_compact() {
        let text = JwksDocument::Text("{ \"keys\" : [] }\n".into());
        assert_eq!(normalize_jwks(text).unwrap(), r#"{"keys":[]}"#);
        let value = JwksDocument::Json(serde_json::json!({"keys": []}));
        assert_eq!(normalize_jwks(value).unwrap(), r#"{"keys":[]}"#);
        assert_eq!(field(normalize_jwks(JwksDocument::Text("{".into()))), "jwks");
        assert_eq!(field(normalize_jwks(JwksDocument::Text("[]".into()))), "jwks");
        assert_eq!(
            field(normalize_jwks(JwksDocument::Json(serde_json::json!("x")))),
            "jwks"
        );
    }

    #[test]
    fn jwks_uris() {
        assert!(check_jwks_uri("https://client.example/jwks.json", false).is_ok());
        assert!(check_jwks_uri("http://127.0.0.1:8080/jwks", true).is_ok());
        for bad in [
            "http://client.example/jwks",
            "ftp://client.example/jwks",
            "/jwks",
            "https://user:pw@client.example/jwks",
            "https://client.example/jwks#x",
            "not a url",
        ] {
            assert_eq!(field(check_jwks_uri(bad, false)), "jwks_uri", "{bad}");
        }
        let long = format!("https://client.example/{}", "a".repeat(2048));
        assert_eq!(field(check_jwks_uri(&long, true)), "jwks_uri");
        assert_eq!(field(check_jwks_uri("https://10.0.0.1/jwks", false)), "jwks_uri");
        match check_jwks_uri("http://client.example/jwks", false) {
            Err(ManageError::Invalid { problem, .. }) => {
                assert!(problem.contains("allow_insecure_jwks_uri"), "{problem}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn subject_dns() {
        assert!(check_subject_dn("CN=billing,O=Example").is_ok());
        assert_eq!(field(check_subject_dn("")), "tls_subject_dn");
        assert_eq!(field(check_subject_dn("CN=a\u{0}b")), "tls_subject_dn");
        assert_eq!(
            field(check_subject_dn(&"a".repeat(MAX_SUBJECT_DN_LEN + 1))),
            "tls_subject_dn"
        );
    }

    #[test]
    fn methods_and_what_they_need() {
        assert!(check_auth(&settings(AuthMethod::ClientSecretBasic)).is_ok());
        assert!(check_auth(&AuthSettings {
            bound_tokens: true,
            ..settings(AuthMethod::ClientSecretPost)
        })
        .is_ok());
        let uri = Some("https://client.example/jwks".to_owned());
        let jwks = Some(r#"{"keys":[]}"#.to_owned());
        let dn = Some("CN=billing".to_owned());
        // Keys with a secret method.
        let keyed = AuthSettings {
            jwks_uri: uri.clone(),
            ..settings(AuthMethod::ClientSecretBasic)
        };
        assert_eq!(field(check_auth(&keyed)), "jwks_uri");
        let keyed = AuthSettings {
            jwks: jwks.clone(),
            ..settings(AuthMethod::ClientSecretPost)
        };
        assert_eq!(field(check_auth(&keyed)), "jwks");
        // A key method without keys, or with both kinds.
        assert_eq!(field(check_auth(&settings(AuthMethod::PrivateKeyJwt))), "jwks");
        assert_eq!(
            field(check_auth(&settings(AuthMethod::SelfSignedTlsClientAuth))),
            "jwks"
        );
        let both = AuthSettings {
            jwks: jwks.clone(),
            jwks_uri: uri.clone(),
            ..settings(AuthMethod::PrivateKeyJwt)
        };
        assert_eq!(field(check_auth(&both)), "jwks_uri");
        assert!(check_auth(&AuthSettings {
            jwks_uri: uri.clone(),
            ..settings(AuthMethod::PrivateKeyJwt)
        })
        .is_ok());
        // tls_client_auth: a DN, no keys; a DN with another method.
        assert_eq!(
            field(check_auth(&settings(AuthMethod::TlsClientAuth))),
            "tls_subject_dn"
        );
        let dn_and_keys = AuthSettings {
            tls_subject_dn: dn.clone(),
            jwks_uri: uri.clone(),
            ..settings(AuthMethod::TlsClientAuth)
        };
        assert_eq!(field(check_auth(&dn_and_keys)), "jwks_uri");
        assert!(check_auth(&AuthSettings {
            tls_subject_dn: dn.clone(),
            ..settings(AuthMethod::TlsClientAuth)
        })
        .is_ok());
        let stray_dn = AuthSettings {
            tls_subject_dn: dn,
            jwks_uri: uri,
            ..settings(AuthMethod::PrivateKeyJwt)
        };
        assert_eq!(field(check_auth(&stray_dn)), "tls_subject_dn");
    }

    #[test]
    fn the_unknown_secret_is_new_each_time() {
        let rng = gatehouse_core::SystemRandom;
        assert_ne!(unknown_secret_hash(&rng), unknown_secret_hash(&rng));
    }
}
