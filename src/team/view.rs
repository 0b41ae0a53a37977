//! What GET on a team import shows: the stored record plus live progress (matches and players
//! ready / total / failed) and short summaries of the ready ones. Built from one redb read
//! snapshot, from the summaries stored beside the bodies (see [`super::summary`]). Whether the
//! import waits for the next UTC day's budget is not in the store: the HTTP route adds it
//! ([`Progress::with_day_budget`]) from the rate limiter's latest snapshot.

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::record::TeamRecord;
use super::summary::{MatchFacts, MatchSummary, PlayerSummary};
use crate::config::PlayerSides;
use crate::domain::{Fanout, LeagueId, MatchId, PlayerId, Signature, TeamId};
use crate::store::{Snapshot, Store, StoreError};

/// Import progress. `failed` counts matches and players whose last attempt failed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    pub matches_ready: usize,
    pub matches_total: usize,
    pub players_ready: usize,
    pub players_total: usize,
    pub failed: usize,
    /// True while the import is incomplete and OpenDota's budget for the UTC day is spent:
    /// its next calls wait for `resumesAt`, and it then goes on by itself.
    pub waiting_for_budget: bool,
    /// While `waitingForBudget`: when the next UTC day's budget opens (RFC 3339, UTC).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub resumes_at: Option<String>,
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

    /// Adds the day's budget: `day_spent_until` is `Some(resetsAt)` while OpenDota's budget for
    /// the UTC day is spent. Only an incomplete import waits for it.
    pub fn with_day_budget(mut self, day_spent_until: Option<String>) -> Self {
        self.resumes_at = day_spent_until.filter(|_| !self.is_complete());
        self.waiting_for_budget = self.resumes_at.is_some();
        self
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

/// What `?include=progress` serves: the import's identity and progress only, for pollers that
/// show a progress bar and need not download the summaries.
// `deny_unknown_fields` only marks the schema closed, so a whole view never matches it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TeamProgressView {
    pub team_id: TeamId,
    pub league_id: LeagueId,
    pub progress: Progress,
}

/// What GET on a team import serves: the whole view, or with `include=progress` the progress
/// only (one schema in the API document, as one operation answers both).
// One value per response, built and serialised at once: boxing the larger variant would only
// add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(untagged)]
pub enum TeamViewBody {
    Full(TeamView),
    Progress(TeamProgressView),
}

enum State {
    Ready,
    Failed,
    Pending,
}

fn state(snap: &Snapshot, sig: &Signature) -> Result<State, StoreError> {
    if snap.meta(sig)?.is_some_and(|m| !m.invalidated) {
        return Ok(State::Ready);
    }
    if snap.has_failure(sig)? {
        return Ok(State::Failed);
    }
    Ok(State::Pending)
}

/// What a team import's matches fan out to. The importer queues the matches with it and the
/// progress count applies it to every stored match (through [`MatchFacts::players_for`]).
pub fn import_fanout(team: TeamId, sides: PlayerSides) -> Fanout {
    match sides {
        PlayerSides::Both => Fanout::All,
        PlayerSides::Team => Fanout::TeamSide(team),
    }
}

/// The stored match's facts: its summary, or (for a match stored before summaries were kept)
/// read from its body.
fn match_facts(snap: &Snapshot, sig: &Signature) -> Result<Option<MatchFacts>, StoreError> {
    if let Some(facts) = snap.summary(sig)? {
        return Ok(Some(facts));
    }
    Ok(read_json(snap, sig)?.map(|body| MatchFacts::read(&body)))
}

fn player_summary(
    snap: &Snapshot,
    id: PlayerId,
    sig: &Signature,
) -> Result<Option<PlayerSummary>, StoreError> {
    if let Some(summary) = snap.summary(sig)? {
        return Ok(Some(summary));
    }
    Ok(read_json(snap, sig)?.map(|body| PlayerSummary::read(id, &body)))
}

fn read_json(snap: &Snapshot, sig: &Signature) -> Result<Option<Value>, StoreError> {
    Ok(snap
        .body(sig)?
        .and_then(|bytes| serde_json::from_slice(&bytes).ok()))
}

