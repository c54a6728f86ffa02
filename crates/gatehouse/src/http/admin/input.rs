//! What an admin request carries, read strictly: a JSON body ([`JsonBody`],
//! [`OptionalJsonBody`]), the query of a list ([`PageQuery`]) and an id in the path
//! ([`PathId`]). Every refusal is a [`Problem`] naming what is at fault, never
//! axum's plain-text rejection, and never a value that was sent (it may be a secret).

use std::time::Duration;

use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use percent_encoding::percent_decode;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

use super::problem::Problem;
use crate::http::body::{is_json, read_limited, BodyError};
use crate::http::AppState;

/// The largest body the admin API reads.
pub use crate::http::body::MAX_JSON_BODY_BYTES as MAX_BODY_BYTES;

/// A JSON body the endpoint needs, deserialized into `T`.
pub struct JsonBody<T>(pub T);

/// A JSON body the endpoint can do without: an empty body, with or without a
/// content type, is `None`.
pub struct OptionalJsonBody<T>(pub Option<T>);

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Problem> {
        let body = read_json_body(req, state.body_timeout, false).await?;
        parse_json(&body).map(JsonBody)
    }
}

impl<T: DeserializeOwned> FromRequest<AppState> for OptionalJsonBody<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Problem> {
        let body = read_json_body(req, state.body_timeout, true).await?;
        if body.is_empty() {
            return Ok(OptionalJsonBody(None));
        }
        parse_json(&body).map(|value| OptionalJsonBody(Some(value)))
    }
}

fn unsupported_media_type() -> Problem {
    Problem::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "the body must be JSON, sent with Content-Type: application/json",
    )
}

/// Reads the body of a request that must be JSON (or, where `optional`, may be
/// empty): at most [`MAX_BODY_BYTES`], within `timeout`.
async fn read_json_body(req: Request, timeout: Duration, optional: bool) -> Result<Vec<u8>, Problem> {
    let json = is_json(req.headers());
    // A body labelled as something else is refused before it is read.
    if json == Some(false) {
        return Err(unsupported_media_type());
    }
    let body = read_limited(req.into_body(), MAX_BODY_BYTES, timeout)
        .await
        .map_err(|e| match e {
            BodyError::Timeout => {
                Problem::new(StatusCode::REQUEST_TIMEOUT, "the body took too long to arrive")
            }
            BodyError::TooLarge => Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the body is larger than {MAX_BODY_BYTES} bytes"),
            ),
            BodyError::Unreadable => Problem::bad_request("the body could not be read"),
        })?;
    match json {
        Some(_) => Ok(body),
        // An unlabelled empty body is no body, where none is needed.
        None if optional && body.is_empty() => Ok(body),
        None => Err(unsupported_media_type()),
    }
}

/// Deserializes `body` as `T`: all of it, one JSON object. (serde would also take
/// an array for a struct, its members in order: `[]` for a body of no members.)
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, Problem> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'[') {
        return Err(Problem::bad_request(
            "the body must be a JSON object, not an array",
        ));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(json_problem)?;
    // Nothing but white space may follow the value.
    deserializer
        .end()
        .map_err(|err| Problem::bad_request(format!("malformed JSON: {err}")))?;
    Ok(value)
}

/// The problem of a body that does not parse, or does not fit its type.
fn json_problem(err: serde_path_to_error::Error<serde_json::Error>) -> Problem {
    use serde_json::error::Category;
    let path = err.path().clone();
    let inner = err.into_inner();
    match inner.classify() {
        // serde_json's message says where: "... at line 1 column 9".
        Category::Syntax | Category::Eof | Category::Io => {
            Problem::bad_request(format!("malformed JSON: {inner}"))
        }
        Category::Data => {
            let full = inner.to_string();
            let message = without_position(&full);
            // The member the error is about: the first step of the path, or, for
            // errors about the object itself, the member its message names.
            let member = path
                .iter()
                .next()
                .and_then(|segment| match segment {
                    serde_path_to_error::Segment::Map { key } => Some(key.clone()),
                    _ => None,
                })
                .or_else(|| named_member(message).map(str::to_owned));
            match member {
                Some(member) => {
                    // The name as sent may hold anything; the detail stays one printable line.
                    let detail = format!("{}: {}", member.escape_debug(), describe(message));
                    Problem::invalid(member, detail)
                }
                None => Problem::bad_request(format!(
                    "the body must be a JSON object with the documented members: {}",
                    describe(message)
                )),
            }
        }
    }
}

