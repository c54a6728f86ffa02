//! An OAuth request as an endpoint receives it: parameters from a form or JSON body
//! (and, on routes that serve `GET`, from the query string), the one `Authorization`
//! header, the TLS client certificate (the connection's, or a trusted proxy's
//! header: [`super::certificate`]), and the route's differences. Every rejection is
//! an OAuth error: no request ever gets axum's plain-text rejection.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequest, Request};
use axum::http::{header, HeaderValue, Method};
use gatehouse_core::request::Params;
use gatehouse_core::{AuthContext, OAuthError, PresentedCertificate, TokenOptions};
use percent_encoding::percent_decode;
use serde::de::{Deserializer, MapAccess, Visitor};

use super::body::BodyError;
use super::certificate::FromProxy;
use super::error::ApiError;
use super::AppState;
use crate::config::Route;

/// The largest body the OAuth endpoints read.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// Every parameter name the OAuth endpoints read. Only these are named in the log
/// when they arrive in a query string: any other name could be a value in disguise.
const OAUTH_PARAMETERS: &[&str] = &[
    "grant_type",
    "client_id",
    "client_secret",
    "scope",
    "username",
    "password",
    "refresh_token",
    "token",
    "token_type_hint",
    "client_assertion_type",
    "client_assertion",
];

/// Parameters that must never travel in a URL.
const CREDENTIALS: &[&str] = &[
    "client_secret",
    "password",
    "refresh_token",
    "token",
    "client_assertion",
];

/// An OAuth request: parameters checked for repeats (RFC 6749 §3.2), the
/// `Authorization` header, and the `[[routes]]` entry it came in by, if any. No
/// `Debug`: it holds credentials.
pub struct OAuthRequest {
    /// The parameters.
    pub params: Params,
    /// The `Authorization` header (refused when repeated).
    pub authorization: Option<HeaderValue>,
    /// The route; `None` at a standard endpoint.
    pub route: Option<Arc<Route>>,
    /// The address the request came from: the connection's, or the client's as a
    /// trusted proxy forwarded it.
    pub peer: Option<IpAddr>,
    /// The client's TLS certificate: its connection's, or the one a trusted proxy
    /// forwarded.
    pub certificate: Option<Arc<PresentedCertificate>>,
    /// The path the request was sent to, for the audiences of client assertions.
    path: String,
}

impl OAuthRequest {
    /// The `Authorization` header's bytes.
    pub fn authorization(&self) -> Option<&[u8]> {
        self.authorization.as_ref().map(HeaderValue::as_bytes)
    }

    /// What client authentication needs to know of this request: its certificate,
    /// and the values a client assertion's `aud` may take (RFC 7523 §3): the
    /// issuer, the URL of the endpoint the request was sent to (the issuer, less a
    /// trailing `/`, and the request's path), and the token endpoint's URL, which
    /// most client libraries use for every endpoint.
    ///
    /// The audiences are made only for a request with an assertion (`assertion`):
    /// a secret's request does not pay for three strings it never reads.
    pub fn auth_context(&self, issuer: &str, assertion: bool) -> AuthContext {
        let mut audiences = Vec::new();
        if assertion {
            let issuer = issuer.trim_end_matches('/');
            audiences.push(issuer.to_owned());
            for url in [
                format!("{issuer}{}", self.path),
                format!("{issuer}{}", super::TOKEN_PATH),
            ] {
                if !audiences.contains(&url) {
                    audiences.push(url);
                }
            }
        }
        AuthContext {
            audiences,
            certificate: self.certificate.clone(),
        }
    }

    /// The token endpoint's differences at this route (none at the standard one).
    pub fn token_options(&self) -> TokenOptions {
        self.route.as_ref().map(|r| r.token).unwrap_or_default()
    }

    /// The error answered for `err` here: an unknown client gets the route's
    /// `unknown_client_status`, where it has one.
    pub fn error(&self, err: OAuthError) -> ApiError {
        match self.route.as_ref().and_then(|r| r.unknown_client_status) {
            Some(status) if err.is_unknown_client() => ApiError::UnknownClient(status),
            _ => ApiError::OAuth(err),
        }
    }
}

