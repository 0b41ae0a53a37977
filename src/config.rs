//! Settings: defaults < TOML file (`--config`) < environment < flags. clap reads flags and
//! their `DOTA_*` environment twins (flags win); the file fills what neither set. Secrets (the
//! OpenDota key, the admin token) are wrapped so `Debug` never prints them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use serde::Deserialize;

use crate::actors::pipeline::RetryPolicy;
use crate::actors::rate_limiter::RateLimits;
use crate::actors::team_importer::TeamSource;
use crate::clock::Clock;
use crate::store::Ttls;
use crate::team::view::PlayerSides;
use crate::upstream::opendota::ApiKey;

/// Invalid settings. Each message names the setting.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("could not read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid TOML for this service: {source}")]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("{name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// Where the service finds NATS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NatsMode {
    /// Start and supervise our own nats-server from `conf` on `port` (0 = any free port).
    Embedded { conf: PathBuf, port: u16 },
    /// Join an existing server or cluster.
    External { url: String },
}

/// Everything `Application::build` needs. Tests construct it directly.
#[derive(Debug, Clone)]
pub struct Settings {
    pub http_addr: SocketAddr,
    pub data_dir: PathBuf,
    pub nats: NatsMode,
    pub opendota_url: String,
    pub opendota_api_key: Option<ApiKey>,
    pub dotabuff_url: String,
    pub limits: RateLimits,
    pub ttls: Ttls,
    pub retry: RetryPolicy,
    /// Worker loops per fetcher actor (jobs of one kind fetched at once).
    pub workers: usize,
    /// Serve the bundled demo data set from this directory through an in-process fixture
    /// upstream, and point both upstream URLs at it.
    pub demo_dir: Option<PathBuf>,
    /// Where team match lists come from.
    pub team_source: TeamSource,
    /// Whose players a team import fetches.
    pub team_players: PlayerSides,
    /// When set, the invalidation API and `force=true` on teams require
    /// `Authorization: Bearer <token>`.
    pub admin_token: Option<AdminToken>,
    /// Runtime only (no flag, env or file key): the wall clock of the rate windows. The system
    /// clock; tests move it to skip real waits for the next window.
    pub clock: Clock,
}

/// The admin token. Its `Debug` never shows the value.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminToken(String);

impl AdminToken {
    pub fn new(token: String) -> Option<Self> {
        let token = token.trim().to_string();
        (!token.is_empty()).then_some(Self(token))
    }

    /// Constant-time comparison with a presented token.
    pub fn matches(&self, presented: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), presented.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(<redacted>)")
    }
}

/// Default client port of the embedded nats-server: not 4222, which a system-wide NATS may hold.
pub const DEFAULT_EMBEDDED_NATS_PORT: u16 = 4223;

impl Settings {
    /// Defaults for a run from the repository root.
    pub fn defaults() -> Self {
        Self {
            http_addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./data"),
            nats: NatsMode::Embedded {
                conf: PathBuf::from("./nats.conf"),
                port: DEFAULT_EMBEDDED_NATS_PORT,
            },
            opendota_url: "https://api.opendota.com/api".to_string(),
            opendota_api_key: None,
            dotabuff_url: "https://www.dotabuff.com".to_string(),
            limits: RateLimits::default(),
            ttls: Ttls::default(),
            retry: RetryPolicy::default(),
            workers: 4,
            demo_dir: None,
            team_source: TeamSource::default(),
            team_players: PlayerSides::default(),
            admin_token: None,
            clock: Clock::system(),
        }
    }
}

