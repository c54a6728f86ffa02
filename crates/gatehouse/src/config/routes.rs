//! `[[routes]]`: a standard endpoint served at one more path, with the small, explicit
//! differences an existing API's clients rely on (`docs/migrating.md`). Checked once
//! at start-up; a bad entry stops it with one line naming the route and the problem.

use gatehouse_core::{GrantType, TokenOptions};

use super::file::closest;
use super::ConfigError;

/// The standard endpoint a route serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `POST /oauth/token` (RFC 6749 §3.2).
    Token,
    /// `POST /oauth/revoke` (RFC 7009).
    Revoke,
    /// `POST /oauth/introspect` (RFC 7662).
    Introspect,
}

impl Endpoint {
    /// The name a route's `endpoint` key uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::Revoke => "revoke",
            Self::Introspect => "introspect",
        }
    }
}

/// Statuses a route may answer an unknown client with. 401 is the standard; the others
/// are what existing APIs were seen to use.
const UNKNOWN_CLIENT_STATUSES: [u16; 4] = [400, 401, 403, 404];

/// One checked `[[routes]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The extra path.
    pub path: String,
    /// What it serves.
    pub endpoint: Endpoint,
    /// Serves `GET`, with the parameters in the query string.
    pub get: bool,
    /// Serves `POST`.
    pub post: bool,
    /// The status of `invalid_client` for an unknown client id; `None`: 401, like a
    /// wrong secret.
    pub unknown_client_status: Option<u16>,
    /// The token endpoint's differences.
    pub token: TokenOptions,
}

impl Route {
    /// Whether the route reads parameters from the query string: only where `GET` is
    /// served.
    pub fn reads_query(&self) -> bool {
        self.get
    }

    /// `GET,POST`, as configured.
    pub fn methods(&self) -> String {
        let mut methods = Vec::with_capacity(2);
        if self.get {
            methods.push("GET");
        }
        if self.post {
            methods.push("POST");
        }
        methods.join(",")
    }
}

const ROUTE_KEYS: &[&str] = &[
    "path",
    "endpoint",
    "methods",
    "default_grant_type",
    "unknown_client_status",
    "refresh_on_client_credentials",
];

/// Checks the `routes` value of the TOML file.
pub fn parse_routes(value: &toml::Value) -> Result<Vec<Route>, ConfigError> {
    let entries = value.as_array().ok_or_else(|| {
        ConfigError::new(
            "routes",
            "must be an array of tables, written [[routes]] in the file",
        )
    })?;
    let mut routes: Vec<Route> = Vec::with_capacity(entries.len());
    for (index, entry) in entries.iter().enumerate() {
        let number = index + 1;
        let route = parse_route(entry).map_err(|(path, problem)| {
            let name = match path {
                Some(path) => format!("route {number} ({path:?})"),
                None => format!("route {number}"),
            };
            ConfigError::new("routes", format!("{name}: {problem}"))
        })?;
        if let Some(at) = routes.iter().position(|earlier| earlier.path == route.path) {
            return Err(ConfigError::new(
                "routes",
                format!(
                    "route {number} ({:?}): has the same path as route {}",
                    route.path,
                    at + 1
                ),
            ));
        }
        routes.push(route);
    }
    Ok(routes)
}

/// Checks that no route takes a path the server serves anyway (`reserved`): the
/// server calls this with its own paths before it binds. An entry that ends with `/`
/// reserves a whole tree: `/admin/v1/` takes `/admin/v1` and every path under it.
pub fn check_reserved(routes: &[Route], reserved: &[&str]) -> Result<(), ConfigError> {
    let taken = |path: &str| {
        reserved.iter().find(|&&entry| match entry.strip_suffix('/') {
            Some(tree) if !tree.is_empty() => path == tree || path.starts_with(entry),
            _ => path == entry,
        })
    };
    match routes
        .iter()
        .enumerate()
        .find_map(|(index, route)| taken(&route.path).map(|entry| (index, route, entry)))
    {
        Some((index, route, entry)) => Err(ConfigError::new(
            "routes",
            format!(
                "route {} ({:?}): clashes with the standard endpoint {}",
                index + 1,
                route.path,
                entry.strip_suffix('/').unwrap_or(entry)
            ),
        )),
        None => Ok(()),
    }
}

