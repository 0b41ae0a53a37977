//! Operational routes: `/api/queue/status` (per-service queue, in-flight work, counters and
//! rate budget, served from the background snapshot of `read::queue_snapshot`), `/healthz`
//! (process up), `/readyz` (NATS connected, redb open; `degraded` while redb writes fail),
//! `/metrics`.

use warp::http::StatusCode;
use warp::reply::Response;

use crate::actors::cache_keeper::ProbeWrite;
use crate::http::ApiState;
use crate::http::bodies::{Health, HealthStatus, Readiness, ReadyState};
use crate::http::openapi::responses::Unavailable;
use crate::http::reply::{ApiError, json, typed};
use crate::http::router::Request;
use crate::metrics as m;
use crate::read::queue_snapshot::QueueStatus;

#[utoipa::path(
    get,
    path = "/api/queue/status",
    tag = "operations",
    summary = "Per-service queue depth, in-flight work, counters and rate budget",
    description = "Served from a snapshot the service refreshes in the background at least \
        once a second; `asOf` says when it was taken. While JetStream cannot be read the last \
        snapshot is served for a few seconds, then 503.",
    responses(
        (status = 200, description = "Status of every upstream service.", body = QueueStatus),
        Unavailable
    )
)]
pub async fn get_queue_status(state: ApiState, _: Request) -> Result<Response, ApiError> {
    let snapshot = state.queue_status.latest()?;
    Ok(json(StatusCode::OK, &QueueStatus::of(&snapshot)))
}

#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    summary = "The process is up",
    responses((status = 200, description = "Up.", body = Health))
)]
pub async fn get_healthz(_: ApiState, _: Request) -> Result<Response, ApiError> {
    let body = Health {
        status: HealthStatus::Ok,
    };
    Ok(json(StatusCode::OK, &body))
}

/// How often the NATS, store size and store health gauges are refreshed between scrapes. The
/// queue and rate budget gauges follow every queue snapshot instead (`queue_snapshot`).
pub const GAUGE_REFRESH: std::time::Duration = std::time::Duration::from_secs(5);

/// Refreshes the gauges, and drains the recorder's histogram samples, every [`GAUGE_REFRESH`]
/// until `shutdown` turns true.
pub async fn refresh_gauges(state: ApiState, shutdown: tokio_util::sync::CancellationToken) {
    let mut tick = tokio::time::interval(GAUGE_REFRESH);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = shutdown.cancelled() => return,
        }
        probe_store(&state).await;
        update_local_gauges(&state);
        // The recorder keeps every histogram sample (each HTTP request adds one) until it is
        // drained; a scrape drains it, and so does this, so memory stays bounded without one.
        state.metrics.run_upkeep();
    }
}

fn update_local_gauges(state: &ApiState) {
    let connected =
        state.pipeline.nats.connection_state() == async_nats::connection::State::Connected;
    metrics::gauge!(m::NATS_CONNECTED).set(if connected { 1.0 } else { 0.0 });
    let file = state.store.file_size() as f64;
    metrics::gauge!(m::STORE_SIZE_BYTES).set(file);
    // With `--store nats` this is the replica; the shared store's size is set by the upkeep.
    metrics::gauge!(m::STORE_BYTES, "store" => "redb").set(file);
    metrics::gauge!(m::STORE_CACHE_CAPACITY_BYTES).set(state.store.cache_capacity() as f64);
    let degraded = state.store.degraded();
    metrics::gauge!(m::STORE_DEGRADED).set(if degraded { 1.0 } else { 0.0 });
    state.hot.export_gauges();
}

/// While the store is degraded, tries an empty write so it heals without waiting for traffic.
async fn probe_store(state: &ApiState) {
    if state.store.degraded()
        && let Ok(Err(err)) = state.keeper.send(ProbeWrite).await
    {
        tracing::debug!(%err, "the store is still degraded");
    }
}

#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    summary = "NATS is connected and redb is open",
    responses(
        (status = 200, description = "Ready, or `degraded`: serving while redb writes fail.", body = Readiness),
        (status = 503, description = "Not ready; the body says which part is down.", body = Readiness)
    )
)]
pub async fn get_readyz(state: ApiState, _: Request) -> Result<Response, ApiError> {
    let nats = state.pipeline.nats.connection_state() == async_nats::connection::State::Connected;
    let redb = state.store.ping().is_ok();
    let store_degraded = state.store.degraded();
    // A degraded store keeps the instance ready (200): it still serves every stored resource
    // and fetches misses directly, and taking it out of rotation would leave clients with
    // nothing. The body says `degraded` so monitoring can tell.
    let (status, ready) = match (nats && redb, store_degraded) {
        (true, false) => (StatusCode::OK, ReadyState::Ready),
        (true, true) => (StatusCode::OK, ReadyState::Degraded),
        (false, _) => (StatusCode::SERVICE_UNAVAILABLE, ReadyState::NotReady),
    };
    let body = Readiness {
        nats,
        redb,
        status: ready,
        store_degraded,
    };
    Ok(json(status, &body))
}

#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    summary = "Prometheus metrics (text exposition format 0.0.4)",
    responses((status = 200, description = "Metrics.", body = String, content_type = "text/plain"))
)]
pub async fn get_metrics(state: ApiState, _: Request) -> Result<Response, ApiError> {
    update_local_gauges(&state);
    let text = state.metrics.render();
    Ok(typed(StatusCode::OK, "text/plain; version=0.0.4", text))
}
