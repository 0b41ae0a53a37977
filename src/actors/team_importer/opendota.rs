//! The OpenDota source: `/teams/{id}/matches` (it carries `leagueid`, `league_name` and the
//! team's side) plus `/teams/{id}` for the name. It lists only leagues OpenDota tracks
//! (premium and professional tiers), so an amateur league is usually not in it.

use std::collections::BTreeMap;

use serde_json::Value;

use super::TeamJobs;
use crate::domain::{LeagueId, MatchId, Source, TeamId};
use crate::team::record::{TeamMatch, TeamRecord};
use crate::upstream::error::UpstreamError;

impl TeamJobs {
    pub(super) async fn opendota_record(
        &self,
        team: TeamId,
        league: LeagueId,
    ) -> Result<TeamRecord, UpstreamError> {
        let (league_names, all) = self
            .opendota
            .get_team_matches(team, read_team_matches)
            .await?;
        let team_name = match self.opendota.get_team(team).await {
            Ok(info) => info.get("name").and_then(Value::as_str).map(str::to_string),
            Err(err) => {
                tracing::debug!(%err, "team name unavailable from OpenDota");
                None
            }
        };
        Ok(TeamRecord::from_matches(
            team,
            league,
            team_name,
            &league_names,
            all,
            Source::OpenDota,
            0,
        ))
    }
}

/// The matches of OpenDota's `/teams/{id}/matches` rows (rows without a match or league ID
/// are skipped) and the league names they carry. Runs on the blocking pool.
fn read_team_matches(rows: Vec<Value>) -> (BTreeMap<LeagueId, String>, Vec<TeamMatch>) {
    let mut league_names = BTreeMap::new();
    let mut all = Vec::new();
    for row in rows {
        let Some(match_id) = row
            .get("match_id")
            .and_then(Value::as_u64)
            .and_then(MatchId::new)
        else {
            continue;
        };
        let Some(league_id) = row
            .get("leagueid")
            .and_then(Value::as_u64)
            .and_then(LeagueId::new)
        else {
            continue;
        };
        if let Some(name) = row.get("league_name").and_then(Value::as_str) {
            league_names
                .entry(league_id)
                .or_insert_with(|| name.to_string());
        }
        let radiant = row.get("radiant").and_then(Value::as_bool);
        let radiant_win = row.get("radiant_win").and_then(Value::as_bool);
        all.push(TeamMatch {
            match_id,
            league_id,
            start_time: row
                .get("start_time")
                .and_then(Value::as_i64)
                .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
                .map(|t| t.to_rfc3339()),
            opponent_id: row
                .get("opposing_team_id")
                .and_then(Value::as_u64)
                .and_then(TeamId::new),
            opponent_name: row
                .get("opposing_team_name")
                .and_then(Value::as_str)
                .map(str::to_string),
            won: radiant.zip(radiant_win).map(|(r, w)| r == w),
        });
    }
    (league_names, all)
}
