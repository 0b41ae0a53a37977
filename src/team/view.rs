//! What GET on a team import shows: the stored record plus live progress (matches and players
//! ready / total / failed) and short summaries of the ready ones. Built from redb reads only.

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::{Value, json};

use super::record::TeamRecord;
use crate::config::PlayerSides;
use crate::domain::{PlayerId, Signature, TeamId};
use crate::store::{Store, StoreError};
use crate::upstream::opendota::{match_players, match_team};

/// Import progress. `failed` counts matches and players whose last attempt failed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
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

/// The team view served by GET.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TeamView {
    #[serde(flatten)]
    pub record: TeamRecord,
    pub progress: Progress,
    pub matches: Vec<Value>,
    pub players: Vec<Value>,
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

fn players_of(body: &Value, team: TeamId, sides: PlayerSides) -> Vec<PlayerId> {
    let players = match_players(body);
    let side = match sides {
        PlayerSides::Both => None,
        PlayerSides::Team if match_team(body, "radiant_team_id") == Some(team) => Some(true),
        PlayerSides::Team if match_team(body, "dire_team_id") == Some(team) => Some(false),
        PlayerSides::Team => None,
    };
    players
        .into_iter()
        .filter(|p| side.is_none_or(|radiant| p.radiant == radiant))
        .map(|p| p.id)
        .collect()
}

fn match_summary(body: &Value, team: TeamId) -> Value {
    let radiant = match_team(body, "radiant_team_id") == Some(team);
    let dire = match_team(body, "dire_team_id") == Some(team);
    let radiant_win = body.get("radiant_win").and_then(Value::as_bool);
    let won = match (radiant, dire, radiant_win) {
        (true, _, Some(w)) => Some(w),
        (_, true, Some(w)) => Some(!w),
        _ => None,
    };
    json!({
        "matchId": body.get("match_id").and_then(Value::as_u64).map(|id| id.to_string()),
        "startTime": body.get("start_time"),
        "duration": body.get("duration"),
        "radiantName": body.get("radiant_name"),
        "direName": body.get("dire_name"),
        "radiantScore": body.get("radiant_score"),
        "direScore": body.get("dire_score"),
        "radiantWin": radiant_win,
        "won": won,
    })
}

fn player_summary(id: PlayerId, body: &Value) -> Value {
    let profile = body.get("profile").cloned().unwrap_or(Value::Null);
    json!({
        "accountId": id,
        "personaname": profile.get("personaname"),
        "name": profile.get("name"),
        "avatar": profile.get("avatarfull").or_else(|| profile.get("avatar")),
        "rankTier": body.get("rank_tier"),
        "mmrEstimate": body.get("mmr_estimate").and_then(|m| m.get("estimate")),
    })
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
    entries: std::collections::HashMap<crate::domain::MatchId, (i64, Vec<PlayerId>)>,
}

/// Progress only, for the completion watcher.
pub fn progress(
    store: &Store,
    record: &TeamRecord,
    sides: PlayerSides,
    cache: &mut MatchPlayersCache,
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
                let fetched_at = store.meta(&sig)?.map(|m| m.fetched_at_ms).unwrap_or(0);
                let cached = cache.entries.get(id).filter(|(at, _)| *at == fetched_at);
                let ids = match cached {
                    Some((_, ids)) => ids.clone(),
                    None => {
                        let ids = read_json(store, &sig)?
                            .map(|body| players_of(&body, record.team_id, sides))
                            .unwrap_or_default();
                        cache.entries.insert(*id, (fetched_at, ids.clone()));
                        ids
                    }
                };
                players.extend(ids);
            }
            State::Failed => progress.matches_failed += 1,
            State::Pending => {}
        }
    }
    progress.players_total = players.len();
    for id in players {
        match state(store, &Signature::Player(id))? {
            State::Ready => progress.players_ready += 1,
            State::Failed => progress.players_failed += 1,
            State::Pending => {}
        }
    }
    progress.failed = progress.matches_failed + progress.players_failed;
    Ok(progress)
}

/// Builds the view served by GET, with summaries of the ready matches and players.
pub fn build(
    store: &Store,
    record: TeamRecord,
    sides: PlayerSides,
) -> Result<TeamView, StoreError> {
    let mut progress = Progress {
        matches_total: record.match_ids.len(),
        ..Progress::default()
    };
    let mut players = BTreeSet::new();
    let mut matches = Vec::new();
    for id in &record.match_ids {
        let sig = Signature::Match(*id);
        match state(store, &sig)? {
            State::Ready => {
                progress.matches_ready += 1;
                if let Some(body) = read_json(store, &sig)? {
                    players.extend(players_of(&body, record.team_id, sides));
                    matches.push(match_summary(&body, record.team_id));
                }
            }
            State::Failed => progress.matches_failed += 1,
            State::Pending => {}
        }
    }
    progress.players_total = players.len();
    let mut player_views = Vec::new();
    for id in players {
        let sig = Signature::Player(id);
        match state(store, &sig)? {
            State::Ready => {
                progress.players_ready += 1;
                if let Some(body) = read_json(store, &sig)? {
                    player_views.push(player_summary(id, &body));
                }
            }
            State::Failed => progress.players_failed += 1,
            State::Pending => {}
        }
    }
    progress.failed = progress.matches_failed + progress.players_failed;
    Ok(TeamView {
        record,
        progress,
        matches,
        players: player_views,
    })
}
