//! The store's upkeep: keeps the store within `--store-max-gb` and `--retention-days`, and
//! writes down when resources were requested. Runs as a task beside the actors:
//!
//! - every [`FLUSH`], the requests the read path noted in memory (`store::AccessLog`) are
//!   written to `access_v1` by the CacheKeeper (at most one row update per resource a minute);
//! - every `--store-upkeep-secs`, a pass: [`plan`] decides from the stored resources, their
//!   last use and the tracked imports what goes, the CacheKeeper removes it (least recently
//!   used first, in batches of [`BATCH`] so claims are not held up), and, when the file is
//!   still over the bound, compacts it. Each pass is logged when it removed anything, counted
//!   in `dota_store_evictions_total{reason}`, and shown on `GET /api/store`.
//!
//! The bound is the redb file's size. A pass that finds the file over 90% of the bound
//! ([`TARGET_PERCENT`]) removes resources until the database's allocated pages are under that
//! target, so the file (whose freed pages later writes reuse) stays at the bound; a file over
//! the bound itself (a bound lowered, a burst of imports) with a tenth of the bound or more
//! free in it is compacted.
//!
//! An evicted resource is simply absent: the next request for it queues a fetch, as for any
//! miss.
//!
//! With `--store nats` the bounds are the shared store's, and [`shared`] keeps them for the
//! whole cluster: one instance at a time (the holder of a lease) decides and evicts, from
//! the request times every instance shares, and each replica drops what the shared store
//! dropped. An instance's own pass then only writes its request times down (its replica
//! follows the shared store, so it is not bounded on its own).

#[cfg(test)]
mod bench;
pub mod plan;
mod shared;
mod status;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use actix::Addr;
use tokio_util::sync::CancellationToken;

use super::cache_keeper::{CacheKeeper, Compact, Evict, Evicted, NoteAccess};
use super::refresh_scheduler::Rules;
use crate::config::StoreBounds;
use crate::domain::Signature;
use crate::metrics as m;
use crate::shared::{SharedError, SharedStore};
use crate::store::{Store, StoreError, now_ms};
use crate::team::record::TeamRecord;
use crate::team::summary::MatchFacts;
use plan::{Plan, Usage};
pub use status::{CompactionReport, PassReport, Removed, StoreStatus, UpkeepStatus};

/// How often noted requests are written down.
pub const FLUSH: Duration = Duration::from_secs(30);
/// Resources removed per write transaction.
const BATCH: usize = 1_000;
/// What a size pass evicts down to, in percent of the bound.
const TARGET_PERCENT: u64 = 90;

