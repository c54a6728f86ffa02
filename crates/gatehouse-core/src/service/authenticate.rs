//! Client authentication (RFC 6749 §2.3): a shared secret (§2.3.1), a client
//! assertion (`private_key_jwt`, RFC 7523 §2.2), or the TLS client certificate
//! (`tls_client_auth` and `self_signed_tls_client_auth`, RFC 8705 §2).
//!
//! A client authenticates only by the method family it is registered for: the two
//! secret methods are one credential in two encodings, and either serves a secret
//! client; a key or certificate client has no secret it could send, and a secret
//! client has no keys or certificate. A request of the wrong family is refused with
//! the same words as a wrong secret, so the answer does not tell how a client
//! authenticates.

use std::sync::Arc;

use super::TokenService;
use crate::assertion::{ClientAssertion, SignatureRefusal};
use crate::request::CLIENT_AUTH_FAILED;
use crate::secret::VerifiedSecrets;
use crate::{
    AuthContext, AuthMethod, Client, ClientAuth, ClientId, ClientSecret, OAuthError, PresentedCertificate,
    SecretHash,
};

/// No credentials: the request names no client it could be served for.
fn required() -> OAuthError {
    OAuthError::invalid_client(
        "Client authentication is required (client_secret_basic, client_secret_post, private_key_jwt, \
         or a TLS client certificate with client_id).",
        false,
    )
}

/// Credentials that do not authenticate a known client.
fn failed(basic: bool) -> OAuthError {
    OAuthError::invalid_client(CLIENT_AUTH_FAILED, basic)
}

/// No client has the presented id: the same words as [`failed`], marked apart for
/// the routes that answer it apart (`unknown_client_status`).
fn unknown(basic: bool) -> OAuthError {
    OAuthError::InvalidClient {
        description: CLIENT_AUTH_FAILED.into(),
        basic,
        unknown_client: true,
    }
}

impl TokenService {
    /// Authenticates the client of a request by its credentials, with what the
    /// server knows of the request in `context` (the audiences an assertion may
    /// name, the TLS client certificate). Every failure is `invalid_client`; an
    /// unknown client, a wrong secret and a method the client is not registered for
    /// read the same.
    pub async fn authenticate(
        &self,
        auth: &ClientAuth,
        context: &AuthContext,
    ) -> Result<Arc<Client>, OAuthError> {
        match auth {
            ClientAuth::Basic { client_id, secret } => {
                self.authenticate_secret(client_id, secret, true).await
            }
            ClientAuth::Post { client_id, secret } => {
                self.authenticate_secret(client_id, secret, false).await
            }
            ClientAuth::Assertion { client_id, assertion } => {
                self.authenticate_assertion(client_id, assertion.expose(), context)
                    .await
            }
            ClientAuth::ClientIdOnly { client_id } => match &context.certificate {
                Some(certificate) => self.authenticate_certificate(client_id, certificate).await,
                None => Err(required()),
            },
            ClientAuth::None => Err(required()),
        }
    }

    /// The client `client_id` names, if any.
    async fn find_client(&self, client_id: &str) -> Result<Option<Arc<Client>>, OAuthError> {
        match ClientId::parse(client_id) {
            Some(id) => Ok(self.stores.clients.find_client(&id).await?),
            None => Ok(None),
        }
    }

    /// `client_secret_basic` and `client_secret_post` (RFC 6749 §2.3.1).
    async fn authenticate_secret(
        &self,
        client_id: &str,
        secret: &ClientSecret,
        basic: bool,
    ) -> Result<Arc<Client>, OAuthError> {
        let Some(client) = self.find_client(client_id).await? else {
            // The work of a wrong generated secret, so that the time of the answer
            // does not tell an unknown id from a known one.
            std::hint::black_box(self.dummy_secret_hash.verify(secret));
            return Err(unknown(basic));
        };
        if !client.auth.method.uses_secret() {
            // A key or certificate client has no secret (its stored hash is of a
            // value never shown): the same work and answer as a wrong one.
            std::hint::black_box(self.dummy_secret_hash.verify(secret));
            return Err(failed(basic));
        }
        if self.verify_secret(&client, secret).await? {
            Ok(client)
        } else {
            Err(failed(basic))
        }
    }

