//! What the replica's data watch does once it has caught up with the bucket: a full replay
//! reconciles (drops what the replica held before it began and the bucket no longer holds,
//! an eviction whose marker expired while the replica was away: see [`super::resume`]), and
//! either way the replica's position is written with the time it was current. Called by the
//! [`Mirror`]'s watch loop; the removals go to the replica as one [`Apply`], with the
//! position.

use std::collections::HashMap;

use super::mirror::{Mirror, OpenError, Positions};
use super::replica::{Apply, Change};
use super::resume::Replay;
use crate::domain::Signature;

impl Mirror {
    /// Once the watch has caught up (everything the bucket held at `at_ms` delivered and
    /// applied): a full replay reconciles ([`Mirror::settle`]); either way the position is
    /// written with the time the replica was current. False when the reconcile could not be
    /// applied (the watches are opened again, and replay again).
    pub(super) async fn caught_up(
        &self,
        replay: &mut Replay,
        at_ms: i64,
        positions: &mut Positions,
    ) -> bool {
        if replay.reconciling() {
            return self.settle(replay, at_ms, positions).await;
        }
        replay.note_current(at_ms);
        positions.hold(replay.current_position());
        positions.flush(self).await;
        true
    }

    /// A full replay caught up: drops from the replica every resource it held before the
    /// replay began that the replay did not deliver (the bucket no longer holds its record:
    /// evicted, its marker expired meanwhile), each as the marker's removal would have, at
    /// the fetch time of the copy held, so a copy stored during the replay (fetched later)
    /// stays. Written with the position that says the replica is current, in one
    /// transaction: until that write, a restart replays again. Counted
    /// `phase="reconcile"`, and logged.
    async fn settle(&self, replay: &mut Replay, at_ms: i64, positions: &mut Positions) -> bool {
        let Some(unseen) = replay.take_unseen() else {
            return true;
        };
        replay.note_current(at_ms);
        let candidates = unseen.len();
        let changes = unseen
            .into_iter()
            .map(|(sig, fetched_at_ms)| Change::Removed(sig, fetched_at_ms))
            .collect();
        let apply = Apply {
            changes,
            position: replay.current_position(),
        };
        match self.replica.send(apply).await {
            Ok(Ok(dropped)) => {
                positions.written();
                metrics::counter!(crate::metrics::REPLICA_CHANGES, "phase" => "reconcile")
                    .increment(dropped as u64);
                tracing::info!(
                    dropped,
                    candidates,
                    "the full replay dropped from the replica what the data bucket no longer holds"
                );
                true
            }
            Ok(Err(err)) => {
                tracing::error!(%err, "could not drop what the data bucket no longer holds; replaying the watch");
                false
            }
            Err(err) => {
                tracing::error!(%err, "the replica's keeper is unavailable for the replay's removals; replaying the watch");
                false
            }
        }
    }

    /// Every resource the replica holds, with the fetch time of its copy (one scan of its
    /// metadata, on the blocking pool).
    pub(super) async fn held(&self) -> Result<HashMap<Signature, i64>, OpenError> {
        let store = self.store.clone();
        let residents = tokio::task::spawn_blocking(move || store.residents()).await??;
        Ok(residents
            .into_iter()
            .map(|r| (r.signature, r.fetched_at_ms))
            .collect())
    }
}
