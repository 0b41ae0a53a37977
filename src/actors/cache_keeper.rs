//! `CacheKeeper`: the only writer to redb. It owns TTL decisions, invalidation and the
//! in-flight set; every claim ("this resource is now queued") is made here, in one write
//! transaction, so two requests for the same resource can never both queue it.
//! Runs on its own thread under a `SyncArbiter` (redb's `begin_write` blocks), which restarts
//! it if it stops.
//!
//! Messages and their handlers: [`claims`] (the claim lifecycle of fetched resources) and
//! [`upkeep`] (invalidation, raw pages, announced imports) and [`tracking`] (team imports the
//! refresh scheduler keeps fresh) and [`replica`] (with `--store nats`, applying the shared
//! store's changes to this replica) and [`bounds`] (access times, eviction, compaction).

mod bounds;
mod claims;
mod replica;
mod tracking;
mod upkeep;

use actix::{Actor, SyncContext};

pub use bounds::{Compact, Evict, Evicted, NoteAccess};
pub use claims::{
    Child, ClaimChildren, ClaimRefresh, Complete, Completed, Fail, Prepare, Prepared, Release,
    RequeueAll,
};
pub use replica::ForgetClaims;
pub use tracking::{Track, Untrack};
pub use upkeep::{Invalidate, Invalidated, MarkAnnounced, ProbeWrite, StorePage};

use crate::store::Store;

/// The single redb writer (see the module docs).
pub struct CacheKeeper {
    store: Store,
    last_generation: u64,
}

impl CacheKeeper {
    pub fn new(store: Store) -> Self {
        Self {
            store,
            last_generation: 0,
        }
    }

    /// Strictly increasing generation numbers, seeded from the clock so they also increase
    /// across restarts (a restarted keeper never reuses a generation still in the stream).
    fn next_generation(&mut self) -> u64 {
        let now_us = u64::try_from(chrono::Utc::now().timestamp_micros()).unwrap_or(0);
        self.last_generation = now_us.max(self.last_generation + 1);
        self.last_generation
    }
}

impl Actor for CacheKeeper {
    type Context = SyncContext<Self>;
}