/// A problem with one route: its path if known, and what is wrong.
type RouteProblem = (Option<String>, String);

fn parse_route(entry: &toml::Value) -> Result<Route, RouteProblem> {
    let table = entry
        .as_table()
        .ok_or((None, "must be a table, written [[routes]]".to_owned()))?;
    let path = match table.get("path") {
        Some(toml::Value::String(path)) => path.clone(),
        Some(_) => return Err((None, "path must be a string".into())),
        None => return Err((None, "path is missing".into())),
    };
    let fail = |problem: String| (Some(path.clone()), problem);
    if let Some(unknown) = table.keys().find(|k| !ROUTE_KEYS.contains(&k.as_str())) {
        let problem = match closest(unknown, ROUTE_KEYS.iter().copied()) {
            Some(meant) => format!("unknown key {unknown:?}: did you mean `{meant}`?"),
            None => format!("unknown key {unknown:?} (known: {})", ROUTE_KEYS.join(", ")),
        };
        return Err(fail(problem));
    }
    check_path(&path).map_err(fail)?;

    let endpoint = match table.get("endpoint") {
        Some(toml::Value::String(name)) => match name.as_str() {
            "token" => Endpoint::Token,
            "revoke" => Endpoint::Revoke,
            "introspect" => Endpoint::Introspect,
            _ => {
                return Err(fail(format!(
                    "endpoint {name:?} is not token, revoke or introspect"
                )))
            }
        },
        Some(_) => return Err(fail("endpoint must be a string".into())),
        None => return Err(fail("endpoint is missing (token, revoke or introspect)".into())),
    };

    let (get, post) = match table.get("methods") {
        None => (false, true),
        Some(toml::Value::Array(methods)) => parse_methods(methods).map_err(fail)?,
        Some(_) => return Err(fail("methods must be an array, like [\"POST\"]".into())),
    };

    let unknown_client_status = match table.get("unknown_client_status") {
        None => None,
        Some(toml::Value::Integer(status))
            if UNKNOWN_CLIENT_STATUSES
                .iter()
                .any(|allowed| i64::from(*allowed) == *status) =>
        {
            u16::try_from(*status).ok()
        }
        Some(_) => {
            return Err(fail(format!(
                "unknown_client_status must be one of {UNKNOWN_CLIENT_STATUSES:?}"
            )))
        }
    };

    let token_only = |key: &str| -> Result<(), RouteProblem> {
        if table.contains_key(key) && endpoint != Endpoint::Token {
            Err(fail(format!(
                "{key} applies to endpoint = \"token\" only, not {:?}",
                endpoint.as_str()
            )))
        } else {
            Ok(())
        }
    };
    token_only("default_grant_type")?;
    token_only("refresh_on_client_credentials")?;
    let default_grant_type = match table.get("default_grant_type") {
        None => None,
        Some(toml::Value::String(name)) => Some(name.parse::<GrantType>().map_err(|()| {
            fail(format!(
                "default_grant_type {name:?} is not client_credentials, password or refresh_token"
            ))
        })?),
        Some(_) => return Err(fail("default_grant_type must be a string".into())),
    };
    let refresh_on_client_credentials = match table.get("refresh_on_client_credentials") {
        None => false,
        Some(toml::Value::Boolean(on)) => *on,
        Some(_) => return Err(fail("refresh_on_client_credentials must be true or false".into())),
    };

    Ok(Route {
        path,
        endpoint,
        get,
        post,
        unknown_client_status,
        token: TokenOptions {
            default_grant_type,
            refresh_on_client_credentials,
        },
    })
}

