//! The team import's sources (`--team-sources` and what each source needs: its URL, its key
//! and how long its answers hold) and the budgets of the two API sources, Steam and STRATZ.
//! Flattened into [`super::Settings`] and [`super::RateLimits`]; each field declares its flag,
//! `DOTA_*` twin and default once, as in [`super::groups`].

use std::time::Duration;

use clap::Args;
use serde::Deserialize;

use super::secrets::{SteamKey, StratzToken};
use super::values::{http_url, positive, secs};
use crate::domain::{Source, SourceChain};

/// Steam's default calls per UTC minute: its guidance is about one call a second.
pub const DEFAULT_STEAM_PER_MINUTE: u32 = 60;
/// Steam's default calls per UTC day: 100,000 a key.
pub const DEFAULT_STEAM_PER_DAY: u32 = 100_000;

/// Where team match lists come from: the older, one-source setting (`--team-source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum TeamSource {
    /// Dotabuff pages, OpenDota when Dotabuff fails (the chain `dotabuff,opendota`).
    #[default]
    Dotabuff,
    /// OpenDota `/teams/{id}/matches` only.
    Opendota,
}

/// Where league and team match lists come from, and what the API sources need.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct SourceSettings {
    /// Sources a team import tries, in order, until one lists the league's matches: any of
    /// steam, stratz, dotabuff, opendota, comma-separated. Unset: steam,dotabuff,opendota with
    /// --steam-api-key, else dotabuff,opendota (or what the older --team-source says).
    #[arg(
        long,
        env = "DOTA_TEAM_SOURCES",
        value_name = "LIST",
        value_parser = |s: &str| s.parse::<SourceChain>()
    )]
    pub team_sources: Option<SourceChain>,
    /// Steam Web API base URL.
    #[arg(
        long,
        env = "DOTA_STEAM_URL",
        value_name = "URL",
        default_value = "https://api.steampowered.com",
        value_parser = http_url,
    )]
    pub steam_url: String,
    /// Steam Web API key (steamcommunity.com/dev/apikey), sent as `key`; never logged.
    #[arg(
        long,
        env = "DOTA_STEAM_API_KEY",
        value_name = "KEY",
        hide_env_values = true,
        hide_default_value = true
    )]
    pub steam_api_key: Option<SteamKey>,
    /// STRATZ API base URL.
    #[arg(
        long,
        env = "DOTA_STRATZ_URL",
        value_name = "URL",
        default_value = "https://api.stratz.com",
        value_parser = http_url,
    )]
    pub stratz_url: String,
    /// STRATZ API token (stratz.com/api), sent as a bearer token; never logged.
    #[arg(
        long,
        env = "DOTA_STRATZ_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true,
        hide_default_value = true
    )]
    pub stratz_token: Option<StratzToken>,
    /// Seconds a fetched league history (every page of it) serves team imports of that
    /// league before it is fetched again (6 hours).
    #[arg(
        id = "league_history_ttl_secs",
        long = "league-history-ttl-secs",
        env = "DOTA_LEAGUE_HISTORY_TTL_SECS",
        value_name = "SECS",
        default_value = "21600",
        value_parser = secs,
    )]
    pub league_history_ttl: Duration,
    /// Seconds a source that showed a bot challenge, refused the key or said it is down is
    /// skipped by imports (15 minutes).
    #[arg(
        id = "source_cooldown_secs",
        long = "source-cooldown-secs",
        env = "DOTA_SOURCE_COOLDOWN_SECS",
        value_name = "SECS",
        default_value = "900",
        value_parser = secs,
    )]
    pub source_cooldown: Duration,
}

impl SourceSettings {
    /// The chain an import tries: `--team-sources`; else the older `--team-source` (its old
    /// meaning: `dotabuff` falls back to OpenDota, `opendota` is OpenDota alone); else Steam
    /// first when it has a key. STRATZ stays in a chain only with `--stratz-token`, Steam only
    /// with `--steam-api-key` (a chain of nothing else keeps OpenDota, so an import always has
    /// a source).
    pub fn chain(&self, legacy: Option<TeamSource>) -> SourceChain {
        let listed = match (&self.team_sources, legacy) {
            (Some(chain), _) => chain.sources().to_vec(),
            (None, Some(TeamSource::Opendota)) => vec![Source::OpenDota],
            (None, Some(TeamSource::Dotabuff)) => vec![Source::Dotabuff, Source::OpenDota],
            (None, None) if self.steam_api_key.is_some() => {
                vec![Source::Steam, Source::Dotabuff, Source::OpenDota]
            }
            (None, None) => vec![Source::Dotabuff, Source::OpenDota],
        };
        let usable = listed.into_iter().filter(|source| match source {
            Source::Steam => self.steam_api_key.is_some(),
            Source::Stratz => self.stratz_token.is_some(),
            Source::Dotabuff | Source::OpenDota => true,
        });
        SourceChain::new(usable).unwrap_or_else(|| SourceChain::single(Source::OpenDota))
    }
}

