//! The setting groups that parts of the service take whole: rate budgets (the `RateLimiter`),
//! freshness (the `Store`), retries (the job pipeline), where NATS is and how to log in to it, and the two team-import
//! choices. Each field declares its flag, `DOTA_*` environment twin and default once, here; the
//! TOML key is the flag in snake_case (see `file.rs`). Their `Default` is those declarations
//! parsed with nothing set (see [`super::builtin`]), so no default is written twice.

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgMatches, Args, Command, FromArgMatches};
use serde::{Deserialize, Serialize};

use super::secrets::NatsToken;
use super::values::{millis, positive, positive_millis, secs};

/// Default OpenDota calls per UTC minute (its free tier).
pub const DEFAULT_OPENDOTA_PER_MINUTE: u32 = 60;

/// Default OpenDota calls per UTC day (its free tier).
pub const DEFAULT_OPENDOTA_PER_DAY: u32 = 3000;

/// Default Dotabuff page loads per minute: one every 2 s, slow enough to look like a person
/// reading pages.
pub const DEFAULT_DOTABUFF_PER_MINUTE: u32 = 30;

/// Default client port of the embedded nats-server: not 4222, which a system-wide NATS may hold.
pub const DEFAULT_EMBEDDED_NATS_PORT: u16 = 4223;

/// The budgets, per upstream. Every limit must be at least 1; a 0 (which would stall every
/// caller forever) is rejected by the flag's parser, and raised to 1 with a warning by the
/// rate budget (`upstream::budget::limits`) should code build one anyway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Args)]
pub struct RateLimits {
    /// OpenDota calls per calendar minute (UTC).
    #[arg(
        id = "opendota_rate_limit_per_min",
        long = "opendota-rate-limit-per-min",
        env = "DOTA_OPENDOTA_RATE_LIMIT_PER_MIN",
        value_name = "N",
        default_value_t = DEFAULT_OPENDOTA_PER_MINUTE,
        value_parser = positive::<u32>,
    )]
    pub opendota_per_minute: u32,
    /// OpenDota calls per UTC day.
    #[arg(
        id = "opendota_daily_limit",
        long = "opendota-daily-limit",
        env = "DOTA_OPENDOTA_DAILY_LIMIT",
        value_name = "N",
        default_value_t = DEFAULT_OPENDOTA_PER_DAY,
        value_parser = positive::<u32>,
    )]
    pub opendota_per_day: u32,
    /// Dotabuff page fetches per minute, evenly spaced.
    #[arg(
        id = "dotabuff_rate_limit_per_min",
        long = "dotabuff-rate-limit-per-min",
        env = "DOTA_DOTABUFF_RATE_LIMIT_PER_MIN",
        value_name = "N",
        default_value_t = DEFAULT_DOTABUFF_PER_MINUTE,
        value_parser = positive::<u32>,
    )]
    pub dotabuff_per_minute: u32,
}

impl Default for RateLimits {
    fn default() -> Self {
        super::builtin()
    }
}

