//! Keeps this instance's redb a replica of the shared store: two KV watches (the data bucket's
//! records and the claims bucket) deliver what changed, then every change from any instance,
//! its own included; each batch of what arrived meanwhile is sent as one [`Apply`] to the
//! [`ReplicaHandle`], which applies it in one write transaction, with the replica's position
//! in the data bucket. The data watch starts after that position ([`resume`]: a restart reads
//! only what changed while it was down), or replays every record where the position cannot be
//! trusted; the claims watch always replays the live claims. A write
//! there bumps the resource's epoch, which is what drops it from this instance's hot cache: no
//! instance keeps serving a body after another one invalidated or refreshed it, once the watch
//! has delivered the change (milliseconds on a healthy cluster). A watch that fails is opened
//! again (from the position applied last, so no change is lost); so is one whose record or
//! body could not be read or applied (a leader election), and one that
//! delivers nothing while its bucket moves on (its consumer went with a dead node). A watch
//! whose replica has not been caught up for half of [`resume::away_limit`] is opened again
//! too: quiet, it resumes and is current at once; cut off from NATS for longer than removal
//! markers are kept (async-nats makes its consumer again where it stopped, without an error,
//! so a removal whose marker expired meanwhile would be missed), it replays the whole bucket
//! and drops what the replay did not deliver, once caught up ([`super::reconcile`]).

use std::time::Duration;

use async_nats::jetstream::kv;
use futures::{FutureExt, StreamExt};
use tokio_util::sync::CancellationToken;

use super::keys::{self, Record};
use super::replica::{self, Apply, Change, ReplicaHandle};
use super::resume::{self, Replay, Start};
use super::{EntryRecord, SharedError, SharedStore};
use crate::bus::subjects::DATA_BUCKET;
use crate::domain::Signature;
use crate::store::{ReplicaPosition, Store, StoreError};

/// Most changes applied in one write transaction.
const MAX_BATCH: usize = 256;
/// Most bodies read from the shared store at once while a batch is prepared.
const BODY_READS: usize = 32;
/// Pause before a failed watch is opened again, doubled on each failure in a row up to
/// [`REOPEN_AFTER_MAX`] (a replay reads every record).
const REOPEN_AFTER: Duration = Duration::from_secs(1);
const REOPEN_AFTER_MAX: Duration = Duration::from_secs(30);
/// How often a quiet watch is checked against its bucket: every write to a watched bucket is
/// followed by a record the watches deliver within milliseconds.
const STALL_CHECK: Duration = Duration::from_secs(5);
/// Longest a position with no change behind it (a batch the replica already had, such as this
/// instance's own writes) waits in memory before it is written on its own.
const POSITION_EVERY: Duration = Duration::from_secs(1);

/// Bounds on how often a watch checks whether its replica was caught up recently enough (an
/// in-memory comparison): every quarter of the wait before a refresh, at most every
/// [`STALL_CHECK`] (the default marker TTL), at least every 100 ms (a TTL of a second).
const FRESHNESS_CHECK_MAX: Duration = STALL_CHECK;
const FRESHNESS_CHECK_MIN: Duration = Duration::from_millis(100);