/// serde_json's message without its " at line L column C": the member is named.
fn without_position(message: &str) -> &str {
    match message.rfind(" at line ") {
        Some(at) => &message[..at],
        None => message,
    }
}

/// The member named in a serde message about an object: missing, unknown, repeated.
fn named_member(message: &str) -> Option<&str> {
    ["missing field `", "unknown field `", "duplicate field `"]
        .iter()
        .find_map(|prefix| message.strip_prefix(prefix))
        .and_then(|rest| rest.split_once('`'))
        .map(|(name, _)| name)
}

/// A serde message in this API's words, without the value that was sent: "invalid
/// type: integer `12345678`, expected a string" may be a password.
fn describe(message: &str) -> String {
    if message.starts_with("missing field `") {
        return "this member is required".to_owned();
    }
    if message.starts_with("duplicate field `") {
        return "this member appears more than once".to_owned();
    }
    if let Some(rest) = message.strip_prefix("unknown field `") {
        // "unknown field `colour`, expected one of `name`, ...": keep the list.
        return match rest.split_once("`, ") {
            Some((_, expected)) => format!("unknown member; {expected}"),
            None => "unknown member".to_owned(),
        };
    }
    for kind in ["invalid type", "invalid value", "invalid length"] {
        if message.starts_with(kind) {
            return match message.rsplit_once(", expected ") {
                Some((_, expected)) => format!("{kind}, expected {expected}"),
                None => kind.to_owned(),
            };
        }
    }
    message.to_owned()
}

/// `Option<Option<T>>` for a member that may be absent (`None`, unchanged), `null`
/// (`Some(None)`, back to the default) or a value. Use with `#[serde(default,
/// deserialize_with = "nullable")]`.
pub fn nullable<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// `Option<T>` for a member that may be absent but, when present, must be a `T`:
/// `null` is refused as the wrong type, not read as "absent". Use with
/// `#[serde(default, deserialize_with = "present")]`.
pub fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// A secret or password from a body: never shown by `Debug`.
pub struct SecretInput(pub gatehouse_core::ClientSecret);

impl<'de> Deserialize<'de> for SecretInput {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(|s| Self(gatehouse_core::ClientSecret::new(s)))
    }
}

/// The query of a list: `limit` and `after`, nothing else.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PageQuery {
    /// The page size asked for.
    pub limit: Option<i64>,
    /// The cursor: the last id of the previous page.
    pub after: Option<String>,
}

impl PageQuery {
    /// Parses a query string strictly: UTF-8 after percent-decoding, each parameter
    /// once, none but `limit` and `after`.
    pub fn parse(query: &str) -> Result<Self, Problem> {
        let mut page = Self::default();
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let name =
                decode(name).ok_or_else(|| Problem::bad_request("a query parameter name is not UTF-8"))?;
            let value = decode(value).ok_or_else(|| {
                Problem::invalid(name.clone(), format!("{name}: not UTF-8 after percent-decoding"))
            })?;
            match name.as_str() {
                "limit" if page.limit.is_none() => {
                    let limit = value
                        .parse::<i64>()
                        .map_err(|_| Problem::invalid("limit", "limit: must be an integer"))?;
                    page.limit = Some(limit);
                }
                "after" if page.after.is_none() => page.after = Some(value),
                "limit" | "after" => {
                    return Err(Problem::invalid(
                        name.clone(),
                        format!("{name}: given more than once"),
                    ))
                }
                _ => {
                    let shown = name.escape_debug().to_string();
                    return Err(Problem::invalid(
                        name,
                        format!("{shown}: unknown query parameter; a list takes limit and after"),
                    ));
                }
            }
        }
        Ok(page)
    }
}

fn decode(text: &str) -> Option<String> {
    let spaced = text.replace('+', " ");
    percent_decode(spaced.as_bytes())
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

impl<S: Send + Sync> FromRequestParts<S> for PageQuery {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Problem> {
        Self::parse(parts.uri.query().unwrap_or_default())
    }
}

/// The id in a path (`/clients/{id}`), percent-decoded; it must be UTF-8. What else
/// makes an id valid is the admin operations' to say.
pub struct PathId(pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        Path::<String>::from_request_parts(parts, state)
            .await
            .map(|Path(id)| PathId(id))
            .map_err(|_| Problem::bad_request("the id in the path is not UTF-8 after percent-decoding"))
    }
}

