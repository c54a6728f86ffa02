//! The requests of the token endpoint (RFC 6749 §3.2: client authentication, §2.3,
//! and the grant, §4.3, §4.4, §6), the revocation endpoint (RFC 7009) and the
//! introspection endpoint (RFC 7662), parsed from name/value pairs the HTTP layer
//! extracted.

use std::collections::HashSet;

use base64::alphabet::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use percent_encoding::percent_decode_str;

use crate::assertion::{unverified_subject, MAX_ASSERTION_BYTES};
use crate::authn::JWT_BEARER_ASSERTION;
use crate::grant::Credential;
use crate::{AuthContext, ClientId, ClientSecret, GrantRequest, GrantType, OAuthError};

/// The description of every client authentication failure, so that an unknown client
/// and a wrong secret look the same from outside.
pub(crate) const CLIENT_AUTH_FAILED: &str = "Client authentication failed.";

/// Two client authentication methods in one request (RFC 6749 §2.3).
fn more_than_one_method() -> OAuthError {
    OAuthError::invalid_request("The client authenticated with more than one method (RFC 6749 §2.3).")
}

/// Standard base64 that accepts the encoded credentials with or without padding.
const BASIC_BASE64: GeneralPurpose = GeneralPurpose::new(
    &STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// How the client authenticated.
#[derive(Debug, Clone)]
pub enum ClientAuth {
    /// `client_secret_basic`: HTTP Basic, id and secret form-url-encoded first
    /// (RFC 6749 §2.3.1).
    Basic {
        /// The client id, decoded.
        client_id: String,
        /// The secret, decoded.
        secret: ClientSecret,
    },
    /// `client_secret_post`: `client_id` and `client_secret` in the body.
    Post {
        /// The client id.
        client_id: String,
        /// The secret.
        secret: ClientSecret,
    },
    /// `private_key_jwt` (RFC 7523 §2.2): a JWT the client signed. `client_id` is the
    /// assertion's `sub` as presented (not yet verified), which the body's
    /// `client_id`, if sent, matched.
    Assertion {
        /// The client the assertion claims to come from.
        client_id: String,
        /// The compact JWS.
        assertion: Credential,
    },
    /// Only a `client_id` in the body: a client that authenticates with its TLS
    /// certificate (RFC 8705 §2), which the connection presented.
    ClientIdOnly {
        /// The client id.
        client_id: String,
    },
    /// No credentials at all.
    None,
}

impl ClientAuth {
    /// Whether HTTP Basic was used, so a 401 names that scheme.
    pub fn is_basic(&self) -> bool {
        matches!(self, Self::Basic { .. })
    }

    /// Whether a client assertion was sent, so that the audiences it may name are
    /// worked out for it alone.
    pub fn is_assertion(&self) -> bool {
        matches!(self, Self::Assertion { .. })
    }

    /// The client id presented, if any (for logs and metrics: ids are not secrets).
    pub fn client_id(&self) -> Option<&str> {
        match self {
            Self::Basic { client_id, .. }
            | Self::Post { client_id, .. }
            | Self::Assertion { client_id, .. }
            | Self::ClientIdOnly { client_id } => Some(client_id),
            Self::None => None,
        }
    }

    /// The client authentication of a request: HTTP Basic in `authorization`;
    /// `client_id` and `client_secret` taken out of `params`; a client assertion
    /// (`client_assertion_type` and `client_assertion`, RFC 7521 §4.2); or a
    /// `client_id` alone, for a client whose TLS certificate authenticates it
    /// (RFC 8705 §2). More than one at once is `invalid_request` (RFC 6749 §2.3:
    /// "MUST NOT use more than one authentication method in each request").
    pub fn from_request(params: &mut Params, authorization: Option<&[u8]>) -> Result<Self, OAuthError> {
        let assertion_type = params.take("client_assertion_type");
        let assertion = params.take("client_assertion");
        let body_id = params.take("client_id");
        let body_secret = params.take("client_secret");
        if assertion_type.is_some() || assertion.is_some() {
            if authorization.is_some() || body_secret.is_some() {
                return Err(more_than_one_method());
            }
            return Self::from_assertion(assertion_type, assertion, body_id);
        }
        match (authorization, body_id, body_secret) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => Err(more_than_one_method()),
            (Some(header), None, None) => Self::from_basic_header(header),
            (None, Some(client_id), Some(secret)) => Ok(Self::Post {
                client_id: checked_client_id(client_id, false)?,
                secret: ClientSecret::new(secret),
            }),
            (None, None, Some(_)) => Err(OAuthError::invalid_request(
                "client_secret was given without client_id.",
            )),
            (None, Some(client_id), None) => Ok(Self::ClientIdOnly {
                client_id: checked_client_id(client_id, false)?,
            }),
            (None, None, None) => Ok(Self::None),
        }
    }

    /// A client assertion (RFC 7521 §4.2): both parameters, the JWT bearer type
    /// (RFC 7523 §2.2), at most [`MAX_ASSERTION_BYTES`]. The client is the
    /// assertion's `sub`, read unverified so that its keys can be found; the
    /// signature and every claim are checked when the client is authenticated. A
    /// `client_id` beside it is optional (RFC 7521 §4.2) and must be the same.
    fn from_assertion(
        assertion_type: Option<String>,
        assertion: Option<String>,
        body_id: Option<String>,
    ) -> Result<Self, OAuthError> {
        let (Some(assertion_type), Some(assertion)) = (assertion_type, assertion) else {
            return Err(OAuthError::invalid_request(
                "client_assertion_type and client_assertion must be sent together (RFC 7521 §4.2).",
            ));
        };
        if assertion_type != JWT_BEARER_ASSERTION {
            return Err(OAuthError::invalid_client(
                "client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer.",
                false,
            ));
        }
        if assertion.len() > MAX_ASSERTION_BYTES {
            return Err(OAuthError::invalid_client(
                "The client assertion is longer than 8 KiB.",
                false,
            ));
        }
        let client_id = checked_client_id(unverified_subject(&assertion)?, false)?;
        if body_id.is_some_and(|id| id != client_id) {
            return Err(OAuthError::invalid_client(
                "client_id is not the client the assertion's sub names.",
                false,
            ));
        }
        Ok(Self::Assertion {
            client_id,
            assertion: Credential::new(assertion),
        })
    }

    /// Parses an `Authorization` header as HTTP Basic client credentials.
    pub fn from_basic_header(header: &[u8]) -> Result<Self, OAuthError> {
        let malformed = || OAuthError::invalid_client("The Basic authorization header is malformed.", true);
        let header = std::str::from_utf8(header).map_err(|_| malformed())?;
        let (scheme, encoded) = header.trim().split_once(' ').ok_or_else(malformed)?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return Err(OAuthError::invalid_client(
                "Only the Basic authorization scheme authenticates clients here.",
                true,
            ));
        }
        let decoded = BASIC_BASE64.decode(encoded.trim()).map_err(|_| malformed())?;
        let decoded = String::from_utf8(decoded).map_err(|_| malformed())?;
        let (id, secret) = decoded.split_once(':').ok_or_else(malformed)?;
        Ok(Self::Basic {
            client_id: checked_client_id(form_decode(id).ok_or_else(malformed)?, true)?,
            secret: ClientSecret::new(form_decode(secret).ok_or_else(malformed)?),
        })
    }
}

