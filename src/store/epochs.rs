//! Write epochs: counters that every committed write bumps after its commit, so a reader that
//! cached something it read from redb can tell cheaply whether a write may have changed it
//! since. A reader loads the epoch *before* it opens its read transaction and keeps it with
//! what it cached; while the epoch still reads the same, no write has committed since, and the
//! cached copy is exactly what redb holds. A changed epoch only means "look again".
//!
//! Two grains: one epoch per shard of signatures (a write to one match does not send readers of
//! every other resource back to redb), and one global epoch for views that depend on many
//! resources (a team view).

use std::hash::{BuildHasher, Hash};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::domain::Signature;

/// Shards of the per-signature epochs.
const SHARDS: usize = 1024;

/// The epochs of one store, shared by every clone of it.
pub struct Epochs {
    global: AtomicU64,
    shards: Box<[AtomicU64]>,
    hasher: std::hash::RandomState,
}

impl Default for Epochs {
    fn default() -> Self {
        Self {
            global: AtomicU64::new(0),
            shards: (0..SHARDS).map(|_| AtomicU64::new(0)).collect(),
            hasher: std::hash::RandomState::new(),
        }
    }
}

impl Epochs {
    fn shard(&self, sig: &Signature) -> &AtomicU64 {
        let mut hasher = self.hasher.build_hasher();
        sig.hash(&mut hasher);
        let i = (std::hash::Hasher::finish(&hasher) as usize) % SHARDS;
        &self.shards[i]
    }

    /// The epoch of `sig`: changes after every committed write that touched it.
    pub fn of(&self, sig: &Signature) -> u64 {
        self.shard(sig).load(Ordering::SeqCst)
    }

    /// Changes after every committed write that touched any stored resource.
    pub fn global(&self) -> u64 {
        self.global.load(Ordering::SeqCst)
    }

    /// Called after a commit that touched `sigs` (and only after it: a reader that sees the new
    /// epoch must also see the commit).
    pub(super) fn bump(&self, sigs: &[Signature]) {
        if sigs.is_empty() {
            return;
        }
        for sig in sigs {
            self.shard(sig).fetch_add(1, Ordering::SeqCst);
        }
        self.global.fetch_add(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{MatchId, PlayerId};

    #[test]
    fn a_write_moves_its_signature_and_the_global_epoch() {
        let epochs = Epochs::default();
        let m = Signature::Match(MatchId::new(1).unwrap());
        let p = Signature::Player(PlayerId::new(1).unwrap());
        let (m0, g0) = (epochs.of(&m), epochs.global());
        epochs.bump(&[]);
        assert_eq!((epochs.of(&m), epochs.global()), (m0, g0));
        epochs.bump(&[p]);
        assert_eq!(epochs.global(), g0 + 1);
        epochs.bump(&[m]);
        assert!(epochs.of(&m) > m0);
        assert_eq!(epochs.global(), g0 + 2);
    }
}
