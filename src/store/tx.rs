//! Typed operations inside one redb write transaction: what the CacheKeeper may change (claims,
//! failures, stored entries, raw pages, announcements), and the freshness rule it decides by.
//! Only [`super::Store::write`] makes a [`Tx`].

use redb::{ReadableTable, TableDefinition, WriteTransaction};

use super::{EntryMeta, Failure, InFlight, StoreError, Ttls, bodies, decode, tables};
use crate::domain::{ResourceKind, Signature};
use crate::encoding::Encoded;

/// Whether a stored copy is fresh at `now_ms`: not invalidated and younger than its kind's TTL.
pub(super) fn is_fresh(ttls: &Ttls, kind: ResourceKind, meta: &EntryMeta, now_ms: i64) -> bool {
    let ttl_ms = i64::try_from(ttls.for_kind(kind).as_millis()).unwrap_or(i64::MAX);
    !meta.invalidated && now_ms < meta.fetched_at_ms.saturating_add(ttl_ms)
}

/// Typed operations inside one write transaction.
pub(crate) struct Tx<'a> {
    pub(super) txn: &'a WriteTransaction,
    ttls: Ttls,
    /// Resources whose served state (body, freshness, failure) this transaction changed; their
    /// epochs are bumped after the commit (see [`super::Epochs`]).
    pub(super) touched: Vec<Signature>,
}

impl<'a> Tx<'a> {
    pub(super) fn new(txn: &'a WriteTransaction, ttls: Ttls) -> Self {
        Self {
            txn,
            ttls,
            touched: Vec::new(),
        }
    }

    pub(super) fn into_touched(self) -> Vec<Signature> {
        self.touched
    }

    /// The transaction itself, for the typed operations kept in other files of the store.
    pub(super) fn txn(&self) -> &'a WriteTransaction {
        self.txn
    }
}

