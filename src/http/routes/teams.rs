//! Team imports: `POST|GET /api/teams/{teamId}/matches?leagueId=...` (POST may carry the league
//! as `{"leagueId": "..."}`). POST answers `ready` with the match IDs or queues the import; GET
//! serves the team record with live progress and summaries, or `queued`. `force=true`
//! re-scrapes and cascades to every match and player (admin token required when configured).
//! The progress says `waitingForBudget` while OpenDota's day budget is spent (read from the
//! latest queue snapshot, not the store), and a cached view is rebuilt when that changes.
//! Every request tracks its import for the refresh scheduler (`super::schedule`).

use std::sync::Arc;

use bytes::Bytes;
use serde::Deserialize;
use utoipa::ToSchema;
use warp::http::{HeaderMap, StatusCode, header};
use warp::reply::Response;

use super::ApiState;
use super::bodies::{Accepted, TeamSummary};
use super::hot::{ViewEntry, ViewPart};
use super::invalidate::ItemId;
use super::openapi::responses::{
    BadRequest, Failed, Internal, NotModified, Queued, Unauthorized, Unavailable,
};
use super::params::ResourceQuery;
use super::reply::{ApiError, json};
use super::representation::{preferred, respond_plain};
use super::resources::{self, FRESH, STALE_REFRESHING, Verb};
use super::router::Request;
use crate::domain::{Fanout, LeagueId, MatchId, Service, Signature, TeamId};
use crate::metrics as m;
use crate::team::record::TeamRecord;
use crate::team::view::{self, TeamProgressView, TeamViewBody};

/// Query keys the team route accepts: POST, and GET (which may also ask for the progress only).
pub const QUERY_KEYS: &[&str] = &["leagueId", "force"];
const GET_QUERY_KEYS: &[&str] = &["leagueId", "force", "include"];

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
async fn degraded_reply(
    state: &ApiState,
    verb: Verb,
    sig: Signature,
    part: ViewPart,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    if verb == Verb::Get
        && let Some(record) = stored_record(state, &sig)?
    {
        let fresh = state.store.fresh(&sig)?.unwrap_or(false);
        let body = render(state, record, part, day_spent_until(state)).await?;
        let mut resp = respond_once(body, headers, FRESH);
        super::degraded::mark_stored_cache_status(&mut resp, fresh);
        return Ok(resp);
    }
    Err(super::degraded::cannot_queue(sig))
}

/// `Some(resetsAt)` while the import's next calls wait for the next UTC day: the matches and
/// players of an import are OpenDota calls, and only OpenDota has a day budget. From the latest
/// queue snapshot (at most `queue_snapshot::REFRESH` behind the limiter); none while that is
/// unavailable.
fn day_spent_until(state: &ApiState) -> Option<String> {
    let snapshot = state.queue_status.latest().ok()?;
    snapshot.day_spent_until(Service::OpenDota)
}

/// Renders the view of `record` on the blocking pool (a 300-match league reads a few thousand
/// summaries and writes hundreds of KB), with the day's budget `day_spent_until`.
async fn render(
    state: &ApiState,
    record: TeamRecord,
    part: ViewPart,
    day_spent_until: Option<String>,
) -> Result<Vec<u8>, ApiError> {
    let (store, sides) = (state.store.clone(), state.team_players);
    let rendered = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, ApiError> {
        let body = match part {
            ViewPart::Full => {
                let mut full = view::build(&store, record, sides)?;
                full.progress = full.progress.with_day_budget(day_spent_until);
                TeamViewBody::Full(full)
            }
            ViewPart::Progress => TeamViewBody::Progress(TeamProgressView {
                team_id: record.team_id,
                league_id: record.league_id,
                progress: view::progress(&store, &record, sides)?.with_day_budget(day_spent_until),
            }),
        };
        serde_json::to_vec(&body)
            .map_err(|e| ApiError::internal("could not encode the team view", e))
    })
    .await;
    rendered.map_err(|e| ApiError::internal("rendering the team view failed", e))?
}

/// A view rendered for this request only (stale or degraded): sent plain, with its tag.
fn respond_once(body: Vec<u8>, headers: &HeaderMap, cache_status: &'static str) -> Response {
    respond_plain(&Bytes::from(body), headers, cache_status)
}

