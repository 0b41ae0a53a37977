//! The pipeline's part in `--store nats`: claiming a job in the shared store before it is
//! queued, checking a delivered job against its shared claim (taking it over), storing a
//! result there first (the commit point every instance sees) and ending the claim after.

use super::{Pipeline, PipelineError};
use crate::actors::cache_keeper::Apply;
use crate::domain::Job;
use crate::encoding::Encoded;
use crate::shared::{Claim, SharedError, SharedStore};
use crate::store::{EntryMeta, now_ms};

impl Pipeline {
    /// With `--store nats`: claims `job` in the shared store. False when it must not be
    /// queued: another claim holds the resource, or a newer copy is stored fresh there (the
    /// replica had not seen it yet; it is copied there now). The freshness check comes after
    /// the claim, so a store that another instance finished before we claimed is always seen:
    /// it writes the entry before it releases its claim. A forced job invalidates what was
    /// fetched before it was asked for.
    pub(super) async fn claim_shared(
        &self,
        shared: &SharedStore,
        job: &Job,
    ) -> Result<bool, SharedError> {
        let sig = job.signature;
        if let Some(forced_at) = job.forced_at_ms {
            shared.invalidate(&sig, Some(forced_at)).await?;
        }
        match shared.claim(job).await? {
            Claim::Made => {}
            // Ours already: an earlier attempt at queueing this job claimed it.
            Claim::Held(holder) if holder.job.generation == job.generation => {}
            Claim::Held(holder) => {
                tracing::debug!(signature = %sig, owner = %holder.owner, "claimed by another instance");
                return Ok(false);
            }
        }
        if job.is_forced() {
            return Ok(true);
        }
        let Some((record, _)) = shared.entry(&sig).await? else {
            return Ok(true);
        };
        // The claim was decided on the replica's copy: it stands unless the shared store
        // holds a newer copy that is fresh (the replica had not seen it yet). Comparing with
        // the replica, not only freshness, keeps scheduled refreshes of fresh records going.
        let replica = self.store.meta(&sig).ok().flatten();
        let newer = replica.is_none_or(|r| record.meta.fetched_at_ms > r.fetched_at_ms);
        if !newer || !self.store.is_fresh(sig.kind(), &record.meta, now_ms()) {
            return Ok(true);
        }
        shared.release(job).await?;
        if let Some(body) = shared.body(&sig, &record).await? {
            let change = crate::shared::mirror::replica_entry(sig, record, body).await;
            if let Some(change) = change {
                let applied = self.keeper.send(Apply(vec![change])).await;
                if !matches!(applied, Ok(Ok(_))) {
                    tracing::warn!(signature = %sig, "could not copy a shared entry to the replica; the watch will");
                }
            }
        }
        Ok(false)
    }

    /// Whether a delivered job is still to be done: its claim is current. With `--store nats`
    /// this instance then owns the claim: a live claim of this job is taken over (its holder
    /// died, or handed it back); an expired one is claimed again, unless the resource was
    /// stored after the job was queued and this is its first delivery (another delivery did
    /// it). A redelivered job whose resource is stored is run again all the same: its last
    /// holder may have died after storing it and before queueing its fan-out, which only a
    /// new run queues (one upstream call more, after a crash, rather than a lost import).
    pub(super) async fn is_current(&self, job: &Job, attempt: u64) -> Result<bool, PipelineError> {
        let Some(shared) = &self.shared else {
            let claim = self.store.in_flight(&job.signature)?;
            return Ok(claim.is_some_and(|c| c.generation == job.generation));
        };
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

    /// With `--store nats`: stores the body in the shared store (the commit point every
    /// instance sees) if the claim is still this job's; returns the metadata written, which
    /// the replica copy must match. `Ok(None)`: the job became stale.
    pub(super) async fn store_shared(
        &self,
        shared: &SharedStore,
        job: &Job,
        body: &[u8],
        encoded: Option<&Encoded>,
        summary: Option<&[u8]>,
    ) -> Result<Option<EntryMeta>, SharedError> {
        let sig = job.signature;
        let current = shared.current_claim(&sig).await?;
        if current.is_none_or(|(c, _)| c.job.generation != job.generation) {
            return Ok(None);
        }
        let meta = EntryMeta {
            fetched_at_ms: now_ms(),
            invalidated: false,
            bytes: body.len() as u64,
            tag: encoded.map(|e| e.tag),
        };
        shared.put_entry(&sig, meta, body, summary).await?;
        shared.clear_failure(&sig).await?;
        Ok(Some(meta))
    }

    /// With `--store nats`: ends the job's shared claim once its outcome is stored. A failure
    /// here only delays others by the lease: the claim expires.
    pub(super) async fn release_shared(&self, job: &Job) {
        if let Some(shared) = &self.shared
            && let Err(err) = shared.release(job).await
        {
            tracing::warn!(%err, "could not release the shared claim; it expires with its lease");
        }
    }
}
