//! When each stored resource was last requested: what `--retention-days` and `--store-max-gb`
//! evict by. The read path must stay cheap (a fresh GET costs no write and, from the hot
//! cache, no redb read), so a request only puts its signature into an in-memory sharded set
//! ([`AccessLog::touch`]: one uncontended lock and a hash-set insert); the store's upkeep
//! drains the set every few tens of seconds and has the CacheKeeper write the times into
//! `access_v1` ([`super::Tx::note_accesses`]), at most one row update per resource per
//! [`NOTE_RESOLUTION_MS`]. A resource never requested counts as requested when it was stored.

use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use redb::{ReadableDatabase, ReadableTable};

use super::{Store, StoreError, Tx, tables};
use crate::domain::Signature;

/// Shards of the pending set: requests on different cores rarely meet on one lock.
const SHARDS: usize = 64;
/// Most signatures one shard holds between two flushes (~1M in all, ~40 MB at worst); past
/// it a request is not noted until the next flush, which only makes its resource look older.
const SHARD_CAPACITY: usize = 16 * 1024;
/// A noted time is written again only when it moved by at least this much.
pub const NOTE_RESOLUTION_MS: i64 = 60_000;

/// The resources requested since the last drain (see the module docs).
pub struct AccessLog {
    shards: Box<[Mutex<HashSet<Signature>>]>,
    hasher: std::hash::RandomState,
    /// Drains so far: a caller that remembers the generation in which it noted a signature
    /// can skip noting it again until the next drain ([`AccessLog::generation`]).
    generation: AtomicU64,
}

impl Default for AccessLog {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            hasher: std::hash::RandomState::new(),
            generation: AtomicU64::new(0),
        }
    }
}

impl AccessLog {
    /// Drains so far. A signature noted while this read `g` stays in the pending set (or was
    /// drained with it) until the generation moves past `g`, so noting it again within `g`
    /// changes nothing (the read path's hot entries use this to skip the lock; see
    /// `read::hot::HotEntry::note_access`).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Notes a request of `sig`.
    pub fn touch(&self, sig: Signature) {
        let i = (self.hasher.hash_one(sig) as usize) % SHARDS;
        let mut set = self.shards[i]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if set.len() < SHARD_CAPACITY {
            set.insert(sig);
        }
    }

    /// Takes every signature noted since the last drain.
    pub fn drain(&self) -> Vec<Signature> {
        let mut out = Vec::new();
        for shard in &self.shards {
            let taken = std::mem::take(&mut *shard.lock().unwrap_or_else(PoisonError::into_inner));
            out.extend(taken);
        }
        // After the take: a note made meanwhile went into the new sets, kept for the next drain.
        self.generation.fetch_add(1, Ordering::AcqRel);
        out
    }
}

impl Store {
    /// Every noted last request (unix ms), by signature.
    pub fn access_times(&self) -> Result<HashMap<Signature, i64>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let table = txn.open_table(tables::ACCESS)?;
        let mut out = HashMap::new();
        for row in table.iter()? {
            let (k, v) = row?;
            if let Ok(sig) = k.value().parse::<Signature>() {
                out.insert(sig, v.value());
            }
        }
        Ok(out)
    }
}

impl Tx<'_> {
    /// Notes that `sigs` were requested at `at_ms`. Only stored resources are noted (a request
    /// for something never stored leaves no row behind), and a row is rewritten only when
    /// its time moves by [`NOTE_RESOLUTION_MS`]. Returns the signatures whose rows were
    /// written (with `--store nats`, the times the shared store is told of).
    pub fn note_accesses(
        &mut self,
        sigs: &[Signature],
        at_ms: i64,
    ) -> Result<Vec<Signature>, StoreError> {
        let meta = self.txn.open_table(tables::RESOURCE_META)?;
        let mut access = self.txn.open_table(tables::ACCESS)?;
        let mut written = Vec::new();
        for sig in sigs {
            let key = sig.to_string();
            if meta.get(key.as_str())?.is_none() {
                continue;
            }
            let last = access.get(key.as_str())?.map(|v| v.value());
            if last.is_none_or(|last| last + NOTE_RESOLUTION_MS <= at_ms) {
                access.insert(key.as_str(), at_ms)?;
                written.push(*sig);
            }
        }
        Ok(written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::MatchId;

    #[test]
    fn a_drain_takes_each_signature_once() {
        let log = AccessLog::default();
        let a = Signature::Match(MatchId::new(1).unwrap());
        let b = Signature::Match(MatchId::new(2).unwrap());
        log.touch(a);
        log.touch(a);
        log.touch(b);
        let mut drained = log.drain();
        drained.sort();
        assert_eq!(drained, vec![a, b]);
        assert!(log.drain().is_empty());
    }
}
