//! Settings precedence, validation and secrecy, read through the same steps as `main`: parse,
//! layer the `--config` file under flags and environment, parse again, validate.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Command, FromArgMatches};

use super::*;

/// `serve` alone, as `main` nests it.
pub(super) fn serve_command() -> Command {
    ServeArgs::augment_args(Command::new("serve").no_binary_name(true))
}

/// The environment is left out unless a test asks for it, so a stray `DOTA_*` variable of the
/// machine running the tests cannot change their outcome.
fn command(env: bool) -> Command {
    let cmd = serve_command();
    if env {
        cmd
    } else {
        cmd.mut_args(|arg| arg.env(None))
    }
}

fn parse_with(argv: &[&str], env: bool) -> Result<Settings, String> {
    let parse = |cmd: Command| {
        cmd.try_get_matches_from(argv)
            .and_then(|matches| ServeArgs::from_arg_matches(&matches))
            .map_err(|e| e.to_string())
    };
    let first = parse(command(env))?;
    let cmd = match &first.config {
        Some(path) => ConfigFile::read(path)
            .map_err(|e| e.to_string())?
            .apply(command(env)),
        None => command(env),
    };
    parse(cmd)?.into_settings().map_err(|e| e.to_string())
}

fn parse(argv: &[&str]) -> Result<Settings, String> {
    parse_with(argv, false)
}

/// A config file in a temp dir that lives as long as the value.
struct File {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl File {
    fn new(text: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, text).unwrap();
        File { _dir: dir, path }
    }

    fn arg(&self) -> &str {
        self.path.to_str().unwrap()
    }
}

fn read_err(text: &str) -> ConfigError {
    ConfigFile::read(&File::new(text).path).unwrap_err()
}

#[test]
fn flags_win_over_the_file_and_the_file_over_defaults() {
    let file = File::new(
        "http_addr = \"127.0.0.1:9000\"\nworkers = 7\nopendota_rate_limit_per_min = 10\n",
    );
    let s = parse(&["--config", file.arg(), "--workers", "2"]).unwrap();
    assert_eq!(s.workers, 2, "flag beats file");
    assert_eq!(s.http_addr.port(), 9000, "file beats default");
    assert_eq!(s.limits.opendota_per_minute, 10);
    assert_eq!(s.limits.opendota_per_day, 3000, "default");
    assert!(matches!(s.nats, NatsMode::Embedded { port: 4223, .. }));
}

#[test]
fn zero_limits_and_bad_urls_are_rejected() {
    let err = parse(&["--opendota-rate-limit-per-min", "0"]).unwrap_err();
    assert!(err.contains("--opendota-rate-limit-per-min"), "{err}");
    assert!(err.contains("greater than 0"), "{err}");
    let err = parse(&["--opendota-url", "ftp://x"]).unwrap_err();
    assert!(
        err.contains("--opendota-url") && err.contains("http(s)"),
        "{err}"
    );
    assert!(parse(&["--workers", "0"]).is_err());
    assert!(parse(&["--match-ttl-secs", "0"]).is_err());

    // The same checks hold for the file, and the error names the file's key.
    let err = read_err("opendota_rate_limit_per_min = 0\n");
    assert!(
        matches!(&err, ConfigError::FileValue { key, .. } if key == "opendota_rate_limit_per_min"),
        "{err}"
    );
    assert!(err.to_string().contains("greater than 0"), "{err}");
    let err = read_err("dotabuff_url = \"www.dotabuff.com\"\n");
    assert!(
        matches!(&err, ConfigError::FileValue { key, .. } if key == "dotabuff_url"),
        "{err}"
    );
    let err = read_err("team_source = \"steam\"\n");
    assert!(err.to_string().contains("dotabuff, opendota"), "{err}");
}

