//! The one stored form of a body: its gzip bytes (see `crate::encoding`), kept in pieces of at
//! most [`CHUNK`] bytes under `(signature, index)`. redb gives a value larger than a page a
//! run of pages rounded up to a power of two, so a 50 KB body whole takes 64 KB; in 8 KB pieces
//! the leaves pack and a compacted file holds about 1.08x the bytes (measured, BENCHMARKS.md
//! "Scale and cost").

use redb::{ReadableTable, Table};

use super::StoreError;

/// Largest piece of a stored body, in bytes.
pub const CHUNK: usize = 8000;

/// The key range of every piece of `key`.
fn pieces(key: &str) -> std::ops::RangeInclusive<(&str, u32)> {
    (key, 0)..=(key, u32::MAX)
}

/// Reads the stored gzip bytes of `key` from `table`; `None` when nothing is stored.
pub(super) fn read(
    table: &impl ReadableTable<(&'static str, u32), &'static [u8]>,
    key: &str,
) -> Result<Option<Vec<u8>>, StoreError> {
    let mut out: Option<Vec<u8>> = None;
    for row in table.range(pieces(key))? {
        let (_, piece) = row?;
        out.get_or_insert_with(Vec::new)
            .extend_from_slice(piece.value());
    }
    Ok(out)
}

/// Stores `gzip` as the body of `key`, replacing every piece of the one before.
pub(super) fn write(
    table: &mut Table<'_, (&'static str, u32), &'static [u8]>,
    key: &str,
    gzip: &[u8],
) -> Result<(), StoreError> {
    remove(table, key)?;
    for (index, piece) in gzip.chunks(CHUNK).enumerate() {
        let index = u32::try_from(index).unwrap_or(u32::MAX);
        table.insert((key, index), piece)?;
    }
    Ok(())
}

/// Removes every piece of the body of `key`; the bytes removed.
pub(super) fn remove(
    table: &mut Table<'_, (&'static str, u32), &'static [u8]>,
    key: &str,
) -> Result<u64, StoreError> {
    let mut removed = 0u64;
    let mut gone = table.extract_from_if(pieces(key), |_, _| true)?;
    for row in gone.by_ref() {
        let (_, piece) = row?;
        removed += piece.value().len() as u64;
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tables::BODIES as TABLE;
    use redb::{Database, ReadableDatabase, ReadableTableMetadata};

    #[test]
    fn a_body_reads_back_whole_and_a_shorter_one_replaces_every_piece() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::create(dir.path().join("b.redb")).unwrap();
        let long: Vec<u8> = (0..3 * CHUNK + 17).map(|i| (i % 251) as u8).collect();
        let txn = db.begin_write().unwrap();
        {
            let mut table = txn.open_table(TABLE).unwrap();
            write(&mut table, "match:1", &long).unwrap();
            write(&mut table, "match:10", b"other").unwrap();
        }
        txn.commit().unwrap();
        let txn = db.begin_read().unwrap();
        let table = txn.open_table(TABLE).unwrap();
        assert_eq!(read(&table, "match:1").unwrap().unwrap(), long);
        assert_eq!(read(&table, "match:10").unwrap().unwrap(), b"other");
        assert!(read(&table, "match:2").unwrap().is_none());
        drop((table, txn));

        let txn = db.begin_write().unwrap();
        {
            let mut table = txn.open_table(TABLE).unwrap();
            write(&mut table, "match:1", b"short").unwrap();
            assert_eq!(table.len().unwrap(), 2, "no piece of the long body is left");
            assert_eq!(remove(&mut table, "match:10").unwrap(), 5);
        }
        txn.commit().unwrap();
        let txn = db.begin_read().unwrap();
        let table = txn.open_table(TABLE).unwrap();
        assert_eq!(read(&table, "match:1").unwrap().unwrap(), b"short");
        assert!(read(&table, "match:10").unwrap().is_none());
    }
}
