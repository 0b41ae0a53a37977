//! The hot cache: ready responses in memory, so a poll of fresh data costs no actor message, no
//! write transaction and no re-serialisation; usually not even a redb read. Two bounded `moka`
//! caches share `--hot-cache-mb`: stored resources (their stored gzip form, by signature, plus
//! the plain bytes once a request that takes no gzip asked for them) and rendered team views.
//!
//! Nothing here is ever served stale. Every committed write bumps the store's epochs (see
//! `store::Epochs`) after its commit. A resource entry remembers the epoch of its signature at
//! which it was last known current: while that epoch reads the same no write has touched the
//! signature since, and otherwise the entry is checked against redb's metadata (one small read)
//! before it is used. A view remembers the global epoch it was built at and the signatures it
//! read (the team record, its matches, their players), and is rebuilt only when a write since
//! touched one of those (`Epochs::untouched_since`): another league's import leaves it alone. It
//! also remembers the day's budget it showed (`waitingForBudget`),
//! which changes without any write, and is rebuilt when that changed. Freshness (the TTL) is
//! checked on every use.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use moka::sync::Cache;
use warp::http::HeaderValue;

use crate::domain::Signature;
use crate::encoding::{self, CompressError, ContentTag, Encoding, Representation};
use crate::metrics as m;
use crate::store::{EntryMeta, Served, Store, StoreError, now_ms};

/// Share of the bound given to team views (the rest holds resources).
const VIEW_SHARE: u64 = 8;
/// Bytes counted per entry besides its bodies (keys, metadata, the cache's own bookkeeping).
const ENTRY_OVERHEAD: u64 = 256;
/// Bytes counted per signature a view depends on (the set's slot and its share of spare room).
const DEP_BYTES: u64 = 48;

/// A fresh stored resource, ready to send.
pub struct HotEntry {
    meta: EntryMeta,
    tag: ContentTag,
    /// The stored form, sent as it is to every client that takes gzip.
    gzip: Bytes,
    /// The plain bytes, made the first time a request needs them.
    identity: OnceLock<Bytes>,
    /// Epoch of the signature at which this entry was last known to match redb.
    checked: AtomicU64,
    /// The `ETag` header of the plain and the gzip form, made by the first request that sent
    /// each (the HTTP layer formats it; see [`HotEntry::etag`]).
    etags: [OnceLock<HeaderValue>; 2],
    /// The access log's generation in which a request of this entry was last noted.
    noted: AtomicU64,
}

impl HotEntry {
    /// Notes a request of this entry (the fresh copy of `sig`) in the store's access log,
    /// unless one was noted since the log's last drain: then it is still pending there, and a
    /// poll skips the log's lock and hash.
    pub fn note_access(&self, store: &Store, sig: Signature) {
        let log = store.access();
        let generation = log.generation();
        if self.noted.swap(generation, Ordering::AcqRel) != generation {
            log.touch(sig);
        }
    }

    /// The `ETag` header of this entry sent in `encoding`: made once by `make` and then
    /// cloned (a reference count), so a poll neither formats nor allocates one. Brotli, never
    /// held here, is made each time.
    pub fn etag(&self, encoding: Encoding, make: impl FnOnce() -> HeaderValue) -> HeaderValue {
        let cell = match encoding {
            Encoding::Identity => &self.etags[0],
            Encoding::Gzip => &self.etags[1],
            Encoding::Brotli => return make(),
        };
        cell.get_or_init(make).clone()
    }

    /// The stored copy's metadata.
    pub fn meta(&self) -> &EntryMeta {
        &self.meta
    }

    /// The forms held now (the plain bytes only once made, see [`HotCache::plain`]).
    pub fn representation(&self) -> Representation<'_> {
        Representation {
            tag: self.tag,
            identity: self.identity.get(),
            gzip: Some(&self.gzip),
            br: None,
        }
    }

    fn weight(&self) -> u32 {
        let bytes = self.gzip.len() + self.identity.get().map_or(0, Bytes::len);
        u32::try_from(bytes as u64 + ENTRY_OVERHEAD).unwrap_or(u32::MAX)
    }

    /// The plain bytes, made once: in place for a small body, on the blocking pool for a
    /// large one.
    async fn make_plain(&self) -> Result<(Bytes, bool), CompressError> {
        if let Some(plain) = self.identity.get() {
            return Ok((plain.clone(), false));
        }
        let plain = if self.gzip.len() <= encoding::INLINE_GUNZIP_BYTES {
            encoding::gunzip(&self.gzip)?
        } else {
            let gzip = self.gzip.clone();
            tokio::task::spawn_blocking(move || encoding::gunzip(&gzip))
                .await
                .map_err(|e| CompressError::from(std::io::Error::other(e)))??
        };
        let made = self.identity.set(plain.into()).is_ok();
        let plain = self.identity.get().cloned().unwrap_or_default();
        Ok((plain, made))
    }
}

