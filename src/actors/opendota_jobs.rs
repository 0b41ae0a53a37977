//! The one fetch body of the OpenDota job kinds (matches, players, player stats, leagues):
//! [`OpenDotaJobs`] reads the job's ID, refuses a job of another kind, and runs the kind's
//! [`OpenDotaKind::fetch`]. Each kind's file says only what differs: its calls (the paths),
//! the parse into the stored body, and the children it fans out to.

use std::future::Future;
use std::marker::PhantomData;

use super::fetcher::{FetchJobs, wrong_kind};
use super::pipeline::Fetched;
use crate::domain::{Fanout, Job, ResourceKind, Signature};
use crate::upstream::error::UpstreamError;
use crate::upstream::opendota::OpenDota;

/// What one fetch of an OpenDota kind ends with.
pub type FetchResult = Result<Fetched, UpstreamError>;

/// One OpenDota job kind.
pub trait OpenDotaKind: 'static {
    const KIND: ResourceKind;
    /// The ID its jobs carry.
    type Id: Copy + 'static;
    /// The kind's calls, the parse of what they answer, and the children of the result.
    fn fetch(
        opendota: OpenDota,
        id: Self::Id,
        fanout: Fanout,
    ) -> impl Future<Output = FetchResult> + 'static;
    /// The ID of `signature`; `None` when it is of another kind.
    fn id(signature: Signature) -> Option<Self::Id>;
}

/// The [`FetchJobs`] of an OpenDota kind `K`.
pub struct OpenDotaJobs<K> {
    opendota: OpenDota,
    kind: PhantomData<fn() -> K>,
}

impl<K> OpenDotaJobs<K> {
    pub fn new(opendota: OpenDota) -> Self {
        Self {
            opendota,
            kind: PhantomData,
        }
    }
}

// By hand: a derive would ask `K: Clone`, and the kinds are never values.
impl<K> Clone for OpenDotaJobs<K> {
    fn clone(&self) -> Self {
        Self::new(self.opendota.clone())
    }
}

/// The actor's name in logs.
const fn actor_name(kind: ResourceKind) -> &'static str {
    match kind {
        ResourceKind::Match => "MatchFetcher",
        ResourceKind::Player => "PlayerFetcher",
        ResourceKind::PlayerStats => "PlayerStatsFetcher",
        ResourceKind::League => "LeagueFetcher",
        ResourceKind::Team => "TeamImporter",
    }
}

impl<K: OpenDotaKind> FetchJobs for OpenDotaJobs<K> {
    const KIND: ResourceKind = K::KIND;
    const NAME: &'static str = actor_name(K::KIND);

    fn fetch(&self, job: Job) -> impl Future<Output = FetchResult> + 'static {
        let opendota = self.opendota.clone();
        async move {
            let Some(id) = K::id(job.signature) else {
                return Err(wrong_kind(&job, K::KIND));
            };
            K::fetch(opendota, id, job.fanout).await
        }
    }
}