/// The budgets of the API sources: Steam per minute and per day, STRATZ in its four published
/// windows. Flattened into [`super::RateLimits`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Args)]
pub struct SourceLimits {
    /// Steam Web API calls per calendar minute (UTC).
    #[arg(
        id = "steam_rate_limit_per_min",
        long = "steam-rate-limit-per-min",
        env = "DOTA_STEAM_RATE_LIMIT_PER_MIN",
        value_name = "N",
        default_value_t = DEFAULT_STEAM_PER_MINUTE,
        value_parser = positive::<u32>,
    )]
    pub steam_per_minute: u32,
    /// Steam Web API calls per UTC day.
    #[arg(
        id = "steam_daily_limit",
        long = "steam-daily-limit",
        env = "DOTA_STEAM_DAILY_LIMIT",
        value_name = "N",
        default_value_t = DEFAULT_STEAM_PER_DAY,
        value_parser = positive::<u32>,
    )]
    pub steam_per_day: u32,
    /// STRATZ calls per calendar second.
    #[arg(
        id = "stratz_rate_limit_per_sec",
        long = "stratz-rate-limit-per-sec",
        env = "DOTA_STRATZ_RATE_LIMIT_PER_SEC",
        value_name = "N",
        default_value_t = 20,
        value_parser = positive::<u32>,
    )]
    pub stratz_per_second: u32,
    /// STRATZ calls per calendar minute (UTC).
    #[arg(
        id = "stratz_rate_limit_per_min",
        long = "stratz-rate-limit-per-min",
        env = "DOTA_STRATZ_RATE_LIMIT_PER_MIN",
        value_name = "N",
        default_value_t = 250,
        value_parser = positive::<u32>,
    )]
    pub stratz_per_minute: u32,
    /// STRATZ calls per calendar hour (UTC).
    #[arg(
        id = "stratz_rate_limit_per_hour",
        long = "stratz-rate-limit-per-hour",
        env = "DOTA_STRATZ_RATE_LIMIT_PER_HOUR",
        value_name = "N",
        default_value_t = 2000,
        value_parser = positive::<u32>,
    )]
    pub stratz_per_hour: u32,
    /// STRATZ calls per UTC day.
    #[arg(
        id = "stratz_daily_limit",
        long = "stratz-daily-limit",
        env = "DOTA_STRATZ_DAILY_LIMIT",
        value_name = "N",
        default_value_t = 10_000,
        value_parser = positive::<u32>,
    )]
    pub stratz_per_day: u32,
}

impl Default for SourceLimits {
    fn default() -> Self {
        super::builtin()
    }
}

impl Default for SourceSettings {
    fn default() -> Self {
        super::builtin()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(sources: Option<&str>, steam: bool, stratz: bool) -> SourceSettings {
        SourceSettings {
            team_sources: sources.map(|s| s.parse().unwrap()),
            steam_api_key: steam.then(|| "k".parse().unwrap()),
            stratz_token: stratz.then(|| "t".parse().unwrap()),
            ..SourceSettings::default()
        }
    }

    #[test]
    fn the_default_chain_puts_steam_first_only_with_a_key() {
        let chain = |s: SourceSettings, legacy| s.chain(legacy).to_string();
        assert_eq!(
            chain(settings(None, false, false), None),
            "dotabuff,opendota"
        );
        assert_eq!(
            chain(settings(None, true, false), None),
            "steam,dotabuff,opendota"
        );
        // The older flag keeps its meaning.
        let od = Some(TeamSource::Opendota);
        assert_eq!(chain(settings(None, true, false), od), "opendota");
        let db = Some(TeamSource::Dotabuff);
        assert_eq!(chain(settings(None, false, false), db), "dotabuff,opendota");
        // Listed sources without their secret are left out; the list wins over the old flag.
        let listed = Some("stratz,dotabuff,steam");
        assert_eq!(chain(settings(listed, false, false), od), "dotabuff");
        assert_eq!(
            chain(settings(listed, true, true), None),
            "stratz,dotabuff,steam"
        );
        assert_eq!(
            chain(settings(Some("steam"), false, false), None),
            "opendota"
        );
    }
}
