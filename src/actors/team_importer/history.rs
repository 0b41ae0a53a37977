//! The API sources (Steam, STRATZ): the team's matches are the rows of the league's history
//! (see `actors::league_history`) where the team is Radiant or Dire, and the players listed
//! in those rows are queued with the matches, by the same fan-out rule (`--team-players`), so
//! they need not wait for the match bodies. A source covers a league when its history of the
//! league is not empty; a team with no row in a covered league has no matches in it.
//!
//! Steam's history has no team names: the team's comes from GetTeamInfoByTeamID, cached for
//! the team TTL (`steam:team:{id}` in the page cache). STRATZ's rows carry both names.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::TeamJobs;
use crate::actors::cache_keeper::StorePage;
use crate::actors::league_history::{HistoryError, HistorySource};
use crate::config::PlayerSides;
use crate::domain::{LeagueId, PlayerId, Source, TeamId};
use crate::store::now_ms;
use crate::team::record::{TeamMatch, TeamRecord};
use crate::upstream::league_history::HistoryRow;

/// What an API source gave for one team of one league.
pub(super) enum FromHistory {
    /// The league's history lists it; `players` are the accounts to queue at once.
    Listed {
        record: Box<TeamRecord>,
        players: Vec<PlayerId>,
    },
    /// The source has no history of the league.
    Empty,
}

/// The cached team name (`steam:team:{id}`); `None` when Steam does not know the team.
#[derive(Serialize, Deserialize)]
struct CachedName {
    name: Option<String>,
}

impl TeamJobs {
    pub(super) async fn history_record(
        &self,
        source: &HistorySource,
        team: TeamId,
        league: LeagueId,
        force: bool,
    ) -> Result<FromHistory, HistoryError> {
        // Only the team's rows are kept of each page as it arrives (see `league_history`).
        let mut rows = TeamRows::new(team, league, self.sides);
        // The name is asked for while the history pages: one round trip less on the way to
        // the record (and to the first match and player jobs).
        let (loaded, steam_name) = tokio::join!(
            self.histories
                .load(source, league, force, |page| rows.add(page)),
            self.steam_team_name(source, team, force)
        );
        let loaded = loaded?;
        if loaded.rows == 0 {
            return Ok(FromHistory::Empty);
        }
        let (team_name, source) = match source {
            HistorySource::Steam(_) => (steam_name, Source::Steam),
            HistorySource::Stratz(_) => (rows.name.clone(), Source::Stratz),
        };
        let (listed, players) = rows.finish();
        let record = TeamRecord::from_matches(
            team,
            league,
            team_name,
            &BTreeMap::new(),
            listed,
            source,
            loaded.pages,
        );
        Ok(FromHistory::Listed {
            record: Box::new(record),
            players,
        })
    }

    /// The team's name from Steam, cached for the team TTL; `None` when unknown or unreachable
    /// (a missing name does not fail the import).
    async fn steam_team_name(
        &self,
        source: &HistorySource,
        team: TeamId,
        force: bool,
    ) -> Option<String> {
        let HistorySource::Steam(steam) = source else {
            return None;
        };
        let key = format!("steam:team:{team}");
        let ttl_ms = i64::try_from(self.page_ttl.as_millis()).unwrap_or(i64::MAX);
        if !force
            && let Ok(Some((fetched_at, body))) = self.store.page(&key)
            && now_ms() < fetched_at.saturating_add(ttl_ms)
            && let Ok(cached) = serde_json::from_slice::<CachedName>(&body)
        {
            return cached.name;
        }
        let name = match steam.team_name(team).await {
            Ok(name) => name,
            Err(err) => {
                tracing::debug!(%err, "team name unavailable from Steam");
                return None;
            }
        };
        if let Ok(body) = serde_json::to_vec(&CachedName { name: name.clone() })
            && let Err(err) = self.keeper.send(StorePage { key, body }).await
        {
            tracing::debug!(%err, "could not cache a team name");
        }
        name
    }
}

