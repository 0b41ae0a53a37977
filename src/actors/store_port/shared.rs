//! The shared backend's part of the store interface. It claims a job in the shared store
//! before the job is queued, and checks a delivered job against its shared claim (taking the
//! claim over). It stores a result there first, because that is the commit point every
//! instance sees.

use super::{Entry, StorePort, StorePortError};
use crate::actors::cache_keeper::Release;
use crate::domain::Job;
use crate::shared::replica::{self, Apply};
use crate::shared::{Claim, ClaimRecord, SharedError, SharedStore};
use crate::store::{EntryMeta, now_ms};

/// Tries at taking over a claim whose job has nothing left to fetch, when the claim keeps
/// changing under us.
const SUPERSEDE_ATTEMPTS: u32 = 3;

/// Whether `job` may write its outcome: the live shared claim on its resource is this job's,
/// or the claim lapsed and is made again for it. A claim lapses when its lease expired while
/// this instance could not renew it (frozen, or cut off from NATS) although the job went on.
/// Dropping the outcome then lost it for good: the job is acked, no other job exists, and
/// a forced refresh had already marked the stored copy invalidated (bench/soak.sh: a forced
/// refresh that lost 8 of a team's matches right after a 20 s SIGSTOP). Not when the resource
/// was stored since the job was queued: another job did it meanwhile.
pub(super) async fn holds(shared: &SharedStore, job: &Job) -> Result<bool, SharedError> {
    if let Some((claim, _)) = shared.current_claim(&job.signature).await? {
        return Ok(claim.job.generation == job.generation);
    }
    if let Some((record, _)) = shared.entry(&job.signature).await?
        && !record.meta.invalidated
        && record.meta.fetched_at_ms >= job.queued_at_ms
    {
        return Ok(false);
    }
    tracing::warn!(signature = %job.signature, "the job's claim lapsed while it ran; claiming it again");
    shared.take_over(job).await
}

/// Whether the job of `holder` has stored its resource already (after it was queued), and
/// the copy it stored is now invalidated: it was fetched before a force. Its holder only
/// queues its fan-out and ends the claim; nothing it does refetches the resource. Turning the
/// forced job away because of that claim left the copy invalidated everywhere, with no job (a
/// freeze of the holder between its store and its release made it likely).
async fn done_before(shared: &SharedStore, holder: &ClaimRecord) -> Result<bool, SharedError> {
    let stored = shared.entry(&holder.job.signature).await?;
    Ok(stored.is_some_and(|(record, _)| {
        record.meta.invalidated && record.meta.fetched_at_ms >= holder.job.queued_at_ms
    }))
}

impl StorePort {
    /// Claims `job` in the shared store. False when it must not be queued, after giving back
    /// its claim in redb. That happens when another claim holds the resource, or when a newer
    /// copy is stored fresh there: the replica had not seen it yet, and it is copied there
    /// now. The freshness check comes after the claim, so a store that another instance
    /// finished before we claimed is always seen: it writes the entry before it releases its
    /// claim. A forced job invalidates what was fetched before it was asked for, and is not
    /// queued when the copy was refetched since.
    pub(super) async fn confirm_shared(
        &self,
        shared: &SharedStore,
        job: &Job,
    ) -> Result<bool, StorePortError> {
        if self.claim_shared(shared, job).await? {
            return Ok(true);
        }
        self.keep(Release { job: job.clone() }).await?;
        Ok(false)
    }

