//! The store interface: what callers (the job pipeline, the HTTP handlers, TeamWatch, the
//! refresh scheduler, start-up) mean to write, said once, whichever store is configured. They
//! store a result, record a failure, invalidate, track and untrack, record an announcement,
//! and, for the pipeline, confirm and take over the claims of jobs. None of them asks which
//! store is configured. Two backends sit behind [`StorePort`]:
//!
//! - **local** (`--store redb`): redb, written only by the CacheKeeper, is the one store.
//! - **shared** (`--store nats`): the shared JetStream store (`crate::shared`) is the store
//!   every instance sees, and this instance's redb is its replica. The mirror keeps the
//!   replica in step, and the CacheKeeper writes it.
//!
//! # One write order
//!
//! A write goes to the **shared store first, then to the local replica**. With the local
//! backend there is only the second write. Claims and freshness are likewise decided in the
//! shared store, never in the replica, which may lag.
//!
//! Why this order: the shared store is the commit point every instance sees. The mirror makes
//! the replica follow it, and never the other way round. So a failure between the two writes
//! leaves a state the system recovers from. The change is committed for every instance, and
//! the mirror brings it into this instance's replica too, within milliseconds or at its next
//! replay. The caller also sees the error and retries where it can: a job is handed back, a
//! request is answered 5xx, a track is written again on the next request. If the shared write
//! fails, nothing is written anywhere. The other order could leave a change on this instance
//! alone, which no other instance sees and which the mirror never corrects. Examples: an
//! invalidation served by one instance only, or a tracked import that only one scheduler
//! knows.
//!
//! [`shared`] holds the shared backend's claim protocol and writes. Both backends end with
//! the CacheKeeper's write to redb: with the shared backend the claim was then checked in the
//! shared store (`claim_checked`), and the fetch time is the one written there.

mod shared;
#[cfg(test)]
mod tests;

use actix::{Addr, Handler, Message};

use super::cache_keeper::{
    CacheKeeper, Child, ClaimChildren, Complete, Completed, Fail, ForgetClaims, Invalidate,
    Invalidated, MarkAnnounced, Release, RequeueAll, Track, Untrack,
};
use crate::bus::queue::{BusError, JobQueue};
use crate::domain::{Job, Signature, TeamId};
use crate::encoding::Encoded;
use crate::shared::{SharedError, SharedStore};
use crate::store::{Failure, Store, StoreError};

