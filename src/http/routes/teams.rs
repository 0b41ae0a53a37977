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

use super::invalidate::ItemId;
use super::replies::{failed, queued_with};
use super::{Verb, degraded, resources, schedule};
use crate::actors::cache_keeper::Prepared;
use crate::domain::{Fanout, LeagueId, MatchId, Service, Signature, TeamId};
use crate::http::bodies::{Accepted, TeamSummary};
use crate::http::openapi::responses::{
    BadRequest, Failed, Internal, NotModified, Queued, Unauthorized, Unavailable,
};
use crate::http::params::ResourceQuery;
use crate::http::reply::{ApiError, json};
use crate::http::representation::{CacheStatus, preferred, respond, respond_plain};
use crate::http::router::Request;
use crate::http::{ApiState, require_admin};
use crate::metrics as m;
use crate::read::hot::{ViewEntry, ViewPart};
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
        let (body, _) = render(state, record, part, day_spent_until(state)).await?;
        let status = CacheStatus::stored_while_degraded(fresh);
        return respond_once(body, headers, status);
    }
    Err(degraded::cannot_queue(sig))
}

/// `Some(resetsAt)` while the import's next calls wait for the next UTC day: the matches and
/// players of an import are OpenDota calls, and only OpenDota has a day budget. From the latest
/// queue snapshot (at most `read::queue_snapshot::REFRESH` behind the limiter); none while that is
/// unavailable.
fn day_spent_until(state: &ApiState) -> Option<String> {
    let snapshot = state.queue_status.latest().ok()?;
    snapshot.day_spent_until(Service::OpenDota)
}

/// Renders the view of `record` on the blocking pool (a 300-match league reads a few thousand
/// summaries and writes hundreds of KB), with the day's budget `day_spent_until`; with every
/// signature it read besides the record's (see [`ViewEntry`]).
async fn render(
    state: &ApiState,
    record: TeamRecord,
    part: ViewPart,
    day_spent_until: Option<String>,
) -> Result<(Vec<u8>, Vec<Signature>), ApiError> {
    let (store, sides) = (state.store.clone(), state.team_players);
    let rendered = tokio::task::spawn_blocking(move || -> Result<_, ApiError> {
        let mut deps = Vec::new();
        let body = match part {
            ViewPart::Full => {
                let mut full = view::build(&store, record, sides, &mut deps)?;
                full.progress = full.progress.with_day_budget(day_spent_until);
                TeamViewBody::Full(full)
            }
            ViewPart::Progress => TeamViewBody::Progress(TeamProgressView {
                team_id: record.team_id,
                league_id: record.league_id,
                progress: view::progress_with_deps(&store, &record, sides, &mut deps)?
                    .with_day_budget(day_spent_until),
            }),
        };
        let body = serde_json::to_vec(&body)
            .map_err(|e| ApiError::internal("could not encode the team view", e))?;
        Ok((body, deps))
    })
    .await;
    rendered.map_err(|e| ApiError::internal("rendering the team view failed", e))?
}

/// A view rendered for this request only (stale or degraded): sent plain, with its tag.
fn respond_once(
    body: Vec<u8>,
    headers: &HeaderMap,
    cache_status: CacheStatus,
) -> Result<Response, ApiError> {
    Ok(respond_plain(&Bytes::from(body), headers, cache_status)?)
}

/// The read path of GET: the rendered view of a fresh import, kept in the hot cache until a
/// write touches what it was rendered from. `None` when the import is not stored fresh (the caller claims it).
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
            let plain = state.hot.plain(sig, &stored).await?;
            let record: TeamRecord = serde_json::from_slice(&plain)
                .map_err(|e| ApiError::internal("the stored team record is unreadable", e))?;
            let (body, deps) = render(state, record, part, day.clone()).await?;
            let deps = deps.into_iter().chain([sig]).collect();
            let entry = Arc::new(ViewEntry::new(epoch, deps, *stored.meta(), day, body));
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
    Ok(Some(respond(
        &entry.representation(),
        headers,
        CacheStatus::Fresh,
    )?))
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

/// One team import request, as parsed.
struct Import {
    verb: Verb,
    sig: Signature,
    team: TeamId,
    league: LeagueId,
    force: bool,
    part: ViewPart,
}