/// Why the watches could not be opened.
#[derive(Debug, thiserror::Error)]
pub(super) enum OpenError {
    #[error(transparent)]
    Shared(#[from] SharedError),
    /// What the replica holds (for a full replay's reconcile) could not be read.
    #[error("could not read what the replica holds: {0}")]
    Replica(#[from] StoreError),
    #[error("reading what the replica holds panicked: {0}")]
    Panicked(#[from] tokio::task::JoinError),
}

/// How [`Mirror::follow`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Followed {
    /// Shutdown.
    Stopped,
    /// A watch failed, ended, stalled or left a change unapplied: open them again after a
    /// pause.
    Failed,
    /// The replica has not been caught up for a while: open them again now.
    Refresh,
}

/// Which bucket an entry came from.
#[derive(Debug, Clone, Copy)]
enum Bucket {
    Data,
    Claims,
}

/// The replica's feeder (see the module docs).
#[derive(Clone)]
pub struct Mirror {
    pub shared: SharedStore,
    /// Applies the changes to the replica.
    pub replica: ReplicaHandle,
    /// Reads the replica, to skip what it already has.
    pub store: Store,
}

impl Mirror {
    /// Runs until shutdown.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut pause = REOPEN_AFTER;
        loop {
            match self.open().await {
                Ok((events, replay)) => {
                    match self.follow(events, replay, &shutdown, &mut pause).await {
                        Followed::Stopped => return,
                        Followed::Refresh => continue,
                        Followed::Failed => {}
                    }
                }
                Err(err) => tracing::warn!(%err, "could not watch the shared store; retrying"),
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = tokio::time::sleep(pause) => {}
            }
            pause = (pause * 2).min(REOPEN_AFTER_MAX);
        }
    }

    /// Applies what `events` deliver until they fail, end, or leave a change unapplied (the
    /// caller then opens them again), or the replica has not been caught up for half of
    /// [`resume::away_limit`]. A batch applied whole resets `pause`.
    async fn follow(
        &self,
        events: impl futures::Stream<Item = (Bucket, Result<kv::Entry, kv::WatcherError>)>,
        mut replay: Replay,
        shutdown: &CancellationToken,
        pause: &mut Duration,
    ) -> Followed {
        tokio::pin!(events);
        let mut positions = Positions::default();
        // Nothing to read (an empty bucket, or nothing changed since the position): caught up
        // already.
        let opened_ms = replay.opened_ms();
        if replay.caught_up_now() && !self.caught_up(&mut replay, opened_ms, &mut positions).await {
            return Followed::Failed;
        }
        let refresh_after = resume::away_limit(self.shared.inner.tuning.data_marker_ttl) / 2;
        let mut freshness = tokio::time::interval(
            (refresh_after / 4).clamp(FRESHNESS_CHECK_MIN, FRESHNESS_CHECK_MAX),
        );
        freshness.tick().await;
        let mut check = tokio::time::interval(STALL_CHECK);
        check.tick().await;
        let mut sequences = self.sequences().await;
        let mut delivered = false;
        loop {
            let woke = tokio::select! {
                () = shutdown.cancelled() => {
                    positions.flush(self).await;
                    return Followed::Stopped;
                }
                _ = freshness.tick() => {
                    if replay.stale(crate::store::now_ms(), refresh_after) {
                        positions.flush(self).await;
                        tracing::debug!("the replica was not caught up lately; opening the data watch again");
                        return Followed::Refresh;
                    }
                    continue;
                }
                _ = check.tick() => None,
                next = events.next() => Some(next),
            };
            let Some(first) = woke else {
                positions.flush(self).await;
                // The buckets moved on and the watches delivered nothing meanwhile: a watch
                // whose consumer went with a dead node can stall without an error.
                let now = self.sequences().await;
                if sequences.is_some() && now.is_some() && now != sequences && !delivered {
                    tracing::warn!("a shared-store watch stalled; opening it again");
                    return Followed::Failed;
                }
                sequences = now;
                delivered = false;
                continue;
            };
            delivered = true;
            let Some(first) = first else {
                tracing::warn!("a shared-store watch ended; opening it again");
                return Followed::Failed;
            };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match events.next().now_or_never() {
                    Some(Some(next)) => batch.push(next),
                    _ => break,
                }
            }
            if !self.take(batch, &mut replay, &mut positions).await {
                return Followed::Failed;
            }
            *pause = REOPEN_AFTER;
        }
    }

    /// Applies one batch the watches delivered; false when the watches must be opened again
    /// (one failed, or a change could not be applied now).
    async fn take(
        &self,
        batch: Vec<(Bucket, Result<kv::Entry, kv::WatcherError>)>,
        replay: &mut Replay,
        positions: &mut Positions,
    ) -> bool {
        // Taken when the batch arrived: what it holds was in the bucket by then.
        let taken_ms = crate::store::now_ms();
        let mut entries = Vec::with_capacity(batch.len());
        let mut failed = false;
        for (bucket, entry) in batch {
            match entry {
                Ok(entry) => entries.push((bucket, entry)),
                Err(err) => {
                    tracing::warn!(%err, "a shared-store watch failed; opening it again");
                    failed = true;
                }
            }
        }
        let last = entries
            .iter()
            .filter(|(bucket, _)| matches!(bucket, Bucket::Data))
            .inspect(|(_, entry)| replay.count(&entry.key, entry.delta))
            .map(|(_, entry)| (entry.revision, entry.delta))
            .max();
        // The batch ends at the bucket's end: the replica is current once it is applied.
        if !failed && last.is_some_and(|(_, delta)| delta == 0) {
            replay.note_current(taken_ms);
        }
        // A change that failed leaves the position where it was: the watch opened again
        // starts before it.
        let last = last.filter(|_| !failed).map(|(revision, _)| revision);
        let position = last.map(|r| replay.position(r));
        // A record whose body could not be read is not lost: the watch is opened again
        // from the last position applied, and delivers it again.
        let complete = self.apply(entries, position, positions).await;
        if let Some(revision) = last.filter(|_| complete) {
            replay.applied(revision);
        }
        if replay.caught_up_now() {
            // A full replay reconciles only when it read everything up to the bucket's end.
            if failed || !complete || !self.caught_up(replay, taken_ms, positions).await {
                return false;
            }
        } else if positions.due() {
            positions.flush(self).await;
        }
        !failed && complete
    }