impl Tx<'_> {
    fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        table: TableDefinition<&str, &[u8]>,
        sig: &Signature,
    ) -> Result<Option<T>, StoreError> {
        let table = self.txn.open_table(table)?;
        let key = sig.to_string();
        let value = table.get(key.as_str())?;
        match value {
            Some(v) => Ok(Some(decode(&key, v.value())?)),
            None => Ok(None),
        }
    }

    fn put_json<T: serde::Serialize>(
        &mut self,
        table: TableDefinition<&str, &[u8]>,
        sig: &Signature,
        value: &T,
    ) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(value).map_err(|source| StoreError::Corrupt {
            key: sig.to_string(),
            source,
        })?;
        let mut table = self.txn.open_table(table)?;
        table.insert(sig.to_string().as_str(), bytes.as_slice())?;
        Ok(())
    }

    fn remove(
        &mut self,
        table: TableDefinition<&str, &[u8]>,
        sig: &Signature,
    ) -> Result<(), StoreError> {
        let mut table = self.txn.open_table(table)?;
        table.remove(sig.to_string().as_str())?;
        Ok(())
    }

    pub fn meta(&self, sig: &Signature) -> Result<Option<EntryMeta>, StoreError> {
        self.get_json(tables::RESOURCE_META, sig)
    }

    pub fn is_fresh(&self, sig: &Signature, now_ms: i64) -> Result<bool, StoreError> {
        Ok(self
            .meta(sig)?
            .is_some_and(|m| is_fresh(&self.ttls, sig.kind(), &m, now_ms)))
    }

    pub fn in_flight(&self, sig: &Signature) -> Result<Option<InFlight>, StoreError> {
        self.get_json(tables::IN_FLIGHT, sig)
    }

    pub fn failure(&self, sig: &Signature) -> Result<Option<Failure>, StoreError> {
        self.get_json(tables::FAILURES, sig)
    }

    /// The failure of `sig` if it is still in force at `now_ms` (see
    /// [`Failure::in_force`]). One that has outlived the failure TTL is dropped here, so the
    /// caller claims a new attempt and no reader reports the old failure meanwhile.
    pub fn failure_in_force(
        &mut self,
        sig: &Signature,
        now_ms: i64,
    ) -> Result<Option<Failure>, StoreError> {
        match self.failure(sig)? {
            Some(f) if f.in_force(self.ttls.failures, now_ms) => Ok(Some(f)),
            Some(_) => {
                self.clear_failure(sig)?;
                Ok(None)
            }
            None => Ok(None),
        }
    }

    pub fn put_in_flight(&mut self, sig: &Signature, claim: &InFlight) -> Result<(), StoreError> {
        self.put_json(tables::IN_FLIGHT, sig, claim)
    }

    pub fn clear_in_flight(&mut self, sig: &Signature) -> Result<(), StoreError> {
        self.remove(tables::IN_FLIGHT, sig)
    }

    pub fn put_failure(&mut self, sig: &Signature, failure: &Failure) -> Result<(), StoreError> {
        self.touched.push(*sig);
        self.put_json(tables::FAILURES, sig, failure)
    }

    pub fn clear_failure(&mut self, sig: &Signature) -> Result<(), StoreError> {
        let mut table = self.txn.open_table(tables::FAILURES)?;
        if table.remove(sig.to_string().as_str())?.is_some() {
            self.touched.push(*sig);
        }
        Ok(())
    }

    /// Marks the stored copy stale; returns whether there was one.
    pub fn invalidate(&mut self, sig: &Signature) -> Result<bool, StoreError> {
        match self.meta(sig)? {
            Some(mut meta) => {
                self.touched.push(*sig);
                meta.invalidated = true;
                self.put_json(tables::RESOURCE_META, sig, &meta)?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    pub fn put_page(
        &mut self,
        key: &str,
        body: &[u8],
        fetched_at_ms: i64,
    ) -> Result<(), StoreError> {
        let mut value = Vec::with_capacity(8 + body.len());
        value.extend_from_slice(&fetched_at_ms.to_be_bytes());
        value.extend_from_slice(body);
        let mut table = self.txn.open_table(tables::RAW_PAGES)?;
        table.insert(key, value.as_slice())?;
        Ok(())
    }

    /// Drops every raw page whose key starts with `prefix` (invalidation).
    pub fn remove_pages_with_prefix(&mut self, prefix: &str) -> Result<usize, StoreError> {
        let mut table = self.txn.open_table(tables::RAW_PAGES)?;
        let keys: Vec<String> = table
            .range(prefix..)?
            .map(|row| row.map(|(k, _)| k.value().to_string()))
            .take_while(|k| k.as_ref().map_or(true, |k| k.starts_with(prefix)))
            .collect::<Result<_, _>>()?;
        for key in &keys {
            table.remove(key.as_str())?;
        }
        Ok(keys.len())
    }

    /// When the announced import of `sig` was fetched, if one was announced.
    pub fn announced(&self, sig: &Signature) -> Result<Option<i64>, StoreError> {
        let table = self.txn.open_table(tables::ANNOUNCED)?;
        Ok(table.get(sig.to_string().as_str())?.map(|v| v.value()))
    }

    /// When the tracked import `sig` was last requested, if it is tracked.
    pub fn tracked_at(&self, sig: &Signature) -> Result<Option<i64>, StoreError> {
        let table = self.txn.open_table(tables::TRACKED)?;
        Ok(table.get(sig.to_string().as_str())?.map(|v| v.value()))
    }

    /// Tracks the team import `sig`, last requested at `requested_at_ms` (an earlier time
    /// than the one stored is ignored).
    pub fn put_tracked(&mut self, sig: &Signature, requested_at_ms: i64) -> Result<(), StoreError> {
        let mut table = self.txn.open_table(tables::TRACKED)?;
        let key = sig.to_string();
        let last = table.get(key.as_str())?.map(|v| v.value());
        if last.is_none_or(|last| last < requested_at_ms) {
            table.insert(key.as_str(), requested_at_ms)?;
        }
        Ok(())
    }

    /// Stops tracking `sig`; whether it was tracked.
    pub fn remove_tracked(&mut self, sig: &Signature) -> Result<bool, StoreError> {
        let mut table = self.txn.open_table(tables::TRACKED)?;
        Ok(table.remove(sig.to_string().as_str())?.is_some())
    }

    pub fn put_announced(&mut self, sig: &Signature, fetched_at_ms: i64) -> Result<(), StoreError> {
        let mut table = self.txn.open_table(tables::ANNOUNCED)?;
        table.insert(sig.to_string().as_str(), fetched_at_ms)?;
        Ok(())
    }

    /// Stores `stored` (a body's one kept form) as the fresh copy of `sig`, with its team-view
    /// `summary` (JSON; absent removes an older one).
    pub fn put_entry(
        &mut self,
        sig: &Signature,
        stored: &Encoded,
        summary: Option<&[u8]>,
        fetched_at_ms: i64,
    ) -> Result<(), StoreError> {
        let meta = EntryMeta {
            fetched_at_ms,
            invalidated: false,
            bytes: stored.plain_len,
            tag: Some(stored.tag),
        };
        self.put_entry_as(sig, stored, summary, meta)
    }

    /// Stores `stored` with the metadata another instance wrote for it (`--store nats`: this
    /// database is a replica of the shared store).
    pub fn put_entry_as(
        &mut self,
        sig: &Signature,
        stored: &Encoded,
        summary: Option<&[u8]>,
        meta: EntryMeta,
    ) -> Result<(), StoreError> {
        self.touched.push(*sig);
        let key = sig.to_string();
        bodies::write(
            &mut self.txn.open_table(tables::BODIES)?,
            &key,
            &stored.gzip,
        )?;
        let mut summaries = self.txn.open_table(tables::SUMMARIES)?;
        match summary {
            Some(summary) => summaries.insert(key.as_str(), summary).map(drop)?,
            None => summaries.remove(key.as_str()).map(drop)?,
        }
        drop(summaries);
        self.put_json(tables::RESOURCE_META, sig, &meta)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn freshness_follows_ttl_and_invalidation() {
        let ttls = Ttls {
            matches: Duration::from_secs(10),
            ..Ttls::default()
        };
        let meta = EntryMeta {
            fetched_at_ms: 1_000,
            invalidated: false,
            bytes: 1,
            tag: None,
        };
        assert!(is_fresh(&ttls, ResourceKind::Match, &meta, 10_999));
        assert!(!is_fresh(&ttls, ResourceKind::Match, &meta, 11_000));
        let stale = EntryMeta {
            invalidated: true,
            ..meta
        };
        assert!(!is_fresh(&ttls, ResourceKind::Match, &stale, 1_001));
    }
}
