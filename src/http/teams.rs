//! Team imports: `POST|GET /api/teams/{teamId}/matches?leagueId=...` (POST may carry the league
//! as `{"leagueId": "..."}`). POST answers `ready` with the match IDs or queues the import; GET
//! serves the team record with live progress and summaries, or `queued`. `force=true`
//! re-scrapes and cascades to every match and player (admin token required when configured).

use serde::Deserialize;
use serde_json::json;
use warp::http::StatusCode;
use warp::reply::Response;

use super::ApiState;
use super::params::ResourceQuery;
use super::reply::{ApiError, json};
use super::resources::{self, Verb};
use crate::domain::{Fanout, LeagueId, MatchId, Signature, TeamId};
use crate::team::record::TeamRecord;
use crate::team::view;

/// Query keys the team route accepts.
pub const QUERY_KEYS: &[&str] = &["leagueId", "force"];

/// Optional JSON body of POST.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TeamBody {
    league_id: Option<LeagueId>,
    #[serde(default)]
    force: Option<bool>,
}

/// Reads the league from the query or the body; errors name what is missing.
fn league(query: &ResourceQuery, body: &[u8]) -> Result<(LeagueId, bool), ApiError> {
    let parsed: TeamBody = if body.iter().all(u8::is_ascii_whitespace) {
        TeamBody::default()
    } else {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))?
    };
    let league = query.league_id.or(parsed.league_id).ok_or_else(|| {
        ApiError::BadRequest(
            "Missing required parameters: leagueId (query ?leagueId= or JSON body {\"leagueId\": \"...\"})"
                .to_string(),
        )
    })?;
    Ok((league, query.force || parsed.force.unwrap_or(false)))
}

fn stored_record(state: &ApiState, sig: &Signature) -> Result<Option<TeamRecord>, ApiError> {
    Ok(state
        .store
        .body(sig)?
        .and_then(|b| serde_json::from_slice(&b).ok()))
}

fn summary(
    status: &str,
    sig: Signature,
    team: TeamId,
    league: LeagueId,
    ids: &[MatchId],
) -> serde_json::Value {
    json!({
        "status": status,
        "signature": sig,
        "teamId": team,
        "leagueId": league,
        "matchIds": ids,
    })
}

pub async fn handle(
    state: ApiState,
    verb: Verb,
    team: TeamId,
    query: ResourceQuery,
    body: bytes::Bytes,
    authorization: Option<String>,
) -> Result<Response, ApiError> {
    let (league, force) = league(&query, &body)?;
    if force {
        super::require_admin(&state, authorization.as_deref())?;
    }
    let sig = Signature::Team(team, league);
    let location = format!("/api/teams/{team}/matches?leagueId={league}");
    let prepared = resources::prepare(&state, verb, sig, force, Fanout::All).await?;
    let record = match prepared.entry {
        Some(_) => stored_record(&state, &sig)?,
        None => None,
    };
    let ids = record
        .as_ref()
        .map(|r| r.match_ids.clone())
        .unwrap_or_default();
    match verb {
        Verb::Post if prepared.fresh => Ok(json(
            StatusCode::OK,
            &summary("ready", sig, team, league, &ids),
        )),
        Verb::Post => Ok(resources::queued_with(
            summary("queued", sig, team, league, &ids),
            &location,
        )),
        Verb::Get => match record {
            Some(record) => {
                let view = view::build(&state.store, record, state.team_players)?;
                let mut resp = json(StatusCode::OK, &view);
                resources::mark_cache_status(&mut resp, prepared.fresh);
                Ok(resp)
            }
            None => match &prepared.failure {
                Some(failure) => Ok(resources::failed(sig, failure)),
                None => Ok(resources::queued_with(
                    summary("queued", sig, team, league, &ids),
                    &location,
                )),
            },
        },
    }
}
