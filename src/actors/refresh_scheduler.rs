//! The refresh scheduler (`--auto-refresh`): keeps tracked team imports fresh by themselves.
//! A team import requested in the last `--track-days` days is tracked (redb `tracked_v1`,
//! written through `StorePort::track`); at [`REFRESH_AT_PERCENT`] of its record's TTL the
//! scheduler claims it again as scheduled work ([`ClaimRefresh`]) and publishes the job. The
//! TeamImporter then re-reads its Dotabuff pages past the page cache (or OpenDota's list), and
//! only matches not stored fresh (the new ones) are queued, with their players, as scheduled
//! work too. TeamWatch announces the refreshed import when it completes, as for any newer record.
//!
//! Runs as a task beside the actors, on a [`TICK`]. Times are the store's (`store::now_ms`,
//! the system clock), like the freshness they are measured against. With `--store nats` every
//! instance runs a scheduler over the shared tracked imports, and the shared claim lets exactly
//! one of them run each refresh (the others find it claimed, or already refreshed).

use std::time::Duration;

use actix::Addr;
use tokio_util::sync::CancellationToken;

use super::cache_keeper::{CacheKeeper, ClaimRefresh};
use super::pipeline::Pipeline;
use crate::domain::Signature;
use crate::store::{EntryMeta, Store, StoreError, now_ms};

/// How often the tracked imports are looked at.
pub const TICK: Duration = Duration::from_secs(1);
/// When, as a share of the team TTL after the record was fetched, a refresh is queued: early
/// enough that a refresh waiting for budget or behind other work is usually done before the
/// record expires.
pub const REFRESH_AT_PERCENT: u32 = 90;
const MS_PER_DAY: i64 = 24 * 60 * 60 * 1000;

/// Where one tracked import stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tracked {
    pub signature: Signature,
    pub last_requested_ms: i64,
    /// When it stops being tracked unless requested again.
    pub tracked_until_ms: i64,
    /// When the next refresh is queued; `None` while nothing is stored yet (the first import
    /// is under way or failed).
    pub next_refresh_ms: Option<i64>,
    /// A fetch of it is queued or running.
    pub in_flight: bool,
}

/// The scheduling rules, shared by the scheduler and the schedule API.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    pub team_ttl: Duration,
    pub track_days: u32,
}

impl Rules {
    /// When a record fetched at `fetched_at_ms` is refreshed (at once when it was invalidated).
    pub fn next_refresh_ms(&self, meta: &EntryMeta) -> i64 {
        if meta.invalidated {
            return meta.fetched_at_ms;
        }
        let ttl_ms = i64::try_from(self.team_ttl.as_millis()).unwrap_or(i64::MAX);
        let margin = ttl_ms / 100 * i64::from(REFRESH_AT_PERCENT)
            + ttl_ms % 100 * i64::from(REFRESH_AT_PERCENT) / 100;
        meta.fetched_at_ms.saturating_add(margin)
    }

    pub fn tracked_until_ms(&self, last_requested_ms: i64) -> i64 {
        last_requested_ms.saturating_add(i64::from(self.track_days) * MS_PER_DAY)
    }

    /// Every tracked import, ordered by signature.
    pub fn schedule(&self, store: &Store) -> Result<Vec<Tracked>, StoreError> {
        let mut out = Vec::new();
        for (signature, last_requested_ms) in store.tracked()? {
            out.push(Tracked {
                signature,
                last_requested_ms,
                tracked_until_ms: self.tracked_until_ms(last_requested_ms),
                next_refresh_ms: store.meta(&signature)?.map(|m| self.next_refresh_ms(&m)),
                in_flight: store.in_flight(&signature)?.is_some(),
            });
        }
        out.sort_by_key(|t| t.signature);
        Ok(out)
    }
}

#[derive(Clone)]
pub struct RefreshScheduler {
    pub store: Store,
    pub keeper: Addr<CacheKeeper>,
    pub pipeline: Pipeline,
    pub rules: Rules,
}

impl RefreshScheduler {
    pub async fn run(self, shutdown: CancellationToken) {
        tracing::info!(
            track_days = self.rules.track_days,
            "scheduled refresh of tracked team imports is on"
        );
        let mut tick = tokio::time::interval(TICK);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            if let Err(err) = self.check().await {
                tracing::warn!(%err, "refresh check failed");
            }
        }
    }

    /// Forgets imports not requested within `--track-days`; queues those due.
    async fn check(&self) -> Result<(), StoreError> {
        let now = now_ms();
        for tracked in self.rules.schedule(&self.store)? {
            let sig = tracked.signature;
            if now >= tracked.tracked_until_ms {
                let expired = self
                    .pipeline
                    .stores
                    .expire_tracked(sig, tracked.last_requested_ms)
                    .await;
                match expired {
                    Ok(true) => tracing::info!(signature = %sig, "no longer tracked"),
                    Ok(false) => {}
                    Err(err) => tracing::warn!(%err, signature = %sig, "could not stop tracking"),
                }
                continue;
            }
            let due = tracked.next_refresh_ms.is_some_and(|at| now >= at);
            if !due || tracked.in_flight {
                continue;
            }
            match self.keeper.send(ClaimRefresh { signature: sig }).await {
                Ok(Ok(Some(job))) => {
                    tracing::info!(signature = %sig, "refresh queued");
                    if let Err(err) = self.pipeline.publish_claimed(vec![job]).await {
                        tracing::warn!(%err, signature = %sig, "could not queue a refresh");
                    }
                }
                Ok(Ok(None)) => {}
                Ok(Err(err)) => return Err(err),
                Err(err) => tracing::warn!(%err, "cache keeper unavailable"),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refresh_is_due_at_ninety_percent_of_the_ttl() {
        let rules = Rules {
            team_ttl: Duration::from_secs(7200),
            track_days: 14,
        };
        let meta = EntryMeta {
            fetched_at_ms: 1_000,
            invalidated: false,
            bytes: 0,
            tag: None,
        };
        assert_eq!(rules.next_refresh_ms(&meta), 1_000 + 6_480_000);
        let stale = EntryMeta {
            invalidated: true,
            ..meta
        };
        assert_eq!(rules.next_refresh_ms(&stale), 1_000);
        assert_eq!(rules.tracked_until_ms(0), 14 * MS_PER_DAY);
    }
}
