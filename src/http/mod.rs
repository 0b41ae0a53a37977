//! The warp façade: shared state, the route table and the server filter. Handlers parse IDs
//! and parameters at the edge (400 with a JSON error), talk to CacheKeeper and the queue, read
//! the read model (`crate::read`), and never block.
//!
//! Two parts: the handlers, one file per resource family ([`routes`]), and the plumbing they
//! share: the router, replies and errors, input bounds, query parameters, content negotiation
//! ([`representation`]), bodies, request IDs, the stream cap and the OpenAPI document.
//!
//! [`table`] is the one list of routes: each entry is a handler with its `#[utoipa::path]`
//! description, and from it come both the router ([`router`]) and the OpenAPI document
//! ([`openapi`]). Adding a route is adding its handler and one line there.

pub mod bodies;
pub mod limits;
pub mod openapi;
pub mod params;
pub mod reply;
pub mod representation;
pub mod request_id;
pub mod router;
pub mod routes;
pub mod streams;

use std::convert::Infallible;

use actix::Addr;
use metrics_exporter_prometheus::PrometheusHandle;
use warp::Filter;
use warp::reply::Response;

use crate::actors::cache_keeper::CacheKeeper;
use crate::actors::pipeline::Pipeline;
use crate::config::{AdminToken, PlayerSides};
use crate::read::{bypass, hot, live, queue_snapshot, refresh};
use crate::store::Store;
use reply::ApiError;
use router::{Route, Router};
use routes::resources::routes as res;
use routes::{
    events, invalidate, openapi as doc, page, schedule, status, store, teams, webhooks, ws,
};

/// What handlers share: one `Arc`, so a request clones one pointer, not every handle inside
/// (each clone of those is an atomic write on a cache line both worker threads contend for).
pub type ApiState = std::sync::Arc<Shared>;

/// The handles and settings behind [`ApiState`].
pub struct Shared {
    pub store: Store,
    pub keeper: Addr<CacheKeeper>,
    pub pipeline: Pipeline,
    pub metrics: PrometheusHandle,
    pub team_players: PlayerSides,
    pub admin_token: Option<AdminToken>,
    /// The latest queue status, refreshed in the background; `/api/queue/status` reads it.
    pub queue_status: queue_snapshot::QueueSnapshots,
    /// Direct upstream fetches for GETs while the store is degraded.
    pub bypass: bypass::Bypass,
    /// Turns true when the server starts draining; long-lived replies (`/api/events`) end then.
    pub closing: tokio::sync::watch::Receiver<bool>,
    /// Ready responses in memory (see [`hot`]).
    pub hot: hot::HotCache,
    /// The last ready/failed events, for pages that open (see [`live`]).
    pub recent: live::RecentEvents,
    /// Tracked team imports and the refresh rules (see [`refresh`]).
    pub refresh: refresh::RefreshState,
    /// Webhook endpoints (see [`routes::webhooks`]); `None` where NATS cannot hold them.
    pub webhooks: Option<crate::webhooks::Webhooks>,
    /// The store's bounds and what its upkeep evicted (`GET /api/store`).
    pub store_bounds: crate::actors::store_bounds::BoundsView,
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

/// Every route, in the order the document lists them. Each [`Route`] is built from the
/// `#[utoipa::path]` item of its handler (`__path_<handler>`), so its method, path template and
/// description cannot disagree with what is served. The event streams and the WebSocket share
/// one [`streams::Streams`] cap.
pub fn table() -> Vec<Route> {
    let streams = streams::Streams::default();
    vec![
        Route::new::<res::__path_get_match>(res::get_match).with_fast(res::fast_match),
        Route::new::<res::__path_post_match>(res::post_match),
        Route::new::<res::__path_get_player>(res::get_player).with_fast(res::fast_player),
        Route::new::<res::__path_post_player>(res::post_player),
        Route::new::<res::__path_get_player_stats>(res::get_player_stats)
            .with_fast(res::fast_player_stats),
        Route::new::<res::__path_post_player_stats>(res::post_player_stats),
        Route::new::<res::__path_get_league>(res::get_league).with_fast(res::fast_league),
        Route::new::<res::__path_post_league>(res::post_league),
        Route::new::<teams::__path_get_team_matches>(teams::get_team_matches),
        Route::new::<teams::__path_post_team_matches>(teams::post_team_matches),
        Route::new::<schedule::__path_delete_team_matches>(schedule::delete_team_matches),
        Route::new::<schedule::__path_get_schedule>(schedule::get_schedule),
        Route::new::<invalidate::__path_post_invalidate>(invalidate::post_invalidate),
        Route::new::<status::__path_get_queue_status>(status::get_queue_status),
        Route::new::<store::__path_get_store>(store::get_store),
        Route::new::<events::__path_get_events>({
            let streams = streams.clone();
            move |state, req| events::get_events(state, req, streams.clone())
        }),
        Route::new::<events::__path_get_queue_events>({
            let streams = streams.clone();
            move |state, req| events::get_queue_events(state, req, streams.clone())
        }),
        Route::new::<ws::__path_get_ws>(move |state, req| ws::get_ws(state, req, streams.clone())),
        Route::new::<doc::__path_get_openapi>(doc::get_openapi),
        Route::new::<webhooks::__path_get_asyncapi>(webhooks::get_asyncapi),
        Route::new::<webhooks::__path_post_webhook>(webhooks::post_webhook),
        Route::new::<webhooks::__path_list_webhooks>(webhooks::list_webhooks),
        Route::new::<webhooks::__path_get_webhook>(webhooks::get_webhook),
        Route::new::<webhooks::__path_rotate_webhook_secret>(webhooks::rotate_webhook_secret),
        Route::new::<webhooks::__path_get_webhook_deliveries>(webhooks::get_webhook_deliveries),
        Route::new::<webhooks::__path_delete_webhook>(webhooks::delete_webhook),
        Route::new::<status::__path_get_healthz>(status::get_healthz),
        Route::new::<status::__path_get_readyz>(status::get_readyz),
        Route::new::<status::__path_get_metrics>(status::get_metrics),
        Route::new::<page::__path_get_status_page>(page::get_status_page),
    ]
}

/// `(METHOD, template)` of every route served.
pub fn route_list() -> Vec<(String, String)> {
    table()
        .iter()
        .flat_map(|route| {
            route
                .method_names()
                .map(|m| (m.to_string(), route.template.clone()))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Every route, with JSON errors for everything that matches none.
pub fn routes(state: ApiState) -> impl Filter<Extract = (Response,), Error = Infallible> + Clone {
    router::serve(Router::new(table()), state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_has_no_conflicting_templates() {
        Router::try_new(table()).unwrap();
    }
}
