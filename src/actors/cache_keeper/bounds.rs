//! The CacheKeeper's part in keeping the store within bounds (`actors::store_bounds` decides
//! what goes): writing the noted request times ([`NoteAccess`]), removing resources
//! ([`Evict`], one write transaction per batch) and compacting the file ([`Compact`], on this
//! thread, so no write transaction is open meanwhile).

use actix::{Handler, Message};

use super::CacheKeeper;
use crate::domain::Signature;
use crate::store::{Compacted, StoreError};

/// `signatures` were requested at `at_ms` (unix ms). Returns those whose rows were written
/// (at most one a minute per resource).
#[derive(Message)]
#[rtype(result = "Result<Vec<Signature>, StoreError>")]
pub struct NoteAccess {
    pub signatures: Vec<Signature>,
    pub at_ms: i64,
}

/// Removes resources: every one of `dropped`, then `by_size` in order until the database's
/// allocated bytes are down to `target_bytes` (all of them when `None`).
#[derive(Message)]
#[rtype(result = "Result<Evicted, StoreError>")]
pub struct Evict {
    pub dropped: Vec<Signature>,
    pub by_size: Vec<Signature>,
    pub target_bytes: Option<u64>,
}

/// What an [`Evict`] removed: counts and bytes (keys and values) of each list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Evicted {
    pub dropped: usize,
    pub dropped_bytes: u64,
    pub by_size: usize,
    pub by_size_bytes: u64,
    /// Whether the target was reached (or there was none).
    pub reached: bool,
    /// With a target: the database's allocated bytes less what was removed (an estimate of
    /// what the file needs now).
    pub allocated_bytes: Option<u64>,
}

/// Gives the file's free pages back (see `Store::compact`).
#[derive(Message)]
#[rtype(result = "Result<Compacted, StoreError>")]
pub struct Compact;

impl Handler<NoteAccess> for CacheKeeper {
    type Result = Result<Vec<Signature>, StoreError>;

    fn handle(&mut self, msg: NoteAccess, _: &mut Self::Context) -> Self::Result {
        self.store
            .write(|tx| tx.note_accesses(&msg.signatures, msg.at_ms))
    }
}

impl Handler<Evict> for CacheKeeper {
    type Result = Result<Evicted, StoreError>;

    fn handle(&mut self, msg: Evict, _: &mut Self::Context) -> Self::Result {
        self.store.write(|tx| {
            // Before any removal: what the removals below count down from.
            let allocated = match msg.target_bytes {
                Some(_) => tx.allocated_bytes()?,
                None => 0,
            };
            let mut out = Evicted::default();
            for sig in &msg.dropped {
                out.dropped_bytes += tx.remove_entry(sig)?;
                out.dropped += 1;
            }
            let Some(target) = msg.target_bytes else {
                for sig in &msg.by_size {
                    out.by_size_bytes += tx.remove_entry(sig)?;
                    out.by_size += 1;
                }
                out.reached = true;
                return Ok(out);
            };
            let allocated = allocated.saturating_sub(out.dropped_bytes);
            for sig in &msg.by_size {
                if allocated.saturating_sub(out.by_size_bytes) <= target {
                    break;
                }
                out.by_size_bytes += tx.remove_entry(sig)?;
                out.by_size += 1;
            }
            let left = allocated.saturating_sub(out.by_size_bytes);
            out.reached = left <= target;
            out.allocated_bytes = Some(left);
            Ok(out)
        })
    }
}

impl Handler<Compact> for CacheKeeper {
    type Result = Result<Compacted, StoreError>;

    fn handle(&mut self, _: Compact, _: &mut Self::Context) -> Self::Result {
        self.store.compact()
    }
}
