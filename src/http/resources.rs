//! The idempotent POST/GET contract for single resources (`/api/matches/{id}`,
//! `/api/players/{id}/data`): POST answers `ready` or queues; GET serves the stored JSON itself,
//! queues on a miss, serves stale data while a refresh runs, and reports a permanent failure.

use serde_json::json;
use warp::http::{HeaderValue, StatusCode, header};
use warp::reply::Response;

use super::ApiState;
use super::params::ResourceQuery;
use super::reply::{ApiError, json, raw_json};
use crate::actors::cache_keeper::{Prepare, Prepared};
use crate::domain::{Priority, Signature};
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
    let prepared: Prepared = state
        .keeper
        .send(Prepare {
            signature: sig,
            force: query.force,
            // POST retries a failed resource; GET only reports the failure.
            retry_failed: verb == Verb::Post,
            priority: Priority::Interactive,
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

    match verb {
        Verb::Post if prepared.fresh => Ok(json(
            StatusCode::OK,
            &json!({"status": "ready", "signature": sig}),
        )),
        Verb::Post => Ok(queued(sig, &location)),
        Verb::Get => get_reply(&state, sig, &prepared, &location),
    }
}

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
        let status = if prepared.fresh {
            "fresh"
        } else {
            "stale; refresh queued"
        };
        resp.headers_mut()
            .insert(CACHE_STATUS_HEADER, HeaderValue::from_static(status));
        return Ok(resp);
    }
    if let Some(failure) = &prepared.failure {
        let status = if failure.not_found {
            StatusCode::NOT_FOUND
        } else {
            StatusCode::BAD_GATEWAY
        };
        return Ok(json(
            status,
            &json!({"status": "failed", "signature": sig, "error": failure.reason}),
        ));
    }
    Ok(queued(sig, location))
}

/// 202 `{"status":"queued"}` with where to poll and when.
fn queued(sig: Signature, location: &str) -> Response {
    let mut resp = json(
        StatusCode::ACCEPTED,
        &json!({"status": "queued", "signature": sig}),
    );
    if let Ok(loc) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(header::LOCATION, loc);
    }
    resp.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from_static(RETRY_AFTER_SECS),
    );
    resp
}
