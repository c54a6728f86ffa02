//! The settings as flags: each command takes the ones it uses ([`Flags`]), built from
//! the declaration ([`super::keys`]) with clap's builder API, so `client create --help`
//! lists `--database-url` and not `--listen`. Environment variables and the file reach
//! every command whatever its flags; [`super::Settings::load`] reads them.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::{Arg, ArgMatches};

use super::keys::{Key, KeyDefault, On, KEYS};

/// The environment variable naming the configuration file.
pub const CONFIG_ENV: &str = "GATEHOUSE_CONFIG";

/// The heading the settings stand under in `--help`, apart from a command's own flags.
const HEADING: &str = "Settings";

/// Which settings a command takes as flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flags {
    /// `serve`: every setting.
    Serve,
    /// An admin command: the database.
    Admin,
    /// An admin command that opens the signing keys: the database and the master key.
    SigningKeys,
    /// `keys rotate`: the database, the master key, and what a new key is made with.
    KeyRotation,
    /// `gatehouse` itself, before the command: every setting, hidden and not global,
    /// so that `gatehouse --database-url URL client list` keeps working as it always
    /// has, while `client list --listen …` stays a usage error.
    BeforeCommand,
}

impl Flags {
    /// Whether the command takes `key` as a flag, and if so whether `--help` shows it.
    fn shows(self, key: &Key) -> Option<bool> {
        match (key.on, self) {
            (_, Flags::BeforeCommand) => Some(false),
            (_, Flags::Serve) | (On::Every, _) => Some(true),
            (On::Serve, _) => None,
            (On::EveryTuning, _) | (On::MasterKey, Flags::Admin) => Some(false),
            (On::MasterKey, _) => Some(true),
            (On::Signing, Flags::KeyRotation) => Some(true),
            (On::Signing, _) => None,
        }
    }
}

/// The flags of the settings `command` takes: `--config`, then its keys. Each is
/// global, so that it may follow a nested subcommand's own flags when it is given to
/// the group (`client`): `client create --name x --database-url …`.
pub fn flags(command: Flags) -> Vec<Arg> {
    let global = command != Flags::BeforeCommand;
    let config = Arg::new("setting.config")
        .long("config")
        .value_name("FILE")
        .help(format!("TOML configuration file [env: {CONFIG_ENV}]"))
        .value_parser(clap::value_parser!(PathBuf))
        .global(global)
        .hide(!global)
        .help_heading(HEADING);
    let keys = KEYS.iter().filter_map(|key| {
        let shown = command.shows(key)?;
        let mut arg = Arg::new(key.id)
            .long(key.flag)
            .value_name(key.value_name)
            .help(format!("{} {}", plain(&key.summary()), trailer(key)))
            .long_help(format!("{}\n\n{}", plain(&key.meaning()), trailer(key)))
            .global(global)
            .hide(!shown)
            .help_heading(HEADING);
        if key.switch {
            arg = arg.num_args(0..=1).default_missing_value("true");
        }
        Some(arg)
    });
    std::iter::once(config).chain(keys).collect()
}

/// `[default: 3600] [env: GATEHOUSE_ACCESS_TOKEN_TTL]`
fn trailer(key: &Key) -> String {
    let default = match key.default {
        KeyDefault::Value(value) => value.to_owned(),
        KeyDefault::Unset(description) => plain(description),
    };
    format!("[default: {default}] [env: {}]", key.env)
}

/// Markdown as plain text for a terminal: no backticks, links as their text.
fn plain(markdown: &str) -> String {
    let mut text = String::with_capacity(markdown.len());
    let mut rest = markdown;
    while let Some(open) = rest.find('[') {
        let (before, from_bracket) = rest.split_at(open);
        text.push_str(before);
        let link = from_bracket.find("](").and_then(|mid| {
            let close = from_bracket[mid..].find(')')? + mid;
            Some((&from_bracket[1..mid], close))
        });
        match link {
            Some((label, close)) => {
                text.push_str(label);
                rest = &from_bracket[close + 1..];
            }
            None => {
                text.push('[');
                rest = &from_bracket[1..];
            }
        }
    }
    text.push_str(rest);
    text.replace('`', "")
}

/// What the command line gave: the configuration file and the settings given as
/// flags. Environment variables are read with the file, by
/// [`super::Settings::load`].
#[derive(Debug, Clone, Default)]
pub struct ConfigArgs {
    /// `--config FILE`.
    pub config: Option<PathBuf>,
    /// Settings given as flags, by key name.
    pub(super) flags: BTreeMap<&'static str, String>,
}

impl ConfigArgs {
    /// The settings given to the command `matches` describe, at whichever level of
    /// nested subcommands they were given.
    pub fn from_matches(matches: &ArgMatches) -> Self {
        let mut args = Self::default();
        let mut level = Some(matches);
        while let Some(matches) = level {
            if let Ok(Some(path)) = matches.try_get_one::<PathBuf>("setting.config") {
                args.config = Some(path.clone());
            }
            for key in KEYS {
                if let Ok(Some(value)) = matches.try_get_one::<String>(key.id) {
                    args.flags.insert(key.name, value.clone());
                }
            }
            level = matches.subcommand().map(|(_, sub)| sub);
        }
        args
    }

