//! The warp façade: routes, shared state and the server. Handlers parse IDs and parameters at
//! the edge (400 with a JSON error), talk to CacheKeeper and the queue, and never block.
//!
//! Routes: `POST|GET /api/matches/{id}`, `POST|GET /api/players/{id}/data`,
//! `GET /api/queue/status`, `GET /api/events` (SSE), `GET /` (status page), `GET /healthz`,
//! `GET /readyz`, `GET /metrics`.

pub mod events;
pub mod page;
pub mod params;
pub mod reply;
pub mod resources;
pub mod status;

use std::convert::Infallible;
use std::str::FromStr;
use std::time::Instant;

use actix::Addr;
use metrics_exporter_prometheus::PrometheusHandle;
use warp::Filter;
use warp::http::Method;
use warp::reply::Response;

use crate::actors::cache_keeper::CacheKeeper;
use crate::actors::pipeline::Pipeline;
use crate::actors::rate_limiter::RateLimiter;
use crate::domain::{MatchId, PlayerId, ResourceKind, Signature};
use crate::metrics as m;
use crate::store::Store;
use params::ResourceQuery;
use reply::ApiError;
use resources::Verb;

/// What handlers share. Cheap to clone.
#[derive(Clone)]
pub struct ApiState {
    pub store: Store,
    pub keeper: Addr<CacheKeeper>,
    pub limiter: Addr<RateLimiter>,
    pub pipeline: Pipeline,
    pub metrics: PrometheusHandle,
    /// Job kinds this instance has queues for.
    pub kinds: Vec<ResourceKind>,
    /// Turns true when the server starts draining; long-lived replies (`/api/events`) end then.
    pub closing: tokio::sync::watch::Receiver<bool>,
}

fn with_state(state: ApiState) -> impl Filter<Extract = (ApiState,), Error = Infallible> + Clone {
    warp::any().map(move || state.clone())
}

/// Records the request metrics under a route template (never the concrete path).
fn observe(route: &'static str, method: &Method, started: Instant, resp: &Response) {
    let method = method.as_str().to_string();
    let status = resp.status().as_u16().to_string();
    metrics::counter!(m::HTTP_REQUESTS, "route" => route, "method" => method.clone(), "status" => status)
        .increment(1);
    metrics::histogram!(m::HTTP_LATENCY, "route" => route, "method" => method)
        .record(started.elapsed().as_secs_f64());
}

fn verb(method: &Method) -> Verb {
    if method == Method::POST {
        Verb::Post
    } else {
        Verb::Get
    }
}

async fn resource_route(
    state: ApiState,
    route: &'static str,
    method: Method,
    raw_id: String,
    query: Vec<(String, String)>,
    to_sig: fn(&str) -> Result<(Signature, String), ApiError>,
) -> Result<Response, Infallible> {
    let started = Instant::now();
    let result = async {
        let (sig, location) = to_sig(&raw_id)?;
        let query = ResourceQuery::parse(&query)?;
        resources::handle(state, verb(&method), sig, query, location).await
    }
    .await;
    let resp = result.unwrap_or_else(ApiError::into_response);
    observe(route, &method, started, &resp);
    Ok(resp)
}

fn match_sig(raw: &str) -> Result<(Signature, String), ApiError> {
    let id = MatchId::from_str(raw).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    Ok((Signature::Match(id), format!("/api/matches/{id}")))
}

fn player_sig(raw: &str) -> Result<(Signature, String), ApiError> {
    let id = PlayerId::from_str(raw).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    Ok((Signature::Player(id), format!("/api/players/{id}/data")))
}

fn get_or_post() -> impl Filter<Extract = (Method,), Error = warp::Rejection> + Clone {
    warp::method().and_then(|method: Method| async move {
        if method == Method::GET || method == Method::POST {
            Ok(method)
        } else {
            Err(warp::reject::custom(MethodRejected))
        }
    })
}

#[derive(Debug)]
struct MethodRejected;
impl warp::reject::Reject for MethodRejected {}

/// Every route, with JSON errors for everything that matches none.
pub fn routes(state: ApiState) -> impl Filter<Extract = (Response,), Error = Infallible> + Clone {
    let query = warp::query::<Vec<(String, String)>>();

    let matches = warp::path!("api" / "matches" / String)
        .and(get_or_post())
        .and(query)
        .and(with_state(state.clone()))
        .and_then(|id, method, q, st| {
            resource_route(st, "/api/matches/{id}", method, id, q, match_sig)
        });
    let players = warp::path!("api" / "players" / String / "data")
        .and(get_or_post())
        .and(query)
        .and(with_state(state.clone()))
        .and_then(|id, method, q, st| {
            resource_route(st, "/api/players/{id}/data", method, id, q, player_sig)
        });
    let queue_status = warp::path!("api" / "queue" / "status")
        .and(warp::get())
        .and(with_state(state.clone()))
        .and_then(|st: ApiState| async move {
            let started = Instant::now();
            let resp = status::queue_status(st)
                .await
                .unwrap_or_else(ApiError::into_response);
            observe("/api/queue/status", &Method::GET, started, &resp);
            Ok::<_, Infallible>(resp)
        });
    let healthz = warp::path!("healthz").and(warp::get()).map(|| {
        reply::json(
            warp::http::StatusCode::OK,
            &serde_json::json!({"status": "ok"}),
        )
    });
    let readyz = warp::path!("readyz")
        .and(warp::get())
        .and(with_state(state.clone()))
        .then(status::readyz);
    let metrics = warp::path!("metrics")
        .and(warp::get())
        .and(with_state(state.clone()))
        .map(|st: ApiState| status::metrics(&st));

    matches
        .or(players)
        .unify()
        .or(queue_status)
        .unify()
        .or(healthz)
        .unify()
        .or(readyz)
        .unify()
        .or(metrics)
        .unify()
        .or(events::route(state))
        .unify()
        .or(page::route())
        .unify()
        .recover(|rejection: warp::Rejection| async move {
            if rejection.find::<MethodRejected>().is_some() {
                return Ok(ApiError::MethodNotAllowed.into_response());
            }
            reply::recover(rejection).await
        })
        .unify()
}
