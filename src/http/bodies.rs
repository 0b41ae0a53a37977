//! The JSON bodies the API answers with that are not stored records: the error body, the
//! `ready`/`queued`/`failed` envelopes, team import summaries and health. Every handler
//! serialises these types, and the OpenAPI document (`super::openapi`) derives its schemas from
//! them, so a field added here is documented by construction.
//!
//! Fields are in alphabetical order: these bodies replaced `json!` maps, which serialise with
//! sorted keys, and the order keeps every reply byte-for-byte as it was.

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::{LeagueId, MatchId, Signature, TeamId};

/// Every error: `{"error": "..."}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    pub error: String,
}

/// Where a request stands: stored and fresh, or queued (or already running).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Accepted {
    Ready,
    Queued,
}

/// The answer of POST (and of GET before anything is stored).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Envelope {
    pub signature: Signature,
    pub status: Accepted,
}

/// Marks a [`FailedBody`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FailedStatus {
    Failed,
}

/// A resource whose last fetch failed permanently.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Failed)]
pub struct FailedBody {
    pub error: String,
    /// When the failure expires (RFC 3339, UTC): the first GET from then on queues a new
    /// attempt. A POST retries at once.
    #[schema(value_type = String, format = DateTime, example = "2026-11-30T01:10:00.000Z")]
    pub retry_at: String,
    pub signature: Signature,
    pub status: FailedStatus,
}

/// The answer of POST on a team import (and of GET while queued): the match IDs known so far.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TeamSummary {
    pub league_id: LeagueId,
    pub match_ids: Vec<MatchId>,
    pub signature: Signature,
    pub status: Accepted,
    pub team_id: TeamId,
}

/// `/healthz`: the process is up.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    Ok,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Health {
    pub status: HealthStatus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub enum ReadyState {
    #[serde(rename = "ready")]
    Ready,
    #[serde(rename = "not ready")]
    NotReady,
    /// Serving, but redb writes fail: stored data is served, misses bypass the store.
    #[serde(rename = "degraded")]
    Degraded,
}

/// `/readyz`: which dependency is down, if any.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Readiness {
    pub nats: bool,
    pub redb: bool,
    pub status: ReadyState,
    /// True while redb writes fail: reads are served and misses bypass the store.
    #[serde(rename = "storeDegraded")]
    pub store_degraded: bool,
}

/// The OpenDota `/matches/{id}` body, served as fetched (opaque to this service).
#[derive(ToSchema)]
#[schema(as = Match)]
pub struct OpenDotaMatch(pub BTreeMap<String, serde_json::Value>);

/// The OpenDota `/players/{id}` body, served as fetched (opaque to this service).
#[derive(ToSchema)]
#[schema(as = Player)]
pub struct OpenDotaPlayer(pub BTreeMap<String, serde_json::Value>);
