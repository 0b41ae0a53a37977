//! Where this instance's replica of the shared store (`--store nats`) left off: per shared
//! bucket, the last revision applied, which incarnation of the bucket it counts in, and when
//! the replica was last caught up with the bucket. Written in the same write transaction as
//! the changes it covers, so after a crash the position never claims a change the replica
//! lacks.

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
    /// When the replica was last caught up with the bucket (unix ms, this instance's clock):
    /// every change made before then is applied. A removal's marker expires (the data
    /// bucket's marker TTL), so a replica last current longer ago than that may have missed
    /// one and replays the whole bucket (`shared::resume`). `None` in files written before
    /// this was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_at_ms: Option<i64>,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_position_written_before_the_current_time_was_kept_still_loads() {
        let old: ReplicaPosition =
            serde_json::from_slice(br#"{"revision":5,"bucketCreatedNs":7}"#).unwrap();
        assert_eq!(
            old,
            ReplicaPosition {
                revision: 5,
                bucket_created_ns: 7,
                current_at_ms: None,
            }
        );
        let now = ReplicaPosition {
            current_at_ms: Some(9),
            ..old
        };
        let bytes = serde_json::to_vec(&now).unwrap();
        assert_eq!(
            serde_json::from_slice::<ReplicaPosition>(&bytes).unwrap(),
            now
        );
    }
}
