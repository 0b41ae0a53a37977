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

/// A new request ID: a v4 UUID, formatted on the stack straight into the header value (one
/// allocation per request, not three).
fn new_id() -> HeaderValue {
    let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
    let id = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buf);
    // A hyphenated UUID is always a valid header value.
    HeaderValue::from_str(id).unwrap_or_else(|_| HeaderValue::from_static("unknown"))
}

/// Wraps `routes` with the request span and the `X-Request-Id` header.
pub fn with_request_id<F>(
    routes: F,
) -> impl Filter<Extract = (impl warp::Reply,), Error = warp::Rejection> + Clone
where
    F: Filter<Extract = (Response,), Error = Infallible> + Clone + Send + Sync + 'static,
{
    let id = warp::header::optional::<HeaderValue>(HEADER).map(|given: Option<HeaderValue>| {
        let id = given
            .filter(|g| g.to_str().is_ok_and(sane))
            .unwrap_or_else(new_id);
        if let Ok(text) = id.to_str() {
            tracing::Span::current().record("request_id", text);
        }
        id
    });
    id.and(routes)
        .map(|id: HeaderValue, mut resp: Response| {
            resp.headers_mut().insert(HEADER, id);
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
    fn a_new_id_is_a_hyphenated_uuid() {
        let id = new_id();
        let text = id.to_str().unwrap();
        assert_eq!(text.len(), 36);
        assert!(uuid::Uuid::parse_str(text).is_ok());
    }

    #[test]
    fn only_sane_client_ids_are_kept() {
        assert!(sane("abc-123_x.y:z"));
        assert!(!sane(""));
        assert!(!sane("has space"));
        assert!(!sane(&"a".repeat(200)));
    }
}
