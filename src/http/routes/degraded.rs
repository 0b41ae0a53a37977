//! Resource replies while redb cannot be written (see `store::StoreHealth`): what is stored is
//! still served from the store (read transactions need no disk space), and a GET of anything
//! else is fetched directly through [`Bypass`](super::bypass::Bypass), answered with
//! `X-Cache-Status: bypass` and not stored. Called by `resources` when CacheKeeper could not
//! decide (its write failed) or decided to queue a job no fetcher could store.

use warp::http::{HeaderMap, HeaderValue, StatusCode};
use warp::reply::Response;

use super::ApiState;
use super::bodies::{Accepted, Envelope};
use super::bypass::Bypass;
use super::reply::{ApiError, json};
use super::representation::respond_plain;
use super::resources::{CACHE_STATUS_HEADER, FRESH, Verb, mark_cache_status, respond_served};
use crate::domain::Signature;

/// `X-Cache-Status` of a reply fetched around the store.
const BYPASS: &str = "bypass";
/// `X-Cache-Status` of a stale copy served while no refresh can be queued.
const STALE: &str = "stale";

/// The reply to `verb` on `sig` without CacheKeeper, or a 503 when the store cannot help: a
/// POST that would have to queue (nothing could store the result), or a kind the bypass
/// cannot fetch.
pub async fn reply(
    state: &ApiState,
    verb: Verb,
    sig: Signature,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let unavailable = || cannot_queue(sig);
    if let Some(fresh) = state.store.fresh(&sig)? {
        return match verb {
            // Stored data is served as it is, even stale: nothing could refresh it now.
            Verb::Get => stored(state, sig, fresh, headers),
            Verb::Post if fresh => Ok(json(
                StatusCode::OK,
                &Envelope {
                    signature: sig,
                    status: Accepted::Ready,
                },
            )),
            Verb::Post => Err(unavailable()),
        };
    }
    match verb {
        Verb::Get if Bypass::supports(&sig) => bypass(state, sig, headers).await,
        _ => Err(unavailable()),
    }
}

fn stored(
    state: &ApiState,
    sig: Signature,
    fresh: bool,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let Some(served) = state.store.served(&sig)? else {
        return Err(ApiError::Unavailable(format!(
            "{sig} vanished from the store while it was read"
        )));
    };
    let status = if fresh { FRESH } else { STALE };
    Ok(respond_served(served, headers, status))
}

/// The 503 for work that would have to be queued while writes fail: nothing could store it.
pub fn cannot_queue(sig: Signature) -> ApiError {
    ApiError::Unavailable(format!(
        "the store is degraded (redb writes fail): {sig} cannot be queued until it heals"
    ))
}

/// `X-Cache-Status` of a stored copy served while degraded: `fresh`, or `stale` (no refresh
/// could be queued, so `stale; refresh queued` would not be true).
pub fn mark_stored_cache_status(resp: &mut Response, fresh: bool) {
    if fresh {
        mark_cache_status(resp, true);
    } else {
        resp.headers_mut()
            .insert(CACHE_STATUS_HEADER, HeaderValue::from_static(STALE));
    }
}

/// A GET of `sig` answered straight from the upstream (one call for concurrent GETs).
pub async fn bypass(
    state: &ApiState,
    sig: Signature,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    tracing::debug!(%sig, "the store is degraded: fetching around it");
    let body = state.bypass.fetch(sig).await.map_err(|e| {
        ApiError::Unavailable(format!(
            "the store is degraded and the direct fetch of {sig} failed: {e}"
        ))
    })?;
    // Not stored, so not compressed: sent as fetched.
    Ok(respond_plain(&body, headers, BYPASS))
}