/// Which rendering of a team import a view entry holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ViewPart {
    /// The whole view: record, progress and summaries.
    Full,
    /// `?include=progress`.
    Progress,
}

/// A rendered team view and the state it was rendered from.
pub struct ViewEntry {
    /// The store's global epoch up to which the view is known current: loaded before it was
    /// read, then moved on by every check that found its signatures untouched.
    checked: AtomicU64,
    /// Every signature the view was rendered from: a write to any other cannot change it.
    deps: HashSet<Signature>,
    /// The team record's metadata (its freshness is checked on every use).
    pub record: EntryMeta,
    /// The day's budget the view was rendered with: `Some(resetsAt)` while it was spent.
    pub day_spent_until: Option<String>,
    tag: ContentTag,
    identity: Bytes,
    gzip: OnceLock<Bytes>,
    br: OnceLock<Bytes>,
}

impl ViewEntry {
    /// A view rendered from `deps` (read after the global epoch was `epoch`).
    pub fn new(
        epoch: u64,
        deps: HashSet<Signature>,
        record: EntryMeta,
        day_spent_until: Option<String>,
        body: Vec<u8>,
    ) -> Self {
        Self {
            checked: AtomicU64::new(epoch),
            deps,
            record,
            day_spent_until,
            tag: ContentTag::of(&body),
            identity: body.into(),
            gzip: OnceLock::new(),
            br: OnceLock::new(),
        }
    }

    /// Makes the compressed form `encoding` if it is not made yet (once per view, on the
    /// blocking pool).
    pub async fn encode(self: &Arc<Self>, encoding: Encoding) {
        let (cell, compress): (&OnceLock<Bytes>, fn(&[u8]) -> _) = match encoding {
            Encoding::Identity => return,
            Encoding::Gzip => (&self.gzip, encoding::gzip),
            Encoding::Brotli => (&self.br, encoding::brotli),
        };
        if cell.get().is_some() {
            return;
        }
        let body = self.identity.clone();
        let made = tokio::task::spawn_blocking(move || compress(&body)).await;
        match made {
            Ok(Ok(bytes)) => {
                let _ = cell.set(bytes.into());
            }
            Ok(Err(err)) => tracing::warn!(%err, "serving the team view uncompressed"),
            Err(err) => tracing::warn!(%err, "serving the team view uncompressed"),
        }
    }

    pub fn representation(&self) -> Representation<'_> {
        Representation {
            tag: self.tag,
            identity: Some(&self.identity),
            gzip: self.gzip.get(),
            br: self.br.get(),
        }
    }

    fn weight(&self) -> u32 {
        // Counted at insertion: the compressed forms made later are well under the body.
        let deps = self.deps.capacity() as u64 * DEP_BYTES;
        u32::try_from(2 * self.identity.len() as u64 + deps + ENTRY_OVERHEAD).unwrap_or(u32::MAX)
    }

    /// Whether no write touched the view's signatures since it was rendered (and, when some
    /// wrote elsewhere, remembers that it is current up to now).
    fn is_current(&self, store: &Store) -> bool {
        let checked = self.checked.load(Ordering::SeqCst);
        if checked == store.epochs().global() {
            return true;
        }
        match store.epochs().untouched_since(checked, &self.deps) {
            Some(now) => {
                self.checked.fetch_max(now, Ordering::SeqCst);
                true
            }
            None => false,
        }
    }
}

/// The two caches; cheap to clone. A bound of 0 turns both off (every read then goes to redb).
#[derive(Clone)]
pub struct HotCache {
    resources: Option<Cache<Signature, Arc<HotEntry>>>,
    views: Option<Cache<(Signature, ViewPart), Arc<ViewEntry>>>,
    capacity: u64,
}

impl HotCache {
    /// Caches bounded together by `capacity_bytes`.
    pub fn new(capacity_bytes: u64) -> Self {
        if capacity_bytes == 0 {
            return Self {
                resources: None,
                views: None,
                capacity: 0,
            };
        }
        let views = capacity_bytes / VIEW_SHARE;
        Self {
            resources: Some(
                Cache::builder()
                    .max_capacity(capacity_bytes - views)
                    .weigher(|_, e: &Arc<HotEntry>| e.weight())
                    .build(),
            ),
            views: Some(
                Cache::builder()
                    .max_capacity(views)
                    .weigher(|_, e: &Arc<ViewEntry>| e.weight())
                    .build(),
            ),
            capacity: capacity_bytes,
        }
    }

