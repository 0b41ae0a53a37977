//! What the store's upkeep (`actors::store_bounds`) needs of the shared store: its size
//! (the data bucket's stream plus the bodies object store's), the lease of the one instance
//! that keeps it within bounds for the whole cluster ([`SharedStore::lead`]), the last request
//! of each resource as every instance noted it ([`SharedStore::put_access`],
//! [`SharedStore::access_times`]), and removing a stored resource ([`SharedStore::evict`]).
//!
//! An eviction purges the record `m.<sig>` first: it is the commit point, so a reader or a
//! replica that no longer sees it never looks for its body; then the body (`b.<sig>` or the
//! Object Store object). A purge leaves one marker per key (the bucket keeps one entry per key,
//! so the marker replaces the value), which the replicas' watches deliver as a removal, and
//! which a later store of the same resource replaces. Each marker carries the data bucket's
//! marker TTL (`--data-marker-ttl-secs`, 7 days): JetStream drops it then, so the bucket
//! holds no trace of an evicted resource for long and does not grow with every resource ever
//! evicted. A replica away longer than that (less a margin) could miss the removal, so it
//! replays the whole bucket instead of resuming, and drops what the replay did not deliver
//! (`resume`, `mirror`).

use std::collections::HashMap;
use std::time::Duration;

use async_nats::jetstream::{kv, object_store};
use bytes::Bytes;
use futures::StreamExt;

use super::data::BodyPlace;
use super::keys::{self, Record};
use super::{EntryRecord, SharedError, SharedStore};
use crate::bus::subjects::{BODIES_BUCKET, DATA_BUCKET};
use crate::domain::Signature;

/// The key of the upkeep's lease in the claims bucket (not a signature: the replicas' claims
/// watch skips it).
pub const LEASE_KEY: &str = "upkeep";
/// Request times written at once.
const PUTS_IN_FLIGHT: usize = 32;
/// Longest the read of every request time may take.
const READ_ALL: Duration = Duration::from_secs(60);

impl SharedStore {
    /// Bytes the shared data takes in JetStream (per copy: each node of an R3 cluster holds
    /// this much): the data bucket's stream and the bodies object store's.
    pub async fn stored_bytes(&self) -> Result<u64, SharedError> {
        let mut total = 0;
        for stream in [format!("KV_{DATA_BUCKET}"), format!("OBJ_{BODIES_BUCKET}")] {
            let info = self
                .inner
                .js
                .get_stream(&stream)
                .await
                .map_err(SharedError::boxed("read the store's size"))?
                .get_info()
                .await
                .map_err(SharedError::boxed("read the store's size"))?;
            total += info.state.bytes;
        }
        Ok(total)
    }

    /// Takes or renews the upkeep's lease for `ttl` (compare-and-swap on the lease key):
    /// `held` is the revision of the lease this instance last wrote, if any. Returns the new
    /// revision when this instance holds the lease now, `None` when another instance does.
    pub async fn lead(&self, held: Option<u64>, ttl: Duration) -> Result<Option<u64>, SharedError> {
        let value = Bytes::from(self.inner.instance.clone());
        if let Some(revision) = held
            && let Some(new) = self
                .write_leased(LEASE_KEY, value.clone(), revision, ttl)
                .await?
        {
            return Ok(Some(new));
        }
        let entry = self
            .inner
            .claims
            .entry(LEASE_KEY)
            .await
            .map_err(SharedError::boxed("read the upkeep's lease"))?;
        let expected = match entry {
            // Another instance's lease, live: it decides.
            Some(e) if super::is_live(&e) && e.value != value => return Ok(None),
            // Ours (written before a restart), or a marker its expiry left.
            Some(e) => e.revision,
            None => 0,
        };
        self.write_leased(LEASE_KEY, value, expected, ttl).await
    }

    /// Gives the upkeep's lease back (at shutdown) if it is still the one this instance wrote
    /// (`held`, its revision), so another instance takes over at its next period instead of
    /// after the lease's TTL. The marker left behind expires like a claim's.
    pub async fn resign(&self, held: u64) -> Result<(), SharedError> {
        match self
            .inner
            .claims
            .purge_expect_revision_with_ttl(LEASE_KEY, held, super::MARKER_TTL)
            .await
        {
            Ok(()) => Ok(()),
            // Already renewed by nobody else but lost, or taken over: not ours to give back.
            Err(err)
                if err.kind() == async_nats::jetstream::kv::UpdateErrorKind::WrongLastRevision
                    || super::is_cas_conflict(&err) =>
            {
                Ok(())
            }
            Err(err) => Err(SharedError::boxed("give back the upkeep's lease")(err)),
        }
    }

