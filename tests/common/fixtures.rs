//! Writes upstream fixture files in the real OpenDota shapes into a temp dir served by the
//! fixture upstream: matches with their players (anonymous ones included), player profiles.

use std::path::Path;

use serde_json::{Value, json};

pub struct Fixtures {
    dir: tempfile::TempDir,
}

impl Default for Fixtures {
    fn default() -> Self {
        Self::new()
    }
}

impl Fixtures {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("fixture dir");
        std::fs::create_dir_all(dir.path().join("opendota")).expect("opendota dir");
        std::fs::create_dir_all(dir.path().join("dotabuff")).expect("dotabuff dir");
        Self { dir }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `DIR/<rel>` (parents created).
    pub fn raw(&self, rel: &str, body: impl AsRef<[u8]>) -> &Self {
        let path = self.dir.path().join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, body).expect("write fixture");
        self
    }

    /// `/matches/{id}` with ten players; `None` is an anonymous player (`account_id: null`).
    /// Also writes a profile for every non-anonymous player.
    pub fn match_with_players(&self, id: u64, players: &[Option<u64>]) -> &Self {
        let body = match_json(id, players);
        self.raw(&format!("opendota/matches/{id}.json"), body.to_string());
        for p in players.iter().flatten() {
            self.player(*p);
        }
        self
    }

    /// `/players/{id}` in the current format (no `mmr_estimate`).
    pub fn player(&self, id: u64) -> &Self {
        let body = json!({
            "profile": {
                "account_id": id,
                "personaname": format!("player-{id}"),
                "name": null,
                "plus": false,
                "cheese": 0,
                "steamid": format!("7656119{:010}", id),
                "avatar": "https://avatars.steamstatic.com/x.jpg",
                "profileurl": format!("https://steamcommunity.com/profiles/{id}/"),
                "last_login": null,
                "loccountrycode": "SE",
                "is_contributor": false,
                "is_subscriber": false
            },
            "rank_tier": 55,
            "leaderboard_rank": null
        });
        self.raw(&format!("opendota/players/{id}.json"), body.to_string())
    }
}

/// An OpenDota match body with the fields the service and a dashboard read.
pub fn match_json(id: u64, players: &[Option<u64>]) -> Value {
    let players: Vec<Value> = players
        .iter()
        .enumerate()
        .map(|(i, account)| {
            let radiant = i < 5;
            json!({
                "match_id": id,
                "player_slot": if radiant { i } else { 128 + i - 5 },
                "account_id": account,
                "isRadiant": radiant,
                "hero_id": 1 + i,
                "kills": i, "deaths": 2, "assists": 7,
                "last_hits": 100 + i, "gold_per_min": 400, "xp_per_min": 500,
                "personaname": account.map(|a| format!("player-{a}")),
            })
        })
        .collect();
    json!({
        "match_id": id,
        "radiant_win": true,
        "duration": 2400,
        "start_time": 1732583370,
        "leagueid": 16435,
        "radiant_team_id": 9517508,
        "radiant_name": "Maple Syrup",
        "dire_team_id": 9517693,
        "dire_name": "Frost Giants",
        "radiant_score": 30,
        "dire_score": 12,
        "game_mode": 2,
        "lobby_type": 1,
        "players": players,
    })
}

/// Ten distinct account IDs starting at `base`.
pub fn ten_players(base: u64) -> Vec<Option<u64>> {
    (0..10).map(|i| Some(base + i)).collect()
}