/// The one count of an import's progress, for GET ([`build`]) and the completion watcher
/// ([`progress`]). `ready_match` gives the players of a ready match (and may keep a summary);
/// `ready_player` sees every ready player of those. Every signature read is added to `deps`:
/// the count can change only by a write to one of them.
fn count(
    snap: &Snapshot,
    record: &TeamRecord,
    deps: &mut Vec<Signature>,
    mut ready_match: impl FnMut(MatchId, Signature) -> Result<Vec<PlayerId>, StoreError>,
    mut ready_player: impl FnMut(PlayerId, Signature) -> Result<(), StoreError>,
) -> Result<Progress, StoreError> {
    let mut progress = Progress {
        matches_total: record.match_ids.len(),
        ..Progress::default()
    };
    let mut players = BTreeSet::new();
    deps.reserve(record.match_ids.len());
    for id in &record.match_ids {
        let sig = Signature::Match(*id);
        deps.push(sig);
        match state(snap, &sig)? {
            State::Ready => {
                progress.matches_ready += 1;
                players.extend(ready_match(*id, sig)?);
            }
            State::Failed => progress.matches_failed += 1,
            State::Pending => {}
        }
    }
    progress.players_total = players.len();
    deps.reserve(players.len());
    for id in players {
        let sig = Signature::Player(id);
        deps.push(sig);
        match state(snap, &sig)? {
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

/// Progress only (the completion watcher and `?include=progress`). Reads summaries, never
/// match bodies (but for matches stored before summaries were kept).
pub fn progress(
    store: &Store,
    record: &TeamRecord,
    sides: PlayerSides,
) -> Result<Progress, StoreError> {
    progress_with_deps(store, record, sides, &mut Vec::new())
}

/// [`progress`], adding every signature it read to `deps` (see [`count`]).
pub fn progress_with_deps(
    store: &Store,
    record: &TeamRecord,
    sides: PlayerSides,
    deps: &mut Vec<Signature>,
) -> Result<Progress, StoreError> {
    let snap = store.snapshot()?;
    progress_in(&snap, record, sides, deps)
}

fn progress_in(
    snap: &Snapshot,
    record: &TeamRecord,
    sides: PlayerSides,
    deps: &mut Vec<Signature>,
) -> Result<Progress, StoreError> {
    let fanout = import_fanout(record.team_id, sides);
    let players_of = |_, sig: Signature| {
        Ok(match_facts(snap, &sig)?
            .map(|facts| facts.players_for(fanout))
            .unwrap_or_default())
    };
    count(snap, record, deps, players_of, |_, _| Ok(()))
}

/// The matches and players of an incomplete import that are neither ready nor failed (the
/// ones [`progress`] counts as still to come), from one snapshot; empty exactly when it is
/// complete.
pub fn pending(
    store: &Store,
    record: &TeamRecord,
    sides: PlayerSides,
) -> Result<Vec<Signature>, StoreError> {
    let snap = store.snapshot()?;
    let mut deps = Vec::new();
    if progress_in(&snap, record, sides, &mut deps)?.is_complete() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for sig in deps {
        if matches!(state(&snap, &sig)?, State::Pending) {
            out.push(sig);
        }
    }
    Ok(out)
}

/// Builds the view served by GET, with summaries of the ready matches and players, from one
/// consistent snapshot of the store; adds every signature it read to `deps` (see [`count`]).
pub fn build(
    store: &Store,
    record: TeamRecord,
    sides: PlayerSides,
    deps: &mut Vec<Signature>,
) -> Result<TeamView, StoreError> {
    let snap = store.snapshot()?;
    let fanout = import_fanout(record.team_id, sides);
    let team = record.team_id;
    let mut matches = Vec::new();
    let mut players = Vec::new();
    let progress = count(
        &snap,
        &record,
        deps,
        |_, sig| {
            let Some(facts) = match_facts(&snap, &sig)? else {
                return Ok(Vec::new());
            };
            matches.push(facts.summary(team));
            Ok(facts.players_for(fanout))
        },
        |id, sig| {
            if let Some(summary) = player_summary(&snap, id, &sig)? {
                players.push(summary);
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
    use crate::config::Ttls;
    use serde_json::json;

    fn put(store: &Store, sig: Signature, body: &[u8], summary: Option<Vec<u8>>) {
        store
            .write(|tx| {
                let stored = crate::encoding::Encoded::of(body).unwrap();
                tx.put_entry(&sig, &stored, summary.as_deref(), crate::store::now_ms())
            })
            .unwrap();
    }

    /// The view comes from the stored summaries: the bodies are not read (here they are not
    /// even JSON), so a 300-match league costs 300 small reads, not 300 match bodies.
    #[test]
    fn the_view_is_built_from_summaries_not_bodies() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.redb"), Ttls::default()).unwrap();
        let team = TeamId::new(9).unwrap();
        let (m1, m2) = (MatchId::new(1).unwrap(), MatchId::new(2).unwrap());
        let body = json!({"match_id": 1, "radiant_team_id": 9, "radiant_win": true,
            "players": [{"account_id": 11, "player_slot": 0}, {"account_id": 12, "player_slot": 130}]});
        let match_sig = Signature::Match(m1);
        let summary = super::super::summary::of_body(&match_sig, body.to_string().as_bytes());
        put(&store, match_sig, b"not json", summary);
        let p11 = Signature::Player(PlayerId::new(11).unwrap());
        let player = json!({"profile": {"personaname": "eleven"}, "rank_tier": 70});
        let summary = super::super::summary::of_body(&p11, player.to_string().as_bytes());
        put(&store, p11, b"not json", summary);

        let record = TeamRecord {
            team_id: team,
            team_name: None,
            league_id: LeagueId::new(5).unwrap(),
            league_name: None,
            match_ids: vec![m1, m2],
            match_ids_by_league: Default::default(),
            source: super::super::record::Source::OpenDota,
            sources_tried: Vec::new(),
            fallback_reason: None,
            listed_matches: Vec::new(),
            pages: 0,
        };
        let view = build(&store, record.clone(), PlayerSides::Both, &mut Vec::new()).unwrap();
        assert_eq!(view.matches.len(), 1);
        assert_eq!(view.matches[0].won, Some(true));
        assert_eq!(view.players.len(), 1);
        assert_eq!(view.players[0].personaname.as_deref(), Some("eleven"));
        let p = view.progress;
        assert_eq!((p.matches_ready, p.matches_total), (1, 2));
        assert_eq!((p.players_ready, p.players_total), (1, 2));
        assert_eq!(progress(&store, &record, PlayerSides::Both).unwrap(), p);
        // The team's side only: player 12 played dire.
        let side = progress(&store, &record, PlayerSides::Team).unwrap();
        assert_eq!(side.players_total, 1);
        // What the stall repair looks at: neither ready nor failed.
        let p12 = Signature::Player(PlayerId::new(12).unwrap());
        assert_eq!(
            pending(&store, &record, PlayerSides::Both).unwrap(),
            vec![Signature::Match(m2), p12]
        );
        assert_eq!(
            pending(&store, &record, PlayerSides::Team).unwrap(),
            vec![Signature::Match(m2)]
        );
        let done = TeamRecord {
            match_ids: vec![m1],
            ..record
        };
        assert!(
            pending(&store, &done, PlayerSides::Team)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn only_an_incomplete_import_waits_for_a_spent_day_budget() {
        let midnight = Some("2026-12-01T00:00:00Z".to_string());
        let incomplete = Progress {
            matches_total: 2,
            matches_ready: 1,
            ..Progress::default()
        };
        let waiting = incomplete.clone().with_day_budget(midnight.clone());
        assert!(waiting.waiting_for_budget);
        assert_eq!(waiting.resumes_at, midnight);
        let json = serde_json::to_value(&waiting).unwrap();
        assert_eq!(json["waitingForBudget"], true);
        assert_eq!(json["resumesAt"], "2026-12-01T00:00:00Z");

        let budget_left = incomplete.with_day_budget(None);
        assert!(!budget_left.waiting_for_budget);
        let json = serde_json::to_value(&budget_left).unwrap();
        assert_eq!(json["waitingForBudget"], false);
        assert!(json.get("resumesAt").is_none());

        let complete = Progress {
            matches_total: 1,
            matches_ready: 1,
            ..Progress::default()
        }
        .with_day_budget(midnight);
        assert!(!complete.waiting_for_budget);
        assert_eq!(complete.resumes_at, None);
    }
}
