//! Dynamic client registration (RFC 7591) and its management protocol (RFC 7592): which
//! metadata a client may register with, and reading, replacing and deleting a
//! registration with its registration access token.
//!
//! What a registrant can get is deliberately less than what an operator can give:
//! - any authentication method an operator can give (docs/admin-api.md, with the same
//!   rules, [`super::client_auth`]): a generated secret, used by HTTP Basic or in the
//!   body (`client_secret_basic`, `client_secret_post`), or keys (`jwks`, `jwks_uri`)
//!   or a certificate (`tls_client_auth_subject_dn`, RFC 8705 §2.1.2), and
//!   certificate-bound tokens (`tls_client_certificate_bound_access_tokens`);
//! - the `client_credentials` and `refresh_token` grants; `password` asks users to
//!   trust the client with their passwords, which no stranger has earned;
//! - any scope but a `gatehouse:*` one, which governs this server itself.
//!
//! Registration itself fetches nothing: `logo_uri`, `tos_uri` and other members this
//! server does not use are ignored (RFC 7591 §2), and redirect URIs are only checked
//! for their form. A `jwks_uri` is fetched later, when the client authenticates, by
//! the fetcher that refuses private and loopback addresses (`crate::jwks_fetch`).
//!
//! The registration access token (RFC 7592 §3) is `ghm_` and 256 random bits, stored as
//! its SHA-256 digest only and compared in constant time. A missing or wrong token
//! and an unknown client id are the same refusal, so nobody learns which clients
//! exist.

use gatehouse_core::store::{ClientLookup as _, ClientStore as _};
use gatehouse_core::tokens::MintedToken;
use gatehouse_core::{
    AuthSettings, Client, ClientId, ClientSecret, GrantType, GrantTypes, Scope, SecretHash,
};
use gatehouse_store::ClientChanges;
use serde::de::IgnoredAny;
use serde::Deserialize;
use url::{Host, Url};

use super::client_auth::{auth_changes, new_auth, unknown_secret_hash, JwksDocument};
use super::clients::{check_not_reserved, conflict_on_id};
use super::{audit, check_text, Actor, ManageError, Manager, NewClient};

/// The prefix of registration access tokens: says what a leaked one is, and lets
/// secret scanners find it.
pub const REGISTRATION_TOKEN_PREFIX: &str = "ghm_";

/// The grants a registered client may have.
pub const REGISTRABLE_GRANTS: [GrantType; 2] = [GrantType::ClientCredentials, GrantType::RefreshToken];

/// Client metadata as a registrant sent it (RFC 7591 §2). A member that is absent or
/// `null` is `None`; members this server does not use are ignored, as §2 requires.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct ClientMetadata {
    /// RFC 7592 §2.2: in an update, the client's own id, if given.
    pub client_id: Option<String>,
    /// A name for people; the client id when absent.
    pub client_name: Option<String>,
    /// Grant type names; `["client_credentials"]` when absent.
    pub grant_types: Option<Vec<String>>,
    /// Must be absent or empty: no grant served here uses the authorization endpoint.
    pub response_types: Option<Vec<String>>,
    /// Space-separated scopes the client may ask for; none when absent.
    pub scope: Option<String>,
    /// `client_secret_basic` (the default), `client_secret_post`,
    /// `private_key_jwt`, `tls_client_auth` or `self_signed_tls_client_auth`.
    pub token_endpoint_auth_method: Option<String>,
    /// Checked, not kept.
    pub redirect_uris: Option<Vec<String>>,
    /// The client's JWK Set (`private_key_jwt`, `self_signed_tls_client_auth`).
    pub jwks: Option<serde_json::Value>,
    /// The URL of its JWK Set, instead of `jwks`.
    pub jwks_uri: Option<String>,
    /// The subject DN of its certificate (`tls_client_auth`, RFC 8705 §2.1.2).
    pub tls_client_auth_subject_dn: Option<String>,
    /// Whether its access tokens are bound to its certificate (RFC 8705 §3.4).
    pub tls_client_certificate_bound_access_tokens: Option<bool>,
    /// Refused: the certificate is matched by its subject DN only.
    pub tls_client_auth_san_dns: Option<IgnoredAny>,
    /// Refused, as `tls_client_auth_san_dns`.
    pub tls_client_auth_san_uri: Option<IgnoredAny>,
    /// Refused, as `tls_client_auth_san_dns`.
    pub tls_client_auth_san_ip: Option<IgnoredAny>,
    /// Refused, as `tls_client_auth_san_dns`.
    pub tls_client_auth_san_email: Option<IgnoredAny>,
}