impl Import {
    fn parse(verb: Verb, req: &Request) -> Result<Self, ApiError> {
        let team: TeamId = req
            .param("id")
            .parse()
            .map_err(|e: crate::domain::IdError| ApiError::BadRequest(e.to_string()))?;
        let keys = match verb {
            Verb::Get => GET_QUERY_KEYS,
            Verb::Post => QUERY_KEYS,
        };
        let query = ResourceQuery::parse(req.query()?, keys)?;
        let (league, force) = league(&query, &req.body)?;
        let part = if query.progress_only {
            ViewPart::Progress
        } else {
            ViewPart::Full
        };
        Ok(Self {
            verb,
            sig: Signature::Team(team, league),
            team,
            league,
            force,
            part,
        })
    }

    /// The import's summary with `status` and the match IDs known so far.
    fn summary(&self, status: Accepted, ids: &[MatchId]) -> TeamSummary {
        TeamSummary {
            league_id: self.league,
            match_ids: ids.to_vec(),
            signature: self.sig,
            status,
            team_id: self.team,
        }
    }

    fn location(&self) -> String {
        format!("/api/teams/{}/matches?leagueId={}", self.team, self.league)
    }
}

async fn handle(state: ApiState, verb: Verb, req: Request) -> Result<Response, ApiError> {
    let import = Import::parse(verb, &req)?;
    if import.force {
        require_admin(&state, req.authorization.as_deref())?;
    }
    let sig = import.sig;
    schedule::track(&state, sig).await;
    // Its matches and players count as used with it (see `actors::store_bounds::plan`).
    state.store.access().touch(sig);
    let headers = &req.headers;
    // The read path: a fresh import is answered without the CacheKeeper.
    if !import.force
        && let Some(resp) = fresh_answer(&state, &import, headers).await?
    {
        m::count_cache_lookup(sig.kind(), m::CACHE_HIT);
        return Ok(resp);
    }
    let prepared = match resources::prepare(&state, verb, sig, import.force, Fanout::All).await {
        Ok(prepared) => prepared,
        // CacheKeeper could not write: serve a stored import around it instead of failing.
        Err(err) if state.store.degraded() => {
            tracing::debug!(%err, "CacheKeeper could not decide");
            return degraded_reply(&state, verb, sig, import.part, headers).await;
        }
        Err(err) => return Err(err),
    };
    prepared_reply(&state, &import, &prepared, headers).await
}

/// The read path's answer: the view of a fresh import (GET) or `ready` (POST); `None` when
/// the import is not stored fresh.
async fn fresh_answer(
    state: &ApiState,
    import: &Import,
    headers: &HeaderMap,
) -> Result<Option<Response>, ApiError> {
    let sig = import.sig;
    match import.verb {
        Verb::Get => fresh_view(state, sig, import.part, headers).await,
        Verb::Post => match state.hot.fresh(&state.store, sig).await? {
            Some(stored) => {
                let plain = state.hot.plain(sig, &stored).await?;
                let record: TeamRecord = serde_json::from_slice(&plain)
                    .map_err(|e| ApiError::internal("the stored team record is unreadable", e))?;
                let body = import.summary(Accepted::Ready, &record.match_ids);
                Ok(Some(json(StatusCode::OK, &body)))
            }
            None => Ok(None),
        },
    }
}

/// The answer once CacheKeeper has decided: `ready` or `queued` for POST; for GET the stored
/// import's view (fresh, or stale with a refresh queued), else its failure, else `queued`.
async fn prepared_reply(
    state: &ApiState,
    import: &Import,
    prepared: &Prepared,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let sig = import.sig;
    let record = match prepared.entry {
        Some(_) => stored_record(state, &sig)?,
        None => None,
    };
    let ids = record
        .as_ref()
        .map(|r| r.match_ids.clone())
        .unwrap_or_default();
    let queued = || queued_with(&import.summary(Accepted::Queued, &ids), &import.location());
    match import.verb {
        Verb::Post if prepared.fresh => {
            Ok(json(StatusCode::OK, &import.summary(Accepted::Ready, &ids)))
        }
        Verb::Post => Ok(queued()),
        Verb::Get => match record {
            Some(record) => {
                let (body, _) = render(state, record, import.part, day_spent_until(state)).await?;
                let status = CacheStatus::stored(prepared.fresh);
                respond_once(body, headers, status)
            }
            None => match &prepared.failure {
                Some(failure) => Ok(failed(state, sig, failure)),
                None => Ok(queued()),
            },
        },
    }
}
