//! The shared store's upkeep (`--store nats`): the choice is made once for the cluster.
//!
//! - **One instance decides.** Each pass period every instance tries to take or renew the
//!   lease `upkeep` in the claims bucket (compare-and-swap, TTL [`LEASE_PERIODS`] periods, at
//!   least 10 s);
//!   only the holder runs the shared pass. A holder that dies frees it within the TTL.
//! - **What it decides from.** Its replica's view of what is stored (metadata, team records
//!   and summaries, tracked imports) and the request times every instance shares in the
//!   access bucket, through the same [`plan`] as redb.
//! - **What goes.** First the unprotected entries fetched more than [`EXPIRY_FACTOR`] times
//!   their kind's TTL ago (reason `expired`: the data bucket does not grow without limit),
//!   then what `--retention-days` drops, then, when the shared data (per JetStream node) is
//!   over 90% of `--store-max-gb`, the least recently used first until it is under that.
//!   Never a tracked import's data, nor a resource being fetched (claimed).
//! - **How.** `SharedStore::evict`: the record, then the body. Every replica's watch sees the
//!   record go and drops its copy; JetStream frees the bytes itself.
//! - **Older markers.** Until one pass got through the whole data bucket, the holder gives
//!   markers an older version wrote without a TTL the bucket's marker TTL (`shared::old_markers`).
//! - **Never without the lease.** The lease is renewed between passes, not during one, so a
//!   pass stops evicting at [`LEASE_USE`] of the lease's TTL (the next pass goes on where it
//!   stopped): a slow pass never overlaps another instance's. An instance that stops gives the
//!   lease back, so another one takes over at its next period.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use futures::StreamExt;

use super::{PassReport, StoreUpkeep, TARGET_PERCENT, UpkeepError, plan, usage};
use crate::domain::Signature;
use crate::shared::{SharedError, SharedStore};
use crate::store::{StoreError, now_ms};

/// The lease lives this many upkeep periods unless renewed (it is renewed each period)...
pub const LEASE_PERIODS: u32 = 3;
/// ...and at least this long, so a pass slower than a short period does not hand it over.
const MIN_LEASE: Duration = Duration::from_secs(10);
/// The share of the lease's TTL a pass may use before it stops evicting (the rest is the
/// margin for the lease's write and the clocks of the nodes).
const LEASE_USE: f64 = 2.0 / 3.0;
/// A shared entry fetched longer ago than this many times its kind's TTL is removed (reason
/// `expired`), unless it is a tracked import's: by then every refresh it could have had is
/// long past, and a request for it fetches it again.
pub const EXPIRY_FACTOR: i64 = 2;
/// Evictions between two measures of the shared store's size.
const SIZE_STEP: usize = 16;
/// Evictions in flight at once.
const EVICTIONS_IN_FLIGHT: usize = 8;

/// What the shared pass removes, by reason.
struct SharedPlan {
    resources: usize,
    expired: Vec<Signature>,
    plan: plan::Plan,
}

impl StoreUpkeep {
    /// Takes or renews the lease (`lease`: the revision held), and runs the shared pass when
    /// this instance holds it, then, until one got through the whole bucket
    /// (`markers_done`), gives older versions' markers a TTL with the time left. Returns the
    /// revision held now.
    pub(super) async fn shared_turn(
        &self,
        shared: &SharedStore,
        lease: Option<u64>,
        markers_done: &mut bool,
    ) -> Option<u64> {
        let ttl = (self.bounds.upkeep() * LEASE_PERIODS).max(MIN_LEASE);
        // Taken before the lease is written: the lease lives at least until `ttl` after this.
        let deadline = Instant::now() + ttl.mul_f64(LEASE_USE);
        let held = match shared.lead(lease, ttl).await {
            Ok(held) => held,
            Err(err) => {
                tracing::warn!(%err, "could not take or renew the shared upkeep's lease");
                None
            }
        };
        match (lease.is_some(), held.is_some()) {
            (false, true) => tracing::info!("this instance runs the shared store's upkeep"),
            (true, false) => {
                tracing::info!("this instance no longer runs the shared store's upkeep")
            }
            _ => {}
        }
        // Another instance decides this period.
        held?;
        if let Err(err) = self.shared_pass(shared, deadline).await {
            tracing::warn!(%err, "the shared store's upkeep pass failed; the next one tries again");
        }
        if !*markers_done && Instant::now() < deadline {
            match shared.expire_old_markers(deadline).await {
                Ok(found) => {
                    *markers_done = found.complete;
                    if found.expiring > 0 {
                        tracing::info!(
                            markers = found.expiring,
                            complete = found.complete,
                            "markers of an older version in the data bucket now expire"
                        );
                    }
                }
                Err(err) => {
                    tracing::warn!(%err, "could not look for markers without a TTL; the next pass tries again")
                }
            }
        }
        held
    }