impl ClientMetadata {
    /// The members given, for the audit event (names, never values).
    fn fields(&self) -> Vec<&'static str> {
        [
            ("client_name", self.client_name.is_some()),
            ("grant_types", self.grant_types.is_some()),
            ("response_types", self.response_types.is_some()),
            ("scope", self.scope.is_some()),
            (
                "token_endpoint_auth_method",
                self.token_endpoint_auth_method.is_some(),
            ),
            ("redirect_uris", self.redirect_uris.is_some()),
            ("jwks", self.jwks.is_some()),
            ("jwks_uri", self.jwks_uri.is_some()),
            (
                "tls_client_auth_subject_dn",
                self.tls_client_auth_subject_dn.is_some(),
            ),
            (
                "tls_client_certificate_bound_access_tokens",
                self.tls_client_certificate_bound_access_tokens.is_some(),
            ),
        ]
        .into_iter()
        .filter_map(|(name, given)| given.then_some(name))
        .collect()
    }

    /// The SAN-based `tls_client_auth` member given, if any: this server matches a
    /// certificate by its subject DN only (RFC 8705 §2.1.2 allows one of them).
    fn san_member(&self) -> Option<&'static str> {
        [
            ("tls_client_auth_san_dns", self.tls_client_auth_san_dns.is_some()),
            ("tls_client_auth_san_uri", self.tls_client_auth_san_uri.is_some()),
            ("tls_client_auth_san_ip", self.tls_client_auth_san_ip.is_some()),
            (
                "tls_client_auth_san_email",
                self.tls_client_auth_san_email.is_some(),
            ),
        ]
        .into_iter()
        .find_map(|(name, given)| given.then_some(name))
    }
}

