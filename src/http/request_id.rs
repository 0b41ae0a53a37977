//! Per-request tracing: every request runs in an `http` span (method, path, request ID), and the
//! request ID is echoed in `X-Request-Id` — the client's own when it sent a sane one, else a new
//! UUID — so a frontend report can be matched to the service's log lines.

use std::convert::Infallible;

use warp::Filter;
use warp::http::HeaderValue;
use warp::reply::Response;

/// Header carrying the request ID both ways.
pub const HEADER: &str = "x-request-id";
/// Longest client-supplied ID that is trusted (anything else is replaced).
const MAX_CLIENT_ID: usize = 128;

fn sane(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_CLIENT_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
}

/// Wraps `routes` with the request span and the `X-Request-Id` header.
pub fn with_request_id<F>(
    routes: F,
) -> impl Filter<Extract = (impl warp::Reply,), Error = warp::Rejection> + Clone
where
    F: Filter<Extract = (Response,), Error = Infallible> + Clone + Send + Sync + 'static,
{
    let id = warp::header::optional::<String>(HEADER).map(|given: Option<String>| {
        let id = given
            .filter(|g| sane(g))
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        tracing::Span::current().record("request_id", id.as_str());
        id
    });
    id.and(routes)
        .map(|id: String, mut resp: Response| {
            if let Ok(value) = HeaderValue::from_str(&id) {
                resp.headers_mut().insert(HEADER, value);
            }
            tracing::debug!(status = resp.status().as_u16(), "answered");
            resp
        })
        .with(warp::trace(|info| {
            tracing::info_span!(
                "http",
                method = %info.method(),
                path = %info.path(),
                request_id = tracing::field::Empty,
            )
        }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sane_client_ids_are_kept() {
        assert!(sane("abc-123_x.y:z"));
        assert!(!sane(""));
        assert!(!sane("has space"));
        assert!(!sane(&"a".repeat(200)));
    }
}
