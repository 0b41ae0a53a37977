//! A league's match history as the API sources list it (Steam's `GetMatchHistory?league_id=`,
//! STRATZ's `league { matches }`): the rows, one page at a time, and the cursor to the next
//! page. Pure: the page parsers take parsed JSON and return typed rows, and the Steam and STRATZ
//! clients ([`super::steam`], [`super::stratz`]) call them on the blocking pool. The team
//! importer and the league fetcher keep the pages (`actors::league_history`) and read the team's
//! matches and players out of them.
//!
//! A player row whose account is missing or is Steam's anonymous account (4294967295) has no
//! [`PlayerId`] here, so it can never be queued.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::UpstreamError;
use crate::domain::{MatchId, PlayerId, Service, TeamId};

/// Steam's account ID of a player who hides their profile (2^32 − 1).
pub const ANONYMOUS_ACCOUNT: u64 = 4_294_967_295;
/// Steam sends at most this many matches a page, STRATZ is asked for this many.
pub const PAGE_SIZE: u32 = 100;
/// Steam's `player_slot` of the first Dire player; lower slots are Radiant.
const FIRST_DIRE_SLOT: u64 = 128;

/// A player account that may be queued: present, not 0 and not the anonymous account.
pub fn account(raw: Option<u64>) -> Option<PlayerId> {
    raw.filter(|id| *id != ANONYMOUS_ACCOUNT)
        .and_then(PlayerId::new)
}

/// Where a page starts: the request that fetches it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum Cursor {
    /// Steam: the newest matches (no `start_at_match_id`), or those at or below this ID.
    Steam { start_at_match_id: Option<u64> },
    /// STRATZ: `skip` matches in.
    Stratz { skip: u32 },
}

impl Cursor {
    /// The first page of `service`'s history.
    pub fn first(service: Service) -> Self {
        match service {
            Service::Stratz => Cursor::Stratz { skip: 0 },
            _ => Cursor::Steam {
                start_at_match_id: None,
            },
        }
    }
}

/// One player of a history row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryPlayer {
    /// `None`: anonymous or missing; never queued.
    pub account: Option<PlayerId>,
    /// `None` where the source does not say (STRATZ's list carries no side).
    pub radiant: Option<bool>,
}

/// One match of a league's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryRow {
    pub match_id: MatchId,
    /// Unix seconds.
    pub start_time: Option<i64>,
    pub radiant_team: Option<TeamId>,
    pub dire_team: Option<TeamId>,
    pub radiant_name: Option<String>,
    pub dire_name: Option<String>,
    pub players: Vec<HistoryPlayer>,
}

impl HistoryRow {
    /// Whether `team` played this match, and on which side (`Some(true)`: Radiant).
    pub fn side_of(&self, team: TeamId) -> Option<bool> {
        if self.radiant_team == Some(team) {
            Some(true)
        } else if self.dire_team == Some(team) {
            Some(false)
        } else {
            None
        }
    }
}

/// One page of a history: its rows and where the next page starts (`None`: the last page).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryPage {
    /// The request that fetched this page; a cached page is reused only for the same one.
    pub at: Cursor,
    pub rows: Vec<HistoryRow>,
    pub next: Option<Cursor>,
    /// The rows as the source sent them, for `--record-dir` (not cached: a page read back
    /// from the cache has none).
    #[serde(skip)]
    pub raw: Vec<Value>,
}

fn garbled(service: Service, reason: impl Into<String>) -> UpstreamError {
    UpstreamError::Garbled {
        service,
        reason: reason.into(),
    }
}

/// What Steam's `result.status` said, when it is not a page.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SteamRefusal {
    /// `status` 15: the league's history is private.
    #[error("the league history is private (status 15)")]
    Private,
    /// Any other status, e.g. 2 with a `statusDetail`.
    #[error("status {status}: {detail}")]
    Status { status: i64, detail: String },
}