    /// The fresh stored copy of `sig`, from memory when it is there and still current, else
    /// from one redb read (and then kept). `None` when nothing fresh is stored: the caller
    /// goes to the CacheKeeper.
    pub async fn fresh(
        &self,
        store: &Store,
        sig: Signature,
    ) -> Result<Option<Arc<HotEntry>>, StoreError> {
        let now = now_ms();
        if let Some(cache) = &self.resources
            && let Some(entry) = cache.get(&sig)
        {
            if current(store, &sig, &entry)? {
                let fresh = store.is_fresh(sig.kind(), &entry.meta, now);
                if fresh {
                    m::count_hot_lookup(true);
                }
                return Ok(fresh.then_some(entry));
            }
            cache.invalidate(&sig);
        }
        // Loaded before the read: a write committed after it moves the epoch past this value.
        let epoch = store.epochs().of(&sig);
        let Some(served) = store.served(&sig)? else {
            return Ok(None);
        };
        if !store.is_fresh(sig.kind(), &served.meta, now) {
            return Ok(None);
        }
        let entry = Arc::new(load(served, epoch));
        if let Some(cache) = &self.resources {
            m::count_hot_lookup(false);
            cache.insert(sig, entry.clone());
        }
        Ok(Some(entry))
    }

    /// The fresh copy of `sig` when memory holds it and it is still current (at most the small
    /// metadata read of a check, see `current`); nothing is loaded, invalidated or counted: a
    /// caller that serves it counts the hit, and any other case is left to [`HotCache::fresh`].
    pub fn held(&self, store: &Store, sig: Signature) -> Option<Arc<HotEntry>> {
        let entry = self.resources.as_ref()?.get(&sig)?;
        let usable = matches!(current(store, &sig, &entry), Ok(true))
            && store.is_fresh(sig.kind(), &entry.meta, now_ms());
        usable.then_some(entry)
    }

    /// The plain bytes of `entry` (the fresh copy of `sig`), made once and then kept with it:
    /// the entry is weighed again, so the bound counts them.
    pub async fn plain(
        &self,
        sig: Signature,
        entry: &Arc<HotEntry>,
    ) -> Result<Bytes, CompressError> {
        let (plain, made) = entry.make_plain().await?;
        if made && let Some(cache) = &self.resources {
            cache.insert(sig, entry.clone());
        }
        Ok(plain)
    }

    /// The rendered view `key` if no write happened since it was rendered, it was rendered
    /// with the same day's budget (`day_spent_until`, see [`ViewEntry::day_spent_until`]) and
    /// its record is still fresh.
    pub fn view(
        &self,
        store: &Store,
        key: (Signature, ViewPart),
        day_spent_until: Option<&str>,
    ) -> Option<Arc<ViewEntry>> {
        let entry = self.views.as_ref()?.get(&key)?;
        let current = entry.day_spent_until.as_deref() == day_spent_until
            && entry.is_current(store)
            && store.is_fresh(key.0.kind(), &entry.record, now_ms());
        current.then_some(entry)
    }

    pub fn put_view(&self, key: (Signature, ViewPart), entry: Arc<ViewEntry>) {
        if let Some(views) = &self.views {
            views.insert(key, entry);
        }
    }

    /// The bound, in bytes.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Bytes and entries held now (after the caches' pending bookkeeping has run).
    pub fn usage(&self) -> (u64, u64) {
        let (mut bytes, mut entries) = (0, 0);
        if let Some(cache) = &self.resources {
            cache.run_pending_tasks();
            bytes += cache.weighted_size();
            entries += cache.entry_count();
        }
        if let Some(cache) = &self.views {
            cache.run_pending_tasks();
            bytes += cache.weighted_size();
            entries += cache.entry_count();
        }
        (bytes, entries)
    }

    /// Sets the hot cache gauges.
    pub fn export_gauges(&self) {
        let (bytes, entries) = self.usage();
        metrics::gauge!(m::HOT_CACHE_BYTES).set(bytes as f64);
        metrics::gauge!(m::HOT_CACHE_ENTRIES).set(entries as f64);
        metrics::gauge!(m::HOT_CACHE_CAPACITY_BYTES).set(self.capacity as f64);
    }
}