/// `serve` flags. Every one has a `DOTA_*` environment twin and a TOML key of the same name
/// (snake_case) in the config file.
#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// TOML file with any of the settings below.
    #[arg(long, env = "DOTA_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address of the HTTP API [default: 127.0.0.1:8080].
    #[arg(long, env = "DOTA_HTTP_ADDR")]
    pub http_addr: Option<SocketAddr>,
    /// Directory for the redb file and the embedded NATS store [default: ./data].
    #[arg(long, env = "DOTA_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Join this NATS server or cluster instead of starting one.
    #[arg(long, env = "DOTA_NATS_URL")]
    pub nats_url: Option<String>,
    /// Config of the embedded nats-server [default: ./nats.conf].
    #[arg(long, env = "DOTA_NATS_CONF")]
    pub nats_conf: Option<PathBuf>,
    /// Client port of the embedded nats-server; 0 picks a free one [default: 4223].
    #[arg(long, env = "DOTA_NATS_PORT")]
    pub nats_port: Option<u16>,
    /// OpenDota API base URL [default: https://api.opendota.com/api].
    #[arg(long, env = "DOTA_OPENDOTA_URL")]
    pub opendota_url: Option<String>,
    /// OpenDota API key, sent as `api_key`; never logged.
    #[arg(long, env = "DOTA_OPENDOTA_API_KEY", hide_env_values = true)]
    pub opendota_api_key: Option<String>,
    /// Dotabuff base URL [default: https://www.dotabuff.com].
    #[arg(long, env = "DOTA_DOTABUFF_URL")]
    pub dotabuff_url: Option<String>,
    /// OpenDota calls per calendar minute [default: 60].
    #[arg(long, env = "DOTA_OPENDOTA_RATE_LIMIT_PER_MIN")]
    pub opendota_rate_limit_per_min: Option<u32>,
    /// OpenDota calls per UTC day [default: 3000].
    #[arg(long, env = "DOTA_OPENDOTA_DAILY_LIMIT")]
    pub opendota_daily_limit: Option<u32>,
    /// Dotabuff page fetches per minute, evenly spaced [default: 30].
    #[arg(long, env = "DOTA_DOTABUFF_RATE_LIMIT_PER_MIN")]
    pub dotabuff_rate_limit_per_min: Option<u32>,
    /// Seconds a stored match stays fresh [default: 1209600 = 14 days].
    #[arg(long, env = "DOTA_MATCH_TTL_SECS")]
    pub match_ttl_secs: Option<u64>,
    /// Seconds a stored player stays fresh [default: 86400 = 1 day].
    #[arg(long, env = "DOTA_PLAYER_TTL_SECS")]
    pub player_ttl_secs: Option<u64>,
    /// Attempts per job before a transient failure becomes `failed` [default: 5].
    #[arg(long, env = "DOTA_MAX_ATTEMPTS")]
    pub max_attempts: Option<u32>,
    /// Milliseconds before the first retry; doubles per attempt [default: 2000].
    #[arg(long, env = "DOTA_RETRY_BASE_MS")]
    pub retry_base_ms: Option<u64>,
    /// Jobs of one kind fetched at once [default: 4].
    #[arg(long, env = "DOTA_WORKERS")]
    pub workers: Option<usize>,
    /// Run offline against the bundled demo data set (fixtures/demo).
    #[arg(long, env = "DOTA_DEMO")]
    pub demo: bool,
    /// Directory of the demo data set [default: ./fixtures/demo].
    #[arg(long, env = "DOTA_DEMO_DIR")]
    pub demo_dir: Option<PathBuf>,
    /// Where team match lists come from [default: dotabuff (OpenDota as fallback)].
    #[arg(long, env = "DOTA_TEAM_SOURCE", value_enum)]
    pub team_source: Option<TeamSource>,
    /// Whose players a team import fetches [default: both].
    #[arg(long, env = "DOTA_TEAM_PLAYERS", value_enum)]
    pub team_players: Option<PlayerSides>,
    /// Seconds cached Dotabuff pages and team records stay fresh [default: 7200].
    #[arg(long, env = "DOTA_TEAM_TTL_SECS")]
    pub team_ttl_secs: Option<u64>,
    /// Bearer token required by the invalidation API and forced team refreshes.
    #[arg(long, env = "DOTA_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
}

/// The TOML file: the same keys as the flags.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    http_addr: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    nats_url: Option<String>,
    nats_conf: Option<PathBuf>,
    nats_port: Option<u16>,
    opendota_url: Option<String>,
    opendota_api_key: Option<String>,
    dotabuff_url: Option<String>,
    opendota_rate_limit_per_min: Option<u32>,
    opendota_daily_limit: Option<u32>,
    dotabuff_rate_limit_per_min: Option<u32>,
    match_ttl_secs: Option<u64>,
    player_ttl_secs: Option<u64>,
    max_attempts: Option<u32>,
    retry_base_ms: Option<u64>,
    workers: Option<usize>,
    demo: Option<bool>,
    demo_dir: Option<PathBuf>,
    team_source: Option<TeamSource>,
    team_players: Option<PlayerSides>,
    team_ttl_secs: Option<u64>,
    admin_token: Option<String>,
}

fn read_file(path: &Path) -> Result<FileSettings, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    toml::from_str(&text).map_err(|source| ConfigError::Parse {
        path: path.to_path_buf(),
        source,
    })
}

fn positive<T: PartialOrd + Default + Copy>(
    name: &'static str,
    value: T,
) -> Result<T, ConfigError> {
    if value > T::default() {
        Ok(value)
    } else {
        Err(ConfigError::Invalid {
            name,
            reason: "must be greater than 0".to_string(),
        })
    }
}

fn url(name: &'static str, value: String) -> Result<String, ConfigError> {
    if value.starts_with("http://") || value.starts_with("https://") {
        Ok(value.trim_end_matches('/').to_string())
    } else {
        Err(ConfigError::Invalid {
            name,
            reason: format!("{value:?} is not an http(s) URL"),
        })
    }
}

