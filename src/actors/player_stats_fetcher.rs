//! `PlayerStatsFetcher`: one stats record per player built from OpenDota `/players/{id}/wl`,
//! `/heroes` and `/recentMatches` (three calls, each through the RateLimiter): win/loss and
//! win rate, the most played heroes, and recent form.

use serde_json::{Value, json};

use super::fetcher::{FetchJobs, Fetcher, wrong_kind};
use super::pipeline::Fetched;
use crate::domain::{Job, PlayerId, ResourceKind, Signature};
use crate::upstream::error::UpstreamError;
use crate::upstream::opendota::OpenDota;

/// The supervised player stats fetcher actor.
pub type PlayerStatsFetcher = Fetcher<PlayerStatsJobs>;

/// Heroes listed in `topHeroes`.
const TOP_HEROES: usize = 5;

#[derive(Clone)]
pub struct PlayerStatsJobs {
    pub opendota: OpenDota,
}

fn num(v: &Value, key: &str) -> u64 {
    v.get(key).and_then(Value::as_u64).unwrap_or(0)
}

fn rate(wins: u64, games: u64) -> Option<f64> {
    (games > 0).then(|| (wins as f64 / games as f64 * 1000.0).round() / 1000.0)
}

/// Builds the stats record from the three upstream bodies.
pub fn build_stats(id: PlayerId, wl: &Value, heroes: &[Value], recent: &[Value]) -> Value {
    let (win, lose) = (num(wl, "win"), num(wl, "lose"));
    let mut heroes: Vec<&Value> = heroes.iter().collect();
    heroes.sort_by_key(|h| std::cmp::Reverse(num(h, "games")));
    let top: Vec<Value> = heroes
        .iter()
        .take(TOP_HEROES)
        .map(|h| {
            json!({
                "heroId": h.get("hero_id"),
                "games": num(h, "games"),
                "win": num(h, "win"),
                "winRate": rate(num(h, "win"), num(h, "games")),
            })
        })
        .collect();
    let won = |m: &Value| {
        let radiant = m
            .get("player_slot")
            .and_then(Value::as_u64)
            .map(|s| s < 128);
        let radiant_win = m.get("radiant_win").and_then(Value::as_bool);
        radiant.zip(radiant_win).map(|(r, w)| r == w)
    };
    let recent_wins = recent.iter().filter(|m| won(m) == Some(true)).count() as u64;
    let games = recent.len() as u64;
    let avg = |key: &str| {
        (games > 0).then(|| recent.iter().map(|m| num(m, key)).sum::<u64>() as f64 / games as f64)
    };
    json!({
        "accountId": id,
        "win": win,
        "lose": lose,
        "winRate": rate(win, win + lose),
        "topHeroes": top,
        "recentForm": {
            "matches": games,
            "wins": recent_wins,
            "losses": games - recent_wins,
            "winRate": rate(recent_wins, games),
            "avgKills": avg("kills"),
            "avgDeaths": avg("deaths"),
            "avgAssists": avg("assists"),
            "results": recent.iter().map(|m| match won(m) {
                Some(true) => "W",
                Some(false) => "L",
                None => "?",
            }).collect::<String>(),
        },
    })
}

impl FetchJobs for PlayerStatsJobs {
    const KIND: ResourceKind = ResourceKind::PlayerStats;
    const NAME: &'static str = "PlayerStatsFetcher";

    fn fetch(
        &self,
        job: Job,
    ) -> impl std::future::Future<Output = Result<Fetched, UpstreamError>> + 'static {
        let opendota = self.opendota.clone();
        async move {
            let Signature::PlayerStats(id) = job.signature else {
                return Err(wrong_kind(&job, ResourceKind::PlayerStats));
            };
            let wl = opendota.get_player_wl(id).await?;
            let heroes = opendota.get_player_list(id, "heroes").await?;
            let recent = opendota.get_player_list(id, "recentMatches").await?;
            Ok(Fetched {
                body: build_stats(id, &wl, &heroes, &recent)
                    .to_string()
                    .into_bytes(),
                children: Vec::new(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let s = build_stats(id, &wl, &heroes, &recent);
        assert_eq!(s["winRate"], 0.75);
        assert_eq!(s["topHeroes"][0]["heroId"], 2);
        assert_eq!(s["recentForm"]["results"], "WL");
        assert_eq!(s["recentForm"]["avgKills"], 6.0);
    }
}
