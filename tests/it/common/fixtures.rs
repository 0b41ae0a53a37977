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
/// A match body padded with `pad_bytes` of pseudo-random hex and no players (no fan-out): its
/// stored (gzip) form is still about half of it, so a few of them fill a small store bound.
pub fn padded_match(id: u64, pad_bytes: usize) -> String {
    let mut x = id.wrapping_mul(6364136223846793005).wrapping_add(1);
    let pad: String = (0..pad_bytes / 16)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            format!("{x:016x}")
        })
        .collect();
    json!({"match_id": id, "radiant_win": true, "duration": 2000, "start_time": 1726448523,
           "leagueid": 1, "players": [], "pad": pad})
    .to_string()
}

pub fn ten_players(base: u64) -> Vec<Option<u64>> {
    (0..10).map(|i| Some(base + i)).collect()
}

/// One row of a Dotabuff team matches page: (match id, league id, league name).
pub struct Row {
    pub match_id: u64,
    pub league_id: u64,
    pub league_name: &'static str,
}

pub fn row(match_id: u64, league_id: u64) -> Row {
    Row {
        match_id,
        league_id,
        league_name: if league_id == 16435 {
            "RD2L Season 33"
        } else {
            "Other Cup"
        },
    }
}

/// A Dotabuff team matches page in the real structure (`table.recent-esports-matches`,
/// league link + `img[alt]`, result link with `time[datetime]`, opponent link, pagination).
pub fn team_page_html(team_name: &str, rows: &[Row], page: u32, last: bool) -> String {
    let mut body = String::new();
    for r in rows {
        body.push_str(&format!(
            r#"<tr><td><a class="esports-league esports-link league-link" href="/esports/leagues/{lid}-slug"><span class="league-image"><img alt="{lname}" class="img-league img-avatar" src="x.png" /></span></a></td><td><div><a class="won" href="/matches/{mid}">Won Match</a></div><span class="r-none-mobile"><time datetime="2024-09-16T01:02:03+00:00">2024-09-16</time></span></td><td><div><a href="/esports/series/1">Series 1</a></div></td><td class="r-none-mobile">45:32</td><td class="cell-icons"><a class="esports-team esports-link team-link" href="/esports/teams/9517731-night-owls"><span class="team-image"><img alt="Night Owls" class="img-team img-avatar" src="y.png" /></span></a></td></tr>"#,
            lid = r.league_id,
            lname = r.league_name,
            mid = r.match_id
        ));
    }
    let next = if last {
        String::new()
    } else {
        format!(
            r#"<span class="next"><a rel="next" href="/esports/teams/1/matches?page={n}">Next &rsaquo;</a></span><span class="last"><a href="/esports/teams/1/matches?page=99">Last &raquo;</a></span>"#,
            n = page + 1
        )
    };
    format!(
        r#"<!DOCTYPE html><html><head><title>{team_name} - Matches - DOTABUFF</title></head><body><div class="header-content-title"><h1>{team_name}<small>Matches</small></h1></div><section><article><table class="table table-striped recent-esports-matches"><thead><tr><th>League</th><th>Result</th><th>Series</th><th>Duration</th><th>Opponent</th></tr></thead><tbody>{body}</tbody></table><nav class="pagination"><span class="page current">{page}</span>{next}</nav></article></section></body></html>"#
    )
}

impl Fixtures {
    /// Writes a team's Dotabuff pages (`pages[0]` is page 1) and, for every row, an OpenDota
    /// match with the given players.
    pub fn dotabuff_team(&self, team: u64, name: &str, pages: &[Vec<Row>]) -> &Self {
        for (i, rows) in pages.iter().enumerate() {
            let page = i as u32 + 1;
            let html = team_page_html(name, rows, page, page as usize == pages.len());
            let file = if page == 1 {
                format!("dotabuff/esports/teams/{team}/matches.html")
            } else {
                format!("dotabuff/esports/teams/{team}/matches.page-{page}.html")
            };
            self.raw(&file, html);
        }
        self
    }