#[test]
fn unknown_file_keys_are_an_error() {
    let err = read_err("htp_addr = \"x\"\n");
    assert!(
        matches!(&err, ConfigError::UnknownKey { key, .. } if key == "htp_addr"),
        "{err}"
    );
    // Only settings: a file cannot name another file, nor use the flag spelling.
    assert!(matches!(
        read_err("config = \"other.toml\"\n"),
        ConfigError::UnknownKey { .. }
    ));
    assert!(matches!(
        read_err("http-addr = \"127.0.0.1:1\"\n"),
        ConfigError::UnknownKey { .. }
    ));
    assert!(matches!(
        read_err("workers = [1]\n"),
        ConfigError::FileValue { .. }
    ));
    assert!(matches!(
        read_err("workers = \n"),
        ConfigError::Parse { .. }
    ));
}

#[test]
fn league_and_player_stats_ttls_and_the_retry_cap_are_settable() {
    let s = parse(&[
        "--league-ttl-secs",
        "60",
        "--player-stats-ttl-secs",
        "30",
        "--retry-base-ms",
        "100",
        "--retry-max-ms",
        "1000",
    ])
    .unwrap();
    assert_eq!(s.ttls.leagues, Duration::from_secs(60));
    assert_eq!(s.ttls.player_stats, Duration::from_secs(30));
    assert_eq!(s.retry.max_delay, Duration::from_secs(1));
    // The cap bounds the backoff however many attempts failed (jitter is at most +50 %).
    assert!((1..=30).all(|attempt| s.retry.backoff(attempt) <= Duration::from_millis(1500)));

    let file =
        File::new("league_ttl_secs = 120\nplayer_stats_ttl_secs = 45\nretry_max_ms = 9000\n");
    let s = parse(&["--config", file.arg()]).unwrap();
    assert_eq!(s.ttls.leagues, Duration::from_secs(120));
    assert_eq!(s.ttls.player_stats, Duration::from_secs(45));
    assert_eq!(s.retry.max_delay, Duration::from_secs(9));

    assert!(parse(&["--league-ttl-secs", "0"]).is_err());
    assert!(parse(&["--retry-max-ms", "0"]).is_err());
    let err = parse(&["--retry-base-ms", "5000", "--retry-max-ms", "1000"]).unwrap_err();
    assert!(
        err.contains("retry-max-ms") && err.contains("retry-base-ms"),
        "{err}"
    );
}

#[test]
fn defaults_are_the_documented_numbers() {
    const DAY: u64 = 24 * 60 * 60;
    let s = Settings::defaults();
    assert_eq!(s.http_addr, "127.0.0.1:8080".parse().unwrap());
    assert_eq!(s.data_dir, Path::new("./data"));
    assert_eq!(
        s.nats,
        NatsMode::Embedded {
            conf: PathBuf::from("./nats.conf"),
            port: 4223
        }
    );
    assert_eq!(s.opendota_url, "https://api.opendota.com/api");
    assert_eq!(s.dotabuff_url, "https://www.dotabuff.com");
    assert_eq!(
        (
            s.limits.opendota_per_minute,
            s.limits.opendota_per_day,
            s.limits.dotabuff_per_minute
        ),
        (60, 3000, 30)
    );
    let t = s.ttls;
    assert_eq!(
        [
            t.matches,
            t.players,
            t.player_stats,
            t.teams,
            t.leagues,
            t.failures
        ]
        .map(|d| d.as_secs()),
        [14 * DAY, DAY, DAY, 2 * 60 * 60, 90 * DAY, 600]
    );
    assert_eq!(s.retry.max_attempts, 5);
    assert_eq!(s.retry.base_delay, Duration::from_secs(2));
    assert_eq!(s.retry.max_delay, Duration::from_secs(300));
    assert_eq!(s.workers, 2);
    assert_eq!(s.max_in_flight, 64);
    assert_eq!(s.demo_data(), None);
    assert_eq!(s.team_source, None);
    assert_eq!(s.team_chain().to_string(), "dotabuff,opendota");
    assert_eq!(s.team_players, PlayerSides::Both);
    assert!(s.opendota_api_key.is_none() && s.admin_token.is_none());
    // The groups' own defaults are the same declarations.
    assert_eq!(RateLimits::default(), s.limits);
    assert_eq!(Ttls::default(), s.ttls);
    assert_eq!(RetryPolicy::default(), s.retry);
    assert_eq!(format!("{s:?}"), format!("{:?}", parse(&[]).unwrap()));
}

