//! Where the authorization server is: a token endpoint given directly, or
//! discovered from the issuer's metadata (RFC 8414).

use std::net::IpAddr;

use http::header::ACCEPT;
use http::StatusCode;
use reqwest::Url;
use serde_json::Value;

use crate::error::Error;
use crate::response::read_body;
use crate::retry::{send_with_retries, RetryPolicy};

/// The path RFC 8414 §3 registers for authorization server metadata.
const WELL_KNOWN: &str = "/.well-known/oauth-authorization-server";

/// How to reach the token endpoint.
#[derive(Clone, Debug)]
pub struct TokenEndpoint(Location);

#[derive(Clone, Debug)]
enum Location {
    Given(Endpoints),
    Discovered { issuer: String, metadata: Url },
}

/// The endpoints in use, once known.
#[derive(Clone, Debug)]
pub(crate) struct Endpoints {
    pub token: Url,
    pub revocation: Option<Url>,
}

impl TokenEndpoint {
    /// The token endpoint at `url`. Without a revocation endpoint
    /// ([`TokenEndpoint::revocation_endpoint`]), a session's logout only
    /// forgets its tokens.
    pub fn url(url: &str) -> Result<Self, Error> {
        Ok(TokenEndpoint(Location::Given(Endpoints {
            token: endpoint_url("token endpoint", url)?,
            revocation: None,
        })))
    }

    /// Adds the revocation endpoint (RFC 7009) to a token endpoint given by
    /// URL; discovered endpoints come with theirs.
    pub fn revocation_endpoint(self, url: &str) -> Result<Self, Error> {
        match self.0 {
            Location::Given(endpoints) => Ok(TokenEndpoint(Location::Given(Endpoints {
                revocation: Some(endpoint_url("revocation endpoint", url)?),
                ..endpoints
            }))),
            Location::Discovered { .. } => Err(Error::Config(
                "the revocation endpoint of a discovered server comes from its metadata".into(),
            )),
        }
    }

    /// The endpoints named by the metadata of `issuer`, fetched on first use
    /// from `/.well-known/oauth-authorization-server` (RFC 8414 §3.1) and
    /// kept. The metadata must name the same issuer (RFC 8414 §3.3, against
    /// mix-up attacks; a trailing `/` aside).
    pub fn discover(issuer: &str) -> Result<Self, Error> {
        let parsed = Url::parse(issuer).map_err(|e| Error::Config(format!("issuer {issuer:?}: {e}")))?;
        if !matches!(parsed.scheme(), "https" | "http")
            || parsed.query().is_some()
            || parsed.fragment().is_some()
        {
            // RFC 8414 §2: an https URL without query or fragment.
            return Err(Error::Config(format!(
                "issuer {issuer:?} is not an http(s) URL without query and fragment"
            )));
        }
        Ok(TokenEndpoint(Location::Discovered {
            issuer: issuer.to_string(),
            metadata: metadata_url(&parsed),
        }))
    }

    /// Checks what can be checked before any request.
    pub(crate) fn check(&self, allow_insecure_http: bool) -> Result<(), Error> {
        match &self.0 {
            Location::Given(endpoints) => endpoints.check(allow_insecure_http),
            Location::Discovered { metadata, .. } => check_transport(metadata, allow_insecure_http),
        }
    }

    /// The endpoints: as given, or from the issuer's metadata.
    pub(crate) async fn resolve(
        &self,
        http: &reqwest::Client,
        retry: &RetryPolicy,
        allow_insecure_http: bool,
    ) -> Result<Endpoints, Error> {
        match &self.0 {
            Location::Given(endpoints) => Ok(endpoints.clone()),
            Location::Discovered { issuer, metadata } => {
                let endpoints = fetch_metadata(http, retry, issuer, metadata).await?;
                endpoints.check(allow_insecure_http)?;
                Ok(endpoints)
            }
        }
    }
}

impl Endpoints {
    fn check(&self, allow_insecure_http: bool) -> Result<(), Error> {
        check_transport(&self.token, allow_insecure_http)?;
        if let Some(revocation) = &self.revocation {
            check_transport(revocation, allow_insecure_http)?;
        }
        Ok(())
    }
}

/// An endpoint URL: http(s), and no fragment (RFC 6749 §3.2).
fn endpoint_url(what: &str, url: &str) -> Result<Url, Error> {
    let parsed = Url::parse(url).map_err(|e| Error::Config(format!("{what} {url:?}: {e}")))?;
    if !matches!(parsed.scheme(), "https" | "http") || parsed.fragment().is_some() {
        return Err(Error::Config(format!(
            "{what} {url:?} is not an http(s) URL without fragment"
        )));
    }
    Ok(parsed)
}