/// Failures of an upkeep pass (logged; the next pass tries again).
#[derive(Debug, thiserror::Error)]
pub enum UpkeepError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cache keeper unavailable: {0}")]
    Keeper(#[from] actix::MailboxError),
    #[error(transparent)]
    Shared(#[from] SharedError),
}

/// The upkeep task (see the module docs). Cheap to clone.
#[derive(Clone)]
pub struct StoreUpkeep {
    pub store: Store,
    pub keeper: Addr<CacheKeeper>,
    pub bounds: StoreBounds,
    /// Which imports are tracked (`--track-days`).
    pub rules: Rules,
    /// What the last passes did, for `GET /api/store`.
    pub status: Arc<UpkeepStatus>,
    /// The shared store, with `--store nats` (its size goes on `/metrics` each pass).
    pub shared: Option<SharedStore>,
    /// What the shared passes this instance ran did, for `GET /api/store`.
    pub shared_status: Arc<UpkeepStatus>,
    /// Whether this instance holds the shared upkeep's lease now.
    pub leading: Arc<AtomicBool>,
}

impl StoreUpkeep {
    /// Runs until shutdown; writes the noted requests down once more on the way out.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut flush = tokio::time::interval(FLUSH.min(self.bounds.upkeep()));
        let mut pass = tokio::time::interval(self.bounds.upkeep());
        flush.tick().await;
        pass.tick().await;
        // The revision of the shared upkeep's lease this instance holds.
        let mut lease = None;
        // Whether this instance read the whole data bucket for markers without a TTL.
        let mut markers_done = false;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = flush.tick() => self.flush().await,
                _ = pass.tick() => {
                    self.flush().await;
                    self.measure_shared().await;
                    if let Some(shared) = &self.shared {
                        lease = self.shared_turn(shared, lease, &mut markers_done).await;
                        self.leading.store(lease.is_some(), Ordering::Relaxed);
                    }
                    if let Err(err) = self.pass().await {
                        tracing::warn!(%err, "the store's upkeep pass failed; the next one tries again");
                    }
                }
            }
        }
        self.flush().await;
        if let (Some(shared), Some(held)) = (&self.shared, lease)
            && let Err(err) = shared.resign(held).await
        {
            tracing::warn!(%err, "could not give back the shared upkeep's lease; it expires by itself");
        }
    }

    /// Sets `dota_store_bytes{store="shared"}`, with `--store nats`.
    async fn measure_shared(&self) {
        let Some(shared) = &self.shared else {
            return;
        };
        match shared.stored_bytes().await {
            Ok(bytes) => metrics::gauge!(m::STORE_BYTES, "store" => "shared").set(bytes as f64),
            Err(err) => tracing::debug!(%err, "could not read the shared store's size"),
        }
    }

    /// Writes the requests noted since the last flush (with `--store nats`, into the shared
    /// store too: those whose time moved by a minute or more).
    async fn flush(&self) {
        let signatures = self.store.access().drain();
        if signatures.is_empty() {
            return;
        }
        let at_ms = now_ms();
        let note = NoteAccess { signatures, at_ms };
        match self.keeper.send(note).await {
            Ok(Ok(written)) => {
                if let Some(shared) = &self.shared {
                    shared.put_access(&written, at_ms).await;
                }
            }
            Ok(Err(err)) => tracing::warn!(%err, "could not write request times"),
            Err(err) => tracing::warn!(%err, "could not write request times"),
        }
    }

    /// One pass: retention, then the size bound, then compaction if the file is over it.
    /// Nothing with `--store nats` (the bounds are the shared store's, see [`shared`]).
    pub async fn pass(&self) -> Result<PassReport, UpkeepError> {
        let start = Instant::now();
        let now = now_ms();
        let max = self.bounds.max_bytes();
        let retention = self.bounds.retention_ms();
        let mut report = PassReport::at(now);
        if (max.is_none() && retention.is_none()) || self.shared.is_some() {
            return Ok(report);
        }
        let store = self.store.clone();
        let rules = self.rules;
        let (residents, plan) = tokio::task::spawn_blocking(move || {
            let residents = store.residents()?;
            let usage = usage(&store, &residents, rules, now, HashMap::new())?;
            Ok::<_, StoreError>((
                residents.len(),
                plan::plan(&residents, &usage, now, retention),
            ))
        })
        .await
        .map_err(|err| StoreError::Disk(std::io::Error::other(err)))??;
        report.resources = residents;
        let target = max
            .filter(|max| self.store.file_size() > max / 100 * TARGET_PERCENT)
            .map(|max| max / 100 * TARGET_PERCENT);
        let evicted = self.evict(plan, target).await?;
        report.evicted(&evicted);
        // Compaction pauses reads: only when the file is over the bound and a tenth of the
        // bound or more is free in it.
        let file = self.store.file_size();
        if let Some(max) = max
            && file > max
            && evicted
                .allocated_bytes
                .is_some_and(|live| file.saturating_sub(live) >= max / 10)
        {
            report.compacted(self.compact().await?);
        }
        report.took_ms = start.elapsed().as_millis() as u64;
        report.log("redb");
        self.status.record(&report);
        Ok(report)
    }

    /// Removes what `plan` says, in batches; the size list only while over `target`.
    async fn evict(&self, plan: Plan, target: Option<u64>) -> Result<Evicted, UpkeepError> {
        let mut total = Evicted::default();
        for dropped in plan.dropped.chunks(BATCH) {
            let done = self
                .keeper
                .send(Evict {
                    dropped: dropped.to_vec(),
                    by_size: Vec::new(),
                    target_bytes: None,
                })
                .await??;
            total.dropped += done.dropped;
            total.dropped_bytes += done.dropped_bytes;
        }
        if target.is_none() {
            return Ok(total);
        }
        // At least one message, which also measures the database when nothing may go.
        let mut batches: Vec<&[Signature]> = plan.by_size.chunks(BATCH).collect();
        if batches.is_empty() {
            batches.push(&[]);
        }
        for by_size in batches {
            let done = self
                .keeper
                .send(Evict {
                    dropped: Vec::new(),
                    by_size: by_size.to_vec(),
                    target_bytes: target,
                })
                .await??;
            total.by_size += done.by_size;
            total.by_size_bytes += done.by_size_bytes;
            total.allocated_bytes = done.allocated_bytes;
            if done.reached {
                break;
            }
        }
        Ok(total)
    }

    async fn compact(&self) -> Result<crate::store::Compacted, UpkeepError> {
        let compacted = self.keeper.send(Compact).await??;
        tracing::info!(
            before_bytes = compacted.before_bytes,
            after_bytes = compacted.after_bytes,
            took_ms = compacted.took.as_millis() as u64,
            "compacted the store"
        );
        Ok(compacted)
    }
}