/// Reads a `GetMatchHistory` answer fetched at `at`: its rows, and the next page's cursor
/// (the smallest match ID seen − 1, while `results_remaining` is above 0; the page is not
/// assumed sorted). `Ok(Err(_))` is Steam's own refusal, sent with HTTP 200.
pub fn read_steam_page(
    at: Cursor,
    body: &Value,
) -> Result<Result<HistoryPage, SteamRefusal>, UpstreamError> {
    const STEAM: Service = Service::Steam;
    let result = body
        .get("result")
        .ok_or_else(|| garbled(STEAM, "no `result` object"))?;
    let status = result.get("status").and_then(Value::as_i64).unwrap_or(1);
    if status == 15 {
        return Ok(Err(SteamRefusal::Private));
    }
    if status != 1 {
        let detail = result.get("statusDetail").and_then(Value::as_str);
        return Ok(Err(SteamRefusal::Status {
            status,
            detail: detail.unwrap_or("no detail").to_string(),
        }));
    }
    let matches = result
        .get("matches")
        .and_then(Value::as_array)
        .ok_or_else(|| garbled(STEAM, "no `matches` array"))?;
    let rows: Vec<HistoryRow> = matches.iter().filter_map(steam_row).collect();
    let remaining = result
        .get("results_remaining")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let smallest = rows.iter().map(|r| r.match_id.get()).min();
    let next = match smallest {
        Some(smallest) if remaining > 0 && smallest > 1 => Some(Cursor::Steam {
            start_at_match_id: Some(smallest - 1),
        }),
        _ => None,
    };
    Ok(Ok(HistoryPage {
        at,
        rows,
        next,
        raw: matches.clone(),
    }))
}

fn steam_row(row: &Value) -> Option<HistoryRow> {
    let team = |key: &str| row.get(key).and_then(Value::as_u64).and_then(TeamId::new);
    let players = row
        .get("players")
        .and_then(Value::as_array)
        .map(|players| {
            players
                .iter()
                .map(|p| HistoryPlayer {
                    account: account(p.get("account_id").and_then(Value::as_u64)),
                    radiant: p
                        .get("player_slot")
                        .and_then(Value::as_u64)
                        .map(|slot| slot < FIRST_DIRE_SLOT),
                })
                .collect()
        })
        .unwrap_or_default();
    Some(HistoryRow {
        match_id: MatchId::new(row.get("match_id")?.as_u64()?)?,
        start_time: row.get("start_time").and_then(Value::as_i64),
        radiant_team: team("radiant_team_id"),
        dire_team: team("dire_team_id"),
        radiant_name: None,
        dire_name: None,
        players,
    })
}

/// Reads a STRATZ `league { matches }` answer fetched at `at` (`skip` in): the next page starts
/// `PAGE_SIZE` further on while this one is full. An `errors` array (sent with HTTP 200) or a
/// body without the list is garbled, like any other unreadable answer.
pub fn read_stratz_page(at: Cursor, body: &Value) -> Result<HistoryPage, UpstreamError> {
    const STRATZ: Service = Service::Stratz;
    if let Some(errors) = body.get("errors").and_then(Value::as_array)
        && !errors.is_empty()
    {
        let first = errors[0].get("message").and_then(Value::as_str);
        return Err(garbled(
            STRATZ,
            format!("GraphQL errors: {}", first.unwrap_or("no message")),
        ));
    }
    let league = body
        .pointer("/data/league")
        .ok_or_else(|| garbled(STRATZ, "no `data.league`"))?;
    if league.is_null() {
        // No such league: a history with no matches.
        return Ok(HistoryPage {
            at,
            rows: Vec::new(),
            next: None,
            raw: Vec::new(),
        });
    }
    let matches = league
        .get("matches")
        .and_then(Value::as_array)
        .ok_or_else(|| garbled(STRATZ, "no `data.league.matches` array"))?;
    let rows: Vec<HistoryRow> = matches.iter().filter_map(stratz_row).collect();
    let skip = match at {
        Cursor::Stratz { skip } => skip,
        Cursor::Steam { .. } => 0,
    };
    let full = u32::try_from(matches.len()).unwrap_or(u32::MAX) >= PAGE_SIZE;
    let next = full.then_some(Cursor::Stratz {
        skip: skip.saturating_add(PAGE_SIZE),
    });
    Ok(HistoryPage {
        at,
        rows,
        next,
        raw: matches.clone(),
    })
}

