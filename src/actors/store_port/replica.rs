//! The CacheKeeper writes that end every operation of the store interface. With the local
//! backend they are the store's only writes. With the shared backend they come after the
//! shared write, into the replica: the claim was then checked in the shared store
//! (`claim_checked`), and the fetch time is the one written there.

use super::{Entry, StorePort, StorePortError};
use crate::actors::cache_keeper::{
    Complete, Completed, Fail, ForgetClaims, MarkAnnounced, Release, RequeueAll, Track, Untrack,
};
use crate::domain::{Job, Signature};
use crate::store::Failure;

impl StorePort {
    pub(super) async fn complete_replica(
        &self,
        job: &Job,
        entry: Entry,
        fetched_at_ms: Option<i64>,
        claim_checked: bool,
    ) -> Result<Completed, StorePortError> {
        let complete = Complete {
            job: job.clone(),
            body: entry.body,
            encoded: entry.encoded,
            summary: entry.summary,
            children: entry.children,
            fetched_at_ms,
            claim_checked,
        };
        Ok(self.keeper.send(complete).await??)
    }

    pub(super) async fn fail_replica(
        &self,
        job: &Job,
        failure: Failure,
        claim_checked: bool,
    ) -> Result<bool, StorePortError> {
        let fail = Fail {
            job: job.clone(),
            failure,
            claim_checked,
        };
        Ok(self.keeper.send(fail).await??)
    }

    /// Ends redb's claim of `job`, logging a failure.
    pub(super) async fn release_replica(&self, job: &Job) {
        match self.keeper.send(Release { job: job.clone() }).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => tracing::error!(%err, "could not release a claim"),
            Err(err) => tracing::error!(%err, "cache keeper unavailable to release a claim"),
        }
    }

    pub(super) async fn track_replica(
        &self,
        signature: Signature,
        requested_at_ms: i64,
    ) -> Result<(), StorePortError> {
        let track = Track {
            signature,
            requested_at_ms,
        };
        Ok(self.keeper.send(track).await??)
    }

    pub(super) async fn untrack_replica(
        &self,
        signature: Signature,
        if_requested_at_ms: Option<i64>,
    ) -> Result<bool, StorePortError> {
        let untrack = Untrack {
            signature,
            if_requested_at_ms,
        };
        Ok(self.keeper.send(untrack).await??)
    }

    pub(super) async fn announced_replica(
        &self,
        signature: Signature,
        fetched_at_ms: i64,
    ) -> Result<(), StorePortError> {
        let mark = MarkAnnounced {
            signature,
            fetched_at_ms,
        };
        Ok(self.keeper.send(mark).await??)
    }

    pub(super) async fn requeue_replica(&self) -> Result<Vec<Job>, StorePortError> {
        Ok(self.keeper.send(RequeueAll).await??)
    }

    pub(super) async fn forget_replica_claims(&self) -> Result<(), StorePortError> {
        self.keeper.send(ForgetClaims).await??;
        Ok(())
    }
}
