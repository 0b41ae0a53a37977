//! The idempotent POST/GET contract for single resources (`/api/matches/{id}`,
//! `/api/players/{id}/data`): POST answers `ready` or queues; GET serves the stored JSON itself,
//! queues on a miss, serves stale data while a refresh runs, and reports a permanent failure.

use serde_json::json;
use warp::http::{HeaderValue, StatusCode, header};
use warp::reply::Response;

use super::ApiState;
use super::params::ResourceQuery;
use super::reply::{ApiError, json, raw_json};
use crate::actors::cache_keeper::{Child, ClaimChildren, Prepare, Prepared};
use crate::domain::{Fanout, Priority, Signature};
use crate::metrics as m;

/// Seconds a client is told to wait before polling again.
const RETRY_AFTER_SECS: &str = "2";
/// Header telling whether a 200 body is fresh or stale (with a refresh queued).
pub const CACHE_STATUS_HEADER: &str = "x-cache-status";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Post,
    Get,
}

/// Handles POST or GET on the resource `sig`; `location` is the GET URL to poll.
pub async fn handle(
    state: ApiState,
    verb: Verb,
    sig: Signature,
    query: ResourceQuery,
    location: String,
) -> Result<Response, ApiError> {
    let fanout = match sig {
        // A league's matches are queued only when asked.
        Signature::League(_) if !query.queue_matches => Fanout::None,
        _ => Fanout::All,
    };
    let prepared = prepare(&state, verb, sig, query.force, fanout).await?;
    if let Signature::League(_) = sig
        && query.queue_matches
        && prepared.fresh
    {
        queue_stored_league_matches(&state, sig).await?;
    }
    reply(&state, verb, sig, &prepared, &location)
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
            // POST retries a failed resource; GET only reports the failure.
            retry_failed: verb == Verb::Post,
            priority: Priority::Interactive,
            fanout,
        })
        .await??;
    let lookup = match (&prepared.entry, prepared.fresh) {
        (Some(_), true) => "hit",
        (Some(_), false) => "expired",
        (None, _) => "miss",
    };
    metrics::counter!(m::CACHE_LOOKUPS, "kind" => sig.kind().as_str(), "result" => lookup)
        .increment(1);

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
    let record: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::Internal(format!("stored league record unreadable: {e}")))?;
    let children = crate::actors::league_fetcher::stored_match_ids(&record)
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
) -> Result<Response, ApiError> {
    match verb {
        Verb::Post if prepared.fresh => Ok(json(
            StatusCode::OK,
            &json!({"status": "ready", "signature": sig}),
        )),
        Verb::Post => Ok(queued(sig, location)),
        Verb::Get => get_reply(state, sig, prepared, location),
    }
}

/// GET: the stored body when there is one (fresh, or stale with a refresh queued), else the
/// failure, else `queued`.
fn get_reply(
    state: &ApiState,
    sig: Signature,
    prepared: &Prepared,
    location: &str,
) -> Result<Response, ApiError> {
    if prepared.entry.is_some()
        && let Some(body) = state.store.body(&sig)?
    {
        let mut resp = raw_json(StatusCode::OK, body);
        mark_cache_status(&mut resp, prepared.fresh);
        return Ok(resp);
    }
    if let Some(failure) = &prepared.failure {
        return Ok(failed(sig, failure));
    }
    Ok(queued(sig, location))
}

/// Says whether a 200 body is fresh or stale with a refresh queued.
pub fn mark_cache_status(resp: &mut Response, fresh: bool) {
    let status = if fresh {
        "fresh"
    } else {
        "stale; refresh queued"
    };
    resp.headers_mut()
        .insert(CACHE_STATUS_HEADER, HeaderValue::from_static(status));
}

/// `{"status":"failed"}`: 404 when the upstream has no such resource, else 502.
pub fn failed(sig: Signature, failure: &crate::store::Failure) -> Response {
    let status = if failure.not_found {
        StatusCode::NOT_FOUND
    } else {
        StatusCode::BAD_GATEWAY
    };
    json(
        status,
        &json!({"status": "failed", "signature": sig, "error": failure.reason}),
    )
}

/// 202 `{"status":"queued"}` with where to poll and when.
pub fn queued(sig: Signature, location: &str) -> Response {
    queued_with(json!({"status": "queued", "signature": sig}), location)
}

/// 202 with `body` and the polling headers.
pub fn queued_with(body: serde_json::Value, location: &str) -> Response {
    let mut resp = json(StatusCode::ACCEPTED, &body);
    if let Ok(loc) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(header::LOCATION, loc);
    }
    resp.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from_static(RETRY_AFTER_SECS),
    );
    resp
}