#[test]
fn nats_server_bin_is_unset_by_default_and_holds_for_either_mode() {
    assert_eq!(parse(&[]).unwrap().nats_server_bin, None);
    let s = parse(&["--nats-server-bin", "/opt/nats/nats-server"]).unwrap();
    assert_eq!(
        s.nats_server_bin,
        Some(PathBuf::from("/opt/nats/nats-server"))
    );
    assert!(matches!(s.nats, NatsMode::Embedded { .. }));
    let file =
        File::new("nats_server_bin = \"/opt/nats/nats-server\"\nnats_url = \"nats://h:4222\"\n");
    let s = parse(&["--config", file.arg()]).unwrap();
    assert_eq!(
        s.nats_server_bin,
        Some(PathBuf::from("/opt/nats/nats-server"))
    );
    assert!(matches!(s.nats, NatsMode::External { .. }));
}

#[test]
fn nats_url_chooses_external_nats_and_an_empty_one_does_not() {
    let s = parse(&["--nats-url", "nats://10.0.0.1:4222", "--nats-port", "1"]).unwrap();
    assert_eq!(
        s.nats,
        NatsMode::External {
            url: "nats://10.0.0.1:4222".into(),
            auth: NatsAuth::None,
            tls_ca: None,
        }
    );
    let s = parse(&["--nats-url", " ", "--nats-port", "0"]).unwrap();
    assert!(matches!(s.nats, NatsMode::Embedded { port: 0, .. }));
}

#[test]
fn nats_credentials_and_tls_go_with_an_external_url_only() {
    let s = parse(&[
        "--nats-url",
        "tls://nats.example:4222",
        "--nats-creds",
        "user.creds",
        "--nats-tls-ca",
        "ca.pem",
    ])
    .unwrap();
    assert_eq!(
        s.nats,
        NatsMode::External {
            url: "tls://nats.example:4222".into(),
            auth: NatsAuth::Creds(PathBuf::from("user.creds")),
            tls_ca: Some(PathBuf::from("ca.pem")),
        }
    );
    let both = parse(&[
        "--nats-url",
        "nats://h",
        "--nats-token",
        "t",
        "--nats-creds",
        "c",
    ]);
    assert!(both.unwrap_err().contains("exclude each other"));
    for flag in ["--nats-token", "--nats-creds", "--nats-tls-ca"] {
        let err = parse(&[flag, "x"]).unwrap_err();
        assert!(err.contains("--nats-url"), "{flag}: {err}");
    }
    assert!(parse(&["--nats-url", "nats://h:4222", "--nats-token", " "]).is_err());
}

#[test]
fn demo_mode_needs_demo_and_takes_its_dir() {
    assert_eq!(parse(&["--demo-dir", "x"]).unwrap().demo_data(), None);
    let s = parse(&["--demo"]).unwrap();
    assert_eq!(s.demo_data(), Some(Path::new("./fixtures/demo")));
    let file = File::new("demo = true\ndemo_dir = \"elsewhere\"\n");
    let s = parse(&["--config", file.arg()]).unwrap();
    assert_eq!(s.demo_data(), Some(Path::new("elsewhere")));
}

