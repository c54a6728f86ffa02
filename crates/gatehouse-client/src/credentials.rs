//! The client's credentials and how they are presented (RFC 6749 §2.3.1).

use std::fmt;

use reqwest::RequestBuilder;
use secrecy::{ExposeSecret, SecretString};

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

/// A confidential client's id and secret. `Debug` does not show the secret.
#[derive(Clone)]
pub struct ClientCredentials {
    client_id: String,
    client_secret: SecretString,
    method: ClientAuthMethod,
}

impl ClientCredentials {
    /// `client_id` and `client_secret`, presented with `client_secret_basic`.
    pub fn new(client_id: impl Into<String>, client_secret: SecretString) -> Self {
        ClientCredentials {
            client_id: client_id.into(),
            client_secret,
            method: ClientAuthMethod::default(),
        }
    }

    /// Presents the credentials with `method` instead.
    pub fn auth_method(mut self, method: ClientAuthMethod) -> Self {
        self.method = method;
        self
    }

    /// The client id.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// Adds the credentials to a token, revocation or introspection request
    /// whose other form parameters are `form`, and sets the form as its body.
    pub(crate) fn authenticate(&self, request: RequestBuilder, form: &[(&str, &str)]) -> RequestBuilder {
        match self.method {
            ClientAuthMethod::ClientSecretBasic => {
                // RFC 6749 §2.3.1: id and secret are form-encoded first, then
                // joined by ':' and base64-encoded. Without that step a ':' in
                // the id, or a '%' or non-ASCII in the secret, authenticates
                // as something else.
                let id = form_urlencode(&self.client_id);
                let secret = SecretString::from(form_urlencode(self.client_secret.expose_secret()));
                request.basic_auth(id, Some(secret.expose_secret())).form(form)
            }
            ClientAuthMethod::ClientSecretPost => {
                let mut form = form.to_vec();
                form.push(("client_id", &self.client_id));
                form.push(("client_secret", self.client_secret.expose_secret()));
                request.form(&form)
            }
        }
    }
}

impl fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .field("method", &self.method)
            .finish()
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
                &[("grant_type", "client_credentials")],
            )
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
    fn debug_hides_the_secret() {
        let credentials = ClientCredentials::new("app", SecretString::from("hunter2-secret"));
        let debug = format!("{credentials:?}");
        assert!(debug.contains("app") && debug.contains("[redacted]"), "{debug}");
        assert!(!debug.contains("hunter2"), "{debug}");
    }
}