#[cfg(test)]
mod tests {
    use serde::de::IgnoredAny;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        #[serde(default)]
        grant_types: Option<Vec<String>>,
        #[serde(default, deserialize_with = "nullable")]
        token_ttl: Option<Option<i64>>,
        #[serde(default, deserialize_with = "present")]
        can_introspect: Option<bool>,
        #[serde(default, deserialize_with = "present")]
        client_id: Option<IgnoredAny>,
        #[serde(default)]
        password: Option<SecretInput>,
    }

    fn refused(json: &str) -> Problem {
        match parse_json::<Body>(json.as_bytes()) {
            Ok(body) => panic!("{json} was accepted: {body:?}"),
            Err(problem) => problem,
        }
    }

    impl std::fmt::Debug for SecretInput {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("[redacted]")
        }
    }

    #[test]
    fn absent_null_and_value_are_three_things() {
        let absent: Body = parse_json(br#"{"name": "x"}"#).unwrap();
        assert_eq!(absent.token_ttl, None);
        let null: Body = parse_json(br#"{"name": "x", "token_ttl": null}"#).unwrap();
        assert_eq!(null.token_ttl, Some(None));
        let value: Body = parse_json(br#"{"name": "x", "token_ttl": 60}"#).unwrap();
        assert_eq!(value.token_ttl, Some(Some(60)));
        let id: Body = parse_json(br#"{"name": "x", "client_id": null}"#).unwrap();
        assert!(
            id.client_id.is_some(),
            "a member that must not be sent is seen even as null"
        );
    }

    #[test]
    fn members_at_fault_are_named() {
        for (json, field) in [
            (r#"{"name": 5}"#, "name"),
            (r#"{"name": null}"#, "name"),
            (r#"{"grant_types": []}"#, "name"),
            (r#"{"name": "x", "colour": "red"}"#, "colour"),
            (r#"{"name": "x", "name": "y"}"#, "name"),
            (r#"{"name": "x", "grant_types": [5]}"#, "grant_types"),
            (r#"{"name": "x", "grant_types": "x"}"#, "grant_types"),
            (r#"{"name": "x", "token_ttl": 1.5}"#, "token_ttl"),
            (r#"{"name": "x", "can_introspect": null}"#, "can_introspect"),
            (r#"{"name": "x", "password": 12345678}"#, "password"),
        ] {
            let problem = refused(json);
            assert_eq!(problem.status(), StatusCode::BAD_REQUEST, "{json}");
            assert_eq!(problem.field(), Some(field), "{json}: {problem:?}");
            assert!(problem.detail().starts_with(field), "{json}: {problem:?}");
            assert!(
                !problem.detail().contains("12345678"),
                "a value was echoed: {problem:?}"
            );
        }
    }

    #[test]
    fn malformed_json_says_where() {
        for json in [
            r#"{"name": "#,
            r#"{"name": "x",}"#,
            r#"{"name": "x"} trailing"#,
            "\u{feff}{}",
            "",
        ] {
            let problem = refused(json);
            assert_eq!(problem.status(), StatusCode::BAD_REQUEST);
            assert_eq!(problem.field(), None, "{json}");
            assert!(
                problem.detail().contains("line") && problem.detail().contains("column"),
                "{json}: {problem:?}"
            );
        }
        for json in ["[]", "null", r#""name""#] {
            let problem = refused(json);
            assert_eq!(
                (problem.status(), problem.field()),
                (StatusCode::BAD_REQUEST, None),
                "{json}"
            );
        }
    }

    #[test]
    fn page_queries() {
        assert_eq!(PageQuery::parse("").unwrap(), PageQuery::default());
        assert_eq!(
            PageQuery::parse("limit=5&after=a%20b+c").unwrap(),
            PageQuery {
                limit: Some(5),
                after: Some("a b c".into())
            }
        );
        for (query, field) in [
            ("limit=1e3", "limit"),
            ("limit=%00", "limit"),
            ("limit=99999999999999999999", "limit"),
            ("limit=1&limit=2", "limit"),
            ("cursor=x", "cursor"),
            ("after=%FF", "after"),
        ] {
            let problem = PageQuery::parse(query).unwrap_err();
            assert_eq!(problem.field(), Some(field), "{query}");
            assert!(problem.detail().starts_with(field), "{query}: {problem:?}");
        }
    }
}