/// A presented client id that no client can have (too long, control characters: see
/// [`ClientId::parse`]) is refused here, as an unknown client, before anything logs,
/// looks up or counts it: a 15 KB id must not cost 15 KB of log per request, nor a
/// carriage return forge a log line.
fn checked_client_id(client_id: String, basic: bool) -> Result<String, OAuthError> {
    if ClientId::parse(&client_id).is_some() {
        Ok(client_id)
    } else {
        Err(OAuthError::InvalidClient {
            description: CLIENT_AUTH_FAILED.into(),
            basic,
            unknown_client: true,
        })
    }
}

/// `application/x-www-form-urlencoded` decoding of one component (RFC 6749 §2.3.1,
/// appendix B): `+` is a space, `%XX` a byte; the result must be UTF-8.
fn form_decode(text: &str) -> Option<String> {
    let spaced = text.replace('+', " ");
    percent_decode_str(&spaced)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

/// Request parameters with each name given at most once (RFC 6749 §3.2: "Request and
/// response parameters MUST NOT be included more than once"), and empty values
/// dropped (§3.1: "Parameters sent without a value MUST be treated as if they were
/// omitted from the request").
#[derive(Debug, Default)]
pub struct Params(Vec<(String, String)>);

impl Params {
    /// Checks name/value pairs for repeats and forbidden characters.
    pub fn new(pairs: Vec<(String, String)>) -> Result<Self, OAuthError> {
        let mut seen = HashSet::with_capacity(pairs.len());
        for (name, value) in &pairs {
            if !seen.insert(name.as_str()) {
                return Err(OAuthError::invalid_request("A parameter is repeated."));
            }
            if name.contains('\0') || value.contains('\0') {
                return Err(OAuthError::invalid_request("A parameter holds a NUL character."));
            }
        }
        let pairs = pairs.into_iter().filter(|(_, v)| !v.is_empty()).collect();
        Ok(Self(pairs))
    }

    /// Moves the value of `name` out.
    pub fn take(&mut self, name: &str) -> Option<String> {
        let at = self.0.iter().position(|(n, _)| n == name)?;
        Some(self.0.swap_remove(at).1)
    }

    /// Whether `name` was given.
    pub fn contains(&self, name: &str) -> bool {
        self.0.iter().any(|(n, _)| n == name)
    }
}

/// How a token endpoint departs from RFC 6749 so that clients written against another
/// server work unchanged (a `[[routes]]` entry, `docs/migrating.md`). The default is
/// the standard endpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenOptions {
    /// Stands in for `grant_type` when a request names none.
    pub default_grant_type: Option<GrantType>,
    /// Issue a refresh token for `client_credentials` (to clients that have the
    /// `refresh_token` grant).
    pub refresh_on_client_credentials: bool,
}

