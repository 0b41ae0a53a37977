//! Writes the Steam and STRATZ data files the fixture upstream pages from (real shapes: Steam's
//! `GetMatchHistory` rows and `GetTeamInfoByTeamID` answer, STRATZ's `league.matches`).

use serde_json::{Value, json};

use super::Fixtures;

/// Steam's anonymous account.
pub const ANONYMOUS: u64 = 4_294_967_295;

/// One player slot of a Steam history row: an account, the anonymous account, or no
/// `account_id` at all.
#[derive(Clone, Copy)]
pub enum Slot {
    Account(u64),
    Anonymous,
    Missing,
}

/// A `GetMatchHistory` row: ten players, Radiant slots 0-4, Dire 128-132.
pub fn steam_row(match_id: u64, radiant: u64, dire: u64, players: &[Slot]) -> Value {
    let players: Vec<Value> = players
        .iter()
        .enumerate()
        .map(|(i, slot)| {
            let player_slot = if i < 5 { i } else { 128 + i - 5 };
            let mut p = json!({"player_slot": player_slot, "hero_id": 1 + i});
            match slot {
                Slot::Account(id) => p["account_id"] = (*id).into(),
                Slot::Anonymous => p["account_id"] = ANONYMOUS.into(),
                Slot::Missing => {}
            }
            p
        })
        .collect();
    json!({"series_id": 0, "series_type": 0, "match_id": match_id, "match_seq_num": match_id + 7,
           "start_time": 1_730_000_000 + match_id % 1000, "lobby_type": 1,
           "radiant_team_id": radiant, "dire_team_id": dire, "players": players})
}

/// Ten plain accounts from `base`.
pub fn accounts(base: u64) -> Vec<Slot> {
    (0..10).map(|i| Slot::Account(base + i)).collect()
}

/// The accounts of `slots` as the OpenDota match body has them (anonymous: `null`).
pub fn opendota_players(slots: &[Slot]) -> Vec<Option<u64>> {
    slots
        .iter()
        .map(|s| match s {
            Slot::Account(id) => Some(*id),
            Slot::Anonymous | Slot::Missing => None,
        })
        .collect()
}

impl Fixtures {
    /// `steam/leagues/{league}.json`: the league's whole history.
    pub fn steam_league(&self, league: u64, rows: &[Value]) -> &Self {
        self.raw(
            &format!("steam/leagues/{league}.json"),
            json!({ "matches": rows }).to_string(),
        )
    }

    /// `steam/teams/{team}.json`: the GetTeamInfoByTeamID answer.
    pub fn steam_team(&self, team: u64, name: &str) -> &Self {
        let body = json!({"result": {"status": 1, "teams": [{"team_id": team, "name": name,
            "tag": "T", "time_created": 1_700_000_000, "rating": "inactive", "logo": 0,
            "country_code": "se", "player_0_account_id": 1, "league_id_0": 16435}]}});
        self.raw(&format!("steam/teams/{team}.json"), body.to_string())
    }

    /// `stratz/leagues/{league}.json`: the league's matches as STRATZ lists them.
    pub fn stratz_league(&self, league: u64, rows: &[(u64, u64, u64)]) -> &Self {
        let rows: Vec<Value> = rows
            .iter()
            .map(|(id, radiant, dire)| {
                let players: Vec<Value> = (0..10)
                    .map(|i| json!({"steamAccountId": 50_000 + id % 100 * 10 + i, "heroId": i + 1, "isRadiant": i < 5}))
                    .collect();
                json!({"id": id, "startDateTime": 1_730_668_041, "durationSeconds": 2964,
                       "radiantTeam": {"id": radiant, "name": format!("Team {radiant}")},
                       "direTeam": {"id": dire, "name": format!("Team {dire}")},
                       "players": players})
            })
            .collect();
        self.raw(
            &format!("stratz/leagues/{league}.json"),
            Value::Array(rows).to_string(),
        )
    }
}
