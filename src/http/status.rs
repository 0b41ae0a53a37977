//! Operational routes: `/api/queue/status` (per-service queue, in-flight work, counters and
//! rate budget), `/healthz` (process up), `/readyz` (NATS connected, redb open; `degraded` while
//! redb writes fail), `/metrics`.

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::ToSchema;
use warp::http::StatusCode;
use warp::reply::Response;

use super::ApiState;
use super::bodies::{Health, HealthStatus, Readiness, ReadyState};
use super::openapi::responses::Unavailable;
use super::reply::{ApiError, json, typed};
use super::router::Request;
use crate::actors::cache_keeper::ProbeWrite;
use crate::actors::rate_limiter::{BudgetSnapshot, Snapshot};
use crate::domain::{Priority, Service, Signature};
use crate::metrics as m;

// Fields in alphabetical order, as the `json!` map this replaced wrote them.
/// Every upstream service's queue, work and budget.
#[derive(Serialize, ToSchema)]
pub struct QueueStatus {
    /// By service (`opendota`, `dotabuff`).
    pub services: BTreeMap<&'static str, ServiceStatus>,
    /// RFC 3339.
    #[schema(format = DateTime)]
    pub timestamp: String,
}

/// One service's queue, work and budget.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceStatus {
    /// Jobs waiting in JetStream, both priorities.
    pub queued: u64,
    /// By priority (`interactive`, `bulk`).
    pub queued_by_priority: BTreeMap<&'static str, u64>,
    /// Jobs delivered by JetStream and not yet acked.
    pub unacked: u64,
    /// Jobs being fetched right now.
    pub in_flight: usize,
    pub active_signatures: Vec<Signature>,
    pub completed: u64,
    pub failed: u64,
    pub budget: Option<BudgetSnapshot>,
}

/// Reads queue depth from JetStream, activity from the pipeline and budgets from the
/// RateLimiter, and updates the matching gauges on the way.
pub async fn collect(state: &ApiState) -> Result<BTreeMap<&'static str, ServiceStatus>, ApiError> {
    let depth = state
        .pipeline
        .queue
        .depth(&state.kinds)
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    let budgets = state.limiter.send(Snapshot).await?;
    let mut services = BTreeMap::new();
    for service in Service::ALL {
        let mut by_priority: BTreeMap<&'static str, u64> =
            Priority::ALL.iter().map(|p| (p.as_str(), 0)).collect();
        let mut unacked = 0;
        for d in depth.iter().filter(|d| d.kind.service() == service) {
            *by_priority.entry(d.priority.as_str()).or_insert(0) += d.pending;
            unacked += d.ack_pending;
        }
        for (priority, n) in &by_priority {
            metrics::gauge!(m::QUEUE_DEPTH, "service" => service.as_str(), "priority" => *priority)
                .set(*n as f64);
        }
        metrics::gauge!(m::QUEUE_IN_FLIGHT, "service" => service.as_str()).set(unacked as f64);
        let budget = budgets.iter().find(|b| b.service == service).cloned();
        if let Some(b) = &budget {
            metrics::gauge!(m::RATE_LIMIT_REMAINING, "service" => service.as_str(), "window" => "minute")
                .set(f64::from(b.remaining_minute));
            if let Some(day) = b.remaining_day {
                metrics::gauge!(m::RATE_LIMIT_REMAINING, "service" => service.as_str(), "window" => "day")
                    .set(f64::from(day));
            }
        }
        let activity = state.pipeline.activity.snapshot(service);
        services.insert(
            service.as_str(),
            ServiceStatus {
                queued: by_priority.values().sum(),
                queued_by_priority: by_priority,
                unacked,
                in_flight: activity.active_signatures.len(),
                active_signatures: activity.active_signatures.into_iter().collect(),
                completed: activity.completed,
                failed: activity.failed,
                budget,
            },
        );
    }
    Ok(services)
}

#[utoipa::path(
    get,
    path = "/api/queue/status",
    tag = "operations",
    summary = "Per-service queue depth, in-flight work, counters and rate budget",
    responses(
        (status = 200, description = "Status of every upstream service.", body = QueueStatus),
        Unavailable
    )
)]
pub async fn get_queue_status(state: ApiState, _: Request) -> Result<Response, ApiError> {
    let services = collect(&state).await?;
    let body = QueueStatus {
        services,
        timestamp: chrono::Utc::now().to_rfc3339(),
    };
    Ok(json(StatusCode::OK, &body))
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

/// How often gauges that come from elsewhere (JetStream, the limiter, the redb file) are
/// refreshed between scrapes.
pub const GAUGE_REFRESH: std::time::Duration = std::time::Duration::from_secs(5);

/// Refreshes the gauges every [`GAUGE_REFRESH`] until `shutdown` turns true.
pub async fn refresh_gauges(state: ApiState, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(GAUGE_REFRESH);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
        if let Err(err) = collect(&state).await {
            tracing::debug!(%err, "gauge refresh skipped");
        }
        probe_store(&state).await;
        update_local_gauges(&state);
    }
}

fn update_local_gauges(state: &ApiState) {
    let connected =
        state.pipeline.nats.connection_state() == async_nats::connection::State::Connected;
    metrics::gauge!(m::NATS_CONNECTED).set(if connected { 1.0 } else { 0.0 });
    metrics::gauge!(m::STORE_SIZE_BYTES).set(state.store.file_size() as f64);
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
