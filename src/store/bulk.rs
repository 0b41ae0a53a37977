//! Bulk writes for offline tools: many entries in one write transaction, for filling a store
//! before the service starts (`examples/fill_store.rs`, the start-up benchmark in
//! `bench/scale.py`). The service itself never calls this: its only writer is the CacheKeeper
//! (through [`Store::write`]). redb locks its file, so a tool and a running service cannot
//! write one file at once.

use super::{Store, StoreError};
use crate::domain::Signature;
use crate::encoding::Encoded;

impl Store {
    /// Stores every `(signature, body)` of `entries` as a fresh copy fetched at
    /// `fetched_at_ms`, in one transaction (what [`super::Tx::put_entry`] stores for a fetched
    /// resource: its one stored form, compressed here; no summary). All or nothing.
    pub fn put_bulk<'e>(
        &self,
        entries: impl IntoIterator<Item = (Signature, &'e [u8])>,
        fetched_at_ms: i64,
    ) -> Result<usize, StoreError> {
        self.write(|tx| {
            let mut written = 0;
            for (sig, body) in entries {
                let stored = Encoded::of(body).map_err(|source| StoreError::Undecodable {
                    key: sig.to_string(),
                    source,
                })?;
                tx.put_entry(&sig, &stored, None, fetched_at_ms)?;
                written += 1;
            }
            Ok(written)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Ttls;
    use crate::domain::{MatchId, PlayerId};

    #[test]
    fn a_bulk_write_stores_every_entry_fresh() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.redb"), Ttls::default()).unwrap();
        let player = Signature::Player(PlayerId::new(7).unwrap());
        let game = Signature::Match(MatchId::new(9).unwrap());
        let bodies: [(Signature, &[u8]); 2] = [(player, b"{\"p\":7}"), (game, b"{\"m\":9}")];
        let written = store.put_bulk(bodies, super::super::now_ms()).unwrap();
        assert_eq!(written, 2);
        assert_eq!(store.body(&player).unwrap().unwrap(), b"{\"p\":7}");
        assert_eq!(store.fresh(&game).unwrap(), Some(true));
    }
}
