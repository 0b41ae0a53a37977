//! The team record stored for `team:{teamId}:{leagueId}`: built by the first source of the
//! import's chain (`--team-sources`) that answered for the league: a Steam or STRATZ league
//! history, Dotabuff's team matches pages, or OpenDota's `/teams/{id}/matches`. It says which
//! source answered (`source`) and what became of every source tried (`sourcesTried`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::{LeagueId, MatchId, TeamId};

pub use crate::domain::Source;

/// What became of one source of the chain in one import.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// It listed the league's matches for the team (or covers the league and lists none).
    Answered,
    /// It failed (refused, down, garbled, a bot challenge); the next source was tried.
    Failed,
    /// It does not cover the league (e.g. an empty league history, an empty team list).
    Uncovered,
    /// Not asked: paused after an earlier failure (`--source-cooldown-secs`), or not configured.
    Skipped,
}

/// One source tried by an import, in chain order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SourceTried {
    pub source: Source,
    pub outcome: Outcome,
    /// Why it failed, was skipped or did not cover the league; `None` when it answered.
    pub reason: Option<String>,
}

/// One match of the team as the source lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TeamMatch {
    pub match_id: MatchId,
    pub league_id: LeagueId,
    /// RFC 3339.
    #[schema(format = DateTime)]
    pub start_time: Option<String>,
    pub opponent_id: Option<TeamId>,
    pub opponent_name: Option<String>,
    pub won: Option<bool>,
}

/// The stored import (served inside the team view).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TeamRecord {
    pub team_id: TeamId,
    pub team_name: Option<String>,
    pub league_id: LeagueId,
    pub league_name: Option<String>,
    /// The requested league's matches, newest first as the source lists them.
    pub match_ids: Vec<MatchId>,
    /// Every league seen while importing, with its matches.
    pub match_ids_by_league: BTreeMap<LeagueId, Vec<MatchId>>,
    /// The source that answered; with no source answering, the last one tried.
    pub source: Source,
    /// Every source tried, in chain order, with its outcome (empty in records stored before
    /// source chains).
    #[serde(default)]
    pub sources_tried: Vec<SourceTried>,
    /// Why Dotabuff was not used, when the source is OpenDota.
    pub fallback_reason: Option<String>,
    /// The requested league's matches as the source listed them (date, opponent, result).
    /// Named apart from the view's `matches` (summaries of the stored matches).
    pub listed_matches: Vec<TeamMatch>,
    /// Pages read: Dotabuff pages, or league history pages (Steam, STRATZ); 0 for OpenDota.
    pub pages: u32,
}

impl TeamRecord {
    /// Builds the record from every listed match (all leagues), keeping `league`'s as the
    /// import's matches.
    pub fn from_matches(
        team_id: TeamId,
        league_id: LeagueId,
        team_name: Option<String>,
        league_names: &BTreeMap<LeagueId, String>,
        all: Vec<TeamMatch>,
        source: Source,
        pages: u32,
    ) -> Self {
        let mut by_league: BTreeMap<LeagueId, Vec<MatchId>> = BTreeMap::new();
        let mut seen = std::collections::BTreeSet::new();
        let mut matches = Vec::new();
        for m in all {
            if !seen.insert(m.match_id) {
                continue;
            }
            by_league.entry(m.league_id).or_default().push(m.match_id);
            if m.league_id == league_id {
                matches.push(m);
            }
        }
        Self {
            team_id,
            team_name,
            league_id,
            league_name: league_names.get(&league_id).cloned(),
            match_ids: matches.iter().map(|m| m.match_id).collect(),
            match_ids_by_league: by_league,
            source,
            sources_tried: Vec::new(),
            fallback_reason: None,
            listed_matches: matches,
            pages,
        }
    }
}
