//! `GET /`: the live status page, one self-contained HTML file (`assets/index.html`, inline CSS
//! and vanilla JS, no external resources) compiled into the binary with `include_str!`, so the
//! page always matches the API of the build that serves it. The page polls
//! `/api/queue/status`, follows `/api/events` and drives team imports through
//! `/api/teams/{teamId}/matches`. Mounted by [`super::routes`].

use std::time::Instant;

use warp::Filter;
use warp::http::{HeaderValue, Method, header};
use warp::reply::Response;

use super::observe;

/// The page, as committed.
const INDEX_HTML: &str = include_str!("assets/index.html");

/// `GET /` with `text/html; charset=utf-8`.
pub fn route() -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    warp::path::end().and(warp::get()).map(|| {
        let started = Instant::now();
        let mut resp = Response::new(INDEX_HTML.into());
        let headers = resp.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        // The page is tiny and changes with every build; never serve a stale one.
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        observe("/", &Method::GET, started, &resp);
        resp
    })
}
