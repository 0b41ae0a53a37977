//! Stored records in the shared data bucket: a resource is its body in its one stored form (the
//! gzip bytes, see `crate::encoding`; `b.<sig>`, or an Object Store object when larger than
//! the value limit) and its [`EntryRecord`] (`m.<sig>`), written
//! in that order, so the record is the commit point: whoever sees a record finds its body.
//! Failures (`f.`), announcements (`a.`) and tracked imports (`t.`) are small JSON records.
//! Freshness is judged at read time from `fetchedAtMs` and the configured TTLs, exactly as
//! with redb: a stale copy is still served while its refresh is queued, so entries carry no
//! per-key TTL.

use async_nats::jetstream::kv;
use async_nats::jetstream::stream::LastRawMessageErrorKind;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;

use super::keys::{self, Record};
use super::{SharedError, SharedStore};
use crate::domain::Signature;
use crate::store::{EntryMeta, Failure};

/// Where a stored body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum BodyPlace {
    /// In the data bucket, under `b.<sig>`.
    Kv,
    /// In the Object Store, named by the signature.
    Object,
}

/// How a stored body's bytes are encoded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum BodyForm {
    /// The plain bytes: records written before bodies had one stored form (no `form` field).
    #[default]
    Plain,
    /// The gzip bytes.
    Gzip,
}

/// What `m.<sig>` holds: the entry's metadata, its team-view summary, where its body is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EntryRecord {
    pub meta: EntryMeta,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<serde_json::Value>,
    pub body: BodyPlace,
    /// How the body's bytes are encoded.
    #[serde(default)]
    pub form: BodyForm,
    /// The instance that fetched it.
    pub by: String,
}

impl EntryRecord {
    /// The summary as the bytes redb keeps.
    pub fn summary_bytes(&self) -> Option<Vec<u8>> {
        self.summary
            .as_ref()
            .and_then(|s| serde_json::to_vec(s).ok())
    }
}

fn decode<T: serde::de::DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T, SharedError> {
    serde_json::from_slice(bytes).map_err(|source| SharedError::Decode {
        key: key.to_string(),
        source,
    })
}

fn encode<T: Serialize>(key: &str, value: &T) -> Result<Bytes, SharedError> {
    serde_json::to_vec(value)
        .map(Bytes::from)
        .map_err(|source| SharedError::Decode {
            key: key.to_string(),
            source,
        })
}

/// Whether a compare-and-swap wrote: false when another writer came first.
fn swapped(written: Result<(), kv::UpdateError>, op: &'static str) -> Result<bool, SharedError> {
    match written {
        Ok(()) => Ok(true),
        Err(err)
            if err.kind() == kv::UpdateErrorKind::WrongLastRevision
                || super::is_cas_conflict(&err) =>
        {
            Ok(false)
        }
        Err(err) => Err(SharedError::boxed(op)(err)),
    }
}

/// A live value of `entry`: `None` for a delete or purge marker.
fn live(entry: Option<kv::Entry>) -> Option<kv::Entry> {
    entry.filter(super::is_live)
}

impl SharedStore {
    /// The live `record` of `sig`, decoded, with its revision.
    async fn read<T: serde::de::DeserializeOwned>(
        &self,
        record: Record,
        sig: &Signature,
        op: &'static str,
    ) -> Result<Option<(T, u64)>, SharedError> {
        let key = keys::record(record, sig);
        let entry = self
            .inner
            .data
            .entry(&key)
            .await
            .map_err(SharedError::boxed(op))?;
        live(entry)
            .map(|e| Ok((decode(&key, &e.value)?, e.revision)))
            .transpose()
    }

    /// Writes `record` of `sig` as JSON, whatever was there.
    async fn write<T: Serialize>(
        &self,
        record: Record,
        sig: &Signature,
        value: &T,
        op: &'static str,
    ) -> Result<(), SharedError> {
        let key = keys::record(record, sig);
        self.inner
            .data
            .put(&key, encode(&key, value)?)
            .await
            .map_err(SharedError::boxed(op))?;
        Ok(())
    }

