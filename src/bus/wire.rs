//! Wire types carried over NATS: the job payload and the ready/failed event bodies.
//! Parsed once when a message arrives; inner code only sees these types.

use serde::{Deserialize, Serialize};

use crate::domain::{Priority, Signature};

/// One unit of work on the jobs stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Job {
    pub signature: Signature,
    /// Matches the in-flight entry that queued this job; a job whose generation is no longer
    /// in flight is stale (already done, or superseded) and is acked without work.
    pub generation: u64,
    pub priority: Priority,
    /// Set by a forced refresh: cascades the force to the resources this one fans out to.
    #[serde(default)]
    pub force: bool,
    pub queued_at_ms: i64,
}

impl Job {
    /// `Nats-Msg-Id`: the signature plus its generation, so a re-publish of the same job
    /// (e.g. recovery after a crash) is dropped by JetStream's duplicate window, while a
    /// later fetch of the same resource is not.
    pub fn message_id(&self) -> String {
        format!("{}@{}", self.signature, self.generation)
    }
}

/// Body of a `dota.ready.<kind>.<id>` event.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadyEvent {
    pub kind: String,
    pub id: String,
    pub signature: Signature,
    /// RFC 3339 timestamp of the upstream fetch.
    pub fetched_at: String,
}

/// Body of a `dota.failed.<kind>.<id>` event.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FailedEvent {
    pub kind: String,
    pub id: String,
    pub signature: Signature,
    pub error: String,
    pub failed_at: String,
}
