//! Where this instance's replica of the shared store (`--store nats`) left off: per shared
//! bucket, the last revision applied and which incarnation of the bucket it counts in.
//! Written in the same write transaction as the changes it covers, so after a crash the
//! position never claims a change the replica lacks.

use redb::ReadableDatabase;
use serde::{Deserialize, Serialize};

use super::{Store, StoreError, Tx, decode, tables};

/// The replica's position in one shared bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaPosition {
    /// The last revision (stream sequence) of the bucket whose change is in the replica;
    /// every change up to it is.
    pub revision: u64,
    /// When the bucket's stream was created (unix nanoseconds): another value means the bucket
    /// was deleted and made again, and its revisions started over.
    pub bucket_created_ns: i64,
}

impl Store {
    /// The replica's position in `bucket`; `None` before the first change was applied.
    pub fn replica_position(&self, bucket: &str) -> Result<Option<ReplicaPosition>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let table = match txn.open_table(tables::REPLICA_STATE) {
            Ok(table) => table,
            // Made by the first write of a position (files older than this table lack it).
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(err) => return Err(err.into()),
        };
        match table.get(bucket)? {
            Some(v) => Ok(Some(decode(bucket, v.value())?)),
            None => Ok(None),
        }
    }
}

impl Tx<'_> {
    /// Records the replica's position in `bucket`.
    pub fn set_replica_position(
        &mut self,
        bucket: &str,
        position: &ReplicaPosition,
    ) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(position).map_err(|source| StoreError::Corrupt {
            key: bucket.to_string(),
            source,
        })?;
        let mut table = self.txn().open_table(tables::REPLICA_STATE)?;
        table.insert(bucket, bytes.as_slice())?;
        Ok(())
    }
}