    /// Stores `gzip` (a body's stored form) as the copy of `sig` described by `meta`: body
    /// first, then the record.
    pub async fn put_entry(
        &self,
        sig: &Signature,
        meta: EntryMeta,
        gzip: &[u8],
        summary: Option<&[u8]>,
    ) -> Result<EntryRecord, SharedError> {
        let body = gzip;
        let place = if body.len() > self.inner.tuning.value_limit {
            let mut reader = body;
            self.inner
                .bodies
                .put(keys::object(sig).as_str(), &mut reader)
                .await
                .map_err(SharedError::boxed("store a body in the object store"))?;
            BodyPlace::Object
        } else {
            self.inner
                .data
                .put(
                    keys::record(Record::Body, sig),
                    Bytes::copy_from_slice(body),
                )
                .await
                .map_err(SharedError::boxed("store a body"))?;
            BodyPlace::Kv
        };
        let record = EntryRecord {
            meta,
            summary: summary.and_then(|s| serde_json::from_slice(s).ok()),
            body: place,
            form: BodyForm::Gzip,
            by: self.inner.instance.clone(),
        };
        self.write(Record::Meta, sig, &record, "store an entry")
            .await?;
        Ok(record)
    }

    /// The stored record of `sig`, with its revision.
    pub async fn entry(&self, sig: &Signature) -> Result<Option<(EntryRecord, u64)>, SharedError> {
        self.read(Record::Meta, sig, "read an entry").await
    }

    /// The bytes of the body `record` points at, in `record.form`; `None` if it is gone
    /// (overwritten by a newer store whose record follows).
    pub async fn body(
        &self,
        sig: &Signature,
        record: &EntryRecord,
    ) -> Result<Option<Vec<u8>>, SharedError> {
        match record.body {
            BodyPlace::Kv => self.body_from_leader(sig).await,
            BodyPlace::Object => {
                let mut object = match self.inner.bodies.get(keys::object(sig)).await {
                    Ok(object) => object,
                    Err(err)
                        if err.kind()
                            == async_nats::jetstream::object_store::GetErrorKind::NotFound =>
                    {
                        return Ok(None);
                    }
                    Err(err) => return Err(SharedError::boxed("read a body object")(err)),
                };
                let mut body = Vec::new();
                object
                    .read_to_end(&mut body)
                    .await
                    .map_err(SharedError::boxed("read a body object"))?;
                Ok(Some(body))
            }
        }
    }

    /// The body `b.<sig>` as the stream's leader holds it. Not a KV get: the buckets allow
    /// direct gets, which any replica answers, and a follower a moment behind answers "no
    /// such key" for a body whose record the watch has just delivered (or the body before
    /// it). The mirror took that for a body replaced meanwhile and skipped the record, so the
    /// replica never had the entry (bench/soak.sh: one instance missing a match or players
    /// that the others served, at load 12, away from any node kill).
    async fn body_from_leader(&self, sig: &Signature) -> Result<Option<Vec<u8>>, SharedError> {
        let data = &self.inner.data;
        let subject = format!("{}{}", data.prefix, keys::record(Record::Body, sig));
        match data.stream.get_last_raw_message_by_subject(&subject).await {
            // A delete or purge marker has the operation in its headers and no payload.
            Ok(message) if message.payload.is_empty() => Ok(None),
            Ok(message) => Ok(Some(message.payload.to_vec())),
            Err(err) if err.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(None),
            Err(err) => Err(SharedError::boxed("read a body")(err)),
        }
    }

    /// Marks the stored copy of `sig` invalidated (served as stale, never `ready`), when it was
    /// fetched before `before_ms` (a forced refresh leaves alone what was fetched after it was
    /// asked for); false when nothing is stored or it already was. Compare-and-swap, retried
    /// on a concurrent write.
    pub async fn invalidate(
        &self,
        sig: &Signature,
        before_ms: Option<i64>,
    ) -> Result<bool, SharedError> {
        let key = keys::record(Record::Meta, sig);
        for _ in 0..5 {
            let Some((mut record, revision)) = self.entry(sig).await? else {
                return Ok(false);
            };
            let refreshed_since = before_ms.is_some_and(|b| record.meta.fetched_at_ms >= b);
            if record.meta.invalidated || refreshed_since {
                return Ok(false);
            }
            record.meta.invalidated = true;
            match self
                .inner
                .data
                .update(&key, encode(&key, &record)?, revision)
                .await
            {
                Ok(_) => return Ok(true),
                Err(err)
                    if err.kind() == kv::UpdateErrorKind::WrongLastRevision
                        || super::is_cas_conflict(&err) =>
                {
                    continue;
                }
                Err(err) => return Err(SharedError::boxed("invalidate an entry")(err)),
            }
        }
        Ok(false)
    }

