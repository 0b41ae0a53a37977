//! Resource replies while redb cannot be written (see `store::StoreHealth`): what is stored is
//! still served from the store (read transactions need no disk space), and a GET of anything
//! else is fetched directly through the bypass (`read::bypass`), answered with
//! `X-Cache-Status: bypass` and not stored. Called by `resources` when CacheKeeper could not
//! decide (its write failed) or decided to queue a job no fetcher could store.
//!
//! A direct fetch that fails is answered by the upstream error's disposition, as the job
//! pipeline would record it: the upstream's verdict on the resource (a 404, an invalid ID) is
//! the same 404 `failed` body the normal path answers, other permanent failures a 502, and a
//! failure a retry may cure a 503.

use warp::http::HeaderMap;
use warp::reply::Response;

use super::Verb;
use super::replies::{failed, ready};
use crate::domain::Signature;
use crate::http::ApiState;
use crate::http::reply::ApiError;
use crate::http::representation::{CacheStatus, respond_plain, respond_served};
use crate::read::bypass::Direct;
use crate::store::{Failure, now_ms};
use crate::upstream::error::{Disposition, UpstreamError};

/// The reply to `verb` on `sig` without CacheKeeper, or a 503 when the store cannot help: a
/// POST that would have to queue (nothing could store the result), or a kind the bypass
/// cannot fetch.
pub async fn reply(
    state: &ApiState,
    verb: Verb,
    sig: Signature,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(fresh) = state.store.fresh(&sig)? {
        return match verb {
            // Stored data is served as it is, even stale: nothing could refresh it now.
            Verb::Get => stored(state, sig, fresh, headers),
            Verb::Post if fresh => Ok(ready(sig)),
            Verb::Post => Err(cannot_queue(sig)),
        };
    }
    match (verb, Direct::of(sig)) {
        (Verb::Get, Some(direct)) => bypass(state, direct, headers).await,
        _ => Err(cannot_queue(sig)),
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
    let status = CacheStatus::stored_while_degraded(fresh);
    Ok(respond_served(served, headers, status)?)
}

/// The 503 for work that would have to be queued while writes fail: nothing could store it.
pub fn cannot_queue(sig: Signature) -> ApiError {
    ApiError::Unavailable(format!(
        "the store is degraded (redb writes fail): {sig} cannot be queued until it heals"
    ))
}

/// A GET of `direct` answered straight from the upstream (one call for concurrent GETs).
pub async fn bypass(
    state: &ApiState,
    direct: Direct,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let sig = direct.signature();
    tracing::debug!(%sig, "the store is degraded: fetching around it");
    match state.bypass.fetch(direct).await {
        // Not stored, so not compressed: sent as fetched.
        Ok(body) => Ok(respond_plain(&body, headers, CacheStatus::Bypass)?),
        Err(err) => fetch_failed(state, sig, &err),
    }
}

/// A failed direct fetch of `sig`, answered by its disposition (see the module docs). Nothing
/// is remembered: the failure counts from now, and a GET after `retryAt` fetches again.
fn fetch_failed(
    state: &ApiState,
    sig: Signature,
    err: &UpstreamError,
) -> Result<Response, ApiError> {
    match err.disposition() {
        Disposition::GiveUp { not_found } => {
            let failure = Failure {
                reason: err.to_string(),
                not_found,
                failed_at_ms: now_ms(),
                attempts: 1,
            };
            Ok(failed(state, sig, &failure))
        }
        Disposition::Retry => Err(ApiError::Unavailable(format!(
            "the store is degraded and the direct fetch of {sig} failed: {err}"
        ))),
    }
}