impl FromRequest<AppState> for OAuthRequest {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let route = req.extensions().get::<Arc<Route>>().cloned();
        let connection = req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        let peer = connection.map(|tcp_peer| state.trusted_proxies.client(tcp_peer, req.headers()));
        let certificate = certificate(&req, state, connection)?;
        let path = req.uri().path().to_owned();
        let mut authorization = req.headers().get_all(header::AUTHORIZATION).iter();
        let first = authorization.next().cloned();
        if authorization.next().is_some() {
            return Err(OAuthError::invalid_request("The Authorization header is repeated.").into());
        }
        let query = query_params(&req, route.as_deref())?;
        let body = if req.method() == Method::GET {
            // A GET carries its parameters in the query; a body, if any, is not read.
            Vec::new()
        } else {
            let content_type = req
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(|v| {
                    v.split(';')
                        .next()
                        .unwrap_or_default()
                        .trim()
                        .to_ascii_lowercase()
                });
            let body = read_body(req.into_body(), state.body_timeout).await?;
            match content_type.as_deref() {
                Some("application/json") => parse_json(&body)?,
                // `curl -d '{…}'` labels a JSON body as a form, which would then be
                // read as one parameter named after the whole object.
                _ if body.trim_ascii_start().starts_with(b"{") => {
                    return Err(OAuthError::invalid_request(
                        "The body looks like JSON: send it with Content-Type: application/json.",
                    )
                    .into())
                }
                Some("application/x-www-form-urlencoded") => parse_form(&body)?,
                // A POST to a route that reads the query may have no body at all.
                None if body.is_empty() && !query.is_empty() => Vec::new(),
                _ => {
                    return Err(OAuthError::invalid_request(
                        "The body must be application/x-www-form-urlencoded or application/json.",
                    )
                    .into())
                }
            }
        };
        let mut pairs = query;
        pairs.extend(body);
        Ok(Self {
            params: Params::new(pairs)?,
            authorization: first,
            route,
            peer,
            certificate,
            path,
        })
    }
}

/// The request's client certificate: from a trusted proxy's header, when one is
/// configured and the TCP peer (`connection`) is such a proxy (the header is then
/// the whole truth: the proxy's own connection certificate is not its client's);
/// else the one the connection presented.
fn certificate(
    req: &Request,
    state: &AppState,
    connection: Option<IpAddr>,
) -> Result<Option<Arc<PresentedCertificate>>, ApiError> {
    let own = || {
        req.extensions()
            .get::<Option<Arc<PresentedCertificate>>>()
            .cloned()
            .flatten()
    };
    let (Some(forwarded), Some(tcp_peer)) = (&state.forwarded_certificates, connection) else {
        return Ok(own());
    };
    match forwarded.read(tcp_peer, req.headers())? {
        FromProxy::NotAsked => Ok(own()),
        FromProxy::Certificate(certificate) => Ok(certificate),
    }
}

/// The parameters of the query string, on a route that reads them (`docs/migrating.md`); each
/// such request is logged as a warning with the parameter names, never the values.
/// Elsewhere a query is no place for OAuth parameters: RFC 6749 §2.3.1 says client
/// credentials "MUST NOT be included in the request URI", and §3.2 has the token
/// endpoint use POST. A query that names one is refused, so that a client learns its
/// secrets are in URLs; any other query is left alone (§3.2 allows the endpoint URI
/// to carry one).
fn query_params(req: &Request, route: Option<&Route>) -> Result<Vec<(String, String)>, ApiError> {
    let Some(query) = req.uri().query().filter(|q| !q.is_empty()) else {
        return Ok(Vec::new());
    };
    let pairs = parse_form(query.as_bytes())?;
    let known: Vec<&str> = OAUTH_PARAMETERS
        .iter()
        .copied()
        .filter(|name| pairs.iter().any(|(n, _)| n == name))
        .collect();
    match route {
        Some(route) if route.reads_query() => {
            tracing::warn!(
                route = %route.path,
                method = %req.method(),
                parameters = %known.join(","),
                other_parameters = pairs.iter().filter(|(n, _)| !OAUTH_PARAMETERS.contains(&n.as_str())).count(),
                "OAuth parameters read from the query string: URLs end up in access logs and browser history, so clients should send them in the body"
            );
            Ok(pairs)
        }
        _ if known.is_empty() => Ok(Vec::new()),
        _ => {
            let credentials = known.iter().any(|name| CREDENTIALS.contains(name));
            tracing::warn!(
                path = %req.uri().path(),
                parameters = %known.join(","),
                credentials,
                "refused OAuth parameters in the query string of an endpoint that reads them from the body only"
            );
            Err(OAuthError::invalid_request(
                "Parameters must be sent in the request body, not in the URL (RFC 6749 §2.3.1, §3.2).",
            )
            .into())
        }
    }
}

