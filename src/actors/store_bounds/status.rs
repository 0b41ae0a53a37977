//! What the store's upkeep reports: each pass ([`PassReport`]: logged, counted on `/metrics`)
//! and, for `GET /api/store`, the last pass and the totals since start ([`StoreStatus`]).

use std::sync::{Mutex, PoisonError};

use serde::Serialize;
use utoipa::ToSchema;

use crate::actors::cache_keeper::Evicted;
use crate::metrics as m;
use crate::store::Compacted;

/// Resources removed, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct Removed {
    /// Over `--store-max-gb`, least recently requested first.
    pub size: u64,
    /// Not requested within `--retention-days`.
    pub retention: u64,
    /// Shared store: outlived every TTL by the margin.
    pub expired: u64,
}

impl Removed {
    fn add(&mut self, other: &Removed) {
        self.size += other.size;
        self.retention += other.retention;
        self.expired += other.expired;
    }
}

/// A compaction of the redb file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CompactionReport {
    pub before_bytes: u64,
    pub after_bytes: u64,
    pub took_ms: u64,
}

/// One upkeep pass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PassReport {
    /// When it ran (unix ms).
    pub at_ms: i64,
    /// Stored resources it looked at.
    pub resources: usize,
    /// Resources it removed, by reason.
    pub evicted: Removed,
    /// Bytes (keys and values) it removed, by reason.
    pub evicted_bytes: Removed,
    /// The compaction it ran, if the file was over the bound.
    pub compaction: Option<CompactionReport>,
    pub took_ms: u64,
}

impl PassReport {
    pub(super) fn at(at_ms: i64) -> Self {
        Self {
            at_ms,
            resources: 0,
            evicted: Removed::default(),
            evicted_bytes: Removed::default(),
            compaction: None,
            took_ms: 0,
        }
    }

    pub(super) fn evicted(&mut self, evicted: &Evicted) {
        self.evicted.retention += evicted.dropped as u64;
        self.evicted.size += evicted.by_size as u64;
        self.evicted_bytes.retention += evicted.dropped_bytes;
        self.evicted_bytes.size += evicted.by_size_bytes;
    }

    pub(super) fn compacted(&mut self, c: Compacted) {
        self.compaction = Some(CompactionReport {
            before_bytes: c.before_bytes,
            after_bytes: c.after_bytes,
            took_ms: c.took.as_millis() as u64,
        });
    }

    /// Counts the removals on `/metrics` and logs the pass when it removed anything; `store`
    /// is `redb` (this instance's file) or `shared`.
    pub(super) fn log(&self, store: &'static str) {
        let e = &self.evicted;
        for (reason, n) in [
            ("size", e.size),
            ("retention", e.retention),
            ("expired", e.expired),
        ] {
            metrics::counter!(m::STORE_EVICTIONS, "reason" => reason).increment(n);
        }
        if e.size + e.retention + e.expired == 0 {
            return;
        }
        let b = &self.evicted_bytes;
        tracing::info!(
            store,
            resources = self.resources,
            size = e.size,
            size_bytes = b.size,
            retention = e.retention,
            retention_bytes = b.retention,
            expired = e.expired,
            expired_bytes = b.expired,
            took_ms = self.took_ms,
            "the store's upkeep evicted resources"
        );
    }
}

/// What `GET /api/store` shows of the upkeep.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StoreStatus {
    /// The last pass that ran, if any has.
    pub last_pass: Option<PassReport>,
    /// Resources removed since this instance started, by reason.
    pub evicted_total: Removed,
    /// Bytes removed since this instance started, by reason.
    pub evicted_bytes_total: Removed,
}

/// The upkeep's status, shared by the task and the API.
#[derive(Debug, Default)]
pub struct UpkeepStatus(Mutex<StoreStatus>);

impl UpkeepStatus {
    pub(super) fn record(&self, pass: &PassReport) {
        let mut status = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        status.evicted_total.add(&pass.evicted);
        status.evicted_bytes_total.add(&pass.evicted_bytes);
        status.last_pass = Some(pass.clone());
    }

    /// A copy of the status now.
    pub fn get(&self) -> StoreStatus {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}