    pub async fn failure(&self, sig: &Signature) -> Result<Option<Failure>, SharedError> {
        Ok(self
            .read(Record::Failure, sig, "read a failure")
            .await?
            .map(|(f, _)| f))
    }

    pub async fn put_failure(&self, sig: &Signature, failure: &Failure) -> Result<(), SharedError> {
        self.write(Record::Failure, sig, failure, "store a failure")
            .await
    }

    pub async fn clear_failure(&self, sig: &Signature) -> Result<(), SharedError> {
        self.delete(Record::Failure, sig, "clear a failure")
            .await
            .map(drop)
    }

    /// Deletes `record` of `sig` if it holds a value; whether it did.
    async fn delete(
        &self,
        record: Record,
        sig: &Signature,
        op: &'static str,
    ) -> Result<bool, SharedError> {
        if self
            .read::<serde_json::Value>(record, sig, op)
            .await?
            .is_none()
        {
            return Ok(false);
        }
        // A purge with the marker TTL, like an eviction's: the marker tells the replicas, then
        // goes. A replica away longer misses it and keeps the failure until the failure's own
        // TTL, or the tracked import until `--track-days` after its last request (the refresh
        // scheduler then finds the shared key gone and untracks it).
        self.inner
            .data
            .purge_with_ttl(keys::record(record, sig), self.inner.tuning.data_marker_ttl)
            .await
            .map_err(SharedError::boxed(op))?;
        Ok(true)
    }

    /// Records that the team import `sig` fetched at `fetched_at_ms` was announced complete;
    /// true only for the one instance whose compare-and-swap wins, which then announces it.
    pub async fn mark_announced(
        &self,
        sig: &Signature,
        fetched_at_ms: i64,
    ) -> Result<bool, SharedError> {
        let key = keys::record(Record::Announced, sig);
        let entry = self
            .inner
            .data
            .entry(&key)
            .await
            .map_err(SharedError::boxed("read an announcement"))?;
        let value = encode(&key, &fetched_at_ms)?;
        let written = match entry {
            Some(e) if e.operation == kv::Operation::Put => {
                if decode::<i64>(&key, &e.value).ok() == Some(fetched_at_ms) {
                    return Ok(false);
                }
                self.inner
                    .data
                    .update(&key, value, e.revision)
                    .await
                    .map(drop)
            }
            Some(e) => self
                .inner
                .data
                .update(&key, value, e.revision)
                .await
                .map(drop),
            None => self.inner.data.update(&key, value, 0).await.map(drop),
        };
        swapped(written, "record an announcement")
    }

    /// When the announced import of `sig` was fetched, if one was announced.
    pub async fn announced(&self, sig: &Signature) -> Result<Option<i64>, SharedError> {
        Ok(self
            .read(Record::Announced, sig, "read an announcement")
            .await?
            .map(|(at, _)| at))
    }

    pub async fn put_tracked(
        &self,
        sig: &Signature,
        requested_at_ms: i64,
    ) -> Result<(), SharedError> {
        self.write(Record::Tracked, sig, &requested_at_ms, "track an import")
            .await
    }

    /// Stops tracking the import `sig`; whether it was tracked.
    pub async fn remove_tracked(&self, sig: &Signature) -> Result<bool, SharedError> {
        self.delete(Record::Tracked, sig, "untrack an import").await
    }

    /// Stops tracking the import `sig` if its last request is still the one at
    /// `requested_at_ms` (compare-and-swap). False when a later request keeps it tracked.
    pub async fn expire_tracked(
        &self,
        sig: &Signature,
        requested_at_ms: i64,
    ) -> Result<bool, SharedError> {
        let tracked = self.read::<i64>(Record::Tracked, sig, "read a tracked import");
        let Some((at, revision)) = tracked.await? else {
            return Ok(true);
        };
        if at != requested_at_ms {
            return Ok(false);
        }
        let deleted = self
            .inner
            .data
            .purge_expect_revision_with_ttl(
                keys::record(Record::Tracked, sig),
                revision,
                self.inner.tuning.data_marker_ttl,
            )
            .await;
        swapped(deleted, "expire a tracked import")
    }
}