/// A parsed token request.
#[derive(Debug)]
pub struct TokenRequest {
    /// How the client authenticated.
    pub client_auth: ClientAuth,
    /// The grant, or why it cannot be served. Kept apart so that the client is
    /// authenticated before it learns anything about the grant.
    pub grant: Result<GrantRequest, OAuthError>,
    /// Whether a `client_credentials` grant also gets a refresh token.
    pub refresh_on_client_credentials: bool,
    /// The TLS client certificate the request came with, which a client with
    /// bound tokens binds its access tokens to. Set by the server after parsing.
    pub certificate: Option<std::sync::Arc<crate::PresentedCertificate>>,
}

impl TokenRequest {
    /// Parses a token request from its parameters and `Authorization` header, at an
    /// endpoint with `options`.
    pub fn parse(
        mut params: Params,
        authorization: Option<&[u8]>,
        options: &TokenOptions,
    ) -> Result<Self, OAuthError> {
        let client_auth = ClientAuth::from_request(&mut params, authorization)?;
        let grant = match params.take("grant_type") {
            Some(name) => match name.parse::<GrantType>() {
                Ok(grant_type) => GrantRequest::parse(grant_type, &mut params),
                Err(()) => Err(OAuthError::UnsupportedGrantType(
                    "This grant type is not supported.".into(),
                )),
            },
            None => match options.default_grant_type {
                Some(grant_type) => GrantRequest::parse(grant_type, &mut params),
                None => {
                    return Err(OAuthError::invalid_request(
                        "The grant_type parameter is missing.",
                    ))
                }
            },
        };
        Ok(Self {
            client_auth,
            grant,
            refresh_on_client_credentials: options.refresh_on_client_credentials,
            certificate: None,
        })
    }

