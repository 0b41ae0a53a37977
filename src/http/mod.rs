//! The warp façade: routes, shared state and the server. Handlers parse IDs and parameters at
//! the edge (400 with a JSON error), talk to CacheKeeper and the queue, and never block.
//!
//! Routes: `POST|GET /api/matches/{id}`, `POST|GET /api/players/{id}/data`,
//! `POST|GET /api/players/{id}/stats`, `POST|GET /api/leagues/{id}`,
//! `POST|GET /api/teams/{id}/matches`, `POST /api/cache/invalidate`, `GET /api/queue/status`,
//! `GET /api/events` (SSE), `GET /` (status page), `GET /api/openapi.json`, `GET /healthz`,
//! `GET /readyz`, `GET /metrics`.

pub mod events;
pub mod invalidate;
pub mod openapi;
pub mod page;
pub mod params;
pub mod reply;
pub mod request_id;
pub mod resources;
pub mod status;
pub mod teams;

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
use crate::config::{AdminToken, PlayerSides};
use crate::domain::{LeagueId, MatchId, PlayerId, ResourceKind, Signature, TeamId};
use crate::metrics as m;
use crate::store::Store;
use params::ResourceQuery;
use reply::ApiError;
use resources::Verb;

/// Every route as (method, path template in OpenAPI form): the single list that the OpenAPI
/// document and `tests/openapi.rs` are checked against.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/matches/{id}"),
    ("POST", "/api/matches/{id}"),
    ("GET", "/api/players/{id}/data"),
    ("POST", "/api/players/{id}/data"),
    ("GET", "/api/players/{id}/stats"),
    ("POST", "/api/players/{id}/stats"),
    ("GET", "/api/leagues/{id}"),
    ("POST", "/api/leagues/{id}"),
    ("GET", "/api/teams/{id}/matches"),
    ("POST", "/api/teams/{id}/matches"),
    ("POST", "/api/cache/invalidate"),
    ("GET", "/api/queue/status"),
    ("GET", "/api/events"),
    ("GET", "/api/openapi.json"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/"),
];

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
    pub team_players: PlayerSides,
    pub admin_token: Option<AdminToken>,
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

/// When an admin token is configured, the request must carry `Authorization: Bearer <token>`.
pub fn require_admin(state: &ApiState, authorization: Option<&str>) -> Result<(), ApiError> {
    let Some(token) = &state.admin_token else {
        return Ok(());
    };
    let presented = authorization
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim);
    match presented {
        Some(p) if token.matches(p) => Ok(()),
        Some(_) => Err(ApiError::Unauthorized("invalid admin token".to_string())),
        None => Err(ApiError::Unauthorized(
            "this operation requires Authorization: Bearer <admin token>".to_string(),
        )),
    }
}

/// A single-resource route: how its path ID becomes a signature and a polling URL, and which
/// query keys it takes.
struct ResourceRoute {
    template: &'static str,
    to_sig: fn(&str) -> Result<(Signature, String), ApiError>,
    query_keys: &'static [&'static str],
}

fn parse_id<T: FromStr<Err = crate::domain::IdError>>(raw: &str) -> Result<T, ApiError> {
    T::from_str(raw).map_err(|e| ApiError::BadRequest(e.to_string()))
}

const MATCHES: ResourceRoute = ResourceRoute {
    template: "/api/matches/{id}",
    to_sig: |raw| {
        let id: MatchId = parse_id(raw)?;
        Ok((Signature::Match(id), format!("/api/matches/{id}")))
    },
    query_keys: &["force"],
};

const PLAYERS: ResourceRoute = ResourceRoute {
    template: "/api/players/{id}/data",
    to_sig: |raw| {
        let id: PlayerId = parse_id(raw)?;
        Ok((Signature::Player(id), format!("/api/players/{id}/data")))
    },
    query_keys: &["force"],
};

const PLAYER_STATS: ResourceRoute = ResourceRoute {
    template: "/api/players/{id}/stats",
    to_sig: |raw| {
        let id: PlayerId = parse_id(raw)?;
        Ok((
            Signature::PlayerStats(id),
            format!("/api/players/{id}/stats"),
        ))
    },
    query_keys: &["force"],
};

const LEAGUES: ResourceRoute = ResourceRoute {
    template: "/api/leagues/{id}",
    to_sig: |raw| {
        let id: LeagueId = parse_id(raw)?;
        Ok((Signature::League(id), format!("/api/leagues/{id}")))
    },
    query_keys: &["force", "queueMatches"],
};