/// How long each kind of resource stays fresh, and how long a permanent failure is believed.
/// Freshness is computed at read time, so a changed
/// TTL applies to data already stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Args)]
pub struct Ttls {
    /// Seconds a stored match stays fresh (14 days).
    #[arg(
        id = "match_ttl_secs",
        long = "match-ttl-secs",
        env = "DOTA_MATCH_TTL_SECS",
        value_name = "SECS",
        default_value = "1209600",
        value_parser = secs,
    )]
    pub matches: Duration,
    /// Seconds a stored player profile stays fresh (1 day).
    #[arg(
        id = "player_ttl_secs",
        long = "player-ttl-secs",
        env = "DOTA_PLAYER_TTL_SECS",
        value_name = "SECS",
        default_value = "86400",
        value_parser = secs,
    )]
    pub players: Duration,
    /// Seconds stored player stats (win/loss, heroes, recent form) stay fresh (1 day).
    #[arg(
        id = "player_stats_ttl_secs",
        long = "player-stats-ttl-secs",
        env = "DOTA_PLAYER_STATS_TTL_SECS",
        value_name = "SECS",
        default_value = "86400",
        value_parser = secs,
    )]
    pub player_stats: Duration,
    /// Seconds a team record and the cached Dotabuff pages behind it stay fresh (2 hours).
    #[arg(
        id = "team_ttl_secs",
        long = "team-ttl-secs",
        env = "DOTA_TEAM_TTL_SECS",
        value_name = "SECS",
        default_value = "7200",
        value_parser = secs,
    )]
    pub teams: Duration,
    /// Seconds a stored league (info and match IDs) stays fresh (90 days).
    #[arg(
        id = "league_ttl_secs",
        long = "league-ttl-secs",
        env = "DOTA_LEAGUE_TTL_SECS",
        value_name = "SECS",
        default_value = "7776000",
        value_parser = secs,
    )]
    pub leagues: Duration,
    /// Seconds a permanent failure (an upstream 404, an unreadable answer) is remembered: GET
    /// reports it until then, and the first GET after it queues a new attempt (10 minutes).
    #[arg(
        id = "failure_ttl_secs",
        long = "failure-ttl-secs",
        env = "DOTA_FAILURE_TTL_SECS",
        value_name = "SECS",
        default_value = "600",
        value_parser = secs,
    )]
    pub failures: Duration,
}

impl Default for Ttls {
    fn default() -> Self {
        super::builtin()
    }
}

/// Retry policy for transient failures: exponential backoff from `base_delay`, capped at
/// `max_delay` (`RetryPolicy::backoff` in the pipeline applies it, with jitter).
#[derive(Debug, Clone, Copy, PartialEq, Args)]
pub struct RetryPolicy {
    /// Deliveries per job, the first included, before a transient failure becomes `failed`.
    #[arg(
        id = "max_attempts",
        long = "max-attempts",
        env = "DOTA_MAX_ATTEMPTS",
        value_name = "N",
        default_value_t = 5,
        value_parser = positive::<u32>,
    )]
    pub max_attempts: u32,
    /// Milliseconds before the second attempt; doubles for each further one.
    #[arg(
        id = "retry_base_ms",
        long = "retry-base-ms",
        env = "DOTA_RETRY_BASE_MS",
        value_name = "MS",
        default_value = "2000",
        value_parser = millis,
    )]
    pub base_delay: Duration,
    /// Milliseconds the doubling stops at: the longest wait before a retry (5 minutes).
    #[arg(
        id = "retry_max_ms",
        long = "retry-max-ms",
        env = "DOTA_RETRY_MAX_MS",
        value_name = "MS",
        default_value = "300000",
        value_parser = positive_millis,
    )]
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        super::builtin()
    }
}

/// Where the service finds NATS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NatsMode {
    /// Start and supervise our own nats-server from `conf` on `port` (0 = any free port). It
    /// listens on loopback only, so it takes no credentials.
    Embedded { conf: PathBuf, port: u16 },
    /// Join an existing server or cluster.
    External {
        url: String,
        auth: NatsAuth,
        /// CA certificate (PEM) the server's certificate must chain to; implies TLS.
        tls_ca: Option<PathBuf>,
    },
}

/// How the service proves who it is to an external NATS server.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum NatsAuth {
    /// No credentials: the server allows anonymous clients (or the URL carries `user:pass@`).
    #[default]
    None,
    /// A token (`authorization { token: … }` on the server).
    Token(NatsToken),
    /// A credentials file: the user's JWT and NKey seed, as `nsc` writes it.
    Creds(PathBuf),
}

