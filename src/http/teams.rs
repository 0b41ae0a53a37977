//! Team imports: `POST|GET /api/teams/{teamId}/matches?leagueId=...` (POST may carry the league
//! as `{"leagueId": "..."}`). POST answers `ready` with the match IDs or queues the import; GET
//! serves the team record with live progress and summaries, or `queued`. `force=true`
//! re-scrapes and cascades to every match and player (admin token required when configured).

use serde::Deserialize;
use utoipa::ToSchema;
use warp::http::StatusCode;
use warp::reply::Response;

use super::ApiState;
use super::bodies::{Accepted, TeamSummary};
use super::invalidate::ItemId;
use super::openapi::responses::{BadRequest, Failed, Internal, Queued, Unauthorized, Unavailable};
use super::params::ResourceQuery;
use super::reply::{ApiError, json};
use super::resources::{self, Verb};
use super::router::Request;
use crate::domain::{Fanout, LeagueId, MatchId, Signature, TeamId};
use crate::team::record::TeamRecord;
use crate::team::view::{self, TeamView};

/// Query keys the team route accepts.
pub const QUERY_KEYS: &[&str] = &["leagueId", "force"];

/// Optional JSON body of POST.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = TeamImportRequest)]
pub struct TeamBody {
    /// A string or a number.
    #[schema(value_type = Option<ItemId>)]
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

/// A team import while redb cannot be written: a GET of a stored import is served as it is
/// (reads need no disk space); anything that would queue an import is a 503 that says why.
fn degraded_reply(state: &ApiState, verb: Verb, sig: Signature) -> Result<Response, ApiError> {
    if verb == Verb::Get
        && let Some(record) = stored_record(state, &sig)?
    {
        let fresh = state.store.fresh(&sig)?.unwrap_or(false);
        let view = view::build(&state.store, record, state.team_players)?;
        let mut resp = json(StatusCode::OK, &view);
        super::degraded::mark_stored_cache_status(&mut resp, fresh);
        return Ok(resp);
    }
    Err(super::degraded::cannot_queue(sig))
}

fn summary(
    status: Accepted,
    sig: Signature,
    team: TeamId,
    league: LeagueId,
    ids: &[MatchId],
) -> TeamSummary {
    TeamSummary {
        league_id: league,
        match_ids: ids.to_vec(),
        signature: sig,
        status,
        team_id: team,
    }
}

const DESCRIPTION: &str = "`leagueId` comes from the query or, for POST, the JSON body (400 \
    when neither has it). `force=true` (query or body) re-scrapes the team's pages and refetches \
    every match and player; when an admin token is configured it needs \
    `Authorization: Bearer <token>` (else 401).";

#[utoipa::path(
    get,
    path = "/api/teams/{id}/matches",
    tag = "teams",
    summary = "A team's matches in one league, with import progress and summaries",
    description = DESCRIPTION,
    params(
        ("id" = TeamId, Path, description = "The team."),
        ("leagueId" = LeagueId, Query, description = "The league (required)."),
        ("force" = Option<bool>, Query, description = "Re-import even if fresh (`1`/`0` too).")
    ),
    security((), ("adminToken" = [])),
    responses(
        (status = 200, description = "The stored import with live progress.", body = TeamView,
            headers(("x-cache-status" = String,
                description = "`fresh`, or `stale; refresh queued`."))),
        Queued<TeamSummary>, BadRequest, Unauthorized, Failed, Internal, Unavailable
    )
)]
pub async fn get_team_matches(state: ApiState, req: Request) -> Result<Response, ApiError> {
    handle(state, Verb::Get, req).await
}

#[utoipa::path(
    post,
    path = "/api/teams/{id}/matches",
    tag = "teams",
    summary = "Import a team's matches in one league (idempotent)",
    description = DESCRIPTION,
    params(
        ("id" = TeamId, Path, description = "The team."),
        ("leagueId" = Option<LeagueId>, Query,
            description = "The league; required here unless the body carries it."),
        ("force" = Option<bool>, Query, description = "Re-import even if fresh (`1`/`0` too).")
    ),
    request_body(content = Option<TeamBody>, content_type = "application/json"),
    security((), ("adminToken" = [])),
    responses(
        (status = 200, description = "A fresh import is stored.", body = TeamSummary),
        Queued<TeamSummary>, BadRequest, Unauthorized, Internal, Unavailable
    )
)]
pub async fn post_team_matches(state: ApiState, req: Request) -> Result<Response, ApiError> {
    handle(state, Verb::Post, req).await
}

async fn handle(state: ApiState, verb: Verb, req: Request) -> Result<Response, ApiError> {
    let team: TeamId = req
        .param("id")
        .parse()
        .map_err(|e: crate::domain::IdError| ApiError::BadRequest(e.to_string()))?;
    let query = ResourceQuery::parse(&req.query()?, QUERY_KEYS)?;
    let (league, force) = league(&query, &req.body)?;
    if force {
        super::require_admin(&state, req.authorization.as_deref())?;
    }
    let sig = Signature::Team(team, league);
    let location = format!("/api/teams/{team}/matches?leagueId={league}");
    let prepared = match resources::prepare(&state, verb, sig, force, Fanout::All).await {
        Ok(prepared) => prepared,
        // CacheKeeper could not write: serve a stored import around it instead of failing.
        Err(err) if state.store.degraded() => {
            tracing::debug!(%err, "CacheKeeper could not decide");
            return degraded_reply(&state, verb, sig);
        }
        Err(err) => return Err(err),
    };
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
            &summary(Accepted::Ready, sig, team, league, &ids),
        )),
        Verb::Post => Ok(resources::queued_with(
            &summary(Accepted::Queued, sig, team, league, &ids),
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
                Some(failure) => Ok(resources::failed(&state, sig, failure)),
                None => Ok(resources::queued_with(
                    &summary(Accepted::Queued, sig, team, league, &ids),
                    &location,
                )),
            },
        },
    }
}