/// Reads the body, at most [`MAX_BODY_BYTES`], within `timeout` (the rest of a
/// request is bounded by the database's timeouts).
async fn read_body(body: Body, timeout: Duration) -> Result<Vec<u8>, ApiError> {
    super::body::read_limited(body, MAX_BODY_BYTES, timeout)
        .await
        .map_err(|e| match e {
            BodyError::Timeout => ApiError::RequestTimeout,
            BodyError::TooLarge => ApiError::PayloadTooLarge,
            BodyError::Unreadable => {
                OAuthError::invalid_request("The request body could not be read.").into()
            }
        })
}

/// Parses `application/x-www-form-urlencoded` strictly: names and values must decode
/// to UTF-8 (a lossy decoder would let two different inputs mean the same thing).
/// Raw whitespace around a pair is dropped: no encoder writes it (a space is `+`, a
/// line break `%0A`), and API documentation shows bodies with one pair a line (the
/// API Authentication Guide, `examples/oauth-guide.toml`), which clients copy byte for byte.
pub fn parse_form(body: &[u8]) -> Result<Vec<(String, String)>, OAuthError> {
    let malformed = || OAuthError::invalid_request("The form body is not valid UTF-8 form encoding.");
    let decode = |part: &[u8]| -> Result<String, OAuthError> {
        // A `%` not followed by two hex digits is refused, not passed through as
        // the WHATWG parser would: a client that sends one has an encoding bug.
        let bad_escape = part.iter().enumerate().any(|(at, &b)| {
            b == b'%' && !matches!(part.get(at + 1..at + 3), Some([h, l]) if h.is_ascii_hexdigit() && l.is_ascii_hexdigit())
        });
        if bad_escape {
            return Err(malformed());
        }
        let spaced: Vec<u8> = part.iter().map(|&b| if b == b'+' { b' ' } else { b }).collect();
        percent_decode(&spaced)
            .decode_utf8()
            .map(|s| s.into_owned())
            .map_err(|_| malformed())
    };
    body.split(|&b| b == b'&')
        .map(<[u8]>::trim_ascii)
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = match pair.iter().position(|&b| b == b'=') {
                Some(at) => (&pair[..at], &pair[at + 1..]),
                None => (pair, &[][..]),
            };
            Ok((decode(name)?, decode(value)?))
        })
        .collect()
}

/// Parses a JSON object whose values are all strings, keeping repeated names so that
/// they are rejected like repeated form parameters.
pub fn parse_json(body: &[u8]) -> Result<Vec<(String, String)>, OAuthError> {
    struct Pairs;

    impl<'de> Visitor<'de> for Pairs {
        type Value = Vec<(String, String)>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a JSON object of strings")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut pairs = Vec::new();
            while let Some(pair) = map.next_entry::<String, String>()? {
                pairs.push(pair);
            }
            Ok(pairs)
        }
    }

    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let pairs = deserializer
        .deserialize_map(Pairs)
        .and_then(|pairs| deserializer.end().map(|()| pairs))
        .map_err(|_| {
            OAuthError::invalid_request("The JSON body must be one object whose values are strings.")
        })?;
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_decoding() {
        let pairs = parse_form(b"grant_type=client_credentials&scope=a+b%21&flag&&x=").unwrap();
        assert_eq!(
            pairs,
            vec![
                ("grant_type".into(), "client_credentials".into()),
                ("scope".into(), "a b!".into()),
                ("flag".into(), String::new()),
                ("x".into(), String::new()),
            ]
        );
        assert!(parse_form(b"a=%ff").is_err());
        for bad in [&b"a=%zz"[..], b"a=%", b"a=%4", b"%g0=1", b"a=100%"] {
            assert!(parse_form(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        assert_eq!(parse_form(b"a=%41%2b").unwrap(), vec![("a".into(), "A+".into())]);
        assert_eq!(
            parse_form(b"grant_type=client_credentials\r\n&client_id=a b\n&client_secret=%0A\n").unwrap(),
            vec![
                ("grant_type".into(), "client_credentials".into()),
                ("client_id".into(), "a b".into()),
                ("client_secret".into(), "\n".into()),
            ],
            "raw line breaks between pairs are layout, encoded ones are data"
        );
        assert!(parse_form(&[b'a', b'=', 0xc3]).is_err());
    }

    #[test]
    fn json_decoding() {
        assert_eq!(parse_json(br#"{"a":"1","a":"2"}"#).unwrap().len(), 2);
        assert!(parse_json(br#"{"a":1}"#).is_err());
        assert!(parse_json(br#"["a"]"#).is_err());
        assert!(parse_json(br#"{"a":"1"} trailing"#).is_err());
        assert!(parse_json(b"{").is_err());
    }
}
