//! The idempotent POST/GET contract for single resources (`/api/matches/{id}`,
//! `/api/players/{id}/data`, `/api/players/{id}/stats`, `/api/leagues/{id}`): POST answers
//! `ready` or queues; GET serves the stored JSON itself, queues on a miss, serves stale data
//! while a refresh runs, and reports a permanent failure. The routes and their documentation
//! are at the end of this file, one `resource_routes!` each.

use warp::http::HeaderMap;
use warp::reply::Response;

use super::Verb;
use super::degraded;
use super::replies::{failed, queued, ready};
use crate::actors::cache_keeper::{Child, ClaimChildren, Prepare, Prepared};
use crate::actors::league_fetcher::LeagueRecord;
use crate::domain::{Fanout, Priority, Signature};
use crate::encoding::Encoding;
use crate::http::ApiState;
use crate::http::bodies::Envelope;
use crate::http::params::ResourceQuery;
use crate::http::reply::ApiError;
use crate::http::representation::{CacheStatus, chosen, etag, respond_served, respond_tagged};
use crate::http::router::Request;
use crate::metrics as m;
use crate::read::bypass::Direct;

/// Handles POST or GET on the resource `sig`; `location` makes the GET URL to poll (only a
/// reply that is not the stored copy needs it, so a poll of ready data formats nothing).
pub async fn handle(
    state: ApiState,
    verb: Verb,
    sig: Signature,
    query: ResourceQuery,
    location: impl FnOnce() -> String,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    // A request of a resource keeps it from eviction (an in-memory note; see `store::access`).
    state.store.access().touch(sig);
    // The read path: a fresh stored copy is answered without the CacheKeeper. Only a miss, an
    // expired entry, a failure, `force` or a league's `queueMatches` go on to claim.
    let queues_matches = matches!(sig, Signature::League(_)) && query.queue_matches;
    if !query.force
        && !queues_matches
        && let Some(entry) = state.hot.fresh(&state.store, sig).await?
    {
        m::count_cache_lookup(sig.kind(), m::CACHE_HIT);
        return Ok(match verb {
            Verb::Post => ready(sig),
            Verb::Get => {
                let encoding = chosen(&entry.representation(), headers);
                if encoding == Encoding::Identity {
                    state.hot.plain(sig, &entry).await?;
                }
                let repr = entry.representation();
                let etag = entry.etag(encoding, || etag(repr.tag, encoding));
                respond_tagged(&repr, encoding, etag, headers, CacheStatus::Fresh)?
            }
        });
    }
    let fanout = match sig {
        // A league's matches are queued only when asked.
        Signature::League(_) if !query.queue_matches => Fanout::None,
        _ => Fanout::All,
    };
    // The paths past the hot cache are boxed: inline, their state would make every poll's
    // future several kilobytes, moved by value on each call.
    let prepared = match Box::pin(prepare(&state, verb, sig, query.force, fanout)).await {
        Ok(prepared) => prepared,
        // CacheKeeper could not write: serve around the store instead of failing.
        Err(err) if state.store.degraded() => {
            tracing::debug!(%err, "CacheKeeper could not decide");
            return Box::pin(degraded::reply(&state, verb, sig, headers)).await;
        }
        Err(err) => return Err(err),
    };
    // A claim made while writes fail would never be stored by its fetcher: answer a GET of a
    // miss from the upstream instead of letting the client poll in vain.
    if verb == Verb::Get
        && prepared.entry.is_none()
        && prepared.failure.is_none()
        && state.store.degraded()
        && let Some(direct) = Direct::of(sig)
    {
        return Box::pin(degraded::bypass(&state, direct, headers)).await;
    }
    if let Signature::League(_) = sig
        && query.queue_matches
        && prepared.fresh
    {
        Box::pin(queue_stored_league_matches(&state, sig)).await?;
    }
    reply(&state, verb, sig, &prepared, &location(), headers)
}