fn stratz_row(row: &Value) -> Option<HistoryRow> {
    let team = |key: &str| row.get(key).filter(|t| !t.is_null());
    let id = |t: Option<&Value>| t?.get("id")?.as_u64().and_then(TeamId::new);
    let name = |t: Option<&Value>| Some(t?.get("name")?.as_str()?.to_string());
    let (radiant, dire) = (team("radiantTeam"), team("direTeam"));
    let players = row
        .get("players")
        .and_then(Value::as_array)
        .map(|players| {
            players
                .iter()
                .map(|p| HistoryPlayer {
                    account: account(p.get("steamAccountId").and_then(Value::as_u64)),
                    radiant: p.get("isRadiant").and_then(Value::as_bool),
                })
                .collect()
        })
        .unwrap_or_default();
    Some(HistoryRow {
        match_id: MatchId::new(row.get("id")?.as_u64()?)?,
        start_time: row.get("startDateTime").and_then(Value::as_i64),
        radiant_team: id(radiant),
        dire_team: id(dire),
        radiant_name: name(radiant),
        dire_name: name(dire),
        players,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn steam_match(id: u64, players: Value) -> Value {
        json!({"series_id": 1, "series_type": 1, "match_id": id, "match_seq_num": id + 9,
               "start_time": 1_730_000_000, "lobby_type": 1,
               "radiant_team_id": 7, "dire_team_id": 8, "players": players})
    }

    #[test]
    fn a_steam_page_pages_on_below_its_smallest_id_whatever_the_order() {
        let players = json!([
            {"account_id": 11, "player_slot": 0, "hero_id": 1},
            {"account_id": ANONYMOUS_ACCOUNT, "player_slot": 1, "hero_id": 2},
            {"player_slot": 128, "hero_id": 3},
            {"account_id": 12, "player_slot": 129, "hero_id": 4}
        ]);
        let body = json!({"result": {"status": 1, "num_results": 3, "total_results": 250,
            "results_remaining": 147, "matches": [
                steam_match(500, players.clone()), steam_match(300, json!([])),
                steam_match(400, json!([]))]}});
        let at = Cursor::first(Service::Steam);
        let page = read_steam_page(at, &body).unwrap().unwrap();
        assert_eq!(
            page.next,
            Some(Cursor::Steam {
                start_at_match_id: Some(299)
            })
        );
        let accounts: Vec<_> = page.rows[0].players.iter().map(|p| p.account).collect();
        assert_eq!(accounts, [PlayerId::new(11), None, None, PlayerId::new(12)]);
        assert_eq!(page.rows[0].players[3].radiant, Some(false));
        assert_eq!(page.rows[0].side_of(TeamId::new(8).unwrap()), Some(false));

        let last = json!({"result": {"status": 1, "results_remaining": 0,
            "matches": [steam_match(100, json!([]))]}});
        assert_eq!(read_steam_page(at, &last).unwrap().unwrap().next, None);
    }

    #[test]
    fn steam_refusals_sent_with_http_200_are_told_apart() {
        let at = Cursor::first(Service::Steam);
        let private = json!({"result": {"status": 15, "statusDetail": "private"}});
        assert_eq!(
            read_steam_page(at, &private).unwrap(),
            Err(SteamRefusal::Private)
        );
        let error =
            json!({"result": {"status": 2, "statusDetail": "Error retrieving match data."}});
        let refusal = read_steam_page(at, &error).unwrap().unwrap_err();
        assert!(
            refusal.to_string().contains("Error retrieving"),
            "{refusal}"
        );
        assert!(read_steam_page(at, &json!({"oops": 1})).is_err());
    }

    #[test]
    fn stratz_pages_on_while_full_and_its_errors_are_garbled() {
        let row = |id: u64| {
            json!({"id": id, "startDateTime": 1, "durationSeconds": 2,
                   "radiantTeam": {"id": 7, "name": "Seven"}, "direTeam": null,
                   "players": [{"steamAccountId": 5, "heroId": 1}, {"steamAccountId": null, "heroId": 2}]})
        };
        let full: Vec<Value> = (1..=100).map(row).collect();
        let body = json!({"data": {"league": {"matches": full}}});
        let page = read_stratz_page(Cursor::Stratz { skip: 100 }, &body).unwrap();
        assert_eq!(page.next, Some(Cursor::Stratz { skip: 200 }));
        assert_eq!(page.rows[0].radiant_name.as_deref(), Some("Seven"));
        assert_eq!(page.rows[0].dire_team, None);
        assert_eq!(page.rows[0].players[1].account, None);
        let short = json!({"data": {"league": {"matches": [row(1)]}}});
        assert_eq!(
            read_stratz_page(Cursor::Stratz { skip: 0 }, &short)
                .unwrap()
                .next,
            None
        );
        let errors = json!({"errors": [{"message": "league not found"}], "data": null});
        let err = read_stratz_page(Cursor::Stratz { skip: 0 }, &errors).unwrap_err();
        assert!(matches!(err, UpstreamError::Garbled { .. }), "{err}");
        assert!(err.to_string().contains("league not found"), "{err}");
    }
}
