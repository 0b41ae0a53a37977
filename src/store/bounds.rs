//! What keeping redb within bounds needs of the store: the stored resources with their fetch
//! times and sizes ([`Store::residents`]), removing one resource from every table
//! ([`Tx::remove_entry`]), how many bytes the database holds ([`Tx::allocated_bytes`]), and
//! giving freed pages back to the file system ([`Store::compact`]). Which resources go is
//! decided above, in `actors::store_bounds`.
//!
//! redb never shrinks its file by itself: freed pages are reused by later writes, and only
//! `Database::compact` moves the live pages down and truncates the file. Compaction needs the
//! database to itself (no read or write transaction open), so it holds the handle's lock
//! while it runs: reads wait (they do not fail) for its length, which is why it runs only
//! when the file is over the bound.

use std::sync::PoisonError;
use std::time::{Duration, Instant};

use redb::{ReadableDatabase, ReadableTable};

use super::{EntryMeta, Store, StoreError, Tx, decode, tables};
use crate::domain::Signature;

/// How long compaction waits for reads in progress to end before giving up (for this pass).
const READERS_WAIT: Duration = Duration::from_secs(2);

/// A stored resource as the bounds see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resident {
    pub signature: Signature,
    pub fetched_at_ms: i64,
    /// Its body's size as fetched (the stored forms are smaller or larger; used as a weight).
    pub bytes: u64,
}

/// What a compaction did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compacted {
    pub before_bytes: u64,
    pub after_bytes: u64,
    pub took: Duration,
}

impl Store {
    /// Every stored resource (one scan of the metadata table).
    pub fn residents(&self) -> Result<Vec<Resident>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let table = txn.open_table(tables::RESOURCE_META)?;
        let mut out = Vec::new();
        for row in table.iter()? {
            let (k, v) = row?;
            let Ok(signature) = k.value().parse::<Signature>() else {
                continue;
            };
            let meta: EntryMeta = decode(k.value(), v.value())?;
            out.push(Resident {
                signature,
                fetched_at_ms: meta.fetched_at_ms,
                bytes: meta.bytes,
            });
        }
        Ok(out)
    }

    /// Gives the file's free pages back (see the module docs). Call only from the
    /// CacheKeeper's thread (no write transaction may be open). `Err(Busy)`: reads kept the
    /// database busy; nothing was done.
    pub fn compact(&self) -> Result<Compacted, StoreError> {
        let start = Instant::now();
        let before_bytes = self.file_size();
        let mut slot = self.db.write().unwrap_or_else(PoisonError::into_inner);
        let Some(handle) = slot.as_mut() else {
            return Err(StoreError::Closed);
        };
        // Readers hold a clone for the length of one read transaction; new ones wait on the
        // lock held here.
        let deadline = start + READERS_WAIT;
        let db = loop {
            if let Some(db) = std::sync::Arc::get_mut(handle) {
                break db;
            }
            if Instant::now() >= deadline {
                return Err(StoreError::Busy);
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        while db.db_mut().compact()? {}
        drop(slot);
        Ok(Compacted {
            before_bytes,
            after_bytes: self.file_size(),
            took: start.elapsed(),
        })
    }
}

impl Tx<'_> {
    /// Removes the stored resource `sig` from every per-resource table
    /// ([`tables::PER_RESOURCE`]: metadata, summary, failure; and the body's pieces), and its
    /// access and announcement rows. A claim in flight stays (its fetch stores it again).
    /// Returns the bytes removed (keys and values).
    pub fn remove_entry(&mut self, sig: &Signature) -> Result<u64, StoreError> {
        let key = sig.to_string();
        let mut removed = super::bodies::remove(&mut self.txn.open_table(tables::BODIES)?, &key)?;
        for def in tables::PER_RESOURCE {
            let mut table = self.txn.open_table(def)?;
            if let Some(old) = table.remove(key.as_str())? {
                removed += (key.len() + old.value().len()) as u64;
            }
        }
        for def in [tables::ACCESS, tables::ANNOUNCED] {
            let mut table = self.txn.open_table(def)?;
            if table.remove(key.as_str())?.is_some() {
                removed += (key.len() + 8) as u64;
            }
        }
        self.touched.push(*sig);
        Ok(removed)
    }

    /// Bytes of the pages the database has allocated (live data and its overhead): what the
    /// file needs at least, whatever its free pages.
    pub fn allocated_bytes(&self) -> Result<u64, StoreError> {
        let stats = self.txn.stats()?;
        Ok(stats.allocated_pages() * stats.page_size() as u64)
    }
}
