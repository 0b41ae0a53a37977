//! With `--store nats`, the local redb is a replica of the shared store: `Apply` (the message
//! the shared layer's mirror sends to its replica handle) writes what the KV watches saw
//! another instance (or this one) write, so reads, the hot cache (whose epochs every write
//! bumps) and team views follow the shared state. Changes come in batches
//! (whatever the watches delivered meanwhile) and cost one write transaction per batch; a
//! change the replica already has is skipped, so a replay of the current state writes nothing
//! new. Each batch records the replica's position in the data bucket in the same transaction,
//! so a restart resumes the watch after the last change applied.
//!
//! A change is judged against the replica as it is when the batch is applied, not when the
//! mirror read it: meanwhile this instance may have stored a newer copy itself (the store
//! interface writes the replica right after the shared store), or an earlier batch may have.
//! So an entry never replaces a newer copy, and an invalidation applies only to the copy it
//! was made for. Without that, a forced refresh could leave a replica holding the refetched
//! copy marked invalidated for good (found by bench/soak.sh: a player never `ready` on one
//! instance while the others served it). Likewise a removal (the shared store's upkeep
//! evicted the resource) drops only a copy fetched before it.

use actix::{Handler, Message};

use super::CacheKeeper;
use crate::bus::subjects::DATA_BUCKET;
use crate::shared::replica::{Apply, Change};
use crate::store::{StoreError, Tx};

/// At start-up with `--store nats`: forget the claims of the last run's replica; the claims
/// watch replays the live ones.
#[derive(Message)]
#[rtype(result = "Result<usize, StoreError>")]
pub struct ForgetClaims;

/// Applies `change` in `tx`; whether it changed anything.
fn apply(tx: &mut Tx<'_>, change: Change) -> Result<bool, StoreError> {
    match change {
        Change::Entry {
            signature,
            meta,
            stored,
            summary,
        } => {
            let local = tx.meta(&signature)?;
            if local == Some(meta) || local.is_some_and(|l| l.fetched_at_ms > meta.fetched_at_ms) {
                return Ok(false);
            }
            tx.put_entry_as(&signature, &stored, summary.as_deref(), meta)?;
        }
        Change::Invalidated(sig, fetched_at_ms) => {
            if tx
                .meta(&sig)?
                .is_none_or(|m| m.invalidated || m.fetched_at_ms != fetched_at_ms)
            {
                return Ok(false);
            }
            tx.invalidate(&sig)?;
        }
        Change::Failure(sig, failure) => {
            if tx.failure(&sig)? == failure {
                return Ok(false);
            }
            match &failure {
                Some(failure) => tx.put_failure(&sig, failure)?,
                None => tx.clear_failure(&sig)?,
            }
        }
        Change::Claim(sig, job) => {
            if tx.in_flight(&sig)? == job {
                return Ok(false);
            }
            match &job {
                Some(job) => tx.put_in_flight(&sig, job)?,
                None => tx.clear_in_flight(&sig)?,
            }
        }
        Change::Announced(sig, fetched_at_ms) => {
            if tx.announced(&sig)? == Some(fetched_at_ms) {
                return Ok(false);
            }
            tx.put_announced(&sig, fetched_at_ms)?;
        }
        Change::Tracked(sig, requested_at_ms) => match requested_at_ms {
            Some(at) => {
                if tx.tracked_at(&sig)? == Some(at) {
                    return Ok(false);
                }
                tx.put_tracked(&sig, at)?;
            }
            None => return tx.remove_tracked(&sig),
        },
        Change::Removed(sig, at_ms) => {
            if tx.meta(&sig)?.is_none_or(|m| m.fetched_at_ms > at_ms) {
                return Ok(false);
            }
            tx.remove_entry(&sig)?;
        }
    }
    Ok(true)
}

impl Handler<Apply> for CacheKeeper {
    type Result = Result<usize, StoreError>;

    fn handle(&mut self, msg: Apply, _: &mut Self::Context) -> Self::Result {
        self.store.write(|tx| {
            let mut changed = 0;
            for change in msg.changes {
                changed += usize::from(apply(tx, change)?);
            }
            if let Some(position) = &msg.position {
                tx.set_replica_position(DATA_BUCKET, position)?;
            }
            Ok(changed)
        })
    }
}

impl Handler<ForgetClaims> for CacheKeeper {
    type Result = Result<usize, StoreError>;

    fn handle(&mut self, _: ForgetClaims, _: &mut Self::Context) -> Self::Result {
        let claims = self.store.all_in_flight()?;
        self.store.write(|tx| {
            for (sig, _) in &claims {
                tx.clear_in_flight(sig)?;
            }
            Ok(claims.len())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Ttls;
    use crate::domain::{PlayerId, Signature};
    use crate::store::{EntryMeta, Store};

    fn player() -> Signature {
        Signature::Player(PlayerId::new(7).unwrap())
    }

    fn entry(fetched_at_ms: i64, invalidated: bool) -> Change {
        let stored = crate::encoding::Encoded::of(br#"{"profile":{}}"#).unwrap();
        Change::Entry {
            signature: player(),
            meta: EntryMeta {
                fetched_at_ms,
                invalidated,
                bytes: stored.plain_len,
                tag: Some(stored.tag),
            },
            stored,
            summary: None,
        }
    }

    /// The local copy after applying `changes` one batch each, in order.
    fn after(changes: Vec<Change>) -> EntryMeta {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.redb"), Ttls::default()).unwrap();
        for change in changes {
            store.write(|tx| apply(tx, change)).unwrap();
        }
        store.meta(&player()).unwrap().unwrap()
    }

    #[test]
    fn an_invalidation_of_an_older_copy_leaves_a_newer_one_ready() {
        // The mirror read "copy 1 invalidated" before this instance stored copy 2 itself.
        let meta = after(vec![
            entry(1, false),
            entry(2, false),
            Change::Invalidated(player(), 1),
        ]);
        assert_eq!((meta.fetched_at_ms, meta.invalidated), (2, false));
        let meta = after(vec![entry(2, false), Change::Invalidated(player(), 2)]);
        assert_eq!((meta.fetched_at_ms, meta.invalidated), (2, true));
    }

    #[test]
    fn an_older_entry_never_replaces_a_newer_one() {
        let meta = after(vec![entry(2, false), entry(1, true)]);
        assert_eq!((meta.fetched_at_ms, meta.invalidated), (2, false));
        let meta = after(vec![entry(2, true), entry(2, false)]);
        assert_eq!((meta.fetched_at_ms, meta.invalidated), (2, false));
    }

    #[test]
    fn a_removal_drops_an_older_copy_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.redb"), Ttls::default()).unwrap();
        store.write(|tx| apply(tx, entry(5, false))).unwrap();
        // Stored again after the removal: kept.
        assert!(
            !store
                .write(|tx| apply(tx, Change::Removed(player(), 4)))
                .unwrap()
        );
        assert!(store.meta(&player()).unwrap().is_some());
        assert!(
            store
                .write(|tx| apply(tx, Change::Removed(player(), 6)))
                .unwrap()
        );
        assert_eq!(store.meta(&player()).unwrap(), None);
        // Nothing left to remove.
        assert!(
            !store
                .write(|tx| apply(tx, Change::Removed(player(), 7)))
                .unwrap()
        );
    }
}