    /// The last sequences of the data and claims buckets' streams; `None` when unreadable.
    async fn sequences(&self) -> Option<(u64, u64)> {
        let inner = &self.shared.inner;
        let data = inner.data.stream.get_info().await.ok()?;
        let claims = inner.claims.stream.get_info().await.ok()?;
        Some((data.state.last_sequence, claims.state.last_sequence))
    }

    /// Both watches, merged: the data bucket's from the replica's position (see [`resume`]),
    /// the claims bucket's from its current state.
    async fn open(
        &self,
    ) -> Result<
        (
            impl futures::Stream<Item = (Bucket, Result<kv::Entry, kv::WatcherError>)> + use<>,
            Replay,
        ),
        OpenError,
    > {
        let inner = &self.shared.inner;
        let bucket = resume::bucket_state(&inner.data).await?;
        let position = self.store.replica_position(DATA_BUCKET).unwrap_or_else(|err| {
            tracing::warn!(%err, "could not read the replica's position; replaying the data bucket");
            None
        });
        let start = Start::decide(
            position,
            &bucket,
            crate::store::now_ms(),
            inner.tuning.data_marker_ttl,
        );
        // What the replica holds before the replay begins, for its reconcile: read before the
        // watch is made, so whatever is stored after that is either delivered by the replay
        // or a copy fetched later than the one read here.
        let held = match start {
            Start::Full(_) => Some(self.held().await?),
            Start::After(_) => None,
        };
        let opened_ms = crate::store::now_ms();
        let inbox = inner.js.client().new_inbox();
        let (data, pending) = resume::watch(&inner.data, start, inbox).await?;
        let claims = inner
            .claims
            .watch_with_history(">")
            .await
            .map_err(SharedError::boxed("watch the claims bucket"))?;
        let events = futures::stream::select(
            data.map(|e| (Bucket::Data, e)),
            claims.map(|e| (Bucket::Claims, e)),
        );
        let replay = Replay::new(start, &bucket, pending, position, held, opened_ms);
        Ok((events, replay))
    }

    /// Applies what `entries` change, with the replica's `position` after them (kept in
    /// `positions` when nothing changes); false when some could not be read or applied now
    /// (the caller opens the watch again), true when all are in the replica (or unreadable for
    /// good).
    async fn apply(
        &self,
        entries: Vec<(Bucket, kv::Entry)>,
        position: Option<ReplicaPosition>,
        positions: &mut Positions,
    ) -> bool {
        let mut changes = Vec::with_capacity(entries.len());
        let mut complete = true;
        // Bodies are read a few at a time (a replay reads one per record), in order.
        let mut read = futures::stream::iter(entries)
            .map(|(bucket, entry)| async move {
                let change = match bucket {
                    Bucket::Claims => claim_change(&entry),
                    Bucket::Data => self.data_change(&entry).await,
                };
                (entry, change)
            })
            .buffered(BODY_READS);
        while let Some((entry, change)) = read.next().await {
            match change {
                Ok(Some(change)) => changes.push(change),
                Ok(None) => {}
                Err(err @ SharedError::Decode { .. }) => {
                    tracing::warn!(key = %entry.key, %err, "skipping an unreadable shared record");
                }
                Err(err) => {
                    tracing::warn!(key = %entry.key, %err, "could not read a shared record; replaying the watch");
                    complete = false;
                }
            }
        }
        let position = position.filter(|_| complete);
        if changes.is_empty() {
            positions.hold(position);
            return complete;
        }
        let position = position.or_else(|| positions.pending.take());
        match self.replica.send(Apply { changes, position }).await {
            Ok(Ok(_)) => {
                positions.written();
                complete
            }
            Ok(Err(err)) => {
                tracing::error!(%err, "could not apply shared changes to the replica; replaying the watch");
                false
            }
            Err(err) => {
                tracing::error!(%err, "the replica's keeper is unavailable for shared changes; replaying the watch");
                false
            }
        }
    }