/// The metadata name (RFC 7591 §2, RFC 8705 §2.1.2, §3.4) of a client member.
fn metadata_name(field: &'static str) -> &'static str {
    match field {
        "name" => "client_name",
        "auth_method" => "token_endpoint_auth_method",
        "tls_subject_dn" => "tls_client_auth_subject_dn",
        "bound_tokens" => "tls_client_certificate_bound_access_tokens",
        other => other,
    }
}

/// Why a registration request was refused or failed.
#[derive(Debug)]
pub enum RegistrationError {
    /// RFC 7591 §3.2.2 `invalid_client_metadata`: "The value of one of the client
    /// metadata fields is invalid and the server has rejected this request."
    InvalidMetadata {
        /// The member at fault.
        field: &'static str,
        /// What is wrong, for people (never echoes the value).
        problem: String,
    },
    /// RFC 7591 §3.2.2 `invalid_redirect_uri`: "The value of one or more redirection
    /// URIs is invalid."
    InvalidRedirectUri(String),
    /// RFC 7592 §2 (RFC 6750 §3.1 `invalid_token`): no registration access token, a
    /// wrong one, or no such client; one answer for all three.
    InvalidToken,
    /// The database failed, or the work could not be done.
    Failed(ManageError),
}

impl RegistrationError {
    fn metadata(field: &'static str, problem: impl Into<String>) -> Self {
        Self::InvalidMetadata {
            field,
            problem: problem.into(),
        }
    }
}

impl From<ManageError> for RegistrationError {
    fn from(err: ManageError) -> Self {
        match err {
            ManageError::Invalid { field, problem } => Self::InvalidMetadata {
                field: metadata_name(field),
                problem,
            },
            other => Self::Failed(other),
        }
    }
}

impl From<gatehouse_core::StoreError> for RegistrationError {
    fn from(err: gatehouse_core::StoreError) -> Self {
        Self::Failed(ManageError::Store(err))
    }
}

/// A registration as answered: the client, and the credentials shown this once.
#[derive(Debug)]
pub struct Registered {
    /// The client as stored.
    pub client: Client,
    /// Its secret: at registration of a client of a secret method (RFC 7591
    /// §3.2.1), and when a replacement moves a client to a secret method (RFC 7592
    /// §2.2).
    pub client_secret: Option<ClientSecret>,
    /// A new registration access token: at registration and after a replacement
    /// (RFC 7592 §2.2); never on a read.
    pub registration_access_token: Option<ClientSecret>,
}

/// Metadata checked: what the client will be.
#[derive(Debug)]
struct Checked {
    name: Option<String>,
    scope: Scope,
    grant_types: GrantTypes,
    auth: AuthSettings,
}

/// Checks metadata against what this server lets a client register; `http` jwks URIs
/// only with `allow_insecure_jwks_uri`.
fn check_metadata(
    metadata: &ClientMetadata,
    allow_insecure_jwks_uri: bool,
) -> Result<Checked, RegistrationError> {
    if let Some(name) = &metadata.client_name {
        check_text("client_name", name)?;
    }
    let grant_types = match &metadata.grant_types {
        None => [GrantType::ClientCredentials].into_iter().collect(),
        Some(names) => registrable_grants(names)?,
    };
    if metadata
        .response_types
        .as_ref()
        .is_some_and(|types| !types.is_empty())
    {
        return Err(RegistrationError::metadata(
            "response_types",
            "must be empty: no grant served here uses the authorization endpoint",
        ));
    }
    let scope = Scope::parse(metadata.scope.as_deref().unwrap_or(""))
        .map_err(|e| RegistrationError::metadata("scope", e.description()))?;
    check_not_reserved("scope", &scope)?;
    if let Some(member) = metadata.san_member() {
        return Err(RegistrationError::metadata(
            member,
            "is not supported: a certificate is matched by its subject DN (tls_client_auth_subject_dn)",
        ));
    }
    let auth = new_auth(
        allow_insecure_jwks_uri,
        metadata.token_endpoint_auth_method.as_deref(),
        metadata.jwks.clone().map(JwksDocument::Json),
        metadata.jwks_uri.as_deref(),
        metadata.tls_client_auth_subject_dn.as_deref(),
        metadata
            .tls_client_certificate_bound_access_tokens
            .unwrap_or(false),
    )?;
    for (index, uri) in metadata.redirect_uris.iter().flatten().enumerate() {
        check_redirect_uri(uri).map_err(|problem| {
            RegistrationError::InvalidRedirectUri(format!("redirect_uris[{index}] {problem}"))
        })?;
    }
    Ok(Checked {
        name: metadata.client_name.clone(),
        scope,
        grant_types,
        auth,
    })
}

fn registrable_grants(names: &[String]) -> Result<GrantTypes, RegistrationError> {
    let refused = || {
        let allowed: Vec<&str> = REGISTRABLE_GRANTS.iter().map(|g| g.as_str()).collect();
        RegistrationError::metadata(
            "grant_types",
            format!("a registered client may have only {}", allowed.join(" and ")),
        )
    };
    let mut grants = GrantTypes::default();
    for name in names {
        let grant = name.parse::<GrantType>().map_err(|()| refused())?;
        if !REGISTRABLE_GRANTS.contains(&grant) {
            return Err(refused());
        }
        grants.insert(grant);
    }
    if grants.is_empty() {
        return Err(RegistrationError::metadata(
            "grant_types",
            "name at least one grant type",
        ));
    }
    // refresh_token only renews what another grant issued: alone, the client could
    // never get a token.
    if !grants.contains(GrantType::ClientCredentials) {
        return Err(RegistrationError::metadata(
            "grant_types",
            "refresh_token needs a grant that issues tokens: add client_credentials",
        ));
    }
    Ok(grants)
}

/// A redirect URI as RFC 6749 §3.1.2 and RFC 8252 §7.3/§8.3 allow it: absolute,
/// without a fragment, and `https`, or `http` on a loopback IP literal (a native
/// app's own listener; `localhost` may resolve elsewhere, RFC 8252 §8.3). Only its
/// form is checked: nothing is ever fetched.
fn check_redirect_uri(text: &str) -> Result<(), &'static str> {
    let url = Url::parse(text).map_err(|_| "is not an absolute URI")?;
    if url.fragment().is_some() {
        return Err("has a fragment (RFC 6749 §3.1.2)");
    }
    match url.scheme() {
        "https" if url.host().is_some() => Ok(()),
        "http" => match url.host() {
            Some(Host::Ipv4(ip)) if ip.is_loopback() => Ok(()),
            Some(Host::Ipv6(ip)) if ip.is_loopback() => Ok(()),
            _ => Err("uses http on a host that is not a loopback address: use https"),
        },
        _ => Err("must be an https URI, or http on a loopback address"),
    }
}