#[test]
fn auto_refresh_is_off_by_default_and_the_file_takes_enable_auto_refresh_too() {
    let s = parse(&[]).unwrap();
    assert!(!s.auto_refresh);
    assert_eq!((s.track_days, s.refresh_reserve), (14, 20));
    assert!(parse(&["--auto-refresh"]).unwrap().auto_refresh);
    let file = File::new(
        "enableAutoRefresh = true
track_days = 3
refresh_reserve = 0
",
    );
    let s = parse(&["--config", file.arg()]).unwrap();
    assert!(s.auto_refresh);
    assert_eq!((s.track_days, s.refresh_reserve), (3, 0));
    let file = File::new(
        "auto_refresh = true
",
    );
    assert!(parse(&["--config", file.arg()]).unwrap().auto_refresh);
    let both = read_err(
        "auto_refresh = true
enableAutoRefresh = false
",
    )
    .to_string();
    assert!(both.contains("enableAutoRefresh"), "{both}");
    assert!(parse(&["--refresh-reserve", "101"]).is_err());
    assert!(parse(&["--track-days", "0"]).is_err());
}

#[test]
fn secrets_stay_out_of_debug_and_help() {
    let file = File::new(
        "opendota_api_key = \"key-from-file\"\nadmin_token = \"token-from-file\"\n\
         nats_url = \"nats://10.0.0.1:4222\"\nnats_token = \"nats-from-file\"\n\
         steam_api_key = \"steam-from-file\"\nstratz_token = \"stratz-from-file\"\n",
    );
    let s = parse(&["--config", file.arg()]).unwrap();
    assert!(s.opendota_api_key.is_some() && s.admin_token.is_some());
    assert!(s.sources.steam_api_key.is_some() && s.sources.stratz_token.is_some());
    assert!(matches!(
        s.nats,
        NatsMode::External {
            auth: NatsAuth::Token(_),
            ..
        }
    ));
    let shown = format!("{s:?}");
    assert!(!shown.contains("from-file"), "{shown}");
    // A file's values become the flags' defaults; secret ones must not show as such.
    let help = ConfigFile::read(&file.path)
        .unwrap()
        .apply(serve_command())
        .render_long_help()
        .to_string();
    assert!(help.contains("--admin-token") && help.contains("--nats-token"));
    assert!(!help.contains("from-file"), "{help}");
    for secret in [
        "opendota_api_key",
        "admin_token",
        "nats_token",
        "steam_api_key",
        "stratz_token",
    ] {
        let cmd = serve_command();
        let arg = cmd.get_arguments().find(|a| a.get_id() == secret).unwrap();
        assert!(arg.is_hide_env_values_set() && arg.is_hide_default_value_set());
    }
    assert!(
        parse(&["--admin-token", " "]).is_err(),
        "an empty token would disable auth"
    );
}

/// Set in the child process that [`environment_beats_the_file_and_flags_beat_the_environment`]
/// starts.
const CHILD: &str = "DOTA_CONFIG_TESTS_CHILD";

#[test]
fn environment_beats_the_file_and_flags_beat_the_environment() {
    let name = "config::tests::environment_beats_the_file_and_flags_beat_the_environment";
    if std::env::var_os(CHILD).is_none() {
        // The environment is process-wide: set it only in a child running this test alone.
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([name, "--exact", "--test-threads=1"])
            .env(CHILD, "1")
            .env("DOTA_WORKERS", "3")
            .env("DOTA_OPENDOTA_DAILY_LIMIT", "1234")
            .env("DOTA_ADMIN_TOKEN", "token-from-env")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        return;
    }
    let file =
        File::new("workers = 7\nopendota_daily_limit = 999\nhttp_addr = \"127.0.0.1:9001\"\n");
    let s = parse_with(
        &["--config", file.arg(), "--opendota-daily-limit", "42"],
        true,
    )
    .unwrap();
    assert_eq!(s.workers, 3, "environment beats file");
    assert_eq!(s.limits.opendota_per_day, 42, "flag beats environment");
    assert_eq!(s.http_addr.port(), 9001, "file beats default");
    assert!(s.admin_token.unwrap().matches("token-from-env"));
    let help = command(true).render_long_help().to_string();
    assert!(help.contains("DOTA_ADMIN_TOKEN"));
    assert!(!help.contains("token-from-env"), "{help}");
}
