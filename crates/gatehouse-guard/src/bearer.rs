//! The bearer token of a request: RFC 6750 §2.1, the `Authorization` header only.

use http::header::AUTHORIZATION;
use http::request::Parts;

use crate::error::Rejection;

/// Reads the token of `Authorization: Bearer <b64token>`.
///
/// Refuses, as `invalid_request` (400): two `Authorization` headers, a Bearer header
/// without a token or with characters outside RFC 6750's `b64token`, and a token in
/// the query string (RFC 6750 §2.3 allows it; RFC 9700 §2.4 says not to, as URLs are
/// logged). A request with no credentials, or with another scheme, gets the bare
/// challenge (§3.1: "SHOULD NOT include an error code").
pub fn bearer_token(parts: &Parts) -> Result<&str, Rejection> {
    if query_has_access_token(parts.uri.query()) {
        return Err(Rejection::InvalidRequest(
            "Bearer tokens are not accepted in the query string; send them in the Authorization header.",
        ));
    }
    let mut headers = parts.headers.get_all(AUTHORIZATION).iter();
    let Some(header) = headers.next() else {
        return Err(Rejection::MissingToken);
    };
    if headers.next().is_some() {
        return Err(Rejection::InvalidRequest("The Authorization header is repeated."));
    }
    let malformed = Rejection::InvalidRequest("The Authorization header is not a valid Bearer credential.");
    let header = header.to_str().map_err(|_| malformed.clone())?;
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(Rejection::MissingToken);
    }
    let token = rest.trim_start_matches(' ');
    if is_b64token(token) {
        Ok(token)
    } else {
        Err(malformed)
    }
}

/// RFC 6750 §2.1: `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
fn is_b64token(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/'))
}

fn query_has_access_token(query: Option<&str>) -> bool {
    query.is_some_and(|q| {
        q.split('&')
            .any(|pair| pair.split('=').next() == Some("access_token"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(uri: &str, authorization: &[&[u8]]) -> Parts {
        let mut builder = http::Request::builder().uri(uri);
        for value in authorization {
            builder = builder.header(AUTHORIZATION, http::HeaderValue::from_bytes(value).unwrap());
        }
        builder.body(()).unwrap().into_parts().0
    }

    #[test]
    fn reads_the_bearer_token() {
        assert_eq!(
            bearer_token(&parts("/", &[b"Bearer abc.def-_~+/=="])),
            Ok("abc.def-_~+/==")
        );
        assert_eq!(bearer_token(&parts("/", &[b"bearer  abc"])), Ok("abc"));
        assert_eq!(bearer_token(&parts("/?q=1", &[b"BEARER abc"])), Ok("abc"));
    }

    #[test]
    fn no_credentials_or_another_scheme_is_the_bare_challenge() {
        assert_eq!(bearer_token(&parts("/", &[])), Err(Rejection::MissingToken));
        assert_eq!(
            bearer_token(&parts("/", &[b"Basic YTpi"])),
            Err(Rejection::MissingToken)
        );
    }

    #[test]
    fn malformed_requests_are_invalid_request() {
        for header in [
            &b"Bearer"[..],
            b"Bearer ",
            b"Bearer a b",
            b"Bearer a\"b",
            b"Bearer =",
            b"Bearer \xff",
        ] {
            let rejection = bearer_token(&parts("/", &[header])).unwrap_err();
            assert!(matches!(rejection, Rejection::InvalidRequest(_)), "{header:?}");
        }
        let twice = parts("/", &[b"Bearer a", b"Bearer b"]);
        assert!(matches!(bearer_token(&twice), Err(Rejection::InvalidRequest(_))));
        let query = parts("/x?a=1&access_token=abc", &[b"Bearer abc"]);
        assert!(matches!(bearer_token(&query), Err(Rejection::InvalidRequest(_))));
        let query_only = parts("/x?access_token=abc", &[]);
        assert!(matches!(
            bearer_token(&query_only),
            Err(Rejection::InvalidRequest(_))
        ));
    }
}