    /// A team with `matches` matches in `league` on Dotabuff pages of `per_page` rows, match
    /// `first_match + i` with ten players of its own from `first_player + 10 * i`, where
    /// `first = (first_match, first_player)`: `pages + 11 * matches` upstream calls for a
    /// whole import.
    pub fn league_team(
        &self,
        team: u64,
        name: &str,
        league: u64,
        matches: u64,
        per_page: usize,
        (first_match, first_player): (u64, u64),
    ) -> &Self {
        let rows: Vec<Row> = (0..matches).map(|i| row(first_match + i, league)).collect();
        let pages: Vec<Vec<Row>> = rows
            .chunks(per_page)
            .map(|c| c.iter().map(|r| row(r.match_id, r.league_id)).collect())
            .collect();
        self.dotabuff_team(team, name, &pages);
        for i in 0..matches {
            self.match_with_players(first_match + i, &ten_players(first_player + i * 10));
        }
        self
    }

    /// OpenDota `/teams/{id}/matches` and `/teams/{id}` for the fallback path.
    pub fn opendota_team(&self, team: u64, name: &str, matches: &[(u64, u64)]) -> &Self {
        let rows: Vec<Value> = matches
            .iter()
            .map(|(mid, lid)| {
                json!({"match_id": mid, "radiant_win": true, "radiant": true, "duration": 2400,
                       "start_time": 1726448523, "leagueid": lid, "league_name": if *lid == 16435 { "RD2L Season 33" } else { "Other Cup" },
                       "cluster": 121, "opposing_team_id": 9517731, "opposing_team_name": "Night Owls", "opposing_team_logo": null})
            })
            .collect();
        self.raw(
            &format!("opendota/teams/{team}/matches.json"),
            Value::Array(rows).to_string(),
        );
        self.raw(
            &format!("opendota/teams/{team}.json"),
            json!({"team_id": team, "name": name, "tag": "T", "rating": 1000.0, "wins": 1, "losses": 1}).to_string(),
        )
    }
}

impl Fixtures {
    /// OpenDota `/leagues/{id}` and `/leagues/{id}/matchIds`.
    pub fn league(&self, id: u64, name: &str, match_ids: &[u64]) -> &Self {
        self.raw(
            &format!("opendota/leagues/{id}.json"),
            json!({"leagueid": id, "ticket": null, "banner": null, "tier": "amateur", "name": name})
                .to_string(),
        );
        self.raw(
            &format!("opendota/leagues/{id}/matchIds.json"),
            Value::from(match_ids.to_vec()).to_string(),
        )
    }

    /// OpenDota `/players/{id}/wl`, `/heroes`, `/recentMatches`.
    pub fn player_stats(&self, id: u64) -> &Self {
        self.raw(
            &format!("opendota/players/{id}/wl.json"),
            json!({"win": 60, "lose": 40}).to_string(),
        );
        let heroes: Vec<Value> = (1..=8)
            .map(|h| {
                json!({"hero_id": h, "last_played": 1739166856, "games": 10 * h, "win": 5 * h,
                            "with_games": 0, "with_win": 0, "against_games": 0, "against_win": 0})
            })
            .collect();
        self.raw(
            &format!("opendota/players/{id}/heroes.json"),
            Value::from(heroes).to_string(),
        );
        let recent: Vec<Value> = (0..6)
            .map(|i| json!({"match_id": 7_000_000 + i, "player_slot": if i % 2 == 0 { 1 } else { 129 },
                            "radiant_win": true, "duration": 2000, "game_mode": 22, "lobby_type": 7,
                            "hero_id": 5, "start_time": 1739166856, "kills": 8, "deaths": 3, "assists": 11}))
            .collect();
        self.raw(
            &format!("opendota/players/{id}/recentMatches.json"),
            Value::from(recent).to_string(),
        )
    }
}