/// A literal absolute path: no captures or wildcards (the router would read them as
/// patterns), no query, no fragment, no empty segment.
fn check_path(path: &str) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err("path must start with /".into());
    }
    if path.contains("//") {
        return Err("path has an empty segment (//)".into());
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || "/-._~!$&'()+,;=:@%".contains(c);
    if let Some(bad) = path.chars().find(|&c| !allowed(c)) {
        return Err(format!(
            "path holds {bad:?}; a route path is literal: letters, digits and -._~!$&'()+,;=:@%"
        ));
    }
    if path.split('/').any(|segment| segment.starts_with(':')) {
        return Err("a path segment must not start with ':' (it reads as a pattern)".into());
    }
    Ok(())
}

fn parse_methods(methods: &[toml::Value]) -> Result<(bool, bool), String> {
    if methods.is_empty() {
        return Err("methods must name at least one of GET, POST".into());
    }
    let (mut get, mut post) = (false, false);
    for method in methods {
        let seen = match method.as_str() {
            Some("GET") => &mut get,
            Some("POST") => &mut post,
            Some(other) => {
                return Err(format!(
                    "method {other:?} is not served; methods may be \"GET\" and \"POST\""
                ))
            }
            None => return Err("methods must be strings, like [\"GET\", \"POST\"]".into()),
        };
        if *seen {
            return Err(format!(
                "method {:?} is listed twice",
                method.as_str().unwrap_or_default()
            ));
        }
        *seen = true;
    }
    Ok((get, post))
}

#[cfg(test)]
mod tests {
    use super::*;

    const RESERVED: &[&str] = &["/oauth/token", "/healthz", "/admin/v1/"];

    fn parse(text: &str) -> Result<Vec<Route>, ConfigError> {
        let table: toml::Table = text.parse().unwrap();
        let routes = parse_routes(&table["routes"])?;
        check_reserved(&routes, RESERVED)?;
        Ok(routes)
    }

    fn problem(text: &str) -> String {
        let err = parse(text).unwrap_err();
        assert_eq!(err.key, "routes");
        assert!(!err.to_string().contains('\n'), "{err}");
        err.problem
    }

    #[test]
    fn every_key() {
        let routes = parse(
            r#"
            [[routes]]
            path = "/auth/token"
            endpoint = "token"
            methods = ["GET", "POST"]
            default_grant_type = "client_credentials"
            unknown_client_status = 404
            refresh_on_client_credentials = true

            [[routes]]
            path = "/connect/revoke"
            endpoint = "revoke"
            "#,
        )
        .unwrap();
        assert_eq!(
            routes[0],
            Route {
                path: "/auth/token".into(),
                endpoint: Endpoint::Token,
                get: true,
                post: true,
                unknown_client_status: Some(404),
                token: TokenOptions {
                    default_grant_type: Some(GrantType::ClientCredentials),
                    refresh_on_client_credentials: true,
                },
            }
        );
        assert!(routes[0].reads_query());
        assert_eq!(routes[0].methods(), "GET,POST");
        let revoke = &routes[1];
        assert_eq!(revoke.endpoint, Endpoint::Revoke);
        assert_eq!((revoke.get, revoke.post), (false, true), "default [\"POST\"]");
        assert_eq!(revoke.token, TokenOptions::default());
        assert!(!revoke.reads_query());
    }