/// The read path of GET: the rendered view of a fresh import, kept in the hot cache until any
/// write happens. `None` when the import is not stored fresh (the caller claims it).
async fn fresh_view(
    state: &ApiState,
    sig: Signature,
    part: ViewPart,
    headers: &HeaderMap,
) -> Result<Option<Response>, ApiError> {
    let key = (sig, part);
    let day = day_spent_until(state);
    let entry = match state.hot.view(&state.store, key, day.as_deref()) {
        Some(entry) => entry,
        None => {
            // Loaded before anything is read: a write after it makes this rendering outdated.
            let epoch = state.store.epochs().global();
            let Some(stored) = state.hot.fresh(&state.store, sig).await? else {
                return Ok(None);
            };
            let record: TeamRecord = serde_json::from_slice(stored.body())
                .map_err(|e| ApiError::internal("the stored team record is unreadable", e))?;
            let body = render(state, record, part, day.clone()).await?;
            let entry = Arc::new(ViewEntry::new(epoch, *stored.meta(), day, body));
            state.hot.put_view(key, entry.clone());
            entry
        }
    };
    let wanted = preferred(
        headers
            .get(header::ACCEPT_ENCODING)
            .and_then(|v| v.to_str().ok()),
    );
    entry.encode(wanted).await;
    Ok(Some(entry.representation().respond(headers, FRESH)))
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
        ("force" = Option<bool>, Query, description = "Re-import even if fresh (`1`/`0` too)."),
        ("include" = Option<String>, Query,
            description = "`progress`: the progress only (`TeamProgressView`); `all` (default): \
                the whole view."),
        ("If-None-Match" = Option<String>, Header,
            description = "An `ETag` from an earlier answer: 304 while the view is unchanged."),
        ("Accept-Encoding" = Option<String>, Header, description = "`br` and `gzip` are offered.")
    ),
    security((), ("adminToken" = [])),
    responses(
        (status = 200, description = "The stored import with live progress (with \
            `include=progress`, a `TeamProgressView`).", body = TeamViewBody,
            headers(
                ("x-cache-status" = String, description = "`fresh`, or `stale; refresh queued`."),
                ("ETag" = String, description = "Changes when the view changes."),
                ("Vary" = String, description = "`Accept-Encoding`.")
            )),
        NotModified, Queued<TeamSummary>, BadRequest, Unauthorized, Failed, Internal, Unavailable
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
    let keys = match verb {
        Verb::Get => GET_QUERY_KEYS,
        Verb::Post => QUERY_KEYS,
    };
    let query = ResourceQuery::parse(&req.query()?, keys)?;
    let (league, force) = league(&query, &req.body)?;
    if force {
        super::require_admin(&state, req.authorization.as_deref())?;
    }
    let part = if query.progress_only {
        ViewPart::Progress
    } else {
        ViewPart::Full
    };
    let sig = Signature::Team(team, league);
    super::schedule::track(&state, sig).await;
    let headers = &req.headers;
    // The read path: a fresh import is answered without the CacheKeeper.
    if !force {
        let answer = match verb {
            Verb::Get => fresh_view(&state, sig, part, headers).await?,
            Verb::Post => match state.hot.fresh(&state.store, sig).await? {
                Some(stored) => {
                    let record: TeamRecord =
                        serde_json::from_slice(stored.body()).map_err(|e| {
                            ApiError::internal("the stored team record is unreadable", e)
                        })?;
                    let body = summary(Accepted::Ready, sig, team, league, &record.match_ids);
                    Some(json(StatusCode::OK, &body))
                }
                None => None,
            },
        };
        if let Some(resp) = answer {
            metrics::counter!(m::CACHE_LOOKUPS, "kind" => sig.kind().as_str(), "result" => "hit")
                .increment(1);
            return Ok(resp);
        }
    }
    let location = format!("/api/teams/{team}/matches?leagueId={league}");
    let prepared = match resources::prepare(&state, verb, sig, force, Fanout::All).await {
        Ok(prepared) => prepared,
        // CacheKeeper could not write: serve a stored import around it instead of failing.
        Err(err) if state.store.degraded() => {
            tracing::debug!(%err, "CacheKeeper could not decide");
            return degraded_reply(&state, verb, sig, part, headers).await;
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
                let body = render(&state, record, part, day_spent_until(&state)).await?;
                let status = if prepared.fresh {
                    FRESH
                } else {
                    STALE_REFRESHING
                };
                Ok(respond_once(body, headers, status))
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