/// Whether `entry` still matches what redb holds for `sig`.
fn current(store: &Store, sig: &Signature, entry: &HotEntry) -> Result<bool, StoreError> {
    let epoch = store.epochs().of(sig);
    if entry.checked.load(Ordering::SeqCst) == epoch {
        return Ok(true);
    }
    // Some write touched this shard since: compare with redb (read after loading `epoch`).
    if store.meta(sig)? == Some(entry.meta) {
        entry.checked.fetch_max(epoch, Ordering::SeqCst);
        return Ok(true);
    }
    Ok(false)
}

/// An entry from a stored copy: its stored form as it is (no compression here).
fn load(served: Served, epoch: u64) -> HotEntry {
    HotEntry {
        meta: served.meta,
        tag: served.stored.tag,
        gzip: served.stored.gzip.into(),
        identity: OnceLock::new(),
        checked: AtomicU64::new(epoch),
        etags: [OnceLock::new(), OnceLock::new()],
        noted: AtomicU64::new(u64::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Ttls;
    use crate::domain::{LeagueId, MatchId, TeamId};

    /// A poll notes its resource in the access log once per drain: later polls skip the log
    /// until it is drained, and the first poll after a drain notes it again.
    #[tokio::test]
    async fn a_hot_entry_notes_its_requests_once_per_drain() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.redb"), Ttls::default()).unwrap();
        let sig = Signature::Match(MatchId::new(7).unwrap());
        store
            .write(|tx| tx.put_entry(&sig, &encoding::Encoded::of(b"{}").unwrap(), None, now_ms()))
            .unwrap();
        let hot = HotCache::new(1 << 20);
        let entry = hot.fresh(&store, sig).await.unwrap().expect("fresh");
        let _ = store.access().drain();
        entry.note_access(&store, sig);
        entry.note_access(&store, sig);
        assert_eq!(store.access().drain(), vec![sig]);
        entry.note_access(&store, sig);
        assert_eq!(
            store.access().drain(),
            vec![sig],
            "noted again after the drain"
        );
        assert!(store.access().drain().is_empty());
    }

    /// A rendered view is reused only with the day's budget it was rendered with: the budget
    /// changes without any write to the store, so the epoch alone would keep showing an old
    /// `waitingForBudget`.
    #[test]
    fn a_view_is_not_reused_once_the_days_budget_changed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.redb"), Ttls::default()).unwrap();
        let sig = Signature::Team(TeamId::new(9).unwrap(), LeagueId::new(5).unwrap());
        store
            .write(|tx| tx.put_entry(&sig, &encoding::Encoded::of(b"{}").unwrap(), None, now_ms()))
            .unwrap();
        let meta = store.meta(&sig).unwrap().expect("stored");
        let hot = HotCache::new(1 << 20);
        let key = (sig, ViewPart::Progress);
        let epoch = store.epochs().global();
        let spent = Some("2026-12-01T00:00:00Z".to_string());
        let entry = ViewEntry::new(epoch, [sig].into(), meta, spent.clone(), b"{}".to_vec());
        hot.put_view(key, Arc::new(entry));

        assert!(hot.view(&store, key, spent.as_deref()).is_some());
        assert!(hot.view(&store, key, None).is_none(), "the day reset");
        assert!(
            hot.view(&store, key, Some("2026-12-02T00:00:00Z"))
                .is_none(),
            "spent again, another day"
        );
    }

    /// Another league's import writes all the time: a view is rendered again only when a
    /// write touched what it was rendered from.
    #[test]
    fn a_view_outlives_writes_to_resources_it_was_not_rendered_from() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.redb"), Ttls::default()).unwrap();
        let put = |sig: &Signature| {
            store
                .write(|tx| {
                    tx.put_entry(sig, &encoding::Encoded::of(b"{}").unwrap(), None, now_ms())
                })
                .unwrap()
        };
        let team = Signature::Team(TeamId::new(9).unwrap(), LeagueId::new(5).unwrap());
        let (ours, other) = (
            Signature::Match(MatchId::new(1).unwrap()),
            Signature::Match(MatchId::new(2).unwrap()),
        );
        put(&team);
        let meta = store.meta(&team).unwrap().expect("stored");
        let hot = HotCache::new(1 << 20);
        let key = (team, ViewPart::Full);
        let epoch = store.epochs().global();
        let entry = ViewEntry::new(epoch, [team, ours].into(), meta, None, b"{}".to_vec());
        hot.put_view(key, Arc::new(entry));

        for _ in 0..3 {
            put(&other);
            assert!(
                hot.view(&store, key, None).is_some(),
                "another match written"
            );
        }
        put(&ours);
        assert!(
            hot.view(&store, key, None).is_none(),
            "its own match written"
        );
    }
}
