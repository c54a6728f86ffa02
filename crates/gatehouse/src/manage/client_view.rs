//! Clients as the command line and the API show them: everything but a secret's
//! hash, and a secret only in the answer that made it.

use gatehouse_core::{Client, ClientSecret, UnixTime};
use serde::Serialize;

/// A client as the CLI and the API show it: everything but its secret and hashes.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ClientView {
    /// Its id.
    pub client_id: String,
    /// A name for people.
    pub name: String,
    /// The scopes it may ask for, space-separated.
    pub scope: String,
    /// Its grants.
    pub grant_types: Vec<String>,
    /// The `aud` of its tokens; `null`: the server's `default_audience`.
    pub audience: Option<String>,
    /// Access token lifetime in seconds; `null`: the server's default.
    pub token_ttl: Option<i64>,
    /// Refresh token lifetime in seconds; `null`: the server's default.
    pub refresh_token_ttl: Option<i64>,
    /// `jwt` or `opaque`.
    pub token_format: String,
    /// Whether it may introspect any token.
    pub can_introspect: bool,
    /// How it authenticates: `client_secret_basic` or `client_secret_post` (one
    /// secret, and both ways of sending it are accepted), `private_key_jwt`,
    /// `tls_client_auth` or `self_signed_tls_client_auth`.
    pub auth_method: String,
    /// Its JWK Set (`private_key_jwt`, `self_signed_tls_client_auth`).
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<serde_json::Value>,
    /// Where its JWK Set is fetched from, instead of `jwks`.
    pub jwks_uri: Option<String>,
    /// The subject DN its certificate must carry (`tls_client_auth`), in canonical
    /// RFC 4514 form.
    pub tls_subject_dn: Option<String>,
    /// Whether its access tokens are bound to its TLS client certificate
    /// (`cnf.x5t#S256`, RFC 8705 §3).
    pub bound_tokens: bool,
    /// Whether it registered itself (RFC 7591): it can never have a `gatehouse:*` scope.
    pub registered: bool,
    /// When it was created, seconds since the epoch.
    pub created_at: UnixTime,
    /// Until when the secret it had before the last rotation still works.
    pub previous_secret_expires_at: Option<UnixTime>,
}

impl From<&Client> for ClientView {
    fn from(client: &Client) -> Self {
        Self {
            client_id: client.id.as_str().to_owned(),
            name: client.name.clone(),
            scope: client.scope.to_string(),
            grant_types: client.grant_types.iter().map(|g| g.as_str().to_owned()).collect(),
            audience: client.audience.clone(),
            token_ttl: client.access_token_ttl,
            refresh_token_ttl: client.refresh_token_ttl,
            token_format: client.token_format.as_str().to_owned(),
            can_introspect: client.can_introspect,
            auth_method: client.auth.method.as_str().to_owned(),
            // Stored as checked JSON; were it unreadable, showing none beats failing
            // to show the client at all.
            jwks: client
                .auth
                .jwks
                .as_deref()
                .and_then(|text| serde_json::from_str(text).ok()),
            jwks_uri: client.auth.jwks_uri.clone(),
            tls_subject_dn: client.auth.tls_subject_dn.clone(),
            bound_tokens: client.auth.bound_tokens,
            registered: client.registered,
            created_at: client.created_at,
            previous_secret_expires_at: client.previous_secret.as_ref().map(|p| p.expires_at),
        }
    }
}

/// A new client and its secret, shown this once.
#[derive(Debug)]
pub struct CreatedClient {
    /// The client as stored.
    pub client: Client,
    /// Its secret in the clear; `None` for a client whose method uses none.
    pub secret: Option<ClientSecret>,
}

/// A new secret, shown this once.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RotatedSecret {
    /// The client.
    pub client_id: String,
    /// The new secret.
    #[schema(value_type = String)]
    #[serde(serialize_with = "expose_secret")]
    pub client_secret: ClientSecret,
    /// Until when the replaced secret still works; `null`: it stopped at once.
    pub previous_secret_expires_at: Option<UnixTime>,
}

fn expose_secret<S: serde::Serializer>(secret: &ClientSecret, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(secret.expose())
}
