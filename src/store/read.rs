//! Consistent reads: a [`Snapshot`] is one redb read transaction with the tables a reader needs,
//! so a whole team view (hundreds of lookups) or a body with its metadata and encodings come
//! from one point in time. Read transactions never wait for the writer.

use redb::{ReadOnlyTable, ReadableDatabase, TableDefinition};
use serde::de::DeserializeOwned;

use super::{EntryMeta, Failure, Store, StoreError, decode, tables};
use crate::domain::Signature;

type Table = ReadOnlyTable<&'static str, &'static [u8]>;

/// A stored copy as served: its metadata, body and compressed forms (absent for bodies stored
/// before they were kept).
#[derive(Debug, Clone)]
pub struct Served {
    pub meta: EntryMeta,
    pub body: Vec<u8>,
    pub gzip: Option<Vec<u8>>,
    pub br: Option<Vec<u8>>,
}

/// One read transaction's view of the store.
pub struct Snapshot {
    meta: Table,
    bodies: Table,
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
            bodies: open(tables::RESOURCE_BODY)?,
            failures: open(tables::FAILURES)?,
            summaries: open(tables::SUMMARIES)?,
        })
    }
}

fn bytes(table: &Table, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(table.get(key)?.map(|v| v.value().to_vec()))
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

    pub fn body(&self, sig: &Signature) -> Result<Option<Vec<u8>>, StoreError> {
        bytes(&self.bodies, &sig.to_string())
    }

    /// The summary stored with `sig`'s body, if one was.
    pub fn summary<T: DeserializeOwned>(&self, sig: &Signature) -> Result<Option<T>, StoreError> {
        json(&self.summaries, &sig.to_string())
    }
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
        let Some(body) = bytes(&txn.open_table(tables::RESOURCE_BODY)?, &key)? else {
            return Ok(None);
        };
        Ok(Some(Served {
            meta,
            body,
            gzip: bytes(&txn.open_table(tables::RESOURCE_GZIP)?, &key)?,
            br: bytes(&txn.open_table(tables::RESOURCE_BR)?, &key)?,
        }))
    }
}
