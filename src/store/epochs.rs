//! Write epochs: counters that every committed write bumps after its commit, so a reader that
//! cached something it read from redb can tell cheaply whether a write may have changed it
//! since. A reader loads the epoch *before* it opens its read transaction and keeps it with
//! what it cached; while the epoch still reads the same, no write has committed since, and the
//! cached copy is exactly what redb holds. A changed epoch only means "look again".
//!
//! Two grains: one epoch per shard of signatures (a write to one match does not send readers of
//! every other resource back to redb), and one global epoch, with a log of the signatures the
//! last writes touched, for views that depend on many resources (a team view): a view asks
//! whether any of *its* signatures was written since it was rendered
//! ([`Epochs::untouched_since`]), so the import of one league does not send the views of
//! every other league back to a full render.

use std::collections::{HashSet, VecDeque};
use std::hash::{BuildHasher, Hash};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::domain::Signature;

/// Shards of the per-signature epochs.
const SHARDS: usize = 1024;
/// Signatures of the latest writes kept for views (about 400 KB). A view not checked since
/// more writes than this is rendered again; at an import's hundred writes a second that is
/// minutes between two polls.
const RECENT_WRITES: usize = 16_384;

/// The signatures the latest commits touched, oldest first, each with the global epoch its
/// commit moved to.
#[derive(Default)]
struct Recent {
    log: VecDeque<(u64, Signature)>,
    /// The highest epoch whose signatures are no longer all in `log`.
    forgotten: u64,
}

/// The epochs of one store, shared by every clone of it.
pub struct Epochs {
    global: AtomicU64,
    shards: Box<[AtomicU64]>,
    hasher: std::hash::RandomState,
    /// Moved together with `global` (under this lock), so a reader that sees an epoch finds
    /// its signatures here.
    recent: Mutex<Recent>,
}

impl Default for Epochs {
    fn default() -> Self {
        Self {
            global: AtomicU64::new(0),
            shards: (0..SHARDS).map(|_| AtomicU64::new(0)).collect(),
            hasher: std::hash::RandomState::new(),
            recent: Mutex::default(),
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

    /// `Some(epoch)` when no write since global epoch `since` touched any of `deps`: whatever
    /// was read from them at `since` is still what redb holds at `epoch` (the global epoch
    /// now). `None` when one did, or when the writes since are no longer all remembered.
    pub fn untouched_since(&self, since: u64, deps: &HashSet<Signature>) -> Option<u64> {
        let recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        // Read under the lock: every epoch up to this one has its signatures in the log.
        let now = self.global.load(Ordering::SeqCst);
        if recent.forgotten > since {
            return None;
        }
        let touched = recent
            .log
            .iter()
            .rev()
            .take_while(|(epoch, _)| *epoch > since)
            .any(|(_, sig)| deps.contains(sig));
        (!touched).then_some(now)
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
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        let epoch = self.global.fetch_add(1, Ordering::SeqCst) + 1;
        recent.log.extend(sigs.iter().map(|sig| (epoch, *sig)));
        while recent.log.len() > RECENT_WRITES {
            if let Some((gone, _)) = recent.log.pop_front() {
                recent.forgotten = recent.forgotten.max(gone);
            }
        }
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

    #[test]
    fn a_view_is_untouched_by_writes_to_other_signatures_only() {
        let epochs = Epochs::default();
        let sig = |id| Signature::Match(MatchId::new(id).unwrap());
        let deps: HashSet<Signature> = [sig(1), sig(2)].into();
        let since = epochs.global();
        assert_eq!(epochs.untouched_since(since, &deps), Some(since));
        epochs.bump(&[sig(3), sig(4)]);
        let later = epochs
            .untouched_since(since, &deps)
            .expect("other matches only");
        assert_eq!(later, since + 1);
        epochs.bump(&[sig(5), sig(2)]);
        assert_eq!(
            epochs.untouched_since(since, &deps),
            None,
            "match 2 written"
        );
        assert_eq!(
            epochs.untouched_since(later, &deps),
            None,
            "after the check too"
        );
        assert!(epochs.untouched_since(epochs.global(), &deps).is_some());
    }

    #[test]
    fn writes_no_longer_remembered_count_as_touching_every_view() {
        let epochs = Epochs::default();
        let deps: HashSet<Signature> = [Signature::Match(MatchId::new(1).unwrap())].into();
        let since = epochs.global();
        let others: Vec<Signature> = (0..=RECENT_WRITES as u64)
            .map(|id| Signature::Player(PlayerId::new(id + 1).unwrap()))
            .collect();
        epochs.bump(&others);
        assert_eq!(epochs.untouched_since(since, &deps), None);
        assert!(epochs.untouched_since(epochs.global(), &deps).is_some());
    }
}
