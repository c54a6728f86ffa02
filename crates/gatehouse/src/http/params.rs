//! Request parameters from a form or JSON body, with every rejection an OAuth error:
//! no request ever gets axum's plain-text rejection.

use axum::body::Body;
use axum::extract::{FromRequest, Request};
use axum::http::header;
use gatehouse_core::request::Params;
use gatehouse_core::OAuthError;
use percent_encoding::percent_decode;
use serde::de::{Deserializer, MapAccess, Visitor};

use super::error::ApiError;

/// The largest body the OAuth endpoints read.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// Parameters of an OAuth request, checked for repeats (RFC 6749 §3.2).
#[derive(Debug)]
pub struct OAuthParams(pub Params);

impl<S: Send + Sync> FromRequest<S> for OAuthParams {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, ApiError> {
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
        let body = read_body(req.into_body()).await?;
        let pairs = match content_type.as_deref() {
            Some("application/x-www-form-urlencoded") => parse_form(&body)?,
            Some("application/json") => parse_json(&body)?,
            _ => {
                return Err(OAuthError::invalid_request(
                    "The body must be application/x-www-form-urlencoded or application/json.",
                )
                .into())
            }
        };
        Ok(Self(Params::new(pairs)?))
    }
}

async fn read_body(body: Body) -> Result<Vec<u8>, ApiError> {
    match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(bytes) => Ok(bytes.to_vec()),
        Err(err) => {
            let too_large =
                std::error::Error::source(&err).is_some_and(|e| e.is::<http_body_util::LengthLimitError>());
            if too_large {
                Err(ApiError::PayloadTooLarge)
            } else {
                Err(OAuthError::invalid_request("The request body could not be read.").into())
            }
        }
    }
}

/// Parses `application/x-www-form-urlencoded` strictly: names and values must decode
/// to UTF-8 (a lossy decoder would let two different inputs mean the same thing).
pub fn parse_form(body: &[u8]) -> Result<Vec<(String, String)>, OAuthError> {
    let malformed = || OAuthError::invalid_request("The form body is not valid UTF-8 form encoding.");
    let decode = |part: &[u8]| -> Result<String, OAuthError> {
        let spaced: Vec<u8> = part.iter().map(|&b| if b == b'+' { b' ' } else { b }).collect();
        percent_decode(&spaced)
            .decode_utf8()
            .map(|s| s.into_owned())
            .map_err(|_| malformed())
    };
    body.split(|&b| b == b'&')
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