    async fn claim_shared(&self, shared: &SharedStore, job: &Job) -> Result<bool, SharedError> {
        let sig = job.signature;
        if let Some(forced_at) = job.forced_at_ms {
            shared.invalidate(&sig, Some(forced_at)).await?;
        }
        let mut attempts = 0;
        loop {
            attempts += 1;
            match shared.claim(job).await? {
                Claim::Made => break,
                // Ours already: an earlier attempt at queueing this job claimed it.
                Claim::Held(holder) if holder.job.generation == job.generation => break,
                Claim::Held(holder)
                    if job.is_forced()
                        && attempts <= SUPERSEDE_ATTEMPTS
                        && done_before(shared, &holder).await? =>
                {
                    if shared.supersede(job, &holder).await? {
                        tracing::debug!(signature = %sig, owner = %holder.owner, "took over a claim whose job stored before the force");
                        break;
                    }
                    // The claim changed meanwhile (most likely it ended): look again.
                }
                Claim::Held(holder) if job.is_forced() => {
                    // No request queues a forced child again: before it is dropped, the
                    // leader is asked (a copy behind may show a claim that has ended).
                    match shared.claim_on_leader(job).await? {
                        Claim::Made => {
                            tracing::info!(signature = %sig, seen_owner = %holder.owner,
                                "a claim read from a copy behind its leader had ended; claimed on the leader");
                            break;
                        }
                        Claim::Held(current) if current.job.generation == job.generation => break,
                        Claim::Held(current) => {
                            tracing::info!(signature = %sig, owner = %current.owner, seen_owner = %holder.owner,
                                "a forced refetch met a live claim of another job; that job fetches it");
                            return Ok(false);
                        }
                    }
                }
                Claim::Held(holder) => {
                    tracing::debug!(signature = %sig, owner = %holder.owner, "claimed by another instance");
                    return Ok(false);
                }
            }
        }
        let Some((record, _)) = shared.entry(&sig).await? else {
            return Ok(true);
        };
        if !self.stored_meanwhile(job, &record.meta) {
            return Ok(true);
        }
        shared.release(job).await?;
        if let Some(body) = shared.body(&sig, &record).await?
            && let Some(change) = replica::entry(sig, record, body).await
        {
            let applied = self.keeper.send(Apply::of(vec![change])).await;
            if !matches!(applied, Ok(Ok(_))) {
                tracing::warn!(signature = %sig, "could not copy a shared entry to the replica; the watch will");
            }
        }
        Ok(false)
    }

    /// Whether the shared store already holds what `job` would fetch, stored after the
    /// replica's copy that the claim was decided on (the replica had not seen it yet).
    /// Unforced: a newer copy that is fresh; comparing with the replica, not only freshness,
    /// keeps scheduled refreshes of fresh records going. Forced: a copy fetched since the
    /// force was asked for and not invalidated since, e.g. by another parent's cascade of the
    /// same force, so a resource shared by many parents is refetched once (bench/soak.sh saw
    /// a second fetch whenever the replica lagged).
    fn stored_meanwhile(&self, job: &Job, shared: &EntryMeta) -> bool {
        if let Some(forced_at) = job.forced_at_ms {
            return !shared.invalidated && shared.fetched_at_ms >= forced_at;
        }
        let replica = self.replica.meta(&job.signature).ok().flatten();
        let newer = replica.is_none_or(|r| shared.fetched_at_ms > r.fetched_at_ms);
        newer
            && self
                .replica
                .is_fresh(job.signature.kind(), shared, now_ms())
    }

    /// Whether a delivered job is still to be done: its claim is current. This instance then
    /// owns the claim. A live claim of this job is taken over (its holder died, or handed it
    /// back). An expired one is claimed again, unless the resource was stored after the job
    /// was queued and this is its first delivery (another delivery did it). A redelivered job
    /// whose resource is stored is run again all the same: its last holder may have died
    /// after storing it and before queueing its fan-out, which only a new run queues. That
    /// costs one upstream call more after a crash, rather than a lost import.
    pub(super) async fn take_over_shared(
        &self,
        shared: &SharedStore,
        job: &Job,
        attempt: u64,
    ) -> Result<bool, StorePortError> {
        match shared.current_claim(&job.signature).await? {
            Some((claim, _)) if claim.job.generation != job.generation => return Ok(false),
            Some(_) => {}
            None if attempt <= 1 => {
                if let Some((record, _)) = shared.entry(&job.signature).await?
                    && !record.meta.invalidated
                    && record.meta.fetched_at_ms >= job.queued_at_ms
                {
                    return Ok(false);
                }
            }
            None => {}
        }
        Ok(shared.take_over(job).await?)
    }

    /// Stores the entry in the shared store if the claim is still this job's. Returns the
    /// metadata written, which the replica copy must match. `Ok(None)`: the job became stale.
    pub(super) async fn store_shared(
        &self,
        shared: &SharedStore,
        job: &Job,
        entry: &Entry,
    ) -> Result<Option<EntryMeta>, SharedError> {
        if !holds(shared, job).await? {
            return Ok(None);
        }
        let sig = job.signature;
        let meta = EntryMeta {
            fetched_at_ms: now_ms(),
            invalidated: false,
            bytes: entry.stored.plain_len,
            tag: Some(entry.stored.tag),
        };
        shared
            .put_entry(&sig, meta, &entry.stored.gzip, entry.summary.as_deref())
            .await?;
        shared.clear_failure(&sig).await?;
        Ok(Some(meta))
    }
}