/// RFC 6749 §3.2 requires TLS at the token endpoint, since the client's secret
/// and the tokens cross it. Plain HTTP is allowed to loopback (a server on
/// the same machine, tests), and elsewhere only when asked for.
pub(crate) fn check_transport(url: &Url, allow_insecure_http: bool) -> Result<(), Error> {
    if url.scheme() == "https" || allow_insecure_http || is_loopback(url) {
        return Ok(());
    }
    Err(Error::Config(format!(
        "{url} is plain HTTP to a host that is not loopback; use https (or allow_insecure_http)"
    )))
}

fn is_loopback(url: &Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match host.parse::<IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => host.eq_ignore_ascii_case("localhost"),
    }
}

/// RFC 8414 §3.1: the well-known path goes between the host and the
/// issuer's path, so `https://as.example/tenant` has its metadata at
/// `https://as.example/.well-known/oauth-authorization-server/tenant`.
fn metadata_url(issuer: &Url) -> Url {
    let mut url = issuer.clone();
    let path = issuer.path().trim_end_matches('/');
    url.set_path(&format!("{WELL_KNOWN}{path}"));
    url
}

async fn fetch_metadata(
    http: &reqwest::Client,
    retry: &RetryPolicy,
    issuer: &str,
    metadata: &Url,
) -> Result<Endpoints, Error> {
    let (response, _) = send_with_retries(retry, "metadata request", || {
        Ok(http.get(metadata.clone()).header(ACCEPT, "application/json"))
    })
    .await?;
    let status = response.status();
    if status != StatusCode::OK {
        return Err(Error::Discovery(format!("{metadata} answered HTTP {status}")));
    }
    let body = read_body(response).await?;
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(&body) else {
        return Err(Error::Discovery(format!("{metadata} is not a JSON object")));
    };
    let named = fields.get("issuer").and_then(Value::as_str).unwrap_or_default();
    if named.trim_end_matches('/') != issuer.trim_end_matches('/') {
        return Err(Error::Discovery(format!(
            "{metadata} names issuer {named:?}, not {issuer:?}"
        )));
    }
    let url = |name: &str| -> Result<Option<Url>, Error> {
        match fields.get(name).and_then(Value::as_str) {
            None => Ok(None),
            Some(url) => endpoint_url(name, url)
                .map(Some)
                .map_err(|e| Error::Discovery(e.to_string())),
        }
    };
    let token = url("token_endpoint")?
        .ok_or_else(|| Error::Discovery(format!("{metadata} names no token_endpoint")))?;
    Ok(Endpoints {
        token,
        revocation: url("revocation_endpoint")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_lives_between_host_and_issuer_path() {
        let at = |issuer: &str| metadata_url(&Url::parse(issuer).unwrap()).to_string();
        assert_eq!(
            at("https://as.example"),
            "https://as.example/.well-known/oauth-authorization-server"
        );
        assert_eq!(
            at("http://127.0.0.1:8080/"),
            "http://127.0.0.1:8080/.well-known/oauth-authorization-server"
        );
        assert_eq!(
            at("https://as.example/tenant/1"),
            "https://as.example/.well-known/oauth-authorization-server/tenant/1"
        );
    }

    #[test]
    fn plain_http_only_to_loopback_unless_allowed() {
        let check = |url: &str, allow| check_transport(&Url::parse(url).unwrap(), allow).is_ok();
        assert!(check("https://as.example/token", false));
        assert!(check("http://127.0.0.1:8080/token", false));
        assert!(check("http://127.8.9.10/token", false));
        assert!(check("http://[::1]:8080/token", false));
        assert!(check("http://localhost:8080/token", false));
        assert!(!check("http://as.example/token", false));
        assert!(!check("http://10.0.0.1/token", false));
        assert!(!check("http://localhost.evil.example/token", false));
        assert!(check("http://as.example/token", true));
    }

    #[test]
    fn malformed_endpoints_are_configuration_errors() {
        for bad in [
            "not a url",
            "ftp://as.example/token",
            "https://as.example/token#frag",
        ] {
            assert!(matches!(TokenEndpoint::url(bad), Err(Error::Config(_))), "{bad}");
        }
        for bad in [
            "https://as.example/?tenant=1",
            "https://as.example/#x",
            "mailto:a@b",
        ] {
            assert!(
                matches!(TokenEndpoint::discover(bad), Err(Error::Config(_))),
                "{bad}"
            );
        }
        let discovered = TokenEndpoint::discover("https://as.example").unwrap();
        assert!(discovered
            .revocation_endpoint("https://as.example/revoke")
            .is_err());
    }

    #[test]
    fn insecure_endpoints_are_refused_before_any_request() {
        let endpoint = TokenEndpoint::url("http://as.example/token").unwrap();
        assert!(matches!(endpoint.check(false), Err(Error::Config(_))));
        assert!(endpoint.check(true).is_ok());
        let revocation = TokenEndpoint::url("https://as.example/token")
            .and_then(|e| e.revocation_endpoint("http://as.example/revoke"))
            .unwrap();
        assert!(revocation.check(false).is_err());
    }
}
