//! Event bodies carried over NATS (`dota.ready.*`, `dota.failed.*`); the job payload is
//! [`crate::domain::Job`].
//! Parsed once when a message arrives; inner code only sees these types.

use serde::{Deserialize, Serialize};

use crate::domain::Signature;

/// Body of a `dota.ready.<kind>.<id>` event.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReadyEvent {
    pub kind: String,
    pub id: String,
    pub signature: Signature,
    /// RFC 3339 timestamp of the upstream fetch.
    pub fetched_at: String,
}

/// Body of a `dota.failed.<kind>.<id>` event.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FailedEvent {
    pub kind: String,
    pub id: String,
    pub signature: Signature,
    pub error: String,
    pub failed_at: String,
}