/// A fresh registration access token and the hash to store.
fn mint_registration_token(rng: &dyn gatehouse_core::Random) -> (ClientSecret, SecretHash) {
    let minted = MintedToken::generate(REGISTRATION_TOKEN_PREFIX, rng);
    // MintedToken's digest is the SHA-256 of the value: the same hash SecretHash keeps.
    (
        ClientSecret::new(minted.value),
        SecretHash::Sha256(minted.digest.0),
    )
}

/// Metadata that passed [`Manager::check_registration`]: what a new client will be.
#[derive(Debug)]
pub struct CheckedRegistration {
    checked: Checked,
    fields: Vec<&'static str>,
}

/// Proof that a request holds the registration access token of a client
/// ([`Manager::authorize_registration`]); the RFC 7592 operations take nothing else.
#[derive(Debug)]
pub struct RegistrationAccess {
    client_id: ClientId,
    /// The stored hash the token matched: an update is made only while it is still
    /// the stored one.
    token_hash: SecretHash,
}

impl RegistrationAccess {
    /// The client whose token was presented.
    pub fn client_id(&self) -> &ClientId {
        &self.client_id
    }
}

impl Manager {
    /// Checks the metadata of a registration (RFC 7591 §2) and writes nothing, so a
    /// front end can count only acceptable registrations against a limit before
    /// [`Manager::register_client`] writes one.
    pub fn check_registration(
        &self,
        metadata: &ClientMetadata,
    ) -> Result<CheckedRegistration, RegistrationError> {
        Ok(CheckedRegistration {
            checked: check_metadata(metadata, self.allow_insecure_jwks_uri())?,
            fields: metadata.fields(),
        })
    }

    /// Registers a client (RFC 7591 §3.1) for `actor`: generates the id, secret and
    /// registration access token, and inserts the client with the token's hash in
    /// one transaction.
    pub async fn register_client(
        &self,
        actor: &Actor,
        registration: CheckedRegistration,
    ) -> Result<Registered, RegistrationError> {
        let CheckedRegistration { checked, fields } = registration;
        let id = crate::admin::random_hex(self.rng().as_ref(), 16);
        let auth = checked.auth;
        let new = NewClient {
            name: checked.name.unwrap_or_else(|| id.clone()),
            client_id: Some(id),
            scope: Some(checked.scope.to_string()),
            grant_types: Some(checked.grant_types),
            auth_method: Some(auth.method.as_str().to_owned()),
            jwks: auth.jwks.map(JwksDocument::Text),
            jwks_uri: auth.jwks_uri,
            tls_subject_dn: auth.tls_subject_dn,
            bound_tokens: auth.bound_tokens,
            ..NewClient::default()
        };
        let mut created = self.build_client(new).await?;
        created.client.registered = true;
        let (token, token_hash) = mint_registration_token(self.rng().as_ref());
        self.store()
            .register_client(&created.client, &token_hash)
            .await
            .map_err(|e| conflict_on_id(e, &created.client.id))?;
        audit(actor, "registration.create", created.client.id.as_str(), &fields);
        Ok(Registered {
            client: created.client,
            client_secret: created.secret,
            registration_access_token: Some(token),
        })
    }