    #[test]
    fn problems_name_the_route() {
        let cases = [
            (
                "[[routes]]\npath = \"/a\"\nendpoint = \"token\"\nmehtods = [\"GET\"]",
                "route 1 (\"/a\"): unknown key \"mehtods\": did you mean `methods`?",
            ),
            (
                "[[routes]]\npath = \"/a\"\nendpoint = \"token\"\nverbs = [\"GET\"]",
                "route 1 (\"/a\"): unknown key \"verbs\" (known: path, endpoint,",
            ),
            (
                "[[routes]]\npath = \"/oauth/token\"\nendpoint = \"token\"",
                "route 1 (\"/oauth/token\"): clashes with the standard endpoint /oauth/token",
            ),
            (
                "[[routes]]\npath = \"/admin/v1/clients\"\nendpoint = \"token\"",
                "route 1 (\"/admin/v1/clients\"): clashes with the standard endpoint /admin/v1",
            ),
            (
                "[[routes]]\npath = \"/admin/v1\"\nendpoint = \"token\"",
                "route 1 (\"/admin/v1\"): clashes with the standard endpoint /admin/v1",
            ),
            (
                "[[routes]]\npath = \"/a\"\nendpoint = \"token\"\n[[routes]]\npath = \"/a\"\nendpoint = \"revoke\"",
                "route 2 (\"/a\"): has the same path as route 1",
            ),
            (
                "[[routes]]\npath = \"/a\"\nendpoint = \"token\"\nmethods = [\"PUT\"]",
                "route 1 (\"/a\"): method \"PUT\" is not served",
            ),
            (
                "[[routes]]\npath = \"/a\"\nendpoint = \"token\"\nmethods = [\"get\"]",
                "method \"get\" is not served",
            ),
            (
                "[[routes]]\npath = \"/a\"\nendpoint = \"token\"\nmethods = []",
                "at least one",
            ),
            (
                "[[routes]]\npath = \"/a\"\nendpoint = \"token\"\nmethods = [\"GET\", \"GET\"]",
                "listed twice",
            ),
            (
                "[[routes]]\npath = \"/a\"\nendpoint = \"token\"\nmethods = \"GET\"",
                "methods must be an array",
            ),
            ("[[routes]]\nendpoint = \"token\"", "route 1: path is missing"),
            ("[[routes]]\npath = \"/a\"", "endpoint is missing"),
            ("[[routes]]\npath = \"/a\"\nendpoint = \"authorize\"", "endpoint \"authorize\""),
            ("[[routes]]\npath = \"a\"\nendpoint = \"token\"", "must start with /"),
            ("[[routes]]\npath = \"/a/{id}\"\nendpoint = \"token\"", "literal"),
            ("[[routes]]\npath = \"/a/*rest\"\nendpoint = \"token\"", "literal"),
            ("[[routes]]\npath = \"/a/:id\"\nendpoint = \"token\"", "':'"),
            ("[[routes]]\npath = \"/a?x=1\"\nendpoint = \"token\"", "literal"),
            ("[[routes]]\npath = \"/a//b\"\nendpoint = \"token\"", "empty segment"),
            ("[[routes]]\npath = \"/a\\nb\"\nendpoint = \"token\"", "literal"),
            (
                "[[routes]]\npath = \"/a\"\nendpoint = \"token\"\nunknown_client_status = 500",
                "unknown_client_status must be one of",
            ),
            (
                "[[routes]]\npath = \"/a\"\nendpoint = \"token\"\nunknown_client_status = \"404\"",
                "unknown_client_status must be one of",
            ),
            (
                "[[routes]]\npath = \"/a\"\nendpoint = \"revoke\"\ndefault_grant_type = \"password\"",
                "default_grant_type applies to endpoint = \"token\" only",
            ),
            (
                "[[routes]]\npath = \"/a\"\nendpoint = \"introspect\"\nrefresh_on_client_credentials = true",
                "refresh_on_client_credentials applies to endpoint = \"token\" only",
            ),
            (
                "[[routes]]\npath = \"/a\"\nendpoint = \"token\"\ndefault_grant_type = \"implicit\"",
                "default_grant_type \"implicit\"",
            ),
            (
                "[[routes]]\npath = \"/a\"\nendpoint = \"token\"\nrefresh_on_client_credentials = \"yes\"",
                "true or false",
            ),
        ];
        for (text, expected) in cases {
            let problem = problem(text);
            assert!(
                problem.contains(expected),
                "{text:?}: {problem:?} lacks {expected:?}"
            );
        }
        let not_array: toml::Table = "routes = \"/a\"".parse().unwrap();
        let err = parse_routes(&not_array["routes"]).unwrap_err();
        assert!(err.problem.contains("[[routes]]"), "{err}");
    }

    #[test]
    fn paths_that_are_fine() {
        for path in [
            "/",
            "/token",
            "/api/v3/login",
            "/a/",
            "/v1/token:exchange",
            "/~x/%41",
        ] {
            assert_eq!(check_path(path), Ok(()), "{path}");
        }
    }
}
