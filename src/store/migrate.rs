//! Converts a database written before bodies had one stored form: `resource_body_v1` (plain),
//! `resource_gzip_v1` and `resource_br_v1` become `body_gzip_v2` (the gzip bytes, in pieces),
//! and every entry gets its tag. Runs once, at open, in the open's write transaction; the
//! caller then compacts the file so the freed pages go back to the disk.

use redb::{ReadableTable, TableDefinition, TableHandle, WriteTransaction};

use super::{EntryMeta, StoreError, bodies, decode, tables};
use crate::encoding::ContentTag;

const OLD_BODY: TableDefinition<&str, &[u8]> = TableDefinition::new("resource_body_v1");
const OLD_GZIP: TableDefinition<&str, &[u8]> = TableDefinition::new("resource_gzip_v1");
const OLD_BR: TableDefinition<&str, &[u8]> = TableDefinition::new("resource_br_v1");

/// Moves every old body to the one stored form; how many were moved (0: nothing to do).
pub(super) fn bodies_to_gzip(txn: &WriteTransaction) -> Result<usize, StoreError> {
    let old = txn.list_tables()?.any(|t| t.name() == OLD_BODY.name());
    if !old {
        return Ok(0);
    }
    let mut moved = 0;
    {
        let plain = txn.open_table(OLD_BODY)?;
        let gzips = txn.open_table(OLD_GZIP)?;
        let mut metas = txn.open_table(tables::RESOURCE_META)?;
        let mut out = txn.open_table(tables::BODIES)?;
        for row in plain.iter()? {
            let (key, body) = row?;
            let (key, body) = (key.value(), body.value());
            let gzip = match gzips.get(key)? {
                Some(gz) => gz.value().to_vec(),
                None => crate::encoding::gzip(body).map_err(|source| StoreError::Undecodable {
                    key: key.to_string(),
                    source,
                })?,
            };
            bodies::write(&mut out, key, &gzip)?;
            let meta = metas.get(key)?.map(|m| decode::<EntryMeta>(key, m.value()));
            if let Some(mut meta) = meta.transpose()?
                && meta.tag.is_none()
            {
                meta.tag = Some(ContentTag::of(body));
                let bytes = serde_json::to_vec(&meta).map_err(|source| StoreError::Corrupt {
                    key: key.to_string(),
                    source,
                })?;
                metas.insert(key, bytes.as_slice())?;
            }
            moved += 1;
        }
    }
    for table in [OLD_BODY, OLD_GZIP, OLD_BR] {
        txn.delete_table(table)?;
    }
    Ok(moved)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Ttls;
    use crate::domain::{MatchId, Signature};
    use crate::store::Store;
    use redb::Database;

    /// A database of the last release (plain body, a gzip copy for one entry, no tag on the
    /// other) opens with every body served as it was.
    #[test]
    fn an_older_database_opens_with_its_bodies_intact() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.redb");
        let a = Signature::Match(MatchId::new(1).unwrap());
        let b = Signature::Match(MatchId::new(2).unwrap());
        let body_a = br#"{"match_id":1,"players":[]}"#.repeat(50);
        let body_b = br#"{"match_id":2}"#.to_vec();
        {
            let db = Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            {
                let mut plain = txn.open_table(OLD_BODY).unwrap();
                plain
                    .insert(a.to_string().as_str(), body_a.as_slice())
                    .unwrap();
                plain
                    .insert(b.to_string().as_str(), body_b.as_slice())
                    .unwrap();
                let mut gz = txn.open_table(OLD_GZIP).unwrap();
                let gz_a = crate::encoding::gzip(&body_a).unwrap();
                gz.insert(a.to_string().as_str(), gz_a.as_slice()).unwrap();
                txn.open_table(OLD_BR).unwrap();
                let mut metas = txn.open_table(tables::RESOURCE_META).unwrap();
                for (sig, body) in [(a, &body_a), (b, &body_b)] {
                    let meta = EntryMeta {
                        fetched_at_ms: crate::store::now_ms(),
                        invalidated: false,
                        bytes: body.len() as u64,
                        tag: None,
                    };
                    let json = serde_json::to_vec(&meta).unwrap();
                    metas
                        .insert(sig.to_string().as_str(), json.as_slice())
                        .unwrap();
                }
            }
            txn.commit().unwrap();
        }
        let store = Store::open(&path, Ttls::default()).unwrap();
        assert_eq!(store.body(&a).unwrap().unwrap(), body_a);
        assert_eq!(store.body(&b).unwrap().unwrap(), body_b);
        let served = store.served(&b).unwrap().unwrap();
        assert_eq!(served.meta.tag, Some(ContentTag::of(&body_b)));
        assert_eq!(served.stored.plain().unwrap(), body_b);
    }
}
