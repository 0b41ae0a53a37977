//! Records kept in redb beside the bodies: entry metadata, in-flight claims and failures.

use serde::{Deserialize, Serialize};

/// Metadata of a stored resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EntryMeta {
    /// Unix milliseconds of the successful upstream fetch.
    pub fetched_at_ms: i64,
    /// Set by `force=true` or the invalidation API: the copy may still be served as stale,
    /// but it is never reported `ready` and a refresh is queued.
    pub invalidated: bool,
    pub bytes: u64,
}

/// A resource that is queued or being fetched: the job that was published for it.
pub type InFlight = crate::domain::Job;

/// The last attempt at a resource failed permanently.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Failure {
    pub reason: String,
    /// The upstream said the resource does not exist (HTTP 404).
    pub not_found: bool,
    pub failed_at_ms: i64,
    pub attempts: u64,
}