    /// The username of a password grant: the server's login brake takes its place
    /// for it before the client is authenticated.
    pub fn username(&self) -> Option<&str> {
        match &self.grant {
            Ok(GrantRequest::Password { username, .. }) => Some(username),
            _ => None,
        }
    }
}

/// A revocation request (RFC 7009 §2.1).
#[derive(Debug)]
pub struct RevocationRequest {
    /// How the client authenticated; `None` when it did not: holding a token is the
    /// right to give it up, so the token alone is revoked.
    pub client_auth: Option<ClientAuth>,
    /// The token to revoke.
    pub token: Credential,
}

impl RevocationRequest {
    /// Parses a revocation request from its parameters and `Authorization` header.
    /// `token_type_hint` is not needed: the form of a token says what it is.
    pub fn parse(mut params: Params, authorization: Option<&[u8]>) -> Result<Self, OAuthError> {
        let client_auth = match ClientAuth::from_request(&mut params, authorization)? {
            ClientAuth::None => None,
            auth => Some(auth),
        };
        Ok(Self {
            client_auth,
            token: required_token(&mut params)?,
        })
    }

    /// The client authentication to check, for a request that came with the TLS
    /// client certificate of `context` (if any). A `client_id` alone authenticates
    /// a certificate client only with a certificate; without one it authenticates
    /// nobody, and the request revokes as the token's holder, as it always has
    /// (RFC 7009 §2.1 has clients that cannot authenticate send their `client_id`).
    pub fn authentication(&self, context: &AuthContext) -> Option<&ClientAuth> {
        match &self.client_auth {
            Some(ClientAuth::ClientIdOnly { .. }) if context.certificate.is_none() => None,
            auth => auth.as_ref(),
        }
    }
}

/// An introspection request (RFC 7662 §2.1). The client must authenticate: "the
/// endpoint MUST also require some form of authorization".
#[derive(Debug)]
pub struct IntrospectionRequest {
    /// How the client authenticated.
    pub client_auth: ClientAuth,
    /// The token to describe.
    pub token: Credential,
}

impl IntrospectionRequest {
    /// Parses an introspection request from its parameters and `Authorization`
    /// header. `token_type_hint` is not needed: the form of a token says what it is.
    pub fn parse(mut params: Params, authorization: Option<&[u8]>) -> Result<Self, OAuthError> {
        let client_auth = ClientAuth::from_request(&mut params, authorization)?;
        Ok(Self {
            client_auth,
            token: required_token(&mut params)?,
        })
    }
}

