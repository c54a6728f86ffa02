//! The client's credentials and how they are presented: a secret (RFC 6749
//! §2.3.1), a signed assertion (RFC 7523 §2.2), or a TLS client certificate (RFC
//! 8705 §2).

use std::fmt;
use std::time::SystemTime;

use reqwest::{RequestBuilder, Url};
use secrecy::{ExposeSecret, SecretString};

use crate::assertion::{PrivateKey, JWT_BEARER_ASSERTION};
use crate::error::Error;

/// How the client authenticates to the token endpoint.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ClientAuthMethod {
    /// `client_secret_basic` (the default, and the method RFC 6749 §2.3.1
    /// says every server must support): HTTP Basic with the form-encoded id
    /// and secret.
    #[default]
    ClientSecretBasic,
    /// `client_secret_post`: `client_id` and `client_secret` in the form body.
    ClientSecretPost,
}

/// A confidential client's id and how it proves it: a secret, a private key
/// (`private_key_jwt`), or the TLS client certificate of the connection
/// (`tls_client_auth`). `Debug` shows neither secret nor key.
#[derive(Clone)]
pub struct ClientCredentials {
    client_id: String,
    proof: Proof,
}

#[derive(Clone)]
enum Proof {
    /// RFC 6749 §2.3.1.
    Secret {
        secret: SecretString,
        method: ClientAuthMethod,
    },
    /// RFC 7523 §2.2: a JWT signed with this key, fresh for every request.
    PrivateKeyJwt(PrivateKey),
    /// RFC 8705 §2: the certificate of the TLS connection; the request names the
    /// client only.
    TlsClientAuth,
}

impl ClientCredentials {
    /// `client_id` and `client_secret`, presented with `client_secret_basic`.
    pub fn new(client_id: impl Into<String>, client_secret: SecretString) -> Self {
        ClientCredentials {
            client_id: client_id.into(),
            proof: Proof::Secret {
                secret: client_secret,
                method: ClientAuthMethod::default(),
            },
        }
    }

    /// `private_key_jwt` (RFC 7523 §2.2): every token, revocation and
    /// introspection request carries a new assertion signed with `key`: `iss` and
    /// `sub` the client id, `aud` the URL of the endpoint it is sent to, `exp` 60 s
    /// after `iat`, and a random `jti`, so that no assertion is ever sent twice (a
    /// retried request gets a new one as well). The server holds the public key.
    pub fn private_key_jwt(client_id: impl Into<String>, key: PrivateKey) -> Self {
        ClientCredentials {
            client_id: client_id.into(),
            proof: Proof::PrivateKeyJwt(key),
        }
    }

    /// `tls_client_auth` or `self_signed_tls_client_auth` (RFC 8705 §2): requests
    /// name the client (`client_id` in the body) and the TLS client certificate
    /// proves it, so the HTTP client must present one: give it with
    /// [`OAuthClientBuilder::client_certificate_pem`](crate::OAuthClientBuilder::client_certificate_pem),
    /// or build your own `reqwest::Client` with an identity.
    pub fn tls_client_auth(client_id: impl Into<String>) -> Self {
        ClientCredentials {
            client_id: client_id.into(),
            proof: Proof::TlsClientAuth,
        }
    }

    /// Presents a client secret with `method` instead of `client_secret_basic`.
    /// Credentials without a secret have one presentation only, which this does not
    /// change.
    pub fn auth_method(mut self, method: ClientAuthMethod) -> Self {
        if let Proof::Secret { method: current, .. } = &mut self.proof {
            *current = method;
        }
        self
    }

    /// The client id.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The name of the authentication method, as servers register it
    /// (`token_endpoint_auth_method`, RFC 7591 §2).
    pub fn method_name(&self) -> &'static str {
        match &self.proof {
            Proof::Secret {
                method: ClientAuthMethod::ClientSecretBasic,
                ..
            } => "client_secret_basic",
            Proof::Secret {
                method: ClientAuthMethod::ClientSecretPost,
                ..
            } => "client_secret_post",
            Proof::PrivateKeyJwt(_) => "private_key_jwt",
            Proof::TlsClientAuth => "tls_client_auth",
        }
    }

    /// Adds the credentials to a token, revocation or introspection request to
    /// `endpoint` whose other form parameters are `form`, and sets the form as its
    /// body. Fails only when an assertion cannot be signed.
    pub(crate) fn authenticate(
        &self,
        request: RequestBuilder,
        endpoint: &Url,
        form: &[(&str, &str)],
    ) -> Result<RequestBuilder, Error> {
        match &self.proof {
            Proof::Secret {
                secret,
                method: ClientAuthMethod::ClientSecretBasic,
            } => {
                // RFC 6749 §2.3.1: id and secret are form-encoded first, then
                // joined by ':' and base64-encoded. Without that step a ':' in
                // the id, or a '%' or non-ASCII in the secret, authenticates
                // as something else.
                let id = form_urlencode(&self.client_id);
                let secret = SecretString::from(form_urlencode(secret.expose_secret()));
                Ok(request.basic_auth(id, Some(secret.expose_secret())).form(form))
            }
            Proof::Secret {
                secret,
                method: ClientAuthMethod::ClientSecretPost,
            } => {
                let mut form = form.to_vec();
                form.push(("client_id", &self.client_id));
                form.push(("client_secret", secret.expose_secret()));
                Ok(request.form(&form))
            }
            Proof::PrivateKeyJwt(key) => {
                let assertion = key.assertion(&self.client_id, &audience(endpoint), wall_clock())?;
                let mut form = form.to_vec();
                // RFC 7521 §4.2: client_id is optional beside an assertion; sending
                // it lets servers that look the client up by it do so.
                form.push(("client_id", &self.client_id));
                form.push(("client_assertion_type", JWT_BEARER_ASSERTION));
                form.push(("client_assertion", assertion.expose_secret()));
                Ok(request.form(&form))
            }
            Proof::TlsClientAuth => {
                let mut form = form.to_vec();
                // RFC 8705 §2: "the client_id parameter ... MUST be included".
                form.push(("client_id", &self.client_id));
                Ok(request.form(&form))
            }
        }
    }
}

