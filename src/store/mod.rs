//! Persistence in redb. [`Store`] is the read handle anyone may use (reads never block
//! writers in redb); writes go only through the `CacheKeeper` actor via [`Store::write`].
//! Freshness is computed at read time from the configured TTLs, so a TTL change applies to
//! data already stored.

pub mod access;
mod bodies;
mod bounds;
mod bulk;
mod epochs;
mod health;
mod migrate;
mod read;
pub mod records;
mod reopen;
mod replica_state;
pub mod tables;
mod tx;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

pub use access::AccessLog;
pub use bounds::{Compacted, Resident};
pub use epochs::Epochs;
pub use health::StoreHealth;
pub use read::{Served, Snapshot};
pub use records::{EntryMeta, Failure, InFlight};
pub use reopen::{DbSlot, OpenDb};
pub use replica_state::ReplicaPosition;
pub(crate) use tx::Tx;

use crate::config::Ttls;
use crate::domain::{ResourceKind, Signature};

/// Storage failures, with redb's error as the source. A failed read or write is reported,
/// never turned into "missing".
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("redb: could not open the database: {0}")]
    Open(#[from] redb::DatabaseError),
    #[error("redb: could not begin a transaction: {0}")]
    Transaction(#[from] redb::TransactionError),
    #[error("redb: could not open a table: {0}")]
    Table(#[from] redb::TableError),
    #[error("redb: {0}")]
    Storage(#[from] redb::StorageError),
    #[error("redb: could not commit: {0}")]
    Commit(#[from] redb::CommitError),
    #[error("redb: could not compact: {0}")]
    Compact(#[from] redb::CompactionError),
    #[error("redb: the database is closed (it could not be reopened after a write failure)")]
    Closed,
    #[error("redb: reads kept the database busy, it was not reopened")]
    Busy,
    #[error("the disk does not take writes: {0}")]
    Disk(std::io::Error),
    #[error("redb: writes are failing (injected fault)")]
    InjectedFault,
    #[error("corrupt record for {key}: {source}")]
    Corrupt {
        key: String,
        source: serde_json::Error,
    },
    #[error("the body of {key} could not be compressed or decompressed: {source}")]
    Undecodable {
        key: String,
        source: crate::encoding::CompressError,
    },
}

/// redb's page cache when nothing else is set (`--store-cache-mb`); see
/// BENCHMARKS.md "Scale and cost" for what the size does to reads and imports.
pub const DEFAULT_CACHE_BYTES: usize = 64 << 20;

/// A database on `path` with a page cache of `cache_bytes` (redb's own default is 1 GiB).
fn create(path: &Path, cache_bytes: usize) -> Result<Database, StoreError> {
    Ok(redb::Builder::new()
        .set_cache_size(cache_bytes)
        .create(path)?)
}

impl Ttls {
    pub fn for_kind(&self, kind: ResourceKind) -> Duration {
        match kind {
            ResourceKind::Match => self.matches,
            ResourceKind::Player => self.players,
            ResourceKind::PlayerStats => self.player_stats,
            ResourceKind::Team => self.teams,
            ResourceKind::League => self.leagues,
        }
    }
}

/// Current time in unix milliseconds.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Read handle to the database, cheap to clone.
#[derive(Clone)]
pub struct Store {
    db: Arc<DbSlot>,
    path: PathBuf,
    /// redb's page cache, in bytes.
    cache_bytes: usize,
    ttls: Ttls,
    health: Arc<StoreHealth>,
    epochs: Arc<Epochs>,
    /// Resources requested since the last flush (see [`AccessLog`]).
    access: Arc<AccessLog>,
    /// True once the database is closed: dropped and its file released (see [`OpenDb`]).
    closed: Arc<std::sync::atomic::AtomicBool>,
}

impl Store {
    /// Opens (or creates) the database file with the default page cache.
    pub fn open(path: &Path, ttls: Ttls) -> Result<Self, StoreError> {
        Self::open_with_cache(path, ttls, DEFAULT_CACHE_BYTES)
    }

    /// Opens (or creates) the database file with a page cache of `cache_bytes`, and creates
    /// every table, so later reads never meet a missing table. A database written before
    /// bodies had one stored form is converted, then compacted.
    pub fn open_with_cache(
        path: &Path,
        ttls: Ttls,
        cache_bytes: usize,
    ) -> Result<Self, StoreError> {
        let closed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut db = create(path, cache_bytes)?;
        let txn = db.begin_write()?;
        for table in [
            tables::RESOURCE_META,
            tables::IN_FLIGHT,
            tables::FAILURES,
            tables::RAW_PAGES,
            tables::SUMMARIES,
        ] {
            txn.open_table(table)?;
        }
        txn.open_table(tables::BODIES)?;
        txn.open_table(tables::ANNOUNCED)?;
        txn.open_table(tables::TRACKED)?;
        let migrated = migrate::bodies_to_gzip(&txn)?;
        txn.open_table(tables::ACCESS)?;
        txn.commit()?;
        if migrated > 0 {
            let compacted = db.compact()?;
            tracing::info!(
                bodies = migrated,
                compacted,
                "bodies moved to their one stored form (gzip)"
            );
        }
        Ok(Self {
            db: Arc::new(std::sync::RwLock::new(Some(Arc::new(OpenDb::new(
                db,
                closed.clone(),
            ))))),
            closed,
            path: path.to_path_buf(),
            cache_bytes,
            ttls,
            health: Arc::default(),
            epochs: Arc::default(),
            access: Arc::default(),
        })
    }

    /// How long a permanent failure is reported before a request retries it.
    pub fn failure_ttl(&self) -> Duration {
        self.ttls.failures
    }

    /// Bytes the database file takes on disk (for metrics, `GET /api/store` and
    /// `--store-max-gb`): its allocated blocks, not its length. Until the file reaches one
    /// region (4 GiB) redb doubles its length ahead of use, and the hole takes no disk until
    /// written: the length read 1.77-2.36× the bodies' gzip bytes where the disk held 1.28-1.30×.
    pub fn file_size(&self) -> u64 {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(&self.path)
            .map(|m| m.len().min(m.blocks().saturating_mul(512)))
            .unwrap_or(0)
    }

    /// Opens a read transaction and a table: proves the database answers (for `/readyz`).
    pub fn ping(&self) -> Result<(), StoreError> {
        let txn = self.db()?.begin_read()?;
        txn.open_table(tables::IN_FLIGHT)?;
        Ok(())
    }

    /// Whether writes currently fail, shared by every clone (see [`StoreHealth`]).
    pub fn health(&self) -> &Arc<StoreHealth> {
        &self.health
    }

    /// The write epochs readers validate cached copies against.
    pub fn epochs(&self) -> &Epochs {
        &self.epochs
    }

    /// The resources requested since the last flush: the read path notes each request here.
    pub fn access(&self) -> &AccessLog {
        &self.access
    }

    /// The configured TTLs.
    pub fn ttls(&self) -> &Ttls {
        &self.ttls
    }

    /// Whether a stored copy described by `meta` is fresh at `now_ms`.
    pub fn is_fresh(&self, kind: ResourceKind, meta: &EntryMeta, now_ms: i64) -> bool {
        tx::is_fresh(&self.ttls, kind, meta, now_ms)
    }

    /// True from a failed write until the next committed one.
    pub fn degraded(&self) -> bool {
        self.health.degraded()
    }

    /// Turns true once the database is closed and its file released: shutdown waits for it,
    /// so the next open of the file (a restart in the same process) finds it free.
    pub fn closed_flag(&self) -> Arc<std::sync::atomic::AtomicBool> {
        self.closed.clone()
    }

    /// A weak handle: lets shutdown wait until every user has let go of the database file.
    pub fn weak(&self) -> std::sync::Weak<DbSlot> {
        Arc::downgrade(&self.db)
    }

    /// The current database handle (it changes only when redb is reopened).
    fn db(&self) -> Result<Arc<OpenDb>, StoreError> {
        let slot = self
            .db
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        slot.clone().ok_or(StoreError::Closed)
    }

    pub fn meta(&self, sig: &Signature) -> Result<Option<EntryMeta>, StoreError> {
        self.read_json(tables::RESOURCE_META, sig)
    }

    /// Whether the stored copy of `sig` is fresh now; `None` when nothing is stored.
    pub fn fresh(&self, sig: &Signature) -> Result<Option<bool>, StoreError> {
        Ok(self
            .meta(sig)?
            .map(|meta| tx::is_fresh(&self.ttls, sig.kind(), &meta, now_ms())))
    }

    /// The plain body of `sig` (decompressed from its stored form).
    pub fn body(&self, sig: &Signature) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let key = sig.to_string();
        bodies::read(&txn.open_table(tables::BODIES)?, &key)?
            .map(|gz| read::plain(&key, &gz))
            .transpose()
    }

    /// The size of redb's page cache, in bytes.
    pub fn cache_capacity(&self) -> usize {
        self.cache_bytes
    }

    pub fn failure(&self, sig: &Signature) -> Result<Option<Failure>, StoreError> {
        self.read_json(tables::FAILURES, sig)
    }

    pub fn in_flight(&self, sig: &Signature) -> Result<Option<InFlight>, StoreError> {
        self.read_json(tables::IN_FLIGHT, sig)
    }

    /// Every queued or running claim, for recovery at start-up and the status endpoint.
    pub fn all_in_flight(&self) -> Result<Vec<(Signature, InFlight)>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let table = txn.open_table(tables::IN_FLIGHT)?;
        let mut out = Vec::new();
        for row in table.iter()? {
            let (k, v) = row?;
            let Ok(sig) = k.value().parse::<Signature>() else {
                tracing::warn!(key = k.value(), "skipping unreadable in-flight key");
                continue;
            };
            out.push((sig, decode(k.value(), v.value())?));
        }
        Ok(out)
    }

    /// A raw page stored with [`Tx::put_page`]: its fetch time (unix ms) and body.
    pub fn page(&self, key: &str) -> Result<Option<(i64, Vec<u8>)>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let table = txn.open_table(tables::RAW_PAGES)?;
        let Some(value) = table.get(key)? else {
            return Ok(None);
        };
        let bytes = value.value();
        if bytes.len() < 8 {
            return Ok(None);
        }
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&bytes[..8]);
        Ok(Some((i64::from_be_bytes(ts), bytes[8..].to_vec())))
    }

    /// When the completion of `sig` was last announced (the record's fetch time).
    pub fn announced(&self, sig: &Signature) -> Result<Option<i64>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let table = txn.open_table(tables::ANNOUNCED)?;
        Ok(table.get(sig.to_string().as_str())?.map(|v| v.value()))
    }

    /// Every tracked team import and when it was last requested (unix ms).
    pub fn tracked(&self) -> Result<Vec<(Signature, i64)>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let table = txn.open_table(tables::TRACKED)?;
        let mut out = Vec::new();
        for row in table.iter()? {
            let (k, v) = row?;
            match k.value().parse::<Signature>() {
                Ok(sig) => out.push((sig, v.value())),
                Err(_) => tracing::warn!(key = k.value(), "skipping unreadable tracked key"),
            }
        }
        Ok(out)
    }

    /// When the tracked team import `sig` was last requested; `None` when it is not tracked.
    pub fn tracked_at(&self, sig: &Signature) -> Result<Option<i64>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let table = txn.open_table(tables::TRACKED)?;
        Ok(table.get(sig.to_string().as_str())?.map(|v| v.value()))
    }

    /// Every stored resource of `kind` (keys are `kind:...`, so this is a range scan).
    pub fn stored_of_kind(&self, kind: ResourceKind) -> Result<Vec<Signature>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let table = txn.open_table(tables::RESOURCE_META)?;
        let prefix = format!("{}:", kind.as_str());
        let mut out = Vec::new();
        for row in table.range(prefix.as_str()..)? {
            let (k, _) = row?;
            if !k.value().starts_with(&prefix) {
                break;
            }
            if let Ok(sig) = k.value().parse::<Signature>()
                && sig.kind() == kind
            {
                out.push(sig);
            }
        }
        Ok(out)
    }

    fn read_json<T: serde::de::DeserializeOwned>(
        &self,
        table: TableDefinition<&str, &[u8]>,
        sig: &Signature,
    ) -> Result<Option<T>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let table = txn.open_table(table)?;
        let key = sig.to_string();
        match table.get(key.as_str())? {
            Some(v) => Ok(Some(decode(&key, v.value())?)),
            None => Ok(None),
        }
    }

    /// Runs `f` in one write transaction and commits it. Blocks: call only from the
    /// CacheKeeper's own thread, never from an async executor.
    pub(crate) fn write<T>(
        &self,
        f: impl FnOnce(&mut Tx<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.health.count_write();
        let out = self.try_write(f);
        let result = if out.is_ok() { "ok" } else { "error" };
        metrics::counter!(crate::metrics::STORE_WRITES, "result" => result).increment(1);
        match &out {
            Ok(_) => self.health.record(true, None, false),
            // Only a failure of redb itself degrades the store; a corrupt record is one
            // record's problem, not the disk's.
            Err(StoreError::Corrupt { .. }) => {}
            Err(err) => {
                // After an I/O failure redb refuses every write until it is reopened.
                let io = !matches!(err, StoreError::InjectedFault);
                self.health.record(false, Some(err), io);
            }
        }
        out
    }

    fn try_write<T>(
        &self,
        f: impl FnOnce(&mut Tx<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        if self.health.fail_writes() {
            return Err(StoreError::InjectedFault);
        }
        if self.health.needs_reopen() {
            self.reopen_if_writable()?;
        }
        let txn = self.db()?.begin_write()?;
        let mut tx = Tx::new(&txn, self.ttls);
        let out = f(&mut tx)?;
        let touched = tx.into_touched();
        txn.commit()?;
        // After the commit: a reader that sees the new epoch also sees the write.
        self.epochs.bump(&touched);
        Ok(out)
    }
}

fn decode<T: serde::de::DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|source| StoreError::Corrupt {
        key: key.to_string(),
        source,
    })
}
