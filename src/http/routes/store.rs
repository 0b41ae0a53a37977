//! `GET /api/store`: how large the store is, its bounds (`--store-max-gb`,
//! `--retention-days`) and what the store's upkeep evicted (the last pass and the totals since
//! this instance started), so an operator sees what a bound costs without reading logs.

use serde::Serialize;
use utoipa::ToSchema;
use warp::http::StatusCode;
use warp::reply::Response;

use crate::actors::store_bounds::StoreStatus;
use crate::http::ApiState;
use crate::http::openapi::responses::Internal;
use crate::http::reply::{ApiError, json};
use crate::http::router::Request;

/// `GET /api/store`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = StoreReport)]
pub struct StoreBody {
    /// `redb` (this instance's file) or `nats` (the shared store every instance sees).
    pub backend: String,
    /// Bytes the store takes: the redb file, or the shared data bucket and object store.
    pub bytes: u64,
    /// The bound (`--store-max-gb` in bytes), if any.
    pub max_bytes: Option<u64>,
    /// `--retention-days`, if set.
    pub retention_days: Option<f64>,
    /// What this instance's upkeep evicted. With `--store nats` one instance at a time runs
    /// the upkeep for the cluster, so the others show no passes.
    pub upkeep: StoreStatus,
}

#[utoipa::path(
    get,
    path = "/api/store",
    tag = "operations",
    summary = "Store size, bounds and what the upkeep evicted",
    description = "The store's size and bounds, and what the store's upkeep removed: the \
        last pass (when, how many resources it looked at, how many it removed and their \
        bytes by reason: `size` over `--store-max-gb`, `retention` past `--retention-days`, \
        `expired` shared entries past every TTL, and any compaction) and the totals since \
        this instance started.",
    responses(
        (status = 200, description = "The store's size, bounds and evictions.", body = StoreBody),
        Internal
    )
)]
pub async fn get_store(state: ApiState, _req: Request) -> Result<Response, ApiError> {
    let body = StoreBody {
        backend: state.store_bounds.backend.to_string(),
        bytes: state.store_bounds.bytes(&state.store).await,
        max_bytes: state.store_bounds.bounds.max_bytes(),
        retention_days: state.store_bounds.bounds.retention_days,
        upkeep: state.store_bounds.status.get(),
    };
    Ok(json(StatusCode::OK, &body))
}
