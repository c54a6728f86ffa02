//! Where a setting's text comes from: its flag, else its `GATEHOUSE_*` variable,
//! else the TOML file; else the declared default applies.

use std::collections::BTreeMap;
use std::ffi::OsString;

use super::file::ConfigFile;
use super::keys::Key;
use super::ConfigError;

/// Reads the environment: the process's, or a test's.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<OsString>;

/// The three places a setting may be given, in order of precedence.
pub struct Source<'a> {
    /// Given as flags, by key name.
    pub flags: &'a BTreeMap<&'static str, String>,
    /// The environment.
    pub env: Env<'a>,
    /// The file, if one was named.
    pub file: Option<&'a ConfigFile>,
}

impl Source<'_> {
    /// The value of `key`, parsed, or `None` when it is given nowhere. A value `parse`
    /// refuses is an error naming the key, what is wrong, and where the value came from.
    pub fn read<T>(
        &self,
        key: &'static Key,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Option<T>, ConfigError> {
        let Some((text, origin)) = self.text(key)? else {
            return Ok(None);
        };
        parse(&text)
            .map(Some)
            .map_err(|problem| ConfigError::new(key.name, format!("{problem} (from {origin})")))
    }

    /// The value of `key`, parsed; `default` parsed when it is given nowhere.
    pub fn read_or<T>(
        &self,
        key: &'static Key,
        parse: impl Fn(&str) -> Result<T, String>,
        default: &'static str,
    ) -> Result<T, ConfigError> {
        match self.read(key, &parse)? {
            Some(value) => Ok(value),
            // The declaration's own default: a unit test parses each one.
            None => parse(default)
                .map_err(|problem| ConfigError::new(key.name, format!("the default {default:?} {problem}"))),
        }
    }

    /// The text of `key` and where it came from, from the first source that has it.
    fn text(&self, key: &'static Key) -> Result<Option<(String, String)>, ConfigError> {
        if let Some(value) = self.flags.get(key.name) {
            return Ok(Some((value.clone(), key.long_flag())));
        }
        if let Some(value) = (self.env)(key.env) {
            let value = value
                .into_string()
                .map_err(|_| ConfigError::new(key.name, format!("{} is not valid UTF-8", key.env)))?;
            return Ok(Some((value, key.env.to_owned())));
        }
        let Some(file) = self.file else {
            return Ok(None);
        };
        let Some(value) = file.get(key.name) else {
            return Ok(None);
        };
        let text = match value {
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Array(entries) if key.list => entries
                .iter()
                .map(|entry| entry.as_str().ok_or(()))
                .collect::<Result<Vec<_>, ()>>()
                .map_err(|()| {
                    ConfigError::new(
                        key.name,
                        format!("must list strings (from {})", file.location(key.name)),
                    )
                })?
                .join(","),
            _ => {
                let kinds = if key.list {
                    "a string, a whole number, a boolean or a list of strings"
                } else {
                    "a string, a whole number or a boolean"
                };
                return Err(ConfigError::new(
                    key.name,
                    format!("must be {kinds} (from {})", file.location(key.name)),
                ));
            }
        };
        Ok(Some((text, file.location(key.name))))
    }
}
