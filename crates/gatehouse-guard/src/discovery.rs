//! The issuer's RFC 8414 metadata: where its JWKS and introspection endpoint are.

use serde::Deserialize;
use tokio::sync::OnceCell;

use crate::error::Rejection;

/// The members of the metadata the guard uses.
#[derive(Debug, Clone, Deserialize)]
pub struct Metadata {
    /// Must equal the configured issuer (RFC 8414 §3.3).
    pub issuer: String,
    /// The JWKS.
    pub jwks_uri: String,
    /// RFC 7662.
    #[serde(default)]
    pub introspection_endpoint: Option<String>,
}

/// Fetches the metadata once, on first need; a failed fetch is tried again by the next
/// request that needs it.
pub struct Discovery {
    pub http: reqwest::Client,
    pub issuer: String,
    metadata: OnceCell<Metadata>,
}

impl Discovery {
    pub fn new(http: reqwest::Client, issuer: String) -> Self {
        Self {
            http,
            issuer,
            metadata: OnceCell::new(),
        }
    }

    /// The metadata, fetched if not yet known; [`Rejection::Unavailable`] if the
    /// issuer cannot be reached or answers something unusable.
    pub async fn metadata(&self) -> Result<&Metadata, Rejection> {
        self.metadata
            .get_or_try_init(|| async {
                let url = format!("{}/.well-known/oauth-authorization-server", self.issuer);
                let metadata: Metadata = self
                    .get_json(&url)
                    .await
                    .inspect_err(|e| tracing::warn!(url = %url, error = %e, "cannot read the issuer's metadata"))
                    .map_err(|_| Rejection::Unavailable)?;
                if metadata.issuer != self.issuer {
                    // RFC 8414 §3.3: "If these values are not identical, the data
                    // contained in the response MUST NOT be used."
                    tracing::error!(expected = %self.issuer, found = %metadata.issuer, "the issuer's metadata names another issuer");
                    return Err(Rejection::Unavailable);
                }
                Ok(metadata)
            })
            .await
    }

    /// GETs `url` and parses a JSON answer of a 200.
    pub async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, reqwest::Error> {
        self.http.get(url).send().await?.error_for_status()?.json().await
    }
}