/// The `token` parameter of RFC 7009 §2.1 and RFC 7662 §2.1.
fn required_token(params: &mut Params) -> Result<Credential, OAuthError> {
    params
        .take("token")
        .map(Credential::new)
        .ok_or(OAuthError::invalid_request("The token parameter is missing."))
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::STANDARD as B64;

    use super::*;
    use crate::Scope;

    fn params(pairs: &[(&str, &str)]) -> Params {
        Params::new(
            pairs
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        )
        .unwrap()
    }

    fn basic(raw: &str) -> Vec<u8> {
        format!("Basic {}", B64.encode(raw)).into_bytes()
    }

    #[test]
    fn repeated_parameter_is_invalid_request() {
        let pairs = vec![("scope".into(), "a".into()), ("scope".into(), "b".into())];
        assert_eq!(Params::new(pairs).unwrap_err().code(), "invalid_request");
    }

    #[test]
    fn empty_values_count_as_omitted() {
        let mut p = params(&[("scope", ""), ("grant_type", "client_credentials")]);
        assert!(!p.contains("scope"));
        assert_eq!(p.take("grant_type").as_deref(), Some("client_credentials"));
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        let header = basic("svc%3Aa+b%25:s%2Bcr%3At");
        let ClientAuth::Basic { client_id, secret } = ClientAuth::from_basic_header(&header).unwrap() else {
            panic!("expected Basic");
        };
        assert_eq!(client_id, "svc:a b%");
        assert_eq!(secret.expose(), "s+cr:t");
    }

    #[test]
    fn broken_basic_headers_are_invalid_client() {
        for header in [
            b"Basic !!!".to_vec(),
            basic("no-colon"),
            b"Basic".to_vec(),
            vec![b'B', b'a', b's', b'i', b'c', b' ', 0xff],
            basic("bad%ff:x"),
        ] {
            let err = ClientAuth::from_basic_header(&header).unwrap_err();
            assert_eq!(err.code(), "invalid_client");
            assert!(matches!(err, OAuthError::InvalidClient { basic: true, .. }));
        }
    }

    #[test]
    fn two_authentication_methods_are_invalid_request() {
        let p = params(&[
            ("grant_type", "client_credentials"),
            ("client_id", "a"),
            ("client_secret", "b"),
        ]);
        let err = TokenRequest::parse(p, Some(&basic("a:b")), &TokenOptions::default()).unwrap_err();
        assert_eq!(err.code(), "invalid_request");
    }

    #[test]
    fn missing_grant_type_is_invalid_request_unless_a_route_supplies_one() {
        let err = TokenRequest::parse(params(&[]), None, &TokenOptions::default()).unwrap_err();
        assert_eq!(err.code(), "invalid_request");
        let route = TokenOptions {
            default_grant_type: Some(GrantType::ClientCredentials),
            ..TokenOptions::default()
        };
        let req = TokenRequest::parse(params(&[]), None, &route).unwrap();
        assert!(matches!(
            req.grant,
            Ok(GrantRequest::ClientCredentials { scope: None })
        ));
    }

    #[test]
    fn unknown_grant_type_is_deferred_until_the_client_is_known() {
        let p = params(&[
            ("grant_type", "implicit"),
            ("client_id", "a"),
            ("client_secret", "b"),
        ]);
        let req = TokenRequest::parse(p, None, &TokenOptions::default()).unwrap();
        assert!(matches!(req.client_auth, ClientAuth::Post { .. }));
        assert_eq!(req.grant.unwrap_err().code(), "unsupported_grant_type");
    }

    #[test]
    fn revocation_without_credentials_revokes_as_the_holder() {
        let req = RevocationRequest::parse(params(&[("token", "t")]), None).unwrap();
        assert!(req.client_auth.is_none());
        assert_eq!(req.token.expose(), "t");
        let req = RevocationRequest::parse(params(&[("token", "t")]), Some(&basic("a:b"))).unwrap();
        assert!(matches!(req.client_auth, Some(ClientAuth::Basic { .. })));
    }

    #[test]
    fn revocation_and_introspection_need_a_token() {
        let err =
            RevocationRequest::parse(params(&[("token_type_hint", "refresh_token")]), None).unwrap_err();
        assert_eq!(
            err,
            OAuthError::invalid_request("The token parameter is missing.")
        );
        let err = IntrospectionRequest::parse(params(&[]), Some(&basic("a:b"))).unwrap_err();
        assert_eq!(
            err,
            OAuthError::invalid_request("The token parameter is missing.")
        );
    }

    #[test]
    fn introspection_keeps_a_missing_client_for_the_service_to_refuse() {
        let req = IntrospectionRequest::parse(params(&[("token", "t")]), None).unwrap();
        assert!(matches!(req.client_auth, ClientAuth::None));
        let p = params(&[("token", "t"), ("client_id", "a")]);
        let err = IntrospectionRequest::parse(p, Some(&basic("a:b"))).unwrap_err();
        assert_eq!(err.code(), "invalid_request", "two authentication methods");
    }

    /// A compact JWS whose payload is `payload`, header and signature made up: the
    /// request parser reads only the unverified `sub`.
    fn unsigned(payload: &str) -> String {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.c2ln",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"ES256"}"#),
            URL_SAFE_NO_PAD.encode(payload)
        )
    }

    fn auth_of(pairs: &[(&str, &str)], authorization: Option<&[u8]>) -> Result<ClientAuth, OAuthError> {
        ClientAuth::from_request(&mut params(pairs), authorization)
    }

    #[test]
    fn an_assertion_names_its_client_by_sub() {
        let assertion = unsigned(r#"{"sub":"svc","iss":"svc"}"#);
        let with = |extra: &[(&'static str, &'static str)]| {
            let mut pairs = vec![
                ("client_assertion_type", JWT_BEARER_ASSERTION),
                ("client_assertion", assertion.as_str()),
            ];
            pairs.extend_from_slice(extra);
            auth_of(&pairs, None)
        };
        for extra in [&[][..], &[("client_id", "svc")][..]] {
            let auth = with(extra).unwrap();
            let ClientAuth::Assertion {
                client_id,
                assertion: text,
            } = &auth
            else {
                panic!("expected an assertion: {auth:?}");
            };
            assert_eq!((client_id.as_str(), text.expose()), ("svc", assertion.as_str()));
            assert_eq!(auth.client_id(), Some("svc"));
            assert!(!auth.is_basic());
            assert!(
                !format!("{auth:?}").contains(&assertion),
                "Debug shows the assertion"
            );
        }
        let err = with(&[("client_id", "other")]).unwrap_err();
        assert_eq!(err.code(), "invalid_client");
        assert!(!err.is_unknown_client());
    }

    #[test]
    fn assertion_parameters_are_checked() {
        let good = unsigned(r#"{"sub":"svc"}"#);
        /// What, the parameters, the Authorization header, the code, words of the description.
        type Case<'a> = (&'a str, Vec<(&'a str, String)>, Option<Vec<u8>>, &'a str, &'a str);
        let cases: Vec<Case<'_>> = vec![
            (
                "type alone",
                vec![("client_assertion_type", JWT_BEARER_ASSERTION.into())],
                None,
                "invalid_request",
                "sent together",
            ),
            (
                "assertion alone",
                vec![("client_assertion", good.clone())],
                None,
                "invalid_request",
                "sent together",
            ),
            (
                "another type",
                vec![
                    (
                        "client_assertion_type",
                        "urn:ietf:params:oauth:client-assertion-type:saml2-bearer".into(),
                    ),
                    ("client_assertion", good.clone()),
                ],
                None,
                "invalid_client",
                "client_assertion_type must be",
            ),
            (
                "the type in upper case",
                vec![
                    ("client_assertion_type", JWT_BEARER_ASSERTION.to_uppercase()),
                    ("client_assertion", good.clone()),
                ],
                None,
                "invalid_client",
                "client_assertion_type must be",
            ),
            (
                "with Basic",
                vec![
                    ("client_assertion_type", JWT_BEARER_ASSERTION.into()),
                    ("client_assertion", good.clone()),
                ],
                Some(basic("svc:x")),
                "invalid_request",
                "more than one method",
            ),
            (
                "with client_secret",
                vec![
                    ("client_assertion_type", JWT_BEARER_ASSERTION.into()),
                    ("client_assertion", good.clone()),
                    ("client_id", "svc".into()),
                    ("client_secret", "x".into()),
                ],
                None,
                "invalid_request",
                "more than one method",
            ),
            (
                "with client_secret, no client_id",
                vec![
                    ("client_assertion_type", JWT_BEARER_ASSERTION.into()),
                    ("client_assertion", good.clone()),
                    ("client_secret", "x".into()),
                ],
                None,
                "invalid_request",
                "more than one method",
            ),
            (
                "over 8 KiB",
                vec![
                    ("client_assertion_type", JWT_BEARER_ASSERTION.into()),
                    (
                        "client_assertion",
                        unsigned(&format!(r#"{{"sub":"svc","x":"{}"}}"#, "x".repeat(8192))),
                    ),
                ],
                None,
                "invalid_client",
                "longer than 8 KiB",
            ),
            (
                "sub a number",
                vec![
                    ("client_assertion_type", JWT_BEARER_ASSERTION.into()),
                    ("client_assertion", unsigned(r#"{"sub":7}"#)),
                ],
                None,
                "invalid_client",
                "sub must be a string",
            ),
            (
                "no sub",
                vec![
                    ("client_assertion_type", JWT_BEARER_ASSERTION.into()),
                    ("client_assertion", unsigned(r#"{"iss":"svc"}"#)),
                ],
                None,
                "invalid_client",
                "has no sub",
            ),
            (
                "sub twice",
                vec![
                    ("client_assertion_type", JWT_BEARER_ASSERTION.into()),
                    ("client_assertion", unsigned(r#"{"sub":"svc","sub":"other"}"#)),
                ],
                None,
                "invalid_client",
                "payload is not a JSON object",
            ),
            (
                "payload an array",
                vec![
                    ("client_assertion_type", JWT_BEARER_ASSERTION.into()),
                    ("client_assertion", unsigned("[]")),
                ],
                None,
                "invalid_client",
                "payload is not a JSON object",
            ),
            (
                "not a JWS",
                vec![
                    ("client_assertion_type", JWT_BEARER_ASSERTION.into()),
                    ("client_assertion", "abc".into()),
                ],
                None,
                "invalid_client",
                "compact JWS",
            ),
            (
                "sub no client can have",
                vec![
                    ("client_assertion_type", JWT_BEARER_ASSERTION.into()),
                    (
                        "client_assertion",
                        unsigned(&format!(r#"{{"sub":"{}"}}"#, "s".repeat(300))),
                    ),
                ],
                None,
                "invalid_client",
                CLIENT_AUTH_FAILED,
            ),
            (
                "sub with a control character",
                vec![
                    ("client_assertion_type", JWT_BEARER_ASSERTION.into()),
                    ("client_assertion", unsigned(r#"{"sub":"svc\r\nx"}"#)),
                ],
                None,
                "invalid_client",
                CLIENT_AUTH_FAILED,
            ),
        ];
        for (what, pairs, authorization, code, words) in cases {
            let pairs: Vec<(&str, &str)> = pairs.iter().map(|(n, v)| (*n, v.as_str())).collect();
            let err = auth_of(&pairs, authorization.as_deref()).unwrap_err();
            assert_eq!(err.code(), code, "{what}: {err:?}");
            assert!(err.description().contains(words), "{what}: {}", err.description());
        }
    }

    #[test]
    fn a_client_id_alone_is_for_certificate_clients() {
        let auth = auth_of(&[("client_id", "svc")], None).unwrap();
        assert!(matches!(&auth, ClientAuth::ClientIdOnly { client_id } if client_id == "svc"));
        assert_eq!(auth.client_id(), Some("svc"));
        let long = "s".repeat(300);
        let err = auth_of(&[("client_id", &long)], None).unwrap_err();
        assert!(err.is_unknown_client());
        assert!(matches!(auth_of(&[], None).unwrap(), ClientAuth::None));
        assert!(auth_of(&[], Some(&basic("a:b"))).unwrap().is_basic());
    }

    #[test]
    fn username_is_that_of_a_password_grant() {
        let p = params(&[
            ("grant_type", "password"),
            ("username", "ann"),
            ("password", "pw"),
        ]);
        let req = TokenRequest::parse(p, None, &TokenOptions::default()).unwrap();
        assert_eq!(req.username(), Some("ann"));
        let p = params(&[("grant_type", "client_credentials"), ("username", "ann")]);
        let req = TokenRequest::parse(p, None, &TokenOptions::default()).unwrap();
        assert_eq!(req.username(), None);
    }

    #[test]
    fn scope_is_parsed() {
        let p = params(&[("grant_type", "client_credentials"), ("scope", "b a")]);
        let req = TokenRequest::parse(p, None, &TokenOptions::default()).unwrap();
        let Ok(GrantRequest::ClientCredentials { scope: Some(scope) }) = req.grant else {
            panic!("expected a scope");
        };
        assert_eq!(scope, Scope::parse("a b").unwrap());
    }
}