/// Asks CacheKeeper what to do, records the cache lookup, and publishes the job it claimed.
pub async fn prepare(
    state: &ApiState,
    verb: Verb,
    sig: Signature,
    force: bool,
    fanout: Fanout,
) -> Result<Prepared, ApiError> {
    let prepared: Prepared = state
        .keeper
        .send(Prepare {
            signature: sig,
            force,
            // POST retries a failed resource; GET reports the failure until its TTL ends.
            retry_failed: verb == Verb::Post,
            priority: Priority::Interactive,
            fanout,
        })
        .await??;
    let lookup = match (&prepared.entry, prepared.fresh) {
        (Some(_), true) => m::CACHE_HIT,
        (Some(_), false) => m::CACHE_EXPIRED,
        (None, _) => m::CACHE_MISS,
    };
    m::count_cache_lookup(sig.kind(), lookup);

    if let Some(job) = prepared.claimed.clone() {
        state
            .pipeline
            .publish_claimed(vec![job])
            .await
            .map_err(|e| ApiError::Unavailable(format!("could not queue the fetch: {e}")))?;
    }
    Ok(prepared)
}

/// A stored league asked to `queueMatches`: claim and queue its matches now.
async fn queue_stored_league_matches(state: &ApiState, sig: Signature) -> Result<(), ApiError> {
    let Some(body) = state.store.body(&sig)? else {
        return Ok(());
    };
    let record: LeagueRecord = serde_json::from_slice(&body)
        .map_err(|e| ApiError::internal("the stored league record is unreadable", e))?;
    let children = record
        .match_ids
        .into_iter()
        .map(|id| Child::new(Signature::Match(id)))
        .collect();
    let jobs = state
        .keeper
        .send(ClaimChildren {
            children,
            forced_at_ms: None,
        })
        .await??;
    state
        .pipeline
        .publish_claimed(jobs)
        .await
        .map_err(|e| ApiError::Unavailable(format!("could not queue the league's matches: {e}")))
}

/// The reply of a plain resource route once [`prepare`] has run.
fn reply(
    state: &ApiState,
    verb: Verb,
    sig: Signature,
    prepared: &Prepared,
    location: &str,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    match verb {
        Verb::Post if prepared.fresh => Ok(ready(sig)),
        Verb::Post => Ok(queued(sig, location)),
        Verb::Get => get_reply(state, sig, prepared, location, headers),
    }
}

/// GET: the stored body when there is one (fresh, or stale with a refresh queued), else the
/// failure, else `queued`.
fn get_reply(
    state: &ApiState,
    sig: Signature,
    prepared: &Prepared,
    location: &str,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    if prepared.entry.is_some()
        && let Some(served) = state.store.served(&sig)?
    {
        let status = CacheStatus::stored(prepared.fresh);
        return Ok(respond_served(served, headers, status)?);
    }
    if let Some(failure) = &prepared.failure {
        return Ok(failed(state, sig, failure));
    }
    Ok(queued(sig, location))
}

/// How a resource route's path ID becomes a signature and a polling URL, and which query keys
/// it takes.
pub struct ResourceRoute {
    /// The signature and the numeric ID of a path's `{id}`.
    to_sig: fn(&str) -> Result<(Signature, u64), ApiError>,
    /// The polling URL of an ID.
    location: fn(u64) -> String,
    query_keys: &'static [&'static str],
}

fn parse_id<T: std::str::FromStr<Err = crate::domain::IdError>>(raw: &str) -> Result<T, ApiError> {
    T::from_str(raw).map_err(|e| ApiError::BadRequest(e.to_string()))
}

/// Serves `verb` on the resource named by the request's `{id}`.
async fn serve(
    state: ApiState,
    req: Request,
    route: &'static ResourceRoute,
    verb: Verb,
) -> Result<Response, ApiError> {
    let (sig, id) = (route.to_sig)(req.param("id"))?;
    let query = ResourceQuery::parse(req.query()?, route.query_keys)?;
    let location = || (route.location)(id);
    handle(state, verb, sig, query, location, &req.headers).await
}