impl ServeArgs {
    /// Merges flags/env (already combined by clap) over the file over the defaults.
    pub fn into_settings(self) -> Result<Settings, ConfigError> {
        let file = match &self.config {
            Some(path) => read_file(path)?,
            None => FileSettings::default(),
        };
        let d = Settings::defaults();
        let (d_conf, d_port) = match &d.nats {
            NatsMode::Embedded { conf, port } => (conf.clone(), *port),
            NatsMode::External { .. } => (PathBuf::from("./nats.conf"), DEFAULT_EMBEDDED_NATS_PORT),
        };
        let nats = match self.nats_url.or(file.nats_url) {
            Some(url) if !url.trim().is_empty() => NatsMode::External { url },
            _ => NatsMode::Embedded {
                conf: self.nats_conf.or(file.nats_conf).unwrap_or(d_conf),
                port: self.nats_port.or(file.nats_port).unwrap_or(d_port),
            },
        };
        let limits = RateLimits {
            opendota_per_minute: positive(
                "opendota-rate-limit-per-min",
                self.opendota_rate_limit_per_min
                    .or(file.opendota_rate_limit_per_min)
                    .unwrap_or(d.limits.opendota_per_minute),
            )?,
            opendota_per_day: positive(
                "opendota-daily-limit",
                self.opendota_daily_limit
                    .or(file.opendota_daily_limit)
                    .unwrap_or(d.limits.opendota_per_day),
            )?,
            dotabuff_per_minute: positive(
                "dotabuff-rate-limit-per-min",
                self.dotabuff_rate_limit_per_min
                    .or(file.dotabuff_rate_limit_per_min)
                    .unwrap_or(d.limits.dotabuff_per_minute),
            )?,
        };
        let mut ttls = d.ttls;
        if let Some(secs) = self.match_ttl_secs.or(file.match_ttl_secs) {
            ttls.matches = Duration::from_secs(positive("match-ttl-secs", secs)?);
        }
        if let Some(secs) = self.player_ttl_secs.or(file.player_ttl_secs) {
            ttls.players = Duration::from_secs(positive("player-ttl-secs", secs)?);
        }
        if let Some(secs) = self.team_ttl_secs.or(file.team_ttl_secs) {
            ttls.teams = Duration::from_secs(positive("team-ttl-secs", secs)?);
        }
        let mut retry = d.retry;
        if let Some(n) = self.max_attempts.or(file.max_attempts) {
            retry.max_attempts = positive("max-attempts", n)?;
        }
        if let Some(ms) = self.retry_base_ms.or(file.retry_base_ms) {
            retry.base_delay = Duration::from_millis(ms);
        }
        let demo = self.demo || file.demo.unwrap_or(false);
        Ok(Settings {
            http_addr: self.http_addr.or(file.http_addr).unwrap_or(d.http_addr),
            data_dir: self.data_dir.or(file.data_dir).unwrap_or(d.data_dir),
            nats,
            opendota_url: url(
                "opendota-url",
                self.opendota_url
                    .or(file.opendota_url)
                    .unwrap_or(d.opendota_url),
            )?,
            opendota_api_key: self
                .opendota_api_key
                .or(file.opendota_api_key)
                .and_then(ApiKey::new),
            dotabuff_url: url(
                "dotabuff-url",
                self.dotabuff_url
                    .or(file.dotabuff_url)
                    .unwrap_or(d.dotabuff_url),
            )?,
            limits,
            ttls,
            retry,
            workers: positive(
                "workers",
                self.workers.or(file.workers).unwrap_or(d.workers),
            )?,
            team_source: self.team_source.or(file.team_source).unwrap_or_default(),
            team_players: self.team_players.or(file.team_players).unwrap_or_default(),
            admin_token: self
                .admin_token
                .or(file.admin_token)
                .and_then(AdminToken::new),
            demo_dir: demo.then(|| {
                self.demo_dir
                    .or(file.demo_dir)
                    .unwrap_or_else(|| PathBuf::from("./fixtures/demo"))
            }),
            clock: d.clock,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_the_file_and_the_file_over_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "http_addr = \"127.0.0.1:9000\"\nworkers = 7\nopendota_rate_limit_per_min = 10\n",
        )
        .unwrap();
        let args = ServeArgs {
            config: Some(path),
            workers: Some(2),
            ..Default::default()
        };
        let s = args.into_settings().unwrap();
        assert_eq!(s.workers, 2, "flag beats file");
        assert_eq!(s.http_addr.port(), 9000, "file beats default");
        assert_eq!(s.limits.opendota_per_minute, 10);
        assert_eq!(s.limits.opendota_per_day, 3000, "default");
        assert!(matches!(s.nats, NatsMode::Embedded { port: 4223, .. }));
    }

    #[test]
    fn zero_limits_and_bad_urls_are_rejected() {
        let args = ServeArgs {
            opendota_rate_limit_per_min: Some(0),
            ..Default::default()
        };
        assert!(args.into_settings().is_err());
        let args = ServeArgs {
            opendota_url: Some("ftp://x".into()),
            ..Default::default()
        };
        assert!(args.into_settings().is_err());
    }

    #[test]
    fn unknown_file_keys_are_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "htp_addr = \"x\"\n").unwrap();
        let args = ServeArgs {
            config: Some(path),
            ..Default::default()
        };
        assert!(matches!(
            args.into_settings(),
            Err(ConfigError::Parse { .. })
        ));
    }
}