    /// Checks that `token` is the registration access token of client `id` (RFC 7592
    /// §1), before anything else of the request is looked at. An id that is no client
    /// id, no such client, a client an operator created, and a wrong or missing token
    /// are all [`RegistrationError::InvalidToken`]: the answer never tells whether a
    /// client exists.
    pub async fn authorize_registration(
        &self,
        id: &str,
        token: Option<&str>,
    ) -> Result<RegistrationAccess, RegistrationError> {
        let client_id = ClientId::parse(id).ok_or(RegistrationError::InvalidToken)?;
        let stored = self.store().registration_token(&client_id).await?;
        let presented = ClientSecret::new(token.unwrap_or_default());
        // Compared whether or not there is a hash, so that both cost the same work;
        // the comparison itself is constant-time.
        let unmatchable = SecretHash::Sha256([0; 32]);
        let matches = stored.as_ref().unwrap_or(&unmatchable).verify(&presented);
        match (matches, stored, token) {
            (true, Some(token_hash), Some(_)) => Ok(RegistrationAccess {
                client_id,
                token_hash,
            }),
            _ => Err(RegistrationError::InvalidToken),
        }
    }

    /// The registration (RFC 7592 §2.1): the client's metadata, without its secret or
    /// registration access token.
    pub async fn read_registration(
        &self,
        access: &RegistrationAccess,
    ) -> Result<Registered, RegistrationError> {
        let client = self
            .store()
            .find_client(&access.client_id)
            .await?
            .ok_or(RegistrationError::InvalidToken)?;
        Ok(Registered {
            client: Client::clone(&client),
            client_secret: None,
            registration_access_token: None,
        })
    }

    /// Replaces the metadata of a registration (RFC 7592 §2.2): members left out
    /// return to their defaults. A client that stays with a secret method keeps its
    /// secret; one that leaves them loses it; one that joins them gets a new one, in
    /// the answer (§2.2 lets the server issue one). A new registration access token
    /// is stored in the same statement as the metadata, so the old one stops working
    /// exactly when the change is made.
    pub async fn replace_registration(
        &self,
        access: RegistrationAccess,
        metadata: ClientMetadata,
    ) -> Result<Registered, RegistrationError> {
        let id = access.client_id.as_str();
        if metadata.client_id.as_deref().is_some_and(|given| given != id) {
            return Err(RegistrationError::metadata(
                "client_id",
                "does not match the client being updated (RFC 7592 §2.2)",
            ));
        }
        let checked = check_metadata(&metadata, self.allow_insecure_jwks_uri())?;
        let before = self
            .store()
            .find_client(&access.client_id)
            .await?
            .ok_or(RegistrationError::InvalidToken)?
            .auth
            .method;
        let (client_secret, secret_hash) = match (before.uses_secret(), checked.auth.method.uses_secret()) {
            (false, true) => {
                let secret = ClientSecret::generate(self.rng().as_ref());
                let hash = SecretHash::sha256(&secret);
                (Some(secret), Some(hash))
            }
            (true, false) => (None, Some(unknown_secret_hash(self.rng().as_ref()))),
            _ => (None, None),
        };
        let (token, token_hash) = mint_registration_token(self.rng().as_ref());
        let changes = ClientChanges {
            name: Some(checked.name.unwrap_or_else(|| id.to_owned())),
            scope: Some(checked.scope),
            grant_types: Some(checked.grant_types),
            secret_hash,
            registration_token_hash: Some(token_hash),
            // Of two updates with one token, the second finds a new token stored and
            // changes nothing: it is answered as a wrong token.
            if_registration_token: Some(access.token_hash.clone()),
            ..auth_changes(checked.auth)
        };
        let client = self
            .store()
            .update_client(&access.client_id, &changes, self.clock().now())
            .await?
            .ok_or(RegistrationError::InvalidToken)?;
        audit(
            &Actor::Client(id.to_owned()),
            "registration.update",
            id,
            &metadata.fields(),
        );
        Ok(Registered {
            client,
            client_secret,
            registration_access_token: Some(token),
        })
    }