async fn resource_route(
    state: ApiState,
    route: &'static ResourceRoute,
    method: Method,
    raw_id: String,
    query: Vec<(String, String)>,
) -> Result<Response, Infallible> {
    let started = Instant::now();
    let result = async {
        let (sig, location) = (route.to_sig)(&raw_id)?;
        let query = ResourceQuery::parse(&query, route.query_keys)?;
        resources::handle(state, verb(&method), sig, query, location).await
    }
    .await;
    let resp = result.unwrap_or_else(ApiError::into_response);
    observe(route.template, &method, started, &resp);
    Ok(resp)
}

/// Largest request body accepted (team import and invalidation bodies are small JSON).
const MAX_BODY_BYTES: u64 = 256 * 1024;

#[derive(Debug)]
struct BodyTooLarge;
impl warp::reject::Reject for BodyTooLarge {}

/// The request body, refused with 400 when its declared length exceeds [`MAX_BODY_BYTES`].
/// Unlike `content_length_limit`, a request without a body (and so without a length) passes.
fn small_body() -> impl Filter<Extract = (bytes::Bytes,), Error = warp::Rejection> + Clone {
    warp::header::optional::<u64>("content-length")
        .and_then(|len: Option<u64>| async move {
            match len {
                Some(len) if len > MAX_BODY_BYTES => Err(warp::reject::custom(BodyTooLarge)),
                _ => Ok(()),
            }
        })
        .untuple_one()
        .and(warp::body::bytes())
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

    let resource = |route: &'static ResourceRoute, path: warp::filters::BoxedFilter<(String,)>| {
        path.and(get_or_post())
            .and(query)
            .and(with_state(state.clone()))
            .and_then(move |id, method, q, st| resource_route(st, route, method, id, q))
    };
    let matches = resource(&MATCHES, warp::path!("api" / "matches" / String).boxed());
    let players = resource(
        &PLAYERS,
        warp::path!("api" / "players" / String / "data").boxed(),
    );
    let player_stats = resource(
        &PLAYER_STATS,
        warp::path!("api" / "players" / String / "stats").boxed(),
    );
    let leagues = resource(&LEAGUES, warp::path!("api" / "leagues" / String).boxed());
    let teams =
        warp::path!("api" / "teams" / String / "matches")
            .and(get_or_post())
            .and(query)
            .and(small_body())
            .and(warp::header::optional::<String>("authorization"))
            .and(with_state(state.clone()))
            .and_then(
                |raw: String,
                 method: Method,
                 q: Vec<(String, String)>,
                 body,
                 auth,
                 st: ApiState| async move {
                    let started = Instant::now();
                    let result = async {
                        let team: TeamId = parse_id(&raw)?;
                        let query = ResourceQuery::parse(&q, teams::QUERY_KEYS)?;
                        teams::handle(st, verb(&method), team, query, body, auth).await
                    }
                    .await;
                    let resp = result.unwrap_or_else(ApiError::into_response);
                    observe("/api/teams/{id}/matches", &method, started, &resp);
                    Ok::<_, Infallible>(resp)
                },
            );
    let invalidate = warp::path!("api" / "cache" / "invalidate")
        .and(warp::post())
        .and(small_body())
        .and(warp::header::optional::<String>("authorization"))
        .and(with_state(state.clone()))
        .and_then(|body, auth, st: ApiState| async move {
            let started = Instant::now();
            let resp = invalidate::handle(st, body, auth)
                .await
                .unwrap_or_else(ApiError::into_response);
            observe("/api/cache/invalidate", &Method::POST, started, &resp);
            Ok::<_, Infallible>(resp)
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
    let openapi = warp::path!("api" / "openapi.json")
        .and(warp::get())
        .map(|| {
            let started = Instant::now();
            let resp = openapi::reply();
            observe("/api/openapi.json", &Method::GET, started, &resp);
            resp
        });

    matches
        .or(players)
        .unify()
        .or(player_stats)
        .unify()
        .or(leagues)
        .unify()
        .or(teams)
        .unify()
        .or(invalidate)
        .unify()
        .or(queue_status)
        .unify()
        .or(healthz)
        .unify()
        .or(readyz)
        .unify()
        .or(metrics)
        .unify()
        .or(openapi)
        .unify()
        .or(events::route(state))
        .unify()
        .or(page::route())
        .unify()
        .recover(|rejection: warp::Rejection| async move {
            if rejection.find::<MethodRejected>().is_some() {
                return Ok(ApiError::MethodNotAllowed.into_response());
            }
            if rejection.find::<BodyTooLarge>().is_some() {
                return Ok(ApiError::BadRequest(format!(
                    "request body over {MAX_BODY_BYTES} bytes"
                ))
                .into_response());
            }
            reply::recover(rejection).await
        })
        .unify()
}
