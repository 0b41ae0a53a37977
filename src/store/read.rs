//! Consistent reads: a [`Snapshot`] is one redb read transaction with the tables a reader needs,
//! so a whole team view (hundreds of lookups) or a body with its metadata and encodings come
//! from one point in time. Read transactions never wait for the writer.

use redb::{ReadOnlyTable, ReadableDatabase, TableDefinition};
use serde::de::DeserializeOwned;

use super::{EntryMeta, Failure, Store, StoreError, bodies, decode, tables};
use crate::domain::Signature;
use crate::encoding::{ContentTag, Encoded};

type Table = ReadOnlyTable<&'static str, &'static [u8]>;
type Bodies = ReadOnlyTable<(&'static str, u32), &'static [u8]>;

/// A stored copy as served: its metadata and its one kept form (the gzip bytes and tag).
#[derive(Debug, Clone)]
pub struct Served {
    pub meta: EntryMeta,
    pub stored: Encoded,
}

/// One read transaction's view of the store.
pub struct Snapshot {
    meta: Table,
    bodies: Bodies,
    failures: Table,
    summaries: Table,
}

impl Store {
    /// A consistent view of the store as of now.
    pub fn snapshot(&self) -> Result<Snapshot, StoreError> {
        let txn = self.db()?.begin_read()?;
        let open = |def: TableDefinition<&'static str, &'static [u8]>| txn.open_table(def);
        Ok(Snapshot {
            meta: open(tables::RESOURCE_META)?,
            bodies: txn.open_table(tables::BODIES)?,
            failures: open(tables::FAILURES)?,
            summaries: open(tables::SUMMARIES)?,
        })
    }
}

fn json<T: DeserializeOwned>(table: &Table, key: &str) -> Result<Option<T>, StoreError> {
    match table.get(key)? {
        Some(v) => Ok(Some(decode(key, v.value())?)),
        None => Ok(None),
    }
}

impl Snapshot {
    pub fn meta(&self, sig: &Signature) -> Result<Option<EntryMeta>, StoreError> {
        json(&self.meta, &sig.to_string())
    }

    pub fn failure(&self, sig: &Signature) -> Result<Option<Failure>, StoreError> {
        json(&self.failures, &sig.to_string())
    }

    /// Whether a permanent failure is recorded for `sig` (without decoding it).
    pub fn has_failure(&self, sig: &Signature) -> Result<bool, StoreError> {
        Ok(self.failures.get(sig.to_string().as_str())?.is_some())
    }

    /// The plain body of `sig` (decompressed from its stored form).
    pub fn body(&self, sig: &Signature) -> Result<Option<Vec<u8>>, StoreError> {
        let key = sig.to_string();
        bodies::read(&self.bodies, &key)?
            .map(|gz| plain(&key, &gz))
            .transpose()
    }

    /// The summary stored with `sig`'s body, if one was.
    pub fn summary<T: DeserializeOwned>(&self, sig: &Signature) -> Result<Option<T>, StoreError> {
        json(&self.summaries, &sig.to_string())
    }
}

/// The plain bytes of the stored gzip bytes of `key`.
pub(super) fn plain(key: &str, gz: &[u8]) -> Result<Vec<u8>, StoreError> {
    crate::encoding::gunzip(gz).map_err(|source| StoreError::Undecodable {
        key: key.to_string(),
        source,
    })
}

impl Store {
    /// The stored copy of `sig` with everything needed to serve it, read in one transaction
    /// that opens only the tables this needs.
    pub fn served(&self, sig: &Signature) -> Result<Option<Served>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let key = sig.to_string();
        let Some(meta) = json::<EntryMeta>(&txn.open_table(tables::RESOURCE_META)?, &key)? else {
            return Ok(None);
        };
        let Some(gzip) = bodies::read(&txn.open_table(tables::BODIES)?, &key)? else {
            return Ok(None);
        };
        // Every body is stored with its tag since the stored form was made one (`migrate`
        // gave the older ones theirs); a record without one is tagged from its plain bytes.
        let tag = match meta.tag {
            Some(tag) => tag,
            None => ContentTag::of(&plain(&key, &gzip)?),
        };
        Ok(Some(Served {
            meta,
            stored: Encoded {
                tag,
                gzip,
                plain_len: meta.bytes,
            },
        }))
    }
}
