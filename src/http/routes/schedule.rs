//! Tracking of team imports for the refresh scheduler (`actors::refresh_scheduler`): every
//! POST or GET of `/api/teams/{id}/matches` tracks its import ([`track`], called by `teams`);
//! `GET /api/refresh/schedule` lists the tracked imports with their next refresh;
//! `DELETE /api/teams/{id}/matches?leagueId=L&track=false` stops tracking one (admin token
//! when configured; 404 when it is not tracked).
//!
//! A request is written to redb at most once per `read::refresh::TRACK_RESOLUTION` per import
//! (remembered in memory, see `read::refresh`), so the read path stays free of writes.

use serde::Serialize;
use utoipa::ToSchema;
use warp::http::StatusCode;
use warp::reply::Response;

use crate::actors::refresh_scheduler::Tracked;
use crate::domain::{IdError, LeagueId, Signature, TeamId};
use crate::http::ApiState;
use crate::http::bodies::ErrorBody;
use crate::http::openapi::responses::{
    BadRequest, Internal, NotTracked, Unauthorized, Unavailable,
};
use crate::http::reply::{ApiError, json};
use crate::http::router::Request;
use crate::store::now_ms;

/// Records a request for the team import `sig`. A failure is logged and does not fail the
/// request: the import itself does not depend on it.
pub async fn track(state: &ApiState, sig: Signature) {
    let refresh = &state.refresh;
    if refresh.tracked_lately(&sig) {
        return;
    }
    match state.pipeline.stores.track(sig, now_ms()).await {
        Ok(()) => refresh.remember(sig),
        Err(err) => tracing::warn!(%err, signature = %sig, "could not track a team import"),
    }
}

/// Unix milliseconds as RFC 3339 in UTC.
fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC)
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// One tracked team import.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrackedImport {
    /// A refresh (or the first import) is queued or running.
    pub in_flight: bool,
    /// When it was last requested (RFC 3339, UTC).
    #[schema(value_type = String, format = DateTime)]
    pub last_requested_at: String,
    pub league_id: LeagueId,
    /// When its next refresh is queued (RFC 3339, UTC); null while nothing is stored yet.
    /// Only with `autoRefresh`.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub next_refresh_at: Option<String>,
    pub signature: Signature,
    pub team_id: TeamId,
    /// When it stops being tracked unless requested again (RFC 3339, UTC).
    #[schema(value_type = String, format = DateTime)]
    pub tracked_until: String,
}

/// `GET /api/refresh/schedule`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = RefreshSchedule)]
pub struct ScheduleBody {
    /// Whether the scheduler runs (`--auto-refresh`); imports are tracked either way.
    pub auto_refresh: bool,
    /// The tracked imports, by signature.
    pub tracked: Vec<TrackedImport>,
    /// Days an import stays tracked after its last request.
    pub track_days: u32,
}

fn entry(t: Tracked) -> Option<TrackedImport> {
    let Signature::Team(team, league) = t.signature else {
        return None;
    };
    Some(TrackedImport {
        in_flight: t.in_flight,
        last_requested_at: rfc3339(t.last_requested_ms),
        league_id: league,
        next_refresh_at: t.next_refresh_ms.map(rfc3339),
        signature: t.signature,
        team_id: team,
        tracked_until: rfc3339(t.tracked_until_ms),
    })
}

#[utoipa::path(
    get,
    path = "/api/refresh/schedule",
    tag = "teams",
    summary = "Tracked team imports and when each is refreshed next",
    description = "A team import requested (POST or GET) in the last `trackDays` days is \
        tracked. With `--auto-refresh` it is refreshed at 90% of the team TTL after it was \
        fetched, as the lowest-priority work and only while OpenDota's day budget is above \
        the reserve (`--refresh-reserve`).",
    responses(
        (status = 200, description = "Every tracked import.", body = ScheduleBody),
        Internal
    )
)]
pub async fn get_schedule(state: ApiState, _req: Request) -> Result<Response, ApiError> {
    let rules = state.refresh.rules();
    let store = state.store.clone();
    let tracked = tokio::task::spawn_blocking(move || rules.schedule(&store))
        .await
        .map_err(|e| ApiError::internal("reading the schedule failed", e))??;
    let body = ScheduleBody {
        auto_refresh: state.refresh.auto_refresh(),
        tracked: tracked.into_iter().filter_map(entry).collect(),
        track_days: rules.track_days,
    };
    Ok(json(StatusCode::OK, &body))
}

/// The league of a DELETE, which must say `track=false`.
fn untrack_query(pairs: &[(String, String)]) -> Result<LeagueId, ApiError> {
    let (mut league, mut track) = (None, None);
    for (key, value) in pairs {
        match key.as_str() {
            "leagueId" => {
                league = Some(
                    value
                        .parse()
                        .map_err(|e: IdError| ApiError::BadRequest(e.to_string()))?,
                );
            }
            "track" => track = Some(value.as_str()),
            other => {
                return Err(ApiError::BadRequest(format!(
                    "unknown query parameter {:?} (allowed: leagueId, track)",
                    other.chars().take(40).collect::<String>()
                )));
            }
        }
    }
    if !matches!(track, Some("false" | "0")) {
        return Err(ApiError::BadRequest(
            "DELETE stops tracking and needs track=false".to_string(),
        ));
    }
    league.ok_or_else(|| ApiError::BadRequest("Missing required parameters: leagueId".to_string()))
}

#[utoipa::path(
    delete,
    path = "/api/teams/{id}/matches",
    tag = "teams",
    summary = "Stop tracking a team import (no more scheduled refreshes)",
    description = "Needs `track=false`. The stored import stays; a later request tracks it \
        again. When an admin token is configured it needs `Authorization: Bearer <token>` \
        (else 401).",
    params(
        ("id" = TeamId, Path, description = "The team."),
        ("leagueId" = LeagueId, Query, description = "The league (required)."),
        ("track" = bool, Query, description = "Must be `false`.")
    ),
    security((), ("adminToken" = [])),
    responses(
        (status = 204, description = "No longer tracked."),
        BadRequest, Unauthorized, NotTracked, Internal, Unavailable
    )
)]
pub async fn delete_team_matches(state: ApiState, req: Request) -> Result<Response, ApiError> {
    let team: TeamId = req
        .param("id")
        .parse()
        .map_err(|e: IdError| ApiError::BadRequest(e.to_string()))?;
    let league = untrack_query(req.query()?)?;
    crate::http::require_admin(&state, req.authorization.as_deref())?;
    let sig = Signature::Team(team, league);
    let was_tracked = state.pipeline.stores.untrack(sig).await?;
    state.refresh.forget(&sig);
    if !was_tracked {
        let body = ErrorBody {
            error: format!("{sig} is not tracked"),
        };
        return Ok(json(StatusCode::NOT_FOUND, &body));
    }
    tracing::info!(signature = %sig, "no longer tracked, as asked");
    Ok(warp::http::Response::builder()
        .status(StatusCode::NO_CONTENT)
        .body(Default::default())
        .unwrap_or_default())
}
