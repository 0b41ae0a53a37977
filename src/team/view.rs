//! What GET on a team import shows: the stored record plus live progress (matches and players
//! ready / total / failed) and short summaries of the ready ones. Built from redb reads only.

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::record::TeamRecord;
use crate::config::PlayerSides;
use crate::domain::{Fanout, MatchId, PlayerId, Signature, TeamId};
use crate::store::{Store, StoreError};
use crate::upstream::opendota::{MatchSides, match_team};

/// Import progress. `failed` counts matches and players whose last attempt failed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    pub matches_ready: usize,
    pub matches_total: usize,
    pub players_ready: usize,
    pub players_total: usize,
    pub failed: usize,
    #[serde(skip)]
    matches_failed: usize,
    #[serde(skip)]
    players_failed: usize,
}

impl Progress {
    /// Every match and every player of the ready matches is ready or failed.
    pub fn is_complete(&self) -> bool {
        self.matches_ready + self.matches_failed == self.matches_total
            && self.players_ready + self.players_failed == self.players_total
    }
}

/// The team view served by GET: the stored record with progress and summaries of the ready
/// matches and players.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TeamView {
    #[serde(flatten)]
    pub record: TeamRecord,
    pub progress: Progress,
    pub matches: Vec<MatchSummary>,
    pub players: Vec<PlayerSummary>,
}

// The summaries keep their fields in alphabetical order: they replaced `json!` maps (sorted
// keys), and the order keeps the served bytes as they were.

/// Fields copied from a stored match; null where it has none.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MatchSummary {
    pub dire_name: Option<String>,
    pub dire_score: Option<i64>,
    /// Seconds.
    pub duration: Option<i64>,
    pub match_id: Option<String>,
    pub radiant_name: Option<String>,
    pub radiant_score: Option<i64>,
    pub radiant_win: Option<bool>,
    /// Unix seconds.
    pub start_time: Option<i64>,
    /// Whether the imported team won; null when it played neither side by ID.
    pub won: Option<bool>,
}

/// Fields copied from a stored player; null where it has none.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlayerSummary {
    pub account_id: PlayerId,
    pub avatar: Option<String>,
    /// As OpenDota wrote it (an integer or a decimal).
    #[schema(value_type = Option<f64>)]
    pub mmr_estimate: Option<serde_json::Number>,
    pub name: Option<String>,
    pub personaname: Option<String>,
    pub rank_tier: Option<i64>,
}

enum State {
    Ready,
    Failed,
    Pending,
}

fn state(store: &Store, sig: &Signature) -> Result<State, StoreError> {
    if store.meta(sig)?.is_some_and(|m| !m.invalidated) {
        return Ok(State::Ready);
    }
    if store.failure(sig)?.is_some() {
        return Ok(State::Failed);
    }
    Ok(State::Pending)
}

/// What a team import's matches fan out to. The importer queues the matches with it and the
/// progress count applies it to every stored match (through [`MatchSides::players_for`]).
pub fn import_fanout(team: TeamId, sides: PlayerSides) -> Fanout {
    match sides {
        PlayerSides::Both => Fanout::All,
        PlayerSides::Team => Fanout::TeamSide(team),
    }
}

fn text(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str).map(str::to_string)
}

fn int(v: Option<&Value>) -> Option<i64> {
    v.and_then(Value::as_i64)
}

fn match_summary(body: &Value, team: TeamId) -> MatchSummary {
    let radiant = match_team(body, "radiant_team_id") == Some(team);
    let dire = match_team(body, "dire_team_id") == Some(team);
    let radiant_win = body.get("radiant_win").and_then(Value::as_bool);
    let won = match (radiant, dire, radiant_win) {
        (true, _, Some(w)) => Some(w),
        (_, true, Some(w)) => Some(!w),
        _ => None,
    };
    MatchSummary {
        dire_name: text(body.get("dire_name")),
        dire_score: int(body.get("dire_score")),
        duration: int(body.get("duration")),
        match_id: body
            .get("match_id")
            .and_then(Value::as_u64)
            .map(|id| id.to_string()),
        radiant_name: text(body.get("radiant_name")),
        radiant_score: int(body.get("radiant_score")),
        radiant_win,
        start_time: int(body.get("start_time")),
        won,
    }
}

fn player_summary(id: PlayerId, body: &Value) -> PlayerSummary {
    let profile = body.get("profile");
    let field = |key: &str| profile.and_then(|p| p.get(key));
    PlayerSummary {
        account_id: id,
        avatar: text(field("avatarfull").or_else(|| field("avatar"))),
        mmr_estimate: body
            .get("mmr_estimate")
            .and_then(|m| m.get("estimate"))
            .and_then(|e| e.as_number().cloned()),
        name: text(field("name")),
        personaname: text(field("personaname")),
        rank_tier: int(body.get("rank_tier")),
    }
}