/// A GET of a fresh resource that memory holds, answered at once: no CacheKeeper, no await,
/// nothing logged (see `router::Route::with_fast`). `None` for anything else (not in memory,
/// `force`, a league's `queueMatches`, a bad ID or query, plain bytes not made yet): the full
/// handler then serves the request, and reports what was wrong.
fn fast(state: &ApiState, req: &Request, route: &ResourceRoute) -> Option<Response> {
    let (sig, _) = (route.to_sig)(req.param("id")).ok()?;
    let query = ResourceQuery::parse(req.query().ok()?, route.query_keys).ok()?;
    if query.force || (matches!(sig, Signature::League(_)) && query.queue_matches) {
        return None;
    }
    let entry = state.hot.held(&state.store, sig)?;
    let repr = entry.representation();
    let encoding = chosen(&repr, &req.headers);
    if encoding == Encoding::Identity && repr.identity.is_none() {
        return None;
    }
    let etag = entry.etag(encoding, || etag(repr.tag, encoding));
    let resp = respond_tagged(&repr, encoding, etag, &req.headers, CacheStatus::Fresh).ok()?;
    // Noted and counted as the full handler notes and counts a hit, once the answer is certain.
    entry.note_access(&state.store, sig);
    m::count_hot_lookup(true);
    m::count_cache_lookup(sig.kind(), m::CACHE_HIT);
    Some(resp)
}

/// The GET and POST operations of one resource route: their handlers and their OpenAPI
/// description (`$body` is what GET serves once the resource is stored), and the GET's answer
/// from memory (`$fast`).
macro_rules! resource_routes {
    (
        $get:ident, $post:ident, $fast:ident, $path:tt, $id:ident, $body:ident, $route:expr,
        get = $get_summary:tt, post = $post_summary:tt,
        params($($param:tt)*)
    ) => {
        #[utoipa::path(
            get, path = $path, tag = "resources", summary = $get_summary,
            description = "Serves the stored copy (fresh, or stale while a refresh runs, see \
                `x-cache-status`). On a miss the fetch is queued and the answer is 202. A \
                resource whose last fetch failed answers 404/502 with a failed body (and \
                `Retry-After`) until the failure TTL ends (`retryAt`), when a GET queues a new \
                attempt, or until a POST (or `force`) retries it.",
            params(
                ("id" = $id, Path, description = "A positive integer ID."),
                ("If-None-Match" = Option<String>, Header,
                    description = "An `ETag` from an earlier answer: 304 while it is current."),
                ("Accept-Encoding" = Option<String>, Header,
                    description = "`br` and `gzip` are sent precompressed."),
                $($param)*
            ),
            responses(
                (status = 200, description = "The stored copy.", body = $body, headers(
                    ("x-cache-status" = String,
                        description = "`fresh`, or `stale; refresh queued`; while the store is \
                            degraded also `stale` or `bypass` (fetched directly, not stored)."),
                    ("ETag" = String, description = "Changes when the content changes."),
                    ("Vary" = String, description = "`Accept-Encoding`."),
                    ("Content-Encoding" = Option<String>,
                        description = "`br` or `gzip` when the client accepts it.")
                )),
                crate::http::openapi::responses::NotModified,
                crate::http::openapi::responses::Queued<Envelope>,
                crate::http::openapi::responses::BadRequest,
                crate::http::openapi::responses::Failed,
                crate::http::openapi::responses::Internal,
                crate::http::openapi::responses::Unavailable
            )
        )]
        pub async fn $get(state: ApiState, req: Request) -> Result<Response, ApiError> {
            serve(state, req, &$route, Verb::Get).await
        }

        /// The GET from memory, when it can be (see [`fast`]).
        pub fn $fast(state: &ApiState, req: &Request) -> Option<Response> {
            fast(state, req, &$route)
        }

        #[utoipa::path(
            post, path = $path, tag = "resources", summary = $post_summary,
            description = "Answers `ready` when a fresh copy is stored, else queues the fetch \
                (retrying a failed one) and answers 202 with where to poll.",
            params(("id" = $id, Path, description = "A positive integer ID."), $($param)*),
            responses(
                (status = 200, description = "A fresh copy is stored.", body = Envelope),
                crate::http::openapi::responses::Queued<Envelope>,
                crate::http::openapi::responses::BadRequest,
                crate::http::openapi::responses::Internal,
                crate::http::openapi::responses::Unavailable
            )
        )]
        pub async fn $post(state: ApiState, req: Request) -> Result<Response, ApiError> {
            serve(state, req, &$route, Verb::Post).await
        }
    };
}

