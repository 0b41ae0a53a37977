//! The answers the resource and team routes share besides the data itself: `ready` (200),
//! `queued` (202 with where to poll and when) and `failed` (404/502 with when the failure ends).

use serde::Serialize;
use warp::http::{HeaderValue, StatusCode, header};
use warp::reply::Response;

use crate::domain::Signature;
use crate::http::ApiState;
use crate::http::bodies::{Accepted, Envelope, FailedBody, FailedStatus};
use crate::http::reply::json;
use crate::store::Failure;

/// Seconds a client is told to wait before polling again.
const RETRY_AFTER_SECS: &str = "2";

/// 200 `{"status":"ready"}`.
pub fn ready(sig: Signature) -> Response {
    json(
        StatusCode::OK,
        &Envelope {
            signature: sig,
            status: Accepted::Ready,
        },
    )
}

/// 202 `{"status":"queued"}` with where to poll and when.
pub fn queued(sig: Signature, location: &str) -> Response {
    let body = Envelope {
        signature: sig,
        status: Accepted::Queued,
    };
    queued_with(&body, location)
}

/// 202 with `body` and the polling headers.
pub fn queued_with(body: &impl Serialize, location: &str) -> Response {
    let mut resp = json(StatusCode::ACCEPTED, body);
    if let Ok(loc) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(header::LOCATION, loc);
    }
    resp.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from_static(RETRY_AFTER_SECS),
    );
    resp
}

/// `{"status":"failed"}`: 404 when the upstream has no such resource, else 502. `retryAt` and
/// `Retry-After` say when the failure TTL ends and a GET queues a new attempt.
pub fn failed(state: &ApiState, sig: Signature, failure: &Failure) -> Response {
    let status = if failure.not_found {
        StatusCode::NOT_FOUND
    } else {
        StatusCode::BAD_GATEWAY
    };
    let retry_at_ms = failure.retry_at_ms(state.store.failure_ttl());
    let body = FailedBody {
        error: failure.reason.clone(),
        retry_at: rfc3339(retry_at_ms),
        signature: sig,
        status: FailedStatus::Failed,
    };
    let mut resp = json(status, &body);
    // Whole seconds, rounded up so a client that waits exactly that long finds it expired.
    let wait_ms = retry_at_ms.saturating_sub(crate::store::now_ms()).max(0);
    let wait_secs = (wait_ms.saturating_add(999)) / 1000;
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(wait_secs));
    resp
}

/// Unix milliseconds as RFC 3339 in UTC (the far future when out of chrono's range).
fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC)
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