/// The `--nats-*` flags, parsed into [`NatsMode`]: six flags, one decision.
#[derive(Args)]
struct NatsArgs {
    /// Join this NATS server or cluster instead of starting one (`nats://`, or `tls://` for TLS);
    /// a cluster's nodes comma-separated.
    #[arg(long, env = "DOTA_NATS_URL", value_name = "URL")]
    nats_url: Option<String>,
    /// Config of the embedded nats-server.
    #[arg(
        long,
        env = "DOTA_NATS_CONF",
        value_name = "FILE",
        default_value = "./nats.conf"
    )]
    nats_conf: PathBuf,
    /// Client port of the embedded nats-server; 0 picks a free one.
    #[arg(
        long,
        env = "DOTA_NATS_PORT",
        value_name = "PORT",
        default_value_t = DEFAULT_EMBEDDED_NATS_PORT,
    )]
    nats_port: u16,
    /// Token for the `--nats-url` server; never logged.
    #[arg(
        long,
        env = "DOTA_NATS_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true,
        hide_default_value = true,
        requires = "nats_url"
    )]
    nats_token: Option<NatsToken>,
    /// Credentials file (user JWT and NKey seed) for the `--nats-url` server.
    #[arg(
        long,
        env = "DOTA_NATS_CREDS",
        value_name = "FILE",
        requires = "nats_url"
    )]
    nats_creds: Option<PathBuf>,
    /// CA certificate (PEM) of the `--nats-url` server; turns TLS on.
    #[arg(
        long,
        env = "DOTA_NATS_TLS_CA",
        value_name = "FILE",
        requires = "nats_url"
    )]
    nats_tls_ca: Option<PathBuf>,
}

impl TryFrom<NatsArgs> for NatsMode {
    type Error = clap::Error;

    fn try_from(args: NatsArgs) -> Result<Self, clap::Error> {
        let refuse = |kind, text: &str| Err(clap::Error::raw(kind, format!("{text}\n")));
        let auth = match (args.nats_token, args.nats_creds) {
            (Some(_), Some(_)) => {
                return refuse(
                    clap::error::ErrorKind::ArgumentConflict,
                    "--nats-token and --nats-creds exclude each other: give one",
                );
            }
            (Some(token), None) => NatsAuth::Token(token),
            (None, Some(creds)) => NatsAuth::Creds(creds),
            (None, None) => NatsAuth::None,
        };
        // Credentials without `--nats-url` are refused by clap (`requires`) when they come from
        // flags or the environment. From a config file they are the flags' defaults, which
        // `requires` does not see; they are then unused, as the embedded server needs none.
        match args.nats_url {
            // An empty URL (e.g. `DOTA_NATS_URL=` in a unit file) means "not set".
            Some(url) if !url.trim().is_empty() => Ok(NatsMode::External {
                url,
                auth,
                tls_ca: args.nats_tls_ca,
            }),
            _ => Ok(NatsMode::Embedded {
                conf: args.nats_conf,
                port: args.nats_port,
            }),
        }
    }
}

// `NatsMode` is flattened into `Settings` through `NatsArgs`, so `Settings.nats` stays the
// typed decision rather than three loose fields.
impl FromArgMatches for NatsMode {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        NatsArgs::from_arg_matches(matches).and_then(Self::try_from)
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

impl Args for NatsMode {
    fn augment_args(cmd: Command) -> Command {
        NatsArgs::augment_args(cmd)
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        NatsArgs::augment_args_for_update(cmd)
    }
}

/// Where the state lives that instances would share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum StoreBackend {
    /// This instance's redb file (default): one instance, zero config.
    #[default]
    Redb,
    /// JetStream KV and Object Store on `--nats-url`, shared by every instance; redb keeps a
    /// replica for reads. Needs nats-server 2.12 or newer.
    Nats,
}

/// Where team match lists come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum TeamSource {
    /// Dotabuff pages, OpenDota when Dotabuff fails (default).
    #[default]
    Dotabuff,
    /// OpenDota `/teams/{id}/matches` only.
    Opendota,
}

/// Whose players a team import fetches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum PlayerSides {
    /// Both teams of every match: opponents' profiles are on the dashboard too (default).
    #[default]
    Both,
    /// Only the imported team's side (about half the player calls).
    Team,
}
