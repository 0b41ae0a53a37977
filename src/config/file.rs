//! The TOML config file (`--config`). Its keys are the long flags of [`super::Settings`] in
//! snake_case (`--opendota-rate-limit-per-min` → `opendota_rate_limit_per_min`); each value is
//! checked by that flag's own parser when the file is read. The file's values then become the
//! flags' defaults ([`ConfigFile::apply`]), which gives the precedence for free: clap takes a
//! flag over its environment variable over its default, and the default now comes from the file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::{Arg, Args, Command, FromArgMatches};

use super::{ConfigError, Settings};

/// A config file whose every key names a setting and whose every value that setting accepts.
#[derive(Debug, Clone)]
pub struct ConfigFile {
    path: PathBuf,
    /// Setting key → the value as a flag would carry it.
    values: BTreeMap<String, String>,
}

/// Other names the file accepts for a key: `(alias, key)`. `enableAutoRefresh` is the replaced
/// system's name for `auto_refresh`.
pub const KEY_ALIASES: &[(&str, &str)] = &[("enableAutoRefresh", "auto_refresh")];

/// The TOML key of a flag: its long name in snake_case.
pub fn toml_key(arg: &Arg) -> Option<String> {
    arg.get_long().map(|long| long.replace('-', "_"))
}

/// The command holding every setting and nothing else (no `--config`, no `--help`): the set of
/// keys a file may use.
pub fn settings_command() -> Command {
    Settings::augment_args(
        Command::new("settings")
            .no_binary_name(true)
            .disable_help_flag(true),
    )
}

impl ConfigFile {
    /// Reads and checks the file: unknown keys, values that are not a string, integer or
    /// boolean, and values the setting's parser refuses are errors naming the key.
    pub fn read(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let table: toml::Table = toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.to_path_buf(),
            source,
        })?;
        if let Some((alias, canonical)) = KEY_ALIASES
            .iter()
            .find(|(alias, canonical)| table.contains_key(*alias) && table.contains_key(*canonical))
        {
            return Err(ConfigError::FileValue {
                path: path.to_path_buf(),
                key: alias.to_string(),
                reason: format!("{alias} and {canonical} name the same setting"),
            });
        }
        let cmd = settings_command();
        let mut values = BTreeMap::new();
        for (key, value) in table {
            let key = match KEY_ALIASES.iter().find(|(alias, _)| *alias == key) {
                Some((_, canonical)) => canonical.to_string(),
                None => key,
            };
            let bad_value = |reason: String| ConfigError::FileValue {
                path: path.to_path_buf(),
                key: key.clone(),
                reason,
            };
            if !cmd
                .get_arguments()
                .any(|arg| toml_key(arg).as_deref() == Some(&key))
            {
                return Err(ConfigError::UnknownKey {
                    path: path.to_path_buf(),
                    key,
                });
            }
            let text = match value {
                toml::Value::String(s) => s,
                toml::Value::Integer(n) => n.to_string(),
                // `store_max_gb = 0.5`, `retention_days = 1.5`.
                toml::Value::Float(x) => x.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                other => {
                    return Err(bad_value(format!(
                        "expected a string, number or boolean, found {}",
                        other.type_str()
                    )));
                }
            };
            check(&cmd, &key, &text).map_err(|e| bad_value(parser_reason(&e)))?;
            values.insert(key, text);
        }
        Ok(Self {
            path: path.to_path_buf(),
            values,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `cmd` (the `serve` command, or any command holding the settings) with the file's values
    /// as the defaults of their flags. Other arguments are left alone.
    pub fn apply(&self, cmd: Command) -> Command {
        cmd.mut_args(
            |arg| match toml_key(&arg).and_then(|key| self.values.get(&key)) {
                Some(value) => arg.default_value(value.clone()),
                None => arg,
            },
        )
    }
}

/// Runs the setting's own parser on a file value: `cmd` parsed with that value as the default
/// of `key` and nothing else set (clap checks defaults only when they are used).
fn check(cmd: &Command, key: &str, value: &str) -> Result<(), clap::Error> {
    let probe = cmd.clone().mut_args(|arg| {
        let arg = arg.env(None);
        if toml_key(&arg).as_deref() == Some(key) {
            arg.default_value(value.to_string())
        } else {
            arg
        }
    });
    let matches = probe.try_get_matches_from(std::iter::empty::<&str>())?;
    Settings::from_arg_matches(&matches).map(drop)
}

/// What a value parser said, without clap's "error: invalid value … for …" framing (the
/// [`ConfigError`] names the file and key instead).
fn parser_reason(err: &clap::Error) -> String {
    match std::error::Error::source(err) {
        Some(source) => source.to_string(),
        // clap's own parsers (addresses, enums) say it in the rendered message.
        None => err
            .to_string()
            .trim_start_matches("error: ")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" "),
    }
}