    /// One shared pass (see the module docs).
    async fn shared_pass(
        &self,
        shared: &SharedStore,
        deadline: Instant,
    ) -> Result<PassReport, UpkeepError> {
        let start = Instant::now();
        let now = now_ms();
        let mut report = PassReport::at(now);
        let lists = self.shared_plan(shared, now).await?;
        report.resources = lists.resources;
        let (n, bytes) = evict_measured(shared, &lists.expired, deadline).await?;
        report.evicted.expired = n;
        report.evicted_bytes.expired = bytes;
        let (n, bytes) = evict_measured(shared, &lists.plan.dropped, deadline).await?;
        report.evicted.retention = n;
        report.evicted_bytes.retention = bytes;
        if let Some(max) = self.bounds.max_bytes() {
            let target = max / 100 * TARGET_PERCENT;
            let (n, bytes) = evict_to(shared, &lists.plan.by_size, target, deadline).await?;
            report.evicted.size = n;
            report.evicted_bytes.size = bytes;
        }
        report.took_ms = start.elapsed().as_millis() as u64;
        if Instant::now() >= deadline {
            tracing::info!(
                took_ms = report.took_ms,
                "the shared upkeep pass stopped at its share of the lease; the next pass goes on"
            );
        }
        report.log("shared");
        self.shared_status.record(&report);
        Ok(report)
    }

    /// What goes, decided from the replica and the shared request times.
    async fn shared_plan(&self, shared: &SharedStore, now: i64) -> Result<SharedPlan, UpkeepError> {
        let access = shared.access_times().await?;
        let store = self.store.clone();
        let rules = self.rules;
        let retention = self.bounds.retention_ms();
        let lists = tokio::task::spawn_blocking(move || {
            let residents = store.residents()?;
            let usage = usage(&store, &residents, rules, now, access)?;
            let ttls = *store.ttls();
            let expired = plan::expired(&residents, &usage, now, EXPIRY_FACTOR, |kind| {
                i64::try_from(ttls.for_kind(kind).as_millis()).unwrap_or(i64::MAX)
            });
            let mut plan = plan::plan(&residents, &usage, now, retention);
            let gone: HashSet<Signature> = expired.iter().copied().collect();
            plan.dropped.retain(|s| !gone.contains(s));
            plan.by_size.retain(|s| !gone.contains(s));
            Ok::<_, StoreError>(SharedPlan {
                resources: residents.len(),
                expired,
                plan,
            })
        })
        .await
        .map_err(|err| StoreError::Disk(std::io::Error::other(err)))??;
        Ok(lists)
    }
}

/// Evicts `sigs` while the lease's share (`deadline`) lasts; how many went and the bytes the
/// shared store shrank by.
async fn evict_measured(
    shared: &SharedStore,
    sigs: &[Signature],
    deadline: Instant,
) -> Result<(u64, u64), SharedError> {
    if sigs.is_empty() || Instant::now() >= deadline {
        return Ok((0, 0));
    }
    let before = shared.stored_bytes().await?;
    let mut n = 0;
    for step in sigs.chunks(SIZE_STEP) {
        if Instant::now() >= deadline {
            break;
        }
        n += evict_all(shared, step).await;
    }
    let after = shared.stored_bytes().await?;
    Ok((n, before.saturating_sub(after)))
}

/// Evicts `sigs` in order while the shared store is over `target` bytes and the lease's share
/// (`deadline`) lasts; how many went and the bytes it shrank by.
async fn evict_to(
    shared: &SharedStore,
    sigs: &[Signature],
    target: u64,
    deadline: Instant,
) -> Result<(u64, u64), SharedError> {
    let before = shared.stored_bytes().await?;
    let mut now = before;
    let mut n = 0;
    for step in sigs.chunks(SIZE_STEP) {
        if now <= target || Instant::now() >= deadline {
            break;
        }
        n += evict_all(shared, step).await;
        now = shared.stored_bytes().await?;
    }
    Ok((n, before.saturating_sub(now)))
}

/// Evicts `sigs` a few at a time; how many went (a failure is logged, the next pass tries
/// again).
async fn evict_all(shared: &SharedStore, sigs: &[Signature]) -> u64 {
    // Owned futures: a stream of futures borrowing `shared` is not `Send` for every lifetime.
    let evictions = futures::stream::iter(sigs.to_vec())
        .map(|sig| {
            let shared = shared.clone();
            async move { (sig, shared.evict(&sig).await) }
        })
        .buffer_unordered(EVICTIONS_IN_FLIGHT);
    futures::pin_mut!(evictions);
    let mut n = 0;
    while let Some((sig, evicted)) = evictions.next().await {
        match evicted {
            Ok(true) => n += 1,
            Ok(false) => {}
            Err(err) => tracing::warn!(signature = %sig, %err, "could not evict a shared entry"),
        }
    }
    n
}