/// When each resource was last used and which are protected (see [`plan`]), read from one
/// snapshot of the store: request times (and `shared_access`, the other instances'),
/// tracked imports, team records and match summaries.
fn usage(
    store: &Store,
    residents: &[crate::store::Resident],
    rules: Rules,
    now: i64,
    shared_access: HashMap<Signature, i64>,
) -> Result<Usage, StoreError> {
    let tracked: HashMap<Signature, i64> = store.tracked()?.into_iter().collect();
    let mut usage = Usage::from_access(store.access_times()?);
    usage.merge(shared_access);
    let snap = store.snapshot()?;
    for r in residents {
        let sig = r.signature;
        if !matches!(sig, Signature::Team(..)) {
            continue;
        }
        let Some(record) = snap
            .body(&sig)?
            .and_then(|b| serde_json::from_slice::<TeamRecord>(&b).ok())
        else {
            continue;
        };
        let requested = tracked.get(&sig).copied();
        let is_tracked = requested.is_some_and(|at| rules.tracked_until_ms(at) > now);
        let at = [
            usage.last_used_ms.get(&sig).copied(),
            requested,
            Some(r.fetched_at_ms),
        ]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(r.fetched_at_ms);
        usage.team(sig, &record, at, is_tracked, |msig| {
            snap.summary::<MatchFacts>(msig).ok().flatten()
        });
    }
    Ok(usage)
}

/// What `GET /api/store` reads: the backend, the bounds and the upkeep's status.
#[derive(Clone)]
pub struct BoundsView {
    /// `redb` or `nats`.
    pub backend: &'static str,
    pub bounds: StoreBounds,
    pub status: Arc<UpkeepStatus>,
    /// The shared store, with `--store nats`.
    pub shared: Option<SharedStore>,
    /// What the shared passes this instance ran did.
    pub shared_status: Arc<UpkeepStatus>,
    /// Whether this instance runs the shared upkeep now.
    pub leading: Arc<AtomicBool>,
}

impl BoundsView {
    /// Bytes the shared data takes now, with `--store nats` (0 when unreadable).
    pub async fn shared_bytes(&self) -> Option<u64> {
        let shared = self.shared.as_ref()?;
        Some(shared.stored_bytes().await.unwrap_or_else(|err| {
            tracing::debug!(%err, "could not read the shared store's size");
            0
        }))
    }

    /// Whether this instance runs the shared upkeep now.
    pub fn leading(&self) -> bool {
        self.leading.load(Ordering::Relaxed)
    }
}