    /// `private_key_jwt` (RFC 7523 §2.2, §3): the assertion's form, then its
    /// signature by one of the client's keys (fetched again once for an unknown
    /// `kid`: the client may have rotated), then its claims, then its replay record,
    /// written only for an assertion the client signed.
    ///
    /// An unknown client costs no dummy work: an assertion's client id is in clear
    /// in its `sub`, no secret, and the refusal reads as for a known client.
    async fn authenticate_assertion(
        &self,
        client_id: &str,
        text: &str,
        context: &AuthContext,
    ) -> Result<Arc<Client>, OAuthError> {
        let assertion = ClientAssertion::parse(text)?;
        let Some(client) = self.find_client(client_id).await? else {
            return Err(unknown(false));
        };
        if client.auth.method != AuthMethod::PrivateKeyJwt {
            return Err(failed(false));
        }
        let keys = self.client_keys.client_keys(&client, None).await?;
        match assertion.verify_signature(&keys) {
            Ok(()) => {}
            Err(SignatureRefusal::Refused(refusal)) => return Err(refusal),
            Err(SignatureRefusal::UnknownKid) => {
                let keys = self.client_keys.client_keys(&client, assertion.kid()).await?;
                match assertion.verify_signature(&keys) {
                    Ok(()) => {}
                    Err(SignatureRefusal::Refused(refusal)) => return Err(refusal),
                    Err(SignatureRefusal::UnknownKid) => {
                        return Err(OAuthError::invalid_client(
                            "The client assertion's kid names none of the client's keys (unknown kid).",
                            false,
                        ))
                    }
                }
            }
        }
        let accepted = assertion.check_claims(client.id.as_str(), &context.audiences, self.clock.now())?;
        let digest = accepted.replay_digest(client.id.as_str());
        if !self
            .stores
            .replays
            .first_use(&digest, accepted.record_until())
            .await?
        {
            return Err(OAuthError::invalid_client(
                "The assertion was used before.",
                false,
            ));
        }
        Ok(client)
    }

    /// `tls_client_auth` (RFC 8705 §2.1): a certificate that chains to a configured
    /// CA, with the subject DN the client registered (both in canonical form); or
    /// `self_signed_tls_client_auth` (§2.2): the very certificate registered as
    /// `x5c[0]` of one of the client's keys.
    async fn authenticate_certificate(
        &self,
        client_id: &str,
        certificate: &PresentedCertificate,
    ) -> Result<Arc<Client>, OAuthError> {
        let Some(client) = self.find_client(client_id).await? else {
            return Err(unknown(false));
        };
        let authenticated = match client.auth.method {
            AuthMethod::TlsClientAuth => {
                certificate.chain_trusted
                    && certificate.subject_dn.is_some()
                    && certificate.subject_dn == client.auth.tls_subject_dn
            }
            AuthMethod::SelfSignedTlsClientAuth => {
                let keys = self.client_keys.client_keys(&client, None).await?;
                keys.keys
                    .iter()
                    .any(|key| key.certificate.as_deref() == Some(certificate.der.as_slice()))
            }
            AuthMethod::ClientSecretBasic | AuthMethod::ClientSecretPost | AuthMethod::PrivateKeyJwt => false,
        };
        if authenticated {
            Ok(client)
        } else {
            Err(failed(false))
        }
    }

    /// Checks `secret` against the client's secret, then against its previous one
    /// while that is inside its grace period.
    async fn verify_secret(&self, client: &Client, secret: &ClientSecret) -> Result<bool, OAuthError> {
        if self.verify_against(client, &client.secret_hash, secret).await? {
            return Ok(true);
        }
        match client.previous_secret_at(self.clock.now()) {
            Some(previous) => self.verify_against(client, previous, secret).await,
            None => Ok(false),
        }
    }

    async fn verify_against(
        &self,
        client: &Client,
        hash: &SecretHash,
        secret: &ClientSecret,
    ) -> Result<bool, OAuthError> {
        if !hash.is_slow() {
            return Ok(hash.verify(secret));
        }
        let key = VerifiedSecrets::key(client.id.as_str(), hash, secret);
        if self.verified.contains(&key) {
            return Ok(true);
        }
        let ok = self.slow_hashes.verify(hash, secret).await?;
        if ok {
            self.verified.insert(key);
        }
        Ok(ok)
    }
}