/// The team's rows of a league history, gathered page by page: its matches as listed, the
/// players of those rows that the fan-out rule takes (each once; never an anonymous or missing
/// account), and the team's name as the rows carry it (STRATZ's do).
struct TeamRows {
    team: TeamId,
    league: LeagueId,
    sides: PlayerSides,
    listed: Vec<TeamMatch>,
    players: BTreeSet<PlayerId>,
    name: Option<String>,
}

impl TeamRows {
    fn new(team: TeamId, league: LeagueId, sides: PlayerSides) -> Self {
        Self {
            team,
            league,
            sides,
            listed: Vec::new(),
            players: BTreeSet::new(),
            name: None,
        }
    }

    /// Keeps the team's rows of one page.
    fn add(&mut self, page: &[HistoryRow]) {
        for row in page {
            let Some(radiant) = row.side_of(self.team) else {
                continue;
            };
            let (own_name, opponent_id, opponent_name) = if radiant {
                (&row.radiant_name, row.dire_team, row.dire_name.clone())
            } else {
                (&row.dire_name, row.radiant_team, row.radiant_name.clone())
            };
            if self.name.is_none() {
                self.name.clone_from(own_name);
            }
            self.listed.push(TeamMatch {
                match_id: row.match_id,
                league_id: self.league,
                start_time: row
                    .start_time
                    .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
                    .map(|t| t.to_rfc3339()),
                opponent_id,
                opponent_name,
                won: None,
            });
            for player in &row.players {
                let taken = match self.sides {
                    PlayerSides::Both => true,
                    PlayerSides::Team => player.radiant == Some(radiant),
                };
                if let (true, Some(account)) = (taken, player.account) {
                    self.players.insert(account);
                }
            }
        }
    }

    /// The listed matches, newest first as the other sources list them, and the players.
    fn finish(mut self) -> (Vec<TeamMatch>, Vec<PlayerId>) {
        self.listed.sort_by_key(|m| std::cmp::Reverse(m.match_id));
        (self.listed, self.players.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::MatchId;
    use crate::upstream::league_history::HistoryPlayer;

    fn player(account: Option<u64>, radiant: bool) -> HistoryPlayer {
        HistoryPlayer {
            account: account.and_then(PlayerId::new),
            radiant: Some(radiant),
        }
    }

    #[test]
    fn the_team_rows_give_its_matches_and_the_players_the_fanout_rule_takes() {
        let t = |id| TeamId::new(id);
        let row = |id, radiant, dire| HistoryRow {
            match_id: MatchId::new(id).unwrap(),
            start_time: Some(1_730_000_000),
            radiant_team: t(radiant),
            dire_team: t(dire),
            radiant_name: None,
            dire_name: Some("Them".into()),
            players: vec![
                player(Some(1), true),
                player(None, true),
                player(Some(2), false),
            ],
        };
        let page = [row(10, 7, 8), row(30, 8, 7), row(20, 5, 6)];
        let (team, league) = (t(7).unwrap(), LeagueId::new(3).unwrap());
        let rows_of = |team, sides| {
            let mut rows = TeamRows::new(team, league, sides);
            // Two pages: what a page holds makes no difference.
            rows.add(&page[..1]);
            rows.add(&page[1..]);
            rows
        };
        let (listed, both) = rows_of(team, PlayerSides::Both).finish();
        let ids: Vec<_> = listed.iter().map(|m| m.match_id.get()).collect();
        assert_eq!(ids, [30, 10]);
        assert_eq!(listed[1].opponent_name.as_deref(), Some("Them"));
        assert_eq!(both, [PlayerId::new(1).unwrap(), PlayerId::new(2).unwrap()]);
        let (_, own) = rows_of(team, PlayerSides::Team).finish();
        // Radiant in match 10 (player 1), Dire in match 30 (player 2).
        assert_eq!(own, [PlayerId::new(1).unwrap(), PlayerId::new(2).unwrap()]);
        // The name is the first one a row gives the team's side (8 is Dire in match 10).
        let other = rows_of(t(8).unwrap(), PlayerSides::Both);
        assert_eq!(other.name.as_deref(), Some("Them"));
        let (none, _) = rows_of(t(99).unwrap(), PlayerSides::Both).finish();
        assert!(none.is_empty());
    }
}