    /// Deletes a registered client and every token it holds (RFC 7592 §2.3).
    pub async fn delete_registration(&self, access: RegistrationAccess) -> Result<(), RegistrationError> {
        if !self
            .store()
            .delete_client(&access.client_id, self.clock().now())
            .await?
        {
            return Err(RegistrationError::InvalidToken);
        }
        let id = access.client_id.as_str();
        audit(&Actor::Client(id.to_owned()), "registration.delete", id, &[]);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use gatehouse_core::AuthMethod;

    use super::*;

    fn metadata(json: serde_json::Value) -> ClientMetadata {
        serde_json::from_value(json).unwrap()
    }

    fn refused_field(json: serde_json::Value) -> &'static str {
        match check_metadata(&metadata(json), false) {
            Err(RegistrationError::InvalidMetadata { field, .. }) => field,
            other => panic!("not invalid_client_metadata: {other:?}"),
        }
    }

    #[test]
    fn defaults_fill_what_is_absent() {
        let checked = check_metadata(&ClientMetadata::default(), false).unwrap();
        assert_eq!(checked.name, None);
        assert!(checked.scope.is_empty());
        assert_eq!(
            checked.grant_types,
            [GrantType::ClientCredentials].into_iter().collect::<GrantTypes>()
        );
        assert_eq!(checked.auth, AuthSettings::default());
    }

    #[test]
    fn accepted_metadata_and_ignored_members() {
        let checked = check_metadata(
            &metadata(serde_json::json!({
                "client_name": "Robot",
                "grant_types": ["client_credentials", "refresh_token"],
                "response_types": [],
                "scope": "write read",
                "token_endpoint_auth_method": "client_secret_post",
                "redirect_uris": ["https://a.example/cb", "http://127.0.0.1:9000/cb", "http://[::1]/cb"],
                "jwks": null,
                "logo_uri": "https://a.example/logo.png",
                "client_secret": "ignored",
            })),
            false,
        )
        .unwrap();
        assert_eq!(checked.name.as_deref(), Some("Robot"));
        assert_eq!(checked.scope.to_string(), "read write");
        assert!(checked.grant_types.contains(GrantType::RefreshToken));
        assert_eq!(checked.auth.method, AuthMethod::ClientSecretPost);
    }

    #[test]
    fn keys_and_certificates() {
        use serde_json::json;
        let checked = check_metadata(
            &metadata(json!({
                "token_endpoint_auth_method": "private_key_jwt",
                "jwks_uri": "https://a.example/jwks.json",
                "tls_client_certificate_bound_access_tokens": true,
            })),
            false,
        )
        .unwrap();
        assert_eq!(checked.auth.method, AuthMethod::PrivateKeyJwt);
        assert_eq!(
            checked.auth.jwks_uri.as_deref(),
            Some("https://a.example/jwks.json")
        );
        assert!(checked.auth.bound_tokens);
        let checked = check_metadata(
            &metadata(json!({
                "token_endpoint_auth_method": "tls_client_auth",
                "tls_client_auth_subject_dn": "CN=robot,O=Example",
            })),
            false,
        )
        .unwrap();
        assert_eq!(checked.auth.method, AuthMethod::TlsClientAuth);
        assert!(checked.auth.tls_subject_dn.is_some());
        // http only where the server allows it.
        let http =
            json!({"token_endpoint_auth_method": "private_key_jwt", "jwks_uri": "http://127.0.0.1:9/jwks"});
        assert!(check_metadata(&metadata(http.clone()), true).is_ok());
        assert_eq!(refused_field(http), "jwks_uri");
    }

