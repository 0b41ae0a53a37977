//! `--help`, the README "Configuration" table and `dota-orchestrator.example.toml` describe the
//! same settings: every `serve` flag with its environment variable and default is in the table
//! and (as a TOML key) in the example, nothing else is, and the example's values are the
//! defaults.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use clap::{Arg, Command};

use super::file::{settings_command, toml_key};
use super::tests::serve_command;
use super::*;

fn repo_file(name: &str) -> (PathBuf, String) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    (path, text)
}

/// One documented flag: long name, environment variable, default (if any).
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Flag {
    long: String,
    env: Option<String>,
    default: Option<String>,
}

fn flag(arg: &Arg) -> Option<Flag> {
    let long = arg.get_long().filter(|l| *l != "help")?;
    let defaults: Vec<_> = arg
        .get_default_values()
        .iter()
        .map(|v| v.to_string_lossy().into_owned())
        .collect();
    Some(Flag {
        long: format!("--{long}"),
        env: arg.get_env().map(|e| e.to_string_lossy().into_owned()),
        // A `--flag` switch defaults to "false", which the table says as "off".
        default: (!defaults.is_empty() && defaults != ["false"]).then(|| defaults.join(",")),
    })
}

fn flags_of(cmd: &Command) -> BTreeSet<Flag> {
    cmd.get_arguments().filter_map(flag).collect()
}

/// The rows of the README table under "## Configuration": `| `--flag` | `ENV` | default | … |`.
fn readme_rows() -> BTreeSet<Flag> {
    let (_, readme) = repo_file("README.md");
    let section = readme
        .split("\n## Configuration\n")
        .nth(1)
        .expect("README has a Configuration section");
    let section = section.split("\n## ").next().unwrap_or(section);
    let unquote = |cell: &str| {
        let cell = cell.trim();
        cell.strip_prefix('`')
            .and_then(|c| c.split_once('`'))
            .map(|(inner, _)| inner.to_string())
    };
    section
        .lines()
        .filter(|line| line.starts_with("| `--"))
        .map(|line| {
            let cells: Vec<&str> = line.split('|').collect();
            Flag {
                long: unquote(cells[1]).unwrap(),
                env: unquote(cells[2]),
                default: unquote(cells[3]),
            }
        })
        .collect()
}

#[test]
fn readme_table_lists_every_serve_flag_with_its_env_and_default() {
    let mut cmd = serve_command();
    let expected = flags_of(&cmd);
    assert!(expected.len() > 20, "{expected:?}");
    assert_eq!(readme_rows(), expected, "README table vs `serve --help`");
    // And `--help` itself shows each of them.
    let help = cmd.render_long_help().to_string();
    for f in &expected {
        assert!(help.contains(&f.long), "{} missing from --help", f.long);
        if let Some(env) = &f.env {
            assert!(help.contains(env.as_str()), "{env} missing from --help");
        }
        if let Some(default) = &f.default {
            assert!(help.contains(&format!("[default: {default}]")), "{default}");
        }
    }
}

#[test]
fn toml_example_names_every_setting_and_holds_the_defaults() {
    let (path, text) = repo_file("dota-orchestrator.example.toml");
    // `key = value`, or `# key = value` for a setting without a default.
    let key_of = |line: &str| {
        let (key, _) = line.split_once(" = ")?;
        let key = key.trim_start_matches('#').trim();
        key.chars()
            .all(|c| c.is_ascii_lowercase() || c == '_')
            .then(|| key.to_string())
    };
    let keys: BTreeSet<String> = text.lines().filter_map(key_of).collect();
    let settings = settings_command();
    let expected: BTreeSet<String> = settings.get_arguments().filter_map(toml_key).collect();
    assert_eq!(keys, expected, "example keys vs settings");
    for arg in settings.get_arguments() {
        let key = toml_key(arg).unwrap();
        let active = text.lines().any(|l| l.starts_with(&format!("{key} = ")));
        // A switch (`--demo`) is off by default, though clap fills that in only when it builds.
        let has_default = !arg.get_default_values().is_empty() || !arg.get_action().takes_values();
        assert_eq!(
            active, has_default,
            "{key}: settings with a default are set in the example, the others commented out"
        );
    }
    let file = ConfigFile::read(&path).unwrap();
    let cmd = file.apply(serve_command().mut_args(|arg| arg.env(None)));
    let args = ServeArgs::from_arg_matches(&cmd.try_get_matches_from(["--config", "x"]).unwrap());
    assert_eq!(
        format!("{:?}", args.unwrap().settings),
        format!("{:?}", Settings::defaults()),
        "the example's values are the defaults"
    );
}
