//! `GET /api/store`: how large the store is, its bounds (`--store-max-gb`,
//! `--retention-days`) and what the store's upkeep evicted (the last pass and the totals since
//! this instance started), so an operator sees what a bound costs without reading logs. With
//! `--store nats`, also the shared store: its size, whether this instance runs its upkeep for
//! the cluster, and what that upkeep evicted here.

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
    /// Bytes this instance's redb file takes (with `--store nats`, its replica).
    pub bytes: u64,
    /// The bound (`--store-max-gb` in bytes), if any.
    pub max_bytes: Option<u64>,
    /// `--retention-days`, if set.
    pub retention_days: Option<f64>,
    /// What this instance's upkeep evicted from its redb file (with `--store nats`, nothing:
    /// the replica drops what the shared store drops).
    pub upkeep: StoreStatus,
    /// With `--store nats`: the shared store.
    pub shared: Option<SharedStoreBody>,
}

/// The shared store in `GET /api/store`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = SharedStoreReport)]
pub struct SharedStoreBody {
    /// Bytes the shared data takes on each JetStream node: the data bucket and the object
    /// store.
    pub bytes: u64,
    /// The bound (`--store-max-gb` in bytes), if any.
    pub max_bytes: Option<u64>,
    /// Whether this instance holds the lease of the shared upkeep: one instance at a time
    /// decides and evicts for the whole cluster.
    pub leader: bool,
    /// What the shared passes this instance ran evicted (none on an instance that never held
    /// the lease).
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
        this instance started. With `--store nats`, `shared` shows the shared store: its \
        size per JetStream node, whether this instance runs its upkeep for the cluster (one \
        instance at a time does), and what the passes it ran evicted.",
    responses(
        (status = 200, description = "The store's size, bounds and evictions.", body = StoreBody),
        Internal
    )
)]
pub async fn get_store(state: ApiState, _req: Request) -> Result<Response, ApiError> {
    let view = &state.store_bounds;
    let shared = view.shared_bytes().await.map(|bytes| SharedStoreBody {
        bytes,
        max_bytes: view.bounds.max_bytes(),
        leader: view.leading(),
        upkeep: view.shared_status.get(),
    });
    let body = StoreBody {
        backend: state.store_bounds.backend.to_string(),
        bytes: state.store.file_size(),
        max_bytes: state.store_bounds.bounds.max_bytes(),
        retention_days: state.store_bounds.bounds.retention_days,
        upkeep: state.store_bounds.status.get(),
        shared,
    };
    Ok(json(StatusCode::OK, &body))
}