    /// Notes that `sigs` were requested at `at_ms` (unix ms) where every instance's upkeep
    /// sees it. A failed write is logged: the resource only looks older.
    pub async fn put_access(&self, sigs: &[Signature], at_ms: i64) {
        let value = Bytes::from(at_ms.to_string());
        // Owned futures: a stream of futures borrowing `self` is not `Send` for every lifetime.
        let keys: Vec<String> = sigs.iter().map(keys::of).collect();
        let puts = futures::stream::iter(keys)
            .map(|key| {
                let (access, value) = (self.inner.access.clone(), value.clone());
                async move { access.put(key, value).await.is_err() }
            })
            .buffer_unordered(PUTS_IN_FLIGHT);
        let mut puts = std::pin::pin!(puts);
        let mut failed = 0usize;
        while let Some(put_failed) = puts.next().await {
            failed += usize::from(put_failed);
        }
        if failed > 0 {
            tracing::warn!(failed, "could not share some request times");
        }
    }

    /// The last request of every resource any instance noted (unix ms), by signature.
    pub async fn access_times(&self) -> Result<HashMap<Signature, i64>, SharedError> {
        let op = "read the request times";
        let mut out = HashMap::new();
        let info = self
            .inner
            .access
            .stream
            .get_info()
            .await
            .map_err(SharedError::boxed(op))?;
        if info.state.messages == 0 {
            return Ok(out);
        }
        let mut watch = self
            .inner
            .access
            .watch_with_history(">")
            .await
            .map_err(SharedError::boxed(op))?;
        let read = async {
            while let Some(entry) = watch.next().await {
                let entry = entry.map_err(SharedError::boxed(op))?;
                let at = std::str::from_utf8(&entry.value)
                    .ok()
                    .and_then(|v| v.parse::<i64>().ok());
                if super::is_live(&entry)
                    && let (Some(sig), Some(at)) = (keys::parse(&entry.key), at)
                {
                    out.insert(sig, at);
                }
                if entry.delta == 0 {
                    break;
                }
            }
            Ok::<_, SharedError>(())
        };
        tokio::time::timeout(READ_ALL, read)
            .await
            .map_err(SharedError::boxed(op))??;
        Ok(out)
    }

    /// Removes the stored resource `sig` (its record, then its body) unless a fetch of it is
    /// claimed or it is stored again meanwhile; whether it did.
    pub async fn evict(&self, sig: &Signature) -> Result<bool, SharedError> {
        let op = "evict an entry";
        let key = keys::record(Record::Meta, sig);
        let entry = self
            .inner
            .data
            .entry(&key)
            .await
            .map_err(SharedError::boxed(op))?;
        let Some(entry) = entry.filter(super::is_live) else {
            return Ok(false);
        };
        if self.current_claim(sig).await?.is_some() {
            return Ok(false);
        }
        let record: EntryRecord =
            serde_json::from_slice(&entry.value).map_err(|source| SharedError::Decode {
                key: key.clone(),
                source,
            })?;
        let ttl = self.inner.tuning.data_marker_ttl;
        let purged = self
            .inner
            .data
            .purge_expect_revision_with_ttl(&key, entry.revision, ttl)
            .await;
        match purged {
            Ok(()) => {}
            Err(err)
                if err.kind() == kv::UpdateErrorKind::WrongLastRevision
                    || super::is_cas_conflict(&err) =>
            {
                return Ok(false);
            }
            Err(err) => return Err(SharedError::boxed(op)(err)),
        }
        self.remove_body(sig, record.body).await?;
        // Its request time goes with it, so the access bucket holds no more keys than the data
        // (the purge marker expires). A failure only leaves one small key behind.
        if let Err(err) = self
            .inner
            .access
            .purge_with_ttl(keys::of(sig), super::MARKER_TTL)
            .await
        {
            tracing::debug!(signature = %sig, %err, "could not remove an evicted entry's request time");
        }
        // A store that began after the claim check wrote its body before its record: if its
        // record is there now and its body went with ours, it goes too (a request fetches it
        // again), so no record is left pointing at a missing body.
        if let Some((now, _)) = self.entry(sig).await?
            && self.body(sig, &now).await?.is_none()
        {
            self.inner
                .data
                .purge_with_ttl(&key, ttl)
                .await
                .map_err(SharedError::boxed(op))?;
        }
        Ok(true)
    }

    async fn remove_body(&self, sig: &Signature, place: BodyPlace) -> Result<(), SharedError> {
        let op = "evict a body";
        match place {
            BodyPlace::Kv => self
                .inner
                .data
                .purge_with_ttl(
                    keys::record(Record::Body, sig),
                    self.inner.tuning.data_marker_ttl,
                )
                .await
                .map_err(SharedError::boxed(op)),
            BodyPlace::Object => match self.inner.bodies.delete(keys::object(sig)).await {
                Ok(()) => Ok(()),
                Err(err) if err.kind() == object_store::DeleteErrorKind::NotFound => Ok(()),
                Err(err) => Err(SharedError::boxed(op)(err)),
            },
        }
    }
}
