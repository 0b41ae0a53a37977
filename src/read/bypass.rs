//! The fallback to direct upstream calls while redb cannot be written (the store is
//! degraded): a GET of something not stored is fetched through the same `UpstreamClient` (so
//! the same rate `Budget`), answered with the data itself and not stored. Concurrent GETs of one
//! resource share one upstream call: the first request's fetch is kept in an in-memory map of
//! shared futures keyed by resource until it finishes. A failure is the upstream's own
//! [`UpstreamError`], so the caller answers it by its disposition (a 404 stays a 404).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use futures::future::{BoxFuture, FutureExt, Shared};

use crate::domain::{MatchId, PlayerId, Signature};
use crate::upstream::error::UpstreamError;
use crate::upstream::opendota::OpenDota;

/// One fetch in progress (its output must be `Clone`, as [`UpstreamError`] is).
type InFlight = Shared<BoxFuture<'static, Result<Bytes, UpstreamError>>>;

/// A resource that can be fetched without the store: one upstream call each. Player stats
/// (three calls), leagues and team imports (many) are assembled by their fetchers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direct {
    Match(MatchId),
    Player(PlayerId),
}

impl Direct {
    /// `sig` as a direct fetch, if it can be one.
    pub fn of(sig: Signature) -> Option<Self> {
        match sig {
            Signature::Match(id) => Some(Direct::Match(id)),
            Signature::Player(id) => Some(Direct::Player(id)),
            _ => None,
        }
    }

    pub fn signature(self) -> Signature {
        match self {
            Direct::Match(id) => Signature::Match(id),
            Direct::Player(id) => Signature::Player(id),
        }
    }
}

/// Direct upstream fetches, deduplicated in memory (see the module docs). Cheap to clone.
#[derive(Clone)]
pub struct Bypass {
    opendota: OpenDota,
    // Bounded by the resources being fetched at once, each entry removed when its fetch ends.
    in_flight: Arc<Mutex<HashMap<Direct, InFlight>>>,
}

impl Bypass {
    pub fn new(opendota: OpenDota) -> Self {
        Self {
            opendota,
            in_flight: Arc::default(),
        }
    }

    /// The upstream body of `target`, joining a fetch of it already in progress.
    pub async fn fetch(&self, target: Direct) -> Result<Bytes, UpstreamError> {
        let fetch = {
            let mut map = self
                .in_flight
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            map.entry(target)
                .or_insert_with(|| self.clone().fetch_once(target).boxed().shared())
                .clone()
        };
        fetch.await
    }

    async fn fetch_once(self, target: Direct) -> Result<Bytes, UpstreamError> {
        let out = match target {
            Direct::Match(id) => self.opendota.get_match(id).await.map(|m| m.raw),
            Direct::Player(id) => self.opendota.get_player(id).await,
        };
        // Removed when done, so a later GET fetches afresh (nothing is cached here).
        self.in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&target);
        out
    }
}
