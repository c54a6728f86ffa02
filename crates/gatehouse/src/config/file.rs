//! The TOML file (`--config FILE` or `GATEHOUSE_CONFIG`): read once, every key checked
//! against the declaration ([`super::keys`]) before any value is used. A syntax error
//! names the line and column; a key that is no setting is an error that names its line
//! and, when one is close, the key that was probably meant.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::Spanned;

use super::keys::KEYS;
use super::ConfigError;

/// The one key of the file that is no flag: a list of tables (`[[routes]]`).
pub const ROUTES_KEY: &str = "routes";

/// A parsed configuration file.
#[derive(Debug)]
pub struct ConfigFile {
    path: PathBuf,
    text: String,
    entries: BTreeMap<String, Spanned<toml::Value>>,
}

impl ConfigFile {
    /// Reads and checks the file at `path`.
    pub fn read(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::new("config", format!("cannot read {}: {e}", path.display())))?;
        Self::parse(path, text)
    }

    /// Checks `text`, the contents of the file at `path`.
    pub fn parse(path: &Path, text: String) -> Result<Self, ConfigError> {
        let parsed: Result<BTreeMap<Spanned<String>, Spanned<toml::Value>>, _> = toml::from_str(&text);
        let parsed = parsed.map_err(|e| {
            // The message may run over several lines; the error is one.
            let message = e.message().lines().map(str::trim).collect::<Vec<_>>().join("; ");
            let at = e
                .span()
                .map(|span| format!(", {}", position(&text, span.start)))
                .unwrap_or_default();
            ConfigError::new(
                "config",
                format!("{} is not valid TOML{at}: {message}", path.display()),
            )
        })?;
        let mut entries = BTreeMap::new();
        for (key, value) in parsed {
            let span = key.span();
            let key = key.into_inner();
            if key != ROUTES_KEY && !KEYS.iter().any(|k| k.name == key) {
                let known = KEYS.iter().map(|k| k.name).chain([ROUTES_KEY]);
                let hint = did_you_mean(&key, known);
                return Err(ConfigError::new(
                    "config",
                    format!(
                        "unknown key {key:?} in {}, {}{hint}",
                        path.display(),
                        line(&text, span)
                    ),
                ));
            }
            entries.insert(key, value);
        }
        Ok(Self {
            path: path.to_owned(),
            text,
            entries,
        })
    }

    /// The value of `key`, if the file sets it.
    pub fn get(&self, key: &str) -> Option<&toml::Value> {
        self.entries.get(key).map(Spanned::get_ref)
    }

    /// Where the value of `key` is, for an error about it: `FILE, line 3`.
    pub fn location(&self, key: &str) -> String {
        match self.entries.get(key) {
            Some(value) => format!("{}, {}", self.path.display(), line(&self.text, value.span())),
            None => self.path.display().to_string(),
        }
    }
}

/// `line 3` of the byte range `span` in `text`.
fn line(text: &str, span: Range<usize>) -> String {
    let before = text.get(..span.start).unwrap_or(text);
    format!("line {}", before.matches('\n').count() + 1)
}

/// `line 3, column 7` of byte `offset` in `text` (columns count characters).
fn position(text: &str, offset: usize) -> String {
    let before = text.get(..offset).unwrap_or(text);
    let column = before.rsplit('\n').next().unwrap_or_default().chars().count() + 1;
    format!("line {}, column {column}", before.matches('\n').count() + 1)
}

/// `: did you mean `listen`?` when one of `known` is close to `given`, else nothing.
pub fn did_you_mean<'a>(given: &str, known: impl IntoIterator<Item = &'a str>) -> String {
    closest(given, known)
        .map(|name| format!(": did you mean `{name}`?"))
        .unwrap_or_default()
}

/// The name of `known` that `given` was most likely meant to be: the same once
/// written as a key (a flag's `-` or an environment variable's case and prefix
/// given in the file), or at most a third of its characters away by edit distance.
pub fn closest<'a>(given: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let lower = given.to_ascii_lowercase().replace('-', "_");
    let normal = lower.strip_prefix("gatehouse_").unwrap_or(&lower);
    known
        .into_iter()
        .map(|name| (edit_distance(normal, name), name))
        .filter(|&(distance, name)| distance * 3 <= name.chars().count())
        .min_by_key(|&(distance, _)| distance)
        .map(|(_, name)| name)
}

/// Levenshtein distance: the fewest insertions, deletions and substitutions of single
/// characters that turn `a` into `b`.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ConfigFile, ConfigError> {
        ConfigFile::parse(Path::new("g.toml"), text.to_owned())
    }

    #[test]
    fn distances() {
        assert_eq!(edit_distance("listen", "listen"), 0);
        assert_eq!(edit_distance("listn", "listen"), 1);
        assert_eq!(edit_distance("lsiten", "listen"), 2);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn a_mistyped_key_is_named_with_its_line_and_the_key_meant() {
        let err = parse("listen = \"127.0.0.1:0\"\n\nacess_token_ttl = 60\n").unwrap_err();
        assert_eq!(err.key, "config");
        assert_eq!(
            err.problem,
            "unknown key \"acess_token_ttl\" in g.toml, line 3: did you mean `access_token_ttl`?"
        );
        for (given, meant) in [
            ("listn", "listen"),
            ("log-format", "log_format"),
            ("GATEHOUSE_ISSUER", "issuer"),
            ("route", "routes"),
            ("databse_url", "database_url"),
        ] {
            let err = parse(&format!("{given} = 1\n")).unwrap_err();
            assert!(
                err.problem.ends_with(&format!("did you mean `{meant}`?")),
                "{given}: {err}"
            );
        }
        let far = parse("no_such_setting = 1\n").unwrap_err();
        assert_eq!(far.problem, "unknown key \"no_such_setting\" in g.toml, line 1");
    }

    #[test]
    fn a_syntax_error_names_its_line_and_column() {
        let err = parse("listen = \"127.0.0.1:0\"\nissuer = = \"x\"\n").unwrap_err();
        assert_eq!(err.key, "config");
        assert!(
            err.problem
                .starts_with("g.toml is not valid TOML, line 2, column 10: "),
            "{err}"
        );
        assert!(!err.to_string().contains('\n'), "{err}");
    }

    #[test]
    fn values_know_their_line() {
        let file = parse("# settings\nlisten = \"127.0.0.1:0\"\n").unwrap();
        assert_eq!(
            file.get("listen").and_then(toml::Value::as_str),
            Some("127.0.0.1:0")
        );
        assert_eq!(file.location("listen"), "g.toml, line 2");
        assert!(file.get("issuer").is_none());
    }
}