    #[test]
    fn refused_metadata_names_the_member() {
        use serde_json::json;
        assert_eq!(refused_field(json!({"scope": "read gatehouse:admin"})), "scope");
        assert_eq!(refused_field(json!({"scope": "gatehouse:register"})), "scope");
        assert_eq!(refused_field(json!({"scope": "a\"b"})), "scope");
        assert_eq!(refused_field(json!({"grant_types": ["password"]})), "grant_types");
        assert_eq!(
            refused_field(json!({"grant_types": ["client_credentials", "implicit"]})),
            "grant_types"
        );
        assert_eq!(refused_field(json!({"grant_types": []})), "grant_types");
        assert_eq!(
            refused_field(json!({"grant_types": ["refresh_token"]})),
            "grant_types"
        );
        assert_eq!(
            refused_field(json!({"response_types": ["code"]})),
            "response_types"
        );
        // A method without what it needs names what is missing, in metadata words.
        assert_eq!(
            refused_field(json!({"token_endpoint_auth_method": "private_key_jwt"})),
            "jwks"
        );
        assert_eq!(
            refused_field(json!({"token_endpoint_auth_method": "tls_client_auth"})),
            "tls_client_auth_subject_dn"
        );
        assert_eq!(
            refused_field(json!({"tls_client_auth_subject_dn": "CN=robot"})),
            "tls_client_auth_subject_dn"
        );
        assert_eq!(
            refused_field(json!({
                "token_endpoint_auth_method": "tls_client_auth",
                "tls_client_auth_subject_dn": "CN=robot",
                "tls_client_auth_san_dns": "robot.example",
            })),
            "tls_client_auth_san_dns"
        );
        assert_eq!(
            refused_field(json!({
                "token_endpoint_auth_method": "private_key_jwt",
                "jwks_uri": "https://a.example/jwks.json",
                "jwks": {"keys": []},
            })),
            "jwks_uri"
        );
        assert_eq!(
            refused_field(json!({"token_endpoint_auth_method": "private_key_jwt", "jwks": ["x"]})),
            "jwks"
        );
        assert_eq!(
            refused_field(json!({"token_endpoint_auth_method": "none"})),
            "token_endpoint_auth_method"
        );
        assert_eq!(refused_field(json!({"jwks": {"keys": []}})), "jwks");
        assert_eq!(
            refused_field(json!({"jwks_uri": "https://a.example/jwks.json"})),
            "jwks_uri"
        );
        assert_eq!(refused_field(json!({"client_name": ""})), "client_name");
        assert_eq!(refused_field(json!({"client_name": "a\u{7}b"})), "client_name");
    }

    #[test]
    fn redirect_uris_are_checked_for_their_form() {
        for good in [
            "https://a.example/cb",
            "https://a.example:8443/cb?x=1",
            "http://127.0.0.1/cb",
            "http://127.9.9.9:1234/",
            "http://[::1]:9000/cb",
        ] {
            assert_eq!(check_redirect_uri(good), Ok(()), "{good}");
        }
        for bad in [
            "not a uri",
            "/cb",
            "https://a.example/cb#frag",
            "https://a.example/cb#",
            "http://evil.example/cb",
            "http://localhost/cb",
            "http://10.0.0.1/cb",
            "ftp://a.example/cb",
            "com.example.app:/cb",
            "javascript:alert(1)",
        ] {
            assert!(check_redirect_uri(bad).is_err(), "{bad}");
        }
        let refused = check_metadata(
            &metadata(serde_json::json!({
                "redirect_uris": ["https://a.example/cb", "http://evil.example/cb"],
            })),
            false,
        );
        match refused {
            Err(RegistrationError::InvalidRedirectUri(problem)) => {
                assert!(problem.starts_with("redirect_uris[1]"))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_registration_token_is_prefixed_256_bits_and_its_hash() {
        let rng = gatehouse_core::SystemRandom;
        let (token, hash) = mint_registration_token(&rng);
        let value = token.expose();
        assert!(value.starts_with(REGISTRATION_TOKEN_PREFIX));
        assert_eq!(value.len(), REGISTRATION_TOKEN_PREFIX.len() + 43);
        assert_eq!(hash, SecretHash::sha256(&token));
        assert!(hash.verify(&token));
        assert!(!hash.verify(&ClientSecret::new(format!("{value}x"))));
    }
}
