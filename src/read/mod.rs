//! The read model: what the HTTP handlers read besides the store itself, kept and refreshed
//! outside any request and free of HTTP (nothing here knows warp, a route or a status code).
//!
//! - [`hot`]: ready responses in memory (resources and rendered team views), never stale.
//! - [`queue_snapshot`]: the queue status, collected in the background, and its body.
//! - [`live`]: the last ready/failed events and the stream of queue status changes the live
//!   feeds send.
//! - [`refresh`]: the refresh rules and which team imports were tracked lately.
//! - [`bypass`]: direct upstream fetches, deduplicated, for while the store is degraded.
//!
//! Handlers reach these through `http::ApiState`; `app` builds them and spawns their tasks.

pub mod bypass;
pub mod hot;
pub mod live;
pub mod queue_snapshot;
pub mod refresh;