/// The `aud` of an assertion for `endpoint`: its URL without query or fragment,
/// which is how servers compare it (RFC 7523 §3 names the token endpoint URL).
fn audience(endpoint: &Url) -> String {
    let mut audience = endpoint.clone();
    audience.set_query(None);
    audience.set_fragment(None);
    audience.to_string()
}

/// Now, as the wall-clock time an assertion's `iat` and `exp` are in.
fn wall_clock() -> SystemTime {
    // Assertion times are read by another machine's clock: wall-clock time is the
    // only meaningful one here (token expiry uses tokio's clock throughout).
    #[allow(clippy::disallowed_methods)]
    SystemTime::now()
}

impl fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("ClientCredentials");
        debug.field("client_id", &self.client_id);
        match &self.proof {
            Proof::Secret { method, .. } => debug
                .field("client_secret", &"[redacted]")
                .field("method", method),
            Proof::PrivateKeyJwt(key) => debug.field("private_key_jwt", key),
            Proof::TlsClientAuth => debug.field("method", &"tls_client_auth"),
        };
        debug.finish()
    }
}

/// `application/x-www-form-urlencoded` serialisation of one value (the
/// WHATWG byte serializer RFC 6749 appendix B refers to): alphanumerics and
/// `*-._` stay, space becomes `+`, every other byte becomes `%XX`.
pub(crate) fn form_urlencode(value: &str) -> String {
    let mut encoded = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                encoded.push(char::from(byte))
            }
            b' ' => encoded.push('+'),
            _ => {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                encoded.push('%');
                encoded.push(char::from(HEX[usize::from(byte >> 4)]));
                encoded.push(char::from(HEX[usize::from(byte & 0xf)]));
            }
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_encoding_follows_the_whatwg_serializer() {
        assert_eq!(form_urlencode("plain-id_1.*"), "plain-id_1.*");
        assert_eq!(form_urlencode("a b:c%d+e/é"), "a+b%3Ac%25d%2Be%2F%C3%A9");
    }

    fn authorization(credentials: &ClientCredentials) -> (Option<String>, String) {
        let request = credentials
            .authenticate(
                reqwest::Client::new().post("http://127.0.0.1/token"),
                &Url::parse("http://127.0.0.1/token").unwrap(),
                &[("grant_type", "client_credentials")],
            )
            .unwrap()
            .build()
            .unwrap();
        let header = request
            .headers()
            .get("authorization")
            .map(|value| value.to_str().unwrap().to_string());
        let body = String::from_utf8(request.body().unwrap().as_bytes().unwrap().to_vec()).unwrap();
        (header, body)
    }

    #[test]
    fn basic_encodes_id_and_secret_before_base64() {
        let credentials = ClientCredentials::new("my:app", SecretString::from("s3cr%t é"));
        let (header, body) = authorization(&credentials);
        // base64("my%3Aapp:s3cr%25t+%C3%A9")
        assert_eq!(header.as_deref(), Some("Basic bXklM0FhcHA6czNjciUyNXQrJUMzJUE5"));
        assert_eq!(body, "grant_type=client_credentials");
    }

    #[test]
    fn post_puts_the_credentials_in_the_body() {
        let credentials = ClientCredentials::new("my app", SecretString::from("s&cret"))
            .auth_method(ClientAuthMethod::ClientSecretPost);
        let (header, body) = authorization(&credentials);
        assert_eq!(header, None);
        assert_eq!(
            body,
            "grant_type=client_credentials&client_id=my+app&client_secret=s%26cret"
        );
    }

    #[test]
    fn tls_client_auth_names_the_client_only() {
        let credentials =
            ClientCredentials::tls_client_auth("my app").auth_method(ClientAuthMethod::ClientSecretPost);
        assert_eq!(credentials.method_name(), "tls_client_auth");
        let (header, body) = authorization(&credentials);
        assert_eq!(header, None);
        assert_eq!(body, "grant_type=client_credentials&client_id=my+app");
    }

    #[test]
    fn the_audience_is_the_endpoint_without_query() {
        let url = Url::parse("https://as.example/tenant/oauth/token?x=1").unwrap();
        assert_eq!(audience(&url), "https://as.example/tenant/oauth/token");
    }

    #[test]
    fn debug_hides_the_secret() {
        let credentials = ClientCredentials::new("app", SecretString::from("hunter2-secret"));
        let debug = format!("{credentials:?}");
        assert!(debug.contains("app") && debug.contains("[redacted]"), "{debug}");
        assert!(!debug.contains("hunter2"), "{debug}");
    }
}