    /// What a data-bucket entry changes in the replica, if anything.
    async fn data_change(&self, entry: &kv::Entry) -> Result<Option<Change>, SharedError> {
        let Some((record, sig)) = keys::parse_record(&entry.key) else {
            return Ok(None);
        };
        let live = super::is_live(entry);
        let decode = |what| {
            move |source| SharedError::Decode {
                key: format!("{what} {}", entry.key),
                source,
            }
        };
        Ok(match (record, live) {
            (Record::Meta, true) => {
                let record: EntryRecord =
                    serde_json::from_slice(&entry.value).map_err(decode("entry"))?;
                self.entry_change(sig, record).await?
            }
            (Record::Failure, true) => Some(Change::Failure(
                sig,
                Some(serde_json::from_slice(&entry.value).map_err(decode("failure"))?),
            )),
            (Record::Failure, false) => Some(Change::Failure(sig, None)),
            (Record::Announced, true) => Some(Change::Announced(
                sig,
                serde_json::from_slice(&entry.value).map_err(decode("announcement"))?,
            )),
            (Record::Tracked, true) => Some(Change::Tracked(
                sig,
                Some(serde_json::from_slice(&entry.value).map_err(decode("tracked import"))?),
            )),
            (Record::Tracked, false) => Some(Change::Tracked(sig, None)),
            // Evicted by the shared store's upkeep (the only writer that removes a record).
            (Record::Meta, false) => Some(Change::Removed(sig, created_ms(entry))),
            (Record::Announced | Record::Body, _) => None,
        })
    }

    /// A stored entry: nothing when the replica has it, an invalidation when only that
    /// changed, else the whole entry (its encodings made here, off the keeper's thread).
    async fn entry_change(
        &self,
        sig: Signature,
        record: EntryRecord,
    ) -> Result<Option<Change>, SharedError> {
        let local = self.store.meta(&sig).ok().flatten();
        if local == Some(record.meta) {
            return Ok(None);
        }
        let same_body = local.is_some_and(|l| {
            l.fetched_at_ms == record.meta.fetched_at_ms
                && l.tag == record.meta.tag
                && l.bytes == record.meta.bytes
        });
        if same_body && record.meta.invalidated {
            return Ok(Some(Change::Invalidated(sig, record.meta.fetched_at_ms)));
        }
        // Gone: a newer store replaced it, and its own record follows.
        let Some(body) = self.shared.body(&sig, &record).await? else {
            return Ok(None);
        };
        Ok(replica::entry(sig, record, body).await)
    }
}

/// A position with no change behind it, held until [`POSITION_EVERY`] has passed since the
/// last one written (or the replay caught up, or the watch stops): writing each on its own
/// would double the replica's write transactions while this instance stores (the watch
/// delivers its own writes, which the replica already has). A position lost at a crash only
/// makes the next start read a few changes the replica skips.
#[derive(Default)]
pub(super) struct Positions {
    pending: Option<ReplicaPosition>,
    written_at: Option<tokio::time::Instant>,
}

impl Positions {
    pub(super) fn hold(&mut self, position: Option<ReplicaPosition>) {
        if position.is_some() {
            self.pending = position;
        }
    }

    pub(super) fn written(&mut self) {
        self.pending = None;
        self.written_at = Some(tokio::time::Instant::now());
    }

    fn due(&self) -> bool {
        self.written_at
            .is_none_or(|at| at.elapsed() >= POSITION_EVERY)
    }

    /// Writes the held position, if any.
    pub(super) async fn flush(&mut self, mirror: &Mirror) {
        let Some(position) = self.pending.take() else {
            return;
        };
        let apply = Apply {
            changes: Vec::new(),
            position: Some(position),
        };
        match mirror.replica.send(apply).await {
            Ok(Ok(_)) => self.written(),
            // Not lost: a later batch or flush writes a later one.
            _ => tracing::debug!("could not record the replica's position; later"),
        }
    }
}

/// When `entry` was written (unix ms, the server's clock).
fn created_ms(entry: &kv::Entry) -> i64 {
    i64::try_from(entry.created.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// What a claims-bucket entry changes in the replica.
fn claim_change(entry: &kv::Entry) -> Result<Option<Change>, SharedError> {
    let Some(sig) = keys::parse(&entry.key) else {
        return Ok(None);
    };
    let job = super::claims::claim_of(entry)?.map(|record| record.job);
    Ok(Some(Change::Claim(sig, job)))
}
