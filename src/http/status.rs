//! Operational routes: `/api/queue/status` (per-service queue, in-flight work, counters and
//! rate budget), `/healthz` (process up), `/readyz` (NATS connected, redb open), `/metrics`.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::json;
use warp::http::StatusCode;
use warp::reply::Response;

use super::ApiState;
use super::reply::{ApiError, json};
use crate::actors::rate_limiter::{BudgetSnapshot, Snapshot};
use crate::domain::{Priority, Service, Signature};
use crate::metrics as m;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ServiceStatus {
    /// Jobs waiting in JetStream, both priorities.
    queued: u64,
    queued_by_priority: BTreeMap<&'static str, u64>,
    /// Jobs being fetched right now.
    in_flight: usize,
    active_signatures: Vec<Signature>,
    completed: u64,
    failed: u64,
    budget: Option<BudgetSnapshot>,
}

pub async fn queue_status(state: ApiState) -> Result<Response, ApiError> {
    let depth = state
        .pipeline
        .queue
        .depth(&state.kinds)
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    let budgets = state.limiter.send(Snapshot).await?;
    let mut services = BTreeMap::new();
    for service in Service::ALL {
        let mut by_priority = BTreeMap::new();
        for p in Priority::ALL {
            by_priority.insert(p.as_str(), 0);
        }
        for d in depth.iter().filter(|d| d.kind.service() == service) {
            *by_priority.entry(d.priority.as_str()).or_insert(0) += d.pending;
        }
        let queued = by_priority.values().sum();
        metrics::gauge!(m::QUEUE_DEPTH, "service" => service.as_str(), "priority" => "interactive")
            .set(by_priority.get("interactive").copied().unwrap_or(0) as f64);
        metrics::gauge!(m::QUEUE_DEPTH, "service" => service.as_str(), "priority" => "bulk")
            .set(by_priority.get("bulk").copied().unwrap_or(0) as f64);
        let activity = state.pipeline.activity.snapshot(service);
        services.insert(
            service.as_str(),
            ServiceStatus {
                queued,
                queued_by_priority: by_priority,
                in_flight: activity.active_signatures.len(),
                active_signatures: activity.active_signatures.into_iter().collect(),
                completed: activity.completed,
                failed: activity.failed,
                budget: budgets.iter().find(|b| b.service == service).cloned(),
            },
        );
    }
    Ok(json(
        StatusCode::OK,
        &json!({"timestamp": chrono::Utc::now().to_rfc3339(), "services": services}),
    ))
}

pub async fn readyz(state: ApiState) -> Response {
    let nats = state.pipeline.nats.connection_state() == async_nats::connection::State::Connected;
    let redb = state.store.ping().is_ok();
    let status = if nats && redb {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json(
        status,
        &json!({"status": if status.is_success() { "ready" } else { "not ready" }, "nats": nats, "redb": redb}),
    )
}

pub fn metrics(state: &ApiState) -> Response {
    let connected =
        state.pipeline.nats.connection_state() == async_nats::connection::State::Connected;
    metrics::gauge!(m::NATS_CONNECTED).set(if connected { 1.0 } else { 0.0 });
    metrics::gauge!(m::STORE_SIZE_BYTES).set(state.store.file_size() as f64);
    let mut resp = Response::new(state.metrics.render().into());
    resp.headers_mut().insert(
        warp::http::header::CONTENT_TYPE,
        warp::http::HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    resp
}