fn read_json(store: &Store, sig: &Signature) -> Result<Option<Value>, StoreError> {
    Ok(store
        .body(sig)?
        .and_then(|bytes| serde_json::from_slice(&bytes).ok()))
}

/// Remembers the players of stored matches by fetch time, so repeated progress checks do not
/// re-parse match bodies (parsed OpenDota matches are several hundred KB each).
#[derive(Default)]
pub struct MatchPlayersCache {
    entries: std::collections::HashMap<MatchId, (i64, Vec<PlayerId>)>,
}

/// The one count of an import's progress, for GET ([`build`]) and the completion watcher
/// ([`progress`]). `ready_match` gives the players of a ready match (and may keep a summary);
/// `ready_player` sees every ready player of those.
fn count(
    store: &Store,
    record: &TeamRecord,
    mut ready_match: impl FnMut(MatchId, Signature) -> Result<Vec<PlayerId>, StoreError>,
    mut ready_player: impl FnMut(PlayerId, Signature) -> Result<(), StoreError>,
) -> Result<Progress, StoreError> {
    let mut progress = Progress {
        matches_total: record.match_ids.len(),
        ..Progress::default()
    };
    let mut players = BTreeSet::new();
    for id in &record.match_ids {
        let sig = Signature::Match(*id);
        match state(store, &sig)? {
            State::Ready => {
                progress.matches_ready += 1;
                players.extend(ready_match(*id, sig)?);
            }
            State::Failed => progress.matches_failed += 1,
            State::Pending => {}
        }
    }
    progress.players_total = players.len();
    for id in players {
        let sig = Signature::Player(id);
        match state(store, &sig)? {
            State::Ready => {
                progress.players_ready += 1;
                ready_player(id, sig)?;
            }
            State::Failed => progress.players_failed += 1,
            State::Pending => {}
        }
    }
    progress.failed = progress.matches_failed + progress.players_failed;
    Ok(progress)
}

/// Progress only, for the completion watcher.
pub fn progress(
    store: &Store,
    record: &TeamRecord,
    sides: PlayerSides,
    cache: &mut MatchPlayersCache,
) -> Result<Progress, StoreError> {
    let fanout = import_fanout(record.team_id, sides);
    let players_of = |id: MatchId, sig: Signature| {
        let fetched_at = store.meta(&sig)?.map(|m| m.fetched_at_ms).unwrap_or(0);
        if let Some((at, ids)) = cache.entries.get(&id)
            && *at == fetched_at
        {
            return Ok(ids.clone());
        }
        let ids = read_json(store, &sig)?
            .map(|body| MatchSides::read(&body).players_for(fanout))
            .unwrap_or_default();
        cache.entries.insert(id, (fetched_at, ids.clone()));
        Ok(ids)
    };
    count(store, record, players_of, |_, _| Ok(()))
}

/// Builds the view served by GET, with summaries of the ready matches and players.
pub fn build(
    store: &Store,
    record: TeamRecord,
    sides: PlayerSides,
) -> Result<TeamView, StoreError> {
    let fanout = import_fanout(record.team_id, sides);
    let team = record.team_id;
    let mut matches = Vec::new();
    let mut players = Vec::new();
    let progress = count(
        store,
        &record,
        |_, sig| {
            let Some(body) = read_json(store, &sig)? else {
                return Ok(Vec::new());
            };
            matches.push(match_summary(&body, team));
            Ok(MatchSides::read(&body).players_for(fanout))
        },
        |id, sig| {
            if let Some(body) = read_json(store, &sig)? {
                players.push(player_summary(id, &body));
            }
            Ok(())
        },
    )?;
    Ok(TeamView {
        record,
        progress,
        matches,
        players,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The summaries are written exactly as the `json!` maps they replaced wrote them (sorted
    /// keys, nulls for what the stored body lacks).
    #[test]
    fn summaries_serialise_as_before() {
        let team = TeamId::new(9).unwrap();
        let body = json!({"match_id": 7, "radiant_team_id": 9, "radiant_win": false,
            "start_time": 1732583370, "radiant_score": 30});
        assert_eq!(
            serde_json::to_string(&match_summary(&body, team)).unwrap(),
            r#"{"direName":null,"direScore":null,"duration":null,"matchId":"7","radiantName":null,"radiantScore":30,"radiantWin":false,"startTime":1732583370,"won":false}"#
        );
        let player = json!({"profile": {"personaname": "p", "avatar": "a"}, "rank_tier": 55,
            "mmr_estimate": {"estimate": 3500}});
        assert_eq!(
            serde_json::to_string(&player_summary(PlayerId::new(5).unwrap(), &player)).unwrap(),
            r#"{"accountId":"5","avatar":"a","mmrEstimate":3500,"name":null,"personaname":"p","rankTier":55}"#
        );
    }
}
