//! `GET /`: the live status page, one self-contained HTML file (`assets/index.html`, inline CSS
//! and vanilla JS, no external resources) compiled into the binary with `include_str!`, so the
//! page always matches the API of the build that serves it. The page polls
//! `/api/queue/status`, follows `/api/events` and drives team imports through
//! `/api/teams/{teamId}/matches`. Listed in `http::table`.

use warp::http::{HeaderValue, StatusCode, header};
use warp::reply::Response;

use crate::http::ApiState;
use crate::http::reply::{self, ApiError};
use crate::http::router::Request;

/// The page, as committed.
const INDEX_HTML: &str = include_str!("../assets/index.html");

#[utoipa::path(
    get,
    path = "/",
    tag = "operations",
    summary = "Human-readable status page",
    responses((status = 200, description = "An HTML page.", body = String, content_type = "text/html"))
)]
pub async fn get_status_page(_: ApiState, _: Request) -> Result<Response, ApiError> {
    let mut resp = reply::typed(StatusCode::OK, "text/html; charset=utf-8", INDEX_HTML);
    // The page is tiny and changes with every build; never serve a stale one.
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(resp)
}
