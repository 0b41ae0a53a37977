//! `PlayerStatsFetcher`: one stats record per player built from OpenDota `/players/{id}/wl`,
//! `/heroes` and `/recentMatches` (three calls, each through the RateLimiter): win/loss and
//! win rate, the most played heroes, and recent form.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::fetcher::Fetcher;
use super::league_fetcher::encode;
use super::opendota_jobs::{FetchResult, OpenDotaJobs, OpenDotaKind};
use super::pipeline::Fetched;
use crate::domain::{Fanout, PlayerId, ResourceKind, Signature};
use crate::upstream::opendota::OpenDota;

/// The supervised player stats fetcher actor.
pub type PlayerStatsFetcher = Fetcher<OpenDotaJobs<PlayerStats>>;

/// Heroes listed in `topHeroes`.
const TOP_HEROES: usize = 5;

// The records below keep their fields in alphabetical order: records stored before these
// types existed were written with sorted keys, and the order keeps old and new byte-for-byte
// alike.

/// The stored stats, served as is by `GET /api/players/{id}/stats`. Rates are rounded to three
/// decimals and null when there were no games.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = PlayerStats)]
pub struct PlayerStatsRecord {
    pub account_id: PlayerId,
    pub lose: u64,
    pub recent_form: RecentForm,
    /// The most played heroes, most games first.
    pub top_heroes: Vec<HeroStats>,
    pub win: u64,
    pub win_rate: Option<f64>,
}

/// One hero of `topHeroes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HeroStats {
    pub games: u64,
    pub hero_id: Option<u64>,
    pub win: u64,
    pub win_rate: Option<f64>,
}

/// The player's recent matches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecentForm {
    pub avg_assists: Option<f64>,
    pub avg_deaths: Option<f64>,
    pub avg_kills: Option<f64>,
    pub losses: u64,
    pub matches: u64,
    /// Recent results, newest first: `W`, `L`, or `?` where the match does not say.
    #[schema(pattern = "^[WL?]*$")]
    pub results: String,
    pub win_rate: Option<f64>,
    pub wins: u64,
}

fn num(v: &Value, key: &str) -> u64 {
    v.get(key).and_then(Value::as_u64).unwrap_or(0)
}

fn rate(wins: u64, games: u64) -> Option<f64> {
    (games > 0).then(|| (wins as f64 / games as f64 * 1000.0).round() / 1000.0)
}

/// Whether the player of a recent match won it; `None` when the match does not say.
fn won(m: &Value) -> Option<bool> {
    let radiant = m
        .get("player_slot")
        .and_then(Value::as_u64)
        .map(|s| s < 128);
    let radiant_win = m.get("radiant_win").and_then(Value::as_bool);
    radiant.zip(radiant_win).map(|(r, w)| r == w)
}

fn recent_form(recent: &[Value]) -> RecentForm {
    let wins = recent.iter().filter(|m| won(m) == Some(true)).count() as u64;
    let games = recent.len() as u64;
    let avg = |key: &str| {
        (games > 0).then(|| recent.iter().map(|m| num(m, key)).sum::<u64>() as f64 / games as f64)
    };
    RecentForm {
        avg_assists: avg("assists"),
        avg_deaths: avg("deaths"),
        avg_kills: avg("kills"),
        losses: games - wins,
        matches: games,
        results: recent
            .iter()
            .map(|m| match won(m) {
                Some(true) => 'W',
                Some(false) => 'L',
                None => '?',
            })
            .collect(),
        win_rate: rate(wins, games),
        wins,
    }
}

/// Builds the stats record from the three upstream bodies.
pub fn build_stats(
    id: PlayerId,
    wl: &Value,
    heroes: &[Value],
    recent: &[Value],
) -> PlayerStatsRecord {
    let (win, lose) = (num(wl, "win"), num(wl, "lose"));
    let mut heroes: Vec<&Value> = heroes.iter().collect();
    heroes.sort_by_key(|h| std::cmp::Reverse(num(h, "games")));
    let top_heroes = heroes
        .iter()
        .take(TOP_HEROES)
        .map(|h| HeroStats {
            games: num(h, "games"),
            hero_id: h.get("hero_id").and_then(Value::as_u64),
            win: num(h, "win"),
            win_rate: rate(num(h, "win"), num(h, "games")),
        })
        .collect();
    PlayerStatsRecord {
        account_id: id,
        lose,
        recent_form: recent_form(recent),
        top_heroes,
        win,
        win_rate: rate(win, win + lose),
    }
}

/// Player stats jobs: three calls, one record, no children.
pub enum PlayerStats {}

impl OpenDotaKind for PlayerStats {
    const KIND: ResourceKind = ResourceKind::PlayerStats;
    type Id = PlayerId;

    async fn fetch(opendota: OpenDota, id: PlayerId, _: Fanout) -> FetchResult {
        let wl = opendota.get_player_wl(id).await?;
        let heroes = opendota.get_player_list(id, "heroes").await?;
        let recent = opendota.get_player_list(id, "recentMatches").await?;
        Ok(Fetched::new(
            encode(&build_stats(id, &wl, &heroes, &recent))?,
            Vec::new(),
        ))
    }

    fn id(signature: Signature) -> Option<PlayerId> {
        match signature {
            Signature::PlayerStats(id) => Some(id),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stats_summarise_win_rate_heroes_and_form() {
        let id = PlayerId::new(5).unwrap();
        let wl = json!({"win": 3, "lose": 1});
        let heroes = vec![
            json!({"hero_id": 1, "games": 2, "win": 1}),
            json!({"hero_id": 2, "games": 9, "win": 6}),
        ];
        let recent = vec![
            json!({"player_slot": 0, "radiant_win": true, "kills": 10, "deaths": 2, "assists": 5}),
            json!({"player_slot": 130, "radiant_win": true, "kills": 2, "deaths": 8, "assists": 1}),
        ];
        let s = serde_json::to_value(build_stats(id, &wl, &heroes, &recent)).unwrap();
        assert_eq!(s["winRate"], 0.75);
        assert_eq!(s["topHeroes"][0]["heroId"], 2);
        assert_eq!(s["recentForm"]["results"], "WL");
        assert_eq!(s["recentForm"]["avgKills"], 6.0);
    }

    /// The record is written exactly as the `json!` map it replaced wrote it (sorted keys,
    /// nulls for missing values), so stored copies from before read and serve the same.
    #[test]
    fn stats_serialise_as_before() {
        let id = PlayerId::new(5).unwrap();
        let heroes = vec![json!({"games": 1, "win": 1})];
        let s = build_stats(id, &json!({}), &heroes, &[]);
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            r#"{"accountId":"5","lose":0,"recentForm":{"avgAssists":null,"avgDeaths":null,"avgKills":null,"losses":0,"matches":0,"results":"","winRate":null,"wins":0},"topHeroes":[{"games":1,"heroId":null,"win":1,"winRate":1.0}],"win":0,"winRate":null}"#
        );
    }
}