/// Failures of a store write or read. All are transient for the caller: a job is handed back
/// and retried, and a request is answered 5xx.
#[derive(Debug, thiserror::Error)]
pub enum StorePortError {
    #[error("cache keeper unavailable: {0}")]
    Keeper(#[from] actix::MailboxError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("shared store: {0}")]
    Shared(#[from] SharedError),
    #[error(transparent)]
    Bus(#[from] BusError),
}

/// A fetched resource, ready to store.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The body as it is stored: its tag and gzip form.
    pub stored: Encoded,
    /// The body's team-view summary (JSON), when its kind has one.
    pub summary: Option<Vec<u8>>,
    /// Resources to claim as its fan-out.
    pub children: Vec<Child>,
}

/// Which store is the commit point.
#[derive(Clone)]
enum Backend {
    /// redb is the one store.
    Local,
    /// The shared store, with redb as its replica.
    Shared(SharedStore),
}

/// The store interface (see the module docs). Cheap to clone.
#[derive(Clone)]
pub struct StorePort {
    /// The only writer of redb: the store, or the shared store's replica.
    keeper: Addr<CacheKeeper>,
    /// Reads of redb.
    replica: Store,
    backend: Backend,
}

impl StorePort {
    /// The shared backend when `shared` is given, else the local one.
    pub fn new(keeper: Addr<CacheKeeper>, replica: Store, shared: Option<SharedStore>) -> Self {
        Self {
            keeper,
            replica,
            backend: shared.map_or(Backend::Local, Backend::Shared),
        }
    }

    /// A job claimed in redb is about to be queued. Makes its claim where every instance sees
    /// it. False means it must not be queued, and its redb claim has been given back: another
    /// instance holds the resource, or a newer copy is stored fresh.
    pub async fn confirm_claim(&self, job: &Job) -> Result<bool, StorePortError> {
        match &self.backend {
            Backend::Local => Ok(true),
            Backend::Shared(shared) => self.confirm_shared(shared, job).await,
        }
    }

    /// Claims `children` as bulk work, unforced: those neither fresh nor failed and not
    /// already claimed in redb. The caller publishes the jobs (`Pipeline::publish_claimed`,
    /// which confirms each claim in the shared store first).
    pub async fn claim_children(&self, children: Vec<Child>) -> Result<Vec<Job>, StorePortError> {
        self.keep(ClaimChildren {
            children,
            forced_at_ms: None,
        })
        .await
    }

    /// A claimed job could not be queued: ends its claims, so the next request claims it
    /// again. A failure is logged. A shared claim left behind expires with its lease.
    pub async fn give_back(&self, job: &Job) {
        if let Backend::Shared(shared) = &self.backend {
            release(shared, job).await;
        }
        if let Err(err) = self.keep(Release { job: job.clone() }).await {
            tracing::error!(%err, "could not release a claim");
        }
    }

    /// A delivered job: whether it is still to be done, because its claim is this job's.
    /// With the shared backend this instance then holds that claim (see
    /// [`Self::take_over_shared`]).
    pub async fn take_over(&self, job: &Job, attempt: u64) -> Result<bool, StorePortError> {
        match &self.backend {
            Backend::Local => {
                let claim = self.replica.in_flight(&job.signature)?;
                Ok(claim.is_some_and(|c| c.generation == job.generation))
            }
            Backend::Shared(shared) => self.take_over_shared(shared, job, attempt).await,
        }
    }

    /// Stores the result of `job` and claims its fan-out in the same redb transaction.
    /// `None`: the job became stale (its claim was superseded), and nothing was written.
    /// The caller queues the returned children, then calls [`Self::end_claim`].
    pub async fn store(
        &self,
        job: &Job,
        entry: Entry,
    ) -> Result<Option<Completed>, StorePortError> {
        let (fetched_at_ms, claim_checked) = match &self.backend {
            Backend::Local => (None, false),
            Backend::Shared(shared) => match self.store_shared(shared, job, &entry).await? {
                Some(meta) => (Some(meta.fetched_at_ms), true),
                None => return Ok(None),
            },
        };
        let complete = Complete {
            job: job.clone(),
            stored: entry.stored,
            summary: entry.summary,
            children: entry.children,
            fetched_at_ms,
            claim_checked,
        };
        let completed = self.keep(complete).await?;
        Ok(completed.stored.then_some(completed))
    }

    /// Records that `job` failed for good. False: the job became stale, and nothing was
    /// written. The caller then calls [`Self::end_claim`].
    pub async fn fail(&self, job: &Job, failure: Failure) -> Result<bool, StorePortError> {
        let claim_checked = match &self.backend {
            Backend::Local => false,
            Backend::Shared(shared) => {
                if !shared::holds(shared, job).await? {
                    return Ok(false);
                }
                shared.put_failure(&job.signature, &failure).await?;
                true
            }
        };
        let fail = Fail {
            job: job.clone(),
            failure,
            claim_checked,
        };
        self.keep(fail).await
    }

    /// The outcome of `job` is stored and its fan-out queued: ends the claim other instances
    /// see. redb's claim ended in the transaction that stored the outcome.
    pub async fn end_claim(&self, job: &Job) {
        if let Backend::Shared(shared) = &self.backend {
            release(shared, job).await;
        }
    }

    /// Marks `signatures` and every stored import of `teams` stale, forgets their failures,
    /// and drops the teams' cached pages.
    pub async fn invalidate(
        &self,
        signatures: Vec<Signature>,
        teams: Vec<TeamId>,
    ) -> Result<Invalidated, StorePortError> {
        let msg = Invalidate::of(&self.replica, signatures, teams)?;
        if let Backend::Shared(shared) = &self.backend {
            for sig in msg.resources() {
                shared.invalidate(sig, None).await?;
                shared.clear_failure(sig).await?;
            }
        }
        self.keep(msg).await
    }

    /// Tracks the team import `sig`, last requested at `requested_at_ms`, for the refresh
    /// scheduler.
    pub async fn track(&self, sig: Signature, requested_at_ms: i64) -> Result<(), StorePortError> {
        if let Backend::Shared(shared) = &self.backend {
            shared.put_tracked(&sig, requested_at_ms).await?;
        }
        let track = Track {
            signature: sig,
            requested_at_ms,
        };
        self.keep(track).await
    }

    /// Stops tracking the team import `sig`, as asked. Returns whether it was tracked.
    pub async fn untrack(&self, sig: Signature) -> Result<bool, StorePortError> {
        let was_shared = match &self.backend {
            Backend::Local => false,
            Backend::Shared(shared) => shared.remove_tracked(&sig).await?,
        };
        let untrack = Untrack {
            signature: sig,
            if_requested_at_ms: None,
        };
        Ok(self.keep(untrack).await? || was_shared)
    }

    /// Stops tracking the team import `sig` because its last request, at `requested_at_ms`,
    /// is too old. A request that came in meanwhile keeps it tracked. Returns whether it was
    /// untracked here.
    pub async fn expire_tracked(
        &self,
        sig: Signature,
        requested_at_ms: i64,
    ) -> Result<bool, StorePortError> {
        if let Backend::Shared(shared) = &self.backend
            && !shared.expire_tracked(&sig, requested_at_ms).await?
        {
            return Ok(false);
        }
        let untrack = Untrack {
            signature: sig,
            if_requested_at_ms: Some(requested_at_ms),
        };
        self.keep(untrack).await
    }

    /// Records that the team import `sig`, fetched at `fetched_at_ms`, is complete. True when
    /// this instance is the one to announce it. With the shared backend, only one instance
    /// wins the shared record. Once that record is written, the announcement is this
    /// instance's to make even if the replica write fails: the mirror copies the record, and
    /// no other instance will announce it.
    pub async fn mark_announced(
        &self,
        sig: Signature,
        fetched_at_ms: i64,
    ) -> Result<bool, StorePortError> {
        let mark = MarkAnnounced {
            signature: sig,
            fetched_at_ms,
        };
        let Backend::Shared(shared) = &self.backend else {
            self.keep(mark).await?;
            return Ok(true);
        };
        let first = shared.mark_announced(&sig, fetched_at_ms).await?;
        if let Err(err) = self.keep(mark).await {
            tracing::warn!(%err, signature = %sig, "could not record an announcement in the replica; the mirror will");
        }
        Ok(first)
    }

    /// At start-up: the work left by the last run that must be queued again. With the local
    /// backend the queue is this instance's own, and its claims in redb are the only record of
    /// that work. The old queue is purged, and every claim comes back under a new generation
    /// (see `RequeueAll`). With the shared backend the queue and the claims are shared, so
    /// nothing is purged or re-queued. Queued jobs wait in the replicated stream. Jobs this
    /// instance held are redelivered after the ack wait, and whoever runs them takes their
    /// claims over. The replica's claims are forgotten, and the claims watch replays the live
    /// ones.
    pub async fn recover_claims(&self, queue: &JobQueue) -> Result<Vec<Job>, StorePortError> {
        match &self.backend {
            Backend::Local => {
                queue.discard_all().await?;
                self.keep(RequeueAll).await
            }
            Backend::Shared(_) => {
                self.keep(ForgetClaims).await?;
                Ok(Vec::new())
            }
        }
    }

    /// Has the CacheKeeper write `msg` to redb.
    async fn keep<M, R>(&self, msg: M) -> Result<R, StorePortError>
    where
        M: Message<Result = Result<R, StoreError>> + Send + 'static,
        R: Send + 'static,
        CacheKeeper: Handler<M>,
    {
        Ok(self.keeper.send(msg).await??)
    }
}

/// Ends the shared claim of `job`. A failure only delays others by the lease: the claim
/// expires.
async fn release(shared: &SharedStore, job: &Job) {
    if let Err(err) = shared.release(job).await {
        tracing::warn!(%err, "could not release the shared claim; it expires with its lease");
    }
}
