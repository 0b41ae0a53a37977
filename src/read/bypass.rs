//! The fallback to direct upstream calls while redb cannot be written (the store is
//! degraded): a GET of something not stored is fetched through the same `UpstreamClient` (so
//! the same rate `Budget`), answered with the data itself and not stored. Concurrent GETs of one
//! resource share one upstream call: the first request's fetch is kept in an in-memory map of
//! shared futures keyed by signature until it finishes. Used by `resources` only.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use futures::future::{BoxFuture, FutureExt, Shared};

use crate::domain::Signature;
use crate::upstream::opendota::OpenDota;

/// One fetch in progress; its error is the upstream's message (the output must be `Clone`).
type InFlight = Shared<BoxFuture<'static, Result<Bytes, String>>>;

/// Direct upstream fetches, deduplicated in memory (see the module docs). Cheap to clone.
#[derive(Clone)]
pub struct Bypass {
    opendota: OpenDota,
    // Bounded by the resources being fetched at once, each entry removed when its fetch ends.
    in_flight: Arc<Mutex<HashMap<Signature, InFlight>>>,
}

impl Bypass {
    pub fn new(opendota: OpenDota) -> Self {
        Self {
            opendota,
            in_flight: Arc::default(),
        }
    }

    /// Whether `sig` can be fetched without the store: single upstream calls only. Player
    /// stats (three calls), leagues and team imports (many) are assembled by their fetchers.
    pub fn supports(sig: &Signature) -> bool {
        matches!(sig, Signature::Match(_) | Signature::Player(_))
    }

    /// The upstream body of `sig`, joining a fetch of it already in progress.
    pub async fn fetch(&self, sig: Signature) -> Result<Bytes, String> {
        let fetch = {
            let mut map = self
                .in_flight
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            map.entry(sig)
                .or_insert_with(|| self.clone().fetch_once(sig).boxed().shared())
                .clone()
        };
        fetch.await
    }

    async fn fetch_once(self, sig: Signature) -> Result<Bytes, String> {
        let out = self.fetch_upstream(sig).await;
        // Removed when done, so a later GET fetches afresh (nothing is cached here).
        self.in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&sig);
        out
    }

    async fn fetch_upstream(&self, sig: Signature) -> Result<Bytes, String> {
        let out = match sig {
            Signature::Match(id) => self.opendota.get_match(id).await.map(|m| m.raw),
            Signature::Player(id) => self.opendota.get_player(id).await,
            other => return Err(format!("{other} cannot be fetched without the store")),
        };
        out.map_err(|e| e.to_string())
    }
}