    /// These arguments with `key` given as a flag: for tests and embedding.
    pub fn with(mut self, key: &str, value: impl Into<String>) -> Self {
        match KEYS.iter().find(|k| k.name == key) {
            Some(key) => {
                self.flags.insert(key.name, value.into());
            }
            None if key == "config" => self.config = Some(PathBuf::from(value.into())),
            None => panic!("{key} is not a setting"),
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command(flags_of: Flags) -> clap::Command {
        clap::Command::new("gatehouse")
            .subcommand(clap::Command::new("group").subcommand(clap::Command::new("leaf")))
            .mut_subcommand("group", |group| group.args(flags(flags_of)))
    }

    fn names(command: Flags) -> Vec<(String, bool)> {
        flags(command)
            .iter()
            .map(|arg| (arg.get_long().unwrap_or_default().to_owned(), !arg.is_hide_set()))
            .collect()
    }

    #[test]
    fn each_command_takes_what_it_uses() {
        let serve = names(Flags::Serve);
        assert_eq!(serve.len(), KEYS.len() + 1);
        assert!(serve.iter().all(|(_, shown)| *shown));

        let admin = names(Flags::Admin);
        let shown: Vec<&str> = admin
            .iter()
            .filter(|(_, s)| *s)
            .map(|(n, _)| n.as_str())
            .collect();
        assert_eq!(shown, ["config", "database-url"]);
        for accepted in ["master-key", "master-key-file", "database-statement-timeout"] {
            assert!(admin.iter().any(|(n, _)| n == accepted), "{accepted}");
        }
        assert!(!admin.iter().any(|(n, _)| n == "listen" || n == "tls-cert"));

        let rotation = names(Flags::KeyRotation);
        for shown in ["master-key", "master-key-file", "signing-alg", "access-token-ttl"] {
            assert!(rotation.contains(&(shown.to_owned(), true)), "{shown}");
        }
        let signing = names(Flags::SigningKeys);
        assert!(signing.contains(&("master-key-file".to_owned(), true)));
        assert!(!signing.iter().any(|(n, _)| n == "signing-alg"));
    }

    #[test]
    fn flags_given_after_a_nested_subcommand_are_read() {
        let matches = command(Flags::Admin)
            .try_get_matches_from([
                "gatehouse",
                "group",
                "leaf",
                "--database-url",
                "sqlite://x.db",
                "--config",
                "g.toml",
                "--master-key",
                "k",
            ])
            .unwrap();
        let args = ConfigArgs::from_matches(&matches);
        assert_eq!(args.config, Some(PathBuf::from("g.toml")));
        assert_eq!(
            args.flags.get("database_url").map(String::as_str),
            Some("sqlite://x.db")
        );
        assert_eq!(args.flags.get("master_key").map(String::as_str), Some("k"));
        assert!(command(Flags::Admin)
            .try_get_matches_from(["gatehouse", "group", "leaf", "--listen", "127.0.0.1:0"])
            .is_err());
    }

    #[test]
    fn settings_before_the_command_are_read_and_stay_there() {
        let command = || {
            clap::Command::new("gatehouse")
                .args(flags(Flags::BeforeCommand))
                .subcommand(clap::Command::new("group").args(flags(Flags::Admin)))
        };
        let matches = command()
            .try_get_matches_from(["gatehouse", "--database-url", "sqlite://a.db", "group"])
            .unwrap();
        let args = ConfigArgs::from_matches(&matches);
        assert_eq!(
            args.flags.get("database_url").map(String::as_str),
            Some("sqlite://a.db")
        );
        // After the command, its own flag wins over the one before it.
        let matches = command()
            .try_get_matches_from([
                "gatehouse",
                "--database-url",
                "sqlite://a.db",
                "group",
                "--database-url",
                "sqlite://b.db",
            ])
            .unwrap();
        let args = ConfigArgs::from_matches(&matches);
        assert_eq!(
            args.flags.get("database_url").map(String::as_str),
            Some("sqlite://b.db")
        );
        // Not global: a setting the command does not take is still refused after it.
        assert!(command()
            .try_get_matches_from(["gatehouse", "group", "--listen", "127.0.0.1:0"])
            .is_err());
    }

    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory as _;
        crate::cli::Cli::command().debug_assert();
    }

    #[test]
    fn a_switch_stands_alone_or_takes_a_value() {
        let serve = || clap::Command::new("serve").args(flags(Flags::Serve));
        let alone = serve()
            .try_get_matches_from(["serve", "--allow-insecure-http"])
            .unwrap();
        let args = ConfigArgs::from_matches(&alone);
        assert_eq!(
            args.flags.get("allow_insecure_http").map(String::as_str),
            Some("true")
        );
        let valued = serve()
            .try_get_matches_from(["serve", "--allow-insecure-http", "false"])
            .unwrap();
        let args = ConfigArgs::from_matches(&valued);
        assert_eq!(
            args.flags.get("allow_insecure_http").map(String::as_str),
            Some("false")
        );
    }

    #[test]
    fn markdown_becomes_plain_text() {
        assert_eq!(
            plain("`0` turns it off; see [Security](security.md#a) and [x]."),
            "0 turns it off; see Security and [x]."
        );
    }
}