pub mod routes {
    //! The single-resource routes.
    use super::*;
    use crate::actors::player_stats_fetcher::PlayerStatsRecord;
    use crate::domain::{LeagueId, MatchId, PlayerId};
    use crate::http::bodies::{OpenDotaMatch, OpenDotaPlayer};

    const MATCHES: ResourceRoute = ResourceRoute {
        to_sig: |raw| {
            let id: MatchId = parse_id(raw)?;
            Ok((Signature::Match(id), id.get()))
        },
        location: |id| format!("/api/matches/{id}"),
        query_keys: &["force"],
    };

    const PLAYERS: ResourceRoute = ResourceRoute {
        to_sig: |raw| {
            let id: PlayerId = parse_id(raw)?;
            Ok((Signature::Player(id), id.get()))
        },
        location: |id| format!("/api/players/{id}/data"),
        query_keys: &["force"],
    };

    const PLAYER_STATS: ResourceRoute = ResourceRoute {
        to_sig: |raw| {
            let id: PlayerId = parse_id(raw)?;
            Ok((Signature::PlayerStats(id), id.get()))
        },
        location: |id| format!("/api/players/{id}/stats"),
        query_keys: &["force"],
    };

    const LEAGUES: ResourceRoute = ResourceRoute {
        to_sig: |raw| {
            let id: LeagueId = parse_id(raw)?;
            Ok((Signature::League(id), id.get()))
        },
        location: |id| format!("/api/leagues/{id}"),
        query_keys: &["force", "queueMatches"],
    };

    resource_routes!(
        get_match, post_match, fast_match, "/api/matches/{id}", MatchId, OpenDotaMatch, MATCHES,
        get = "The stored match, or queue its fetch",
        post = "Make sure the match is stored (idempotent)",
        params(("force" = Option<bool>, Query, description = "Refetch even if fresh (`1`/`0` too)."))
    );
    resource_routes!(
        get_player, post_player, fast_player, "/api/players/{id}/data", PlayerId, OpenDotaPlayer, PLAYERS,
        get = "The stored player, or queue its fetch",
        post = "Make sure the player is stored (idempotent)",
        params(("force" = Option<bool>, Query, description = "Refetch even if fresh (`1`/`0` too)."))
    );
    resource_routes!(
        get_player_stats, post_player_stats, fast_player_stats, "/api/players/{id}/stats", PlayerId,
        PlayerStatsRecord, PLAYER_STATS,
        get = "The stored player stats, or queue their fetch",
        post = "Make sure the player stats are stored (idempotent)",
        params(("force" = Option<bool>, Query, description = "Refetch even if fresh (`1`/`0` too)."))
    );
    resource_routes!(
        get_league, post_league, fast_league, "/api/leagues/{id}", LeagueId, LeagueRecord, LEAGUES,
        get = "The stored league, or queue its fetch",
        post = "Make sure the league is stored (idempotent)",
        params(
            ("force" = Option<bool>, Query, description = "Refetch even if fresh (`1`/`0` too)."),
            ("queueMatches" = Option<bool>, Query, description = "Also queue the league's matches.")
        )
    );
}
