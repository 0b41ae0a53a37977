//! Reopening redb after a write failed on I/O (a full disk): redb then refuses every later
//! transaction with `PreviousIo` until the database is closed and opened again (which runs its
//! crash recovery). Reopening while the disk is still full would fail and leave nothing to read
//! from, so the keeper first proves the disk takes a small file; until it does, the old handle
//! stays and stored data is still served. Called only from `Store::write`, on the keeper's
//! thread.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use redb::Database;

use super::{Store, StoreError};

/// Bytes written beside the database to prove the disk takes writes again: a few redb pages
/// and a commit's headers, so a reopen (which commits its recovery) is likely to succeed.
const PROBE_BYTES: usize = 256 * 1024;
/// How long a reopen waits for in-flight reads to let go of the old handle.
const READERS_WAIT: Duration = Duration::from_secs(2);

impl Store {
    /// Closes and reopens the database if the disk takes writes again; else leaves it alone.
    pub(super) fn reopen_if_writable(&self) -> Result<(), StoreError> {
        self.probe_disk().map_err(StoreError::Disk)?;
        let mut slot = self.db.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(old) = slot.take() {
            // A reader may hold a clone for the length of one read transaction.
            let deadline = Instant::now() + READERS_WAIT;
            let mut old = old;
            loop {
                match Arc::try_unwrap(old) {
                    Ok(db) => break drop(db),
                    Err(still_shared) if Instant::now() < deadline => {
                        old = still_shared;
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err(still_shared) => {
                        *slot = Some(still_shared);
                        return Err(StoreError::Busy);
                    }
                }
            }
        }
        let db = super::create(&self.path, self.cache_bytes)?;
        *slot = Some(Arc::new(OpenDb::new(db, self.closed.clone())));
        tracing::info!("redb reopened after a write failure");
        Ok(())
    }

    fn probe_disk(&self) -> std::io::Result<()> {
        // Beside the file itself, which may sit on another disk than its (symlinked) path.
        let probe = std::fs::canonicalize(&self.path)?.with_extension("probe");
        let written = std::fs::File::create(&probe).and_then(|mut file| {
            file.write_all(&vec![0u8; PROBE_BYTES])?;
            file.sync_all()
        });
        let removed = std::fs::remove_file(&probe);
        written.and(removed)
    }
}

/// The database handle shared by every `Store` clone; `None` only while it is reopened (or
/// after a reopen failed).
pub type DbSlot = std::sync::RwLock<Option<Arc<OpenDb>>>;

/// An open database that says when it is closed. The last handle letting go is not enough:
/// redb's drop still flushes and releases the file's lock afterwards, on whichever thread let
/// go last, and a second open of the file meanwhile fails with `DatabaseAlreadyOpen`.
pub struct OpenDb {
    // Fields drop in order: the database first, then the flag says so.
    db: Database,
    _closed: ClosedOnDrop,
}

impl OpenDb {
    /// `db`, which sets `closed` once it is dropped (and clears it now).
    pub(super) fn new(db: Database, closed: Arc<AtomicBool>) -> Self {
        closed.store(false, Ordering::SeqCst);
        Self {
            db,
            _closed: ClosedOnDrop(closed),
        }
    }
}

impl OpenDb {
    /// The database itself, for what needs it alone (compaction).
    pub(super) fn db_mut(&mut self) -> &mut Database {
        &mut self.db
    }
}

impl std::ops::Deref for OpenDb {
    type Target = Database;

    fn deref(&self) -> &Database {
        &self.db
    }
}

struct ClosedOnDrop(Arc<AtomicBool>);

impl Drop for ClosedOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}
