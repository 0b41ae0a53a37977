//! Where the replica's watch of the data bucket starts. The replica records the last revision
//! it applied ([`ReplicaPosition`], written with the changes), so a (re)start reads only the
//! changes made since: the bucket keeps one message per key (`history: 1`), so the messages
//! after that revision are exactly the current values, delete and purge markers included, of
//! every key changed since. A full replay (every key's current value, which skips what the
//! replica already has) is the fallback when that cannot be trusted:
//! - no position: an empty replica, or a file from before positions were kept;
//! - the bucket was made again (its stream's creation time changed), or is behind the
//!   position (its revisions started over);
//! - the stream no longer holds the message after the position (purged or compacted away
//!   while this instance was stopped), so a change could be missing;
//! - the replica was last current (caught up with the bucket) longer ago than
//!   [`away_limit`]: an eviction's purge markers expire after the data bucket's marker TTL
//!   (`--data-marker-ttl-secs`), and an expired marker in the middle of the stream moves
//!   neither its first sequence nor anything else the checks above see, so a removal made
//!   while the replica was away could be gone from the stream. A file from before the time
//!   was kept has none and replays too (once).
//!
//! A full replay cannot deliver what is gone, so once it has caught up it reconciles: every
//! resource the replica held before the replay began and the replay did not deliver (no
//! record `m.<sig>` in the bucket) is removed, as the lost marker would have removed it
//! ([`Replay::take_unseen`]).
//!
//! The watch is a JetStream ordered push consumer on the bucket's record subjects (bodies
//! are read when their record arrives), like the KV watch of async-nats, which offers a start
//! revision only for a single key filter.

use std::collections::HashMap;
use std::pin::Pin;
use std::time::Duration;

use async_nats::jetstream::consumer::{DeliverPolicy, ReplayPolicy, push};
use async_nats::jetstream::kv;
use futures::{Stream, StreamExt};

use super::SharedError;
use super::keys::{self, Record};
use crate::domain::Signature;
use crate::store::ReplicaPosition;

/// The safety margin taken off the marker TTL is this fraction of it (a tenth: 16.8 hours of
/// the default 7 days, 0.5 s of a test's 5 s). It covers what "current" rounds off: the time
/// between the server sending the message that caught the replica up and the replica noting
/// the time, a batch's apply, a follower answering a little behind its leader, and the
/// server expiring markers on its own clock. A fraction, not a fixed hour, so a short TTL
/// (tests, `--data-marker-ttl-secs`) keeps a proportionate margin.
const MARGIN_DIVISOR: u32 = 10;

/// How long ago a replica may have been last current and still resume after its position:
/// the data bucket's marker TTL less the margin ([`MARGIN_DIVISOR`]).
pub fn away_limit(marker_ttl: Duration) -> Duration {
    marker_ttl.saturating_sub(marker_ttl / MARGIN_DIVISOR)
}

/// The data bucket's record kinds the replica follows (not `b.`: bodies are read when the
/// record naming them arrives).
pub(super) const RECORDS: [&str; 4] = ["m.>", "f.>", "a.>", "t.>"];

/// Where a watch of the data bucket starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Every key's current value; says why.
    Full(&'static str),
    /// Every change after this revision.
    After(u64),
}

impl Start {
    /// Decides from the replica's `position`, the bucket's stream as it is now, the time now
    /// (unix ms) and the data bucket's marker TTL.
    pub fn decide(
        position: Option<ReplicaPosition>,
        bucket: &BucketState,
        now_ms: i64,
        marker_ttl: Duration,
    ) -> Self {
        let Some(position) = position else {
            return Start::Full("the replica has no position in the bucket");
        };
        let limit = i64::try_from(away_limit(marker_ttl).as_millis()).unwrap_or(i64::MAX);
        if position.bucket_created_ns != bucket.created_ns {
            Start::Full("the bucket was made again since the replica's position")
        } else if position.revision > bucket.last_sequence {
            Start::Full("the bucket is behind the replica's position")
        } else if bucket.first_sequence > position.revision.saturating_add(1) {
            Start::Full("the bucket no longer holds the changes after the replica's position")
        } else {
            match position.current_at_ms {
                None => Start::Full("the replica never recorded when it was last current"),
                // A clock that went back counts as no time away.
                Some(at) if now_ms.saturating_sub(at) > limit => Start::Full(
                    "the replica was last current longer ago than removal markers are kept",
                ),
                Some(_) => Start::After(position.revision),
            }
        }
    }
}

/// What [`Start::decide`] needs of the bucket's stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketState {
    pub created_ns: i64,
    pub first_sequence: u64,
    pub last_sequence: u64,
}

/// The bucket's stream as it is now.
pub(super) async fn bucket_state(data: &kv::Store) -> Result<BucketState, SharedError> {
    let info = data
        .stream
        .get_info()
        .await
        .map_err(SharedError::boxed("read the data bucket's stream"))?;
    Ok(BucketState {
        created_ns: created_ns(info.created.unix_timestamp_nanos()),
        first_sequence: info.state.first_sequence,
        last_sequence: info.state.last_sequence,
    })
}

fn created_ns(nanos: i128) -> i64 {
    i64::try_from(nanos).unwrap_or(i64::MAX)
}

/// Entries of the data bucket's watch, in revision order.
pub(super) type Entries = Pin<Box<dyn Stream<Item = Result<kv::Entry, kv::WatcherError>> + Send>>;

/// Watches the data bucket's records from `start`, delivered to `inbox`; also returns how
/// many messages the consumer had pending when it was made (what the replay reads, give or
/// take the changes made while it runs).
pub(super) async fn watch(
    data: &kv::Store,
    start: Start,
    inbox: String,
) -> Result<(Entries, u64), SharedError> {
    let deliver_policy = match start {
        Start::Full(_) => DeliverPolicy::LastPerSubject,
        Start::After(revision) => DeliverPolicy::ByStartSequence {
            start_sequence: revision.saturating_add(1),
        },
    };
    let consumer = data
        .stream
        .create_consumer(push::OrderedConfig {
            deliver_subject: inbox,
            description: Some("dota-orchestrator replica watch".to_string()),
            filter_subjects: RECORDS.map(|r| format!("{}{r}", data.prefix)).to_vec(),
            replay_policy: ReplayPolicy::Instant,
            deliver_policy,
            ..Default::default()
        })
        .await
        .map_err(SharedError::boxed("watch the data bucket"))?;
    let pending = consumer.cached_info().num_pending;
    let messages = consumer
        .messages()
        .await
        .map_err(SharedError::boxed("watch the data bucket"))?;
    let (bucket, prefix) = (data.name.clone(), data.prefix.clone());
    let entries = messages.map(move |message| entry(&bucket, &prefix, message?));
    Ok((Box::pin(entries), pending))
}

/// A delivered message as the KV entry it is.
fn entry(
    bucket: &str,
    prefix: &str,
    message: async_nats::jetstream::Message,
) -> Result<kv::Entry, kv::WatcherError> {
    let other = |what: String| kv::WatcherError::with_source(kv::WatcherErrorKind::Other, what);
    let info = message
        .info()
        .map_err(|err| other(format!("unreadable message metadata: {err}")))?;
    let key = message
        .subject
        .strip_prefix(prefix)
        .ok_or_else(|| other(format!("subject {} outside the bucket", message.subject)))?
        .to_string();
    Ok(kv::Entry {
        bucket: bucket.to_string(),
        key,
        value: message.payload.clone(),
        revision: info.stream_sequence,
        delta: info.pending,
        created: info.published,
        operation: operation(message.headers.as_ref()),
        seen_current: info.pending == 0,
    })
}

/// What a message did to its key, as async-nats reads it: the `KV-Operation` header, else a
/// server marker's reason (a per-key TTL ran out), else a put.
pub(super) fn operation(headers: Option<&async_nats::HeaderMap>) -> kv::Operation {
    let Some(headers) = headers else {
        return kv::Operation::Put;
    };
    if let Some(op) = headers.get("KV-Operation") {
        return op.as_str().parse().unwrap_or(kv::Operation::Put);
    }
    match headers
        .get(async_nats::header::NATS_MARKER_REASON)
        .map(|r| r.as_str())
    {
        Some("MaxAge" | "Purge") => kv::Operation::Purge,
        Some("Remove") => kv::Operation::Delete,
        _ => kv::Operation::Put,
    }
}

/// How far the data watch's replay got: the changes it read from where it started until it
/// caught up with the bucket (counted `phase="replay"`, and logged once caught up); every
/// change after that is counted `phase="live"`. Also what the positions it makes carry: the
/// last revision applied, and when the replica was last current.
pub(super) struct Replay {
    start: Start,
    bucket_created_ns: i64,
    opened: std::time::Instant,
    read: u64,
    caught_up: bool,
    /// Set when the replay catches up, until [`Replay::caught_up_now`] is asked.
    just_caught_up: bool,
    /// The last revision of the bucket applied (or held to be written) through this watch.
    revision: Option<u64>,
    /// When the watch was made (unix ms, read before).
    opened_ms: i64,
    /// When the replica was last current (unix ms): from its position until this watch
    /// catches up (and a full replay has reconciled), then each time it is caught up again.
    current_at_ms: Option<i64>,
    /// A full replay's reconcile: what the replica held before the replay began (signature
    /// and the fetch time of the copy it held), less every record the replay delivered.
    /// `None` for a watch resumed after a position, and once taken.
    unseen: Option<HashMap<Signature, i64>>,
}

impl Replay {
    /// A replay from `start` in `bucket` (as read before the watch was made) with `pending`
    /// messages to read, for a replica at `position` that held `held` (for a full replay),
    /// opened at `opened_ms` (unix ms, before the watch was made).
    pub(super) fn new(
        start: Start,
        bucket: &BucketState,
        pending: u64,
        position: Option<ReplicaPosition>,
        held: Option<HashMap<Signature, i64>>,
        opened_ms: i64,
    ) -> Self {
        let revision = match start {
            Start::After(revision) => Some(revision),
            // Nothing to read: every record up to the bucket's last sequence is in (none).
            Start::Full(_) if pending == 0 => Some(bucket.last_sequence),
            Start::Full(_) => None,
        };
        let mut replay = Self {
            start,
            bucket_created_ns: bucket.created_ns,
            opened: std::time::Instant::now(),
            opened_ms,
            read: 0,
            caught_up: false,
            just_caught_up: false,
            revision,
            current_at_ms: position.and_then(|p| p.current_at_ms),
            unseen: match start {
                Start::Full(_) => Some(held.unwrap_or_default()),
                Start::After(_) => None,
            },
        };
        if pending == 0 {
            replay.catch_up();
            replay.note_current(opened_ms);
        }
        replay
    }

    /// When the watch was made (unix ms, read before).
    pub(super) fn opened_ms(&self) -> i64 {
        self.opened_ms
    }

    /// Counts the entry of `key` the watch delivered, `delta` messages before the bucket's end.
    pub(super) fn count(&mut self, key: &str, delta: u64) {
        let phase = if self.caught_up { "live" } else { "replay" };
        metrics::counter!(crate::metrics::REPLICA_CHANGES, "phase" => phase).increment(1);
        if let Some(unseen) = &mut self.unseen
            && let Some((Record::Meta, sig)) = keys::parse_record(key)
        {
            unseen.remove(&sig);
        }
        if !self.caught_up {
            self.read += 1;
            if delta == 0 {
                self.catch_up();
            }
        }
    }

    /// Notes that the replica was current at `at_ms` (unix ms): every change the bucket held
    /// then is applied. Ignored before the watch caught up, and before a full replay has
    /// reconciled.
    pub(super) fn note_current(&mut self, at_ms: i64) {
        if self.caught_up && self.unseen.is_none() {
            self.current_at_ms = Some(at_ms);
        }
    }

    /// Whether the replica was last current longer ago than `after` at `now_ms`: a watch
    /// that is quiet, or cut off while its consumer keeps being made again where it stopped
    /// (async-nats' ordered consumer does that on its own, without an error), is opened again
    /// to find out (see `mirror`).
    pub(super) fn stale(&self, now_ms: i64, after: Duration) -> bool {
        let after = i64::try_from(after.as_millis()).unwrap_or(i64::MAX);
        self.caught_up
            && self.unseen.is_none()
            && self
                .current_at_ms
                .is_some_and(|at| now_ms.saturating_sub(at) > after)
    }

    /// The position of the replica once the change at `revision` is applied.
    pub(super) fn position(&self, revision: u64) -> ReplicaPosition {
        ReplicaPosition {
            revision,
            bucket_created_ns: self.bucket_created_ns,
            current_at_ms: self.current_at_ms,
        }
    }

    /// Notes that the changes up to `revision` are applied (or their position held).
    pub(super) fn applied(&mut self, revision: u64) {
        self.revision = Some(self.revision.map_or(revision, |r| r.max(revision)));
    }

    /// The replica's position as of the last change applied through this watch.
    pub(super) fn current_position(&self) -> Option<ReplicaPosition> {
        self.revision.map(|r| self.position(r))
    }

    /// True once, after the replay caught up.
    pub(super) fn caught_up_now(&mut self) -> bool {
        std::mem::take(&mut self.just_caught_up)
    }

    /// Whether this is a full replay that has not reconciled yet.
    pub(super) fn reconciling(&self) -> bool {
        self.unseen.is_some()
    }

    /// Once a full replay caught up: what the replica held before it began that it did not
    /// deliver, i.e. what the bucket no longer holds (signature, fetch time of the copy held).
    /// Dropping each as a removal at that fetch time leaves a copy stored meanwhile (fetched
    /// later) in place. `None` for a watch resumed after a position, or when taken already.
    pub(super) fn take_unseen(&mut self) -> Option<Vec<(Signature, i64)>> {
        if !self.caught_up {
            return None;
        }
        self.unseen.take().map(|u| u.into_iter().collect())
    }

    fn catch_up(&mut self) {
        self.caught_up = true;
        self.just_caught_up = true;
        let ms = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        match self.start {
            Start::After(revision) => tracing::info!(
                from_revision = revision + 1,
                changes = self.read,
                ms,
                "replica resumed the data bucket's watch after its last applied revision"
            ),
            Start::Full(why) => tracing::info!(
                changes = self.read,
                ms,
                why,
                "replica replayed the whole data bucket"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BUCKET: BucketState = BucketState {
        created_ns: 1_000,
        first_sequence: 1,
        last_sequence: 500,
    };
    /// The marker TTL of these tests, and "now".
    const TTL: Duration = Duration::from_secs(100);
    const NOW: i64 = 1_000_000_000;

    /// A replica at `revision`, last current `ago_ms` before [`NOW`].
    fn at_ago(revision: u64, ago_ms: i64) -> Option<ReplicaPosition> {
        Some(ReplicaPosition {
            revision,
            bucket_created_ns: 1_000,
            current_at_ms: Some(NOW - ago_ms),
        })
    }

    fn at(revision: u64) -> Option<ReplicaPosition> {
        at_ago(revision, 1_000)
    }

    fn decide(position: Option<ReplicaPosition>, bucket: &BucketState) -> Start {
        Start::decide(position, bucket, NOW, TTL)
    }

    #[test]
    fn a_replica_resumes_after_its_position() {
        assert_eq!(decide(at(400), &BUCKET), Start::After(400));
        assert_eq!(decide(at(500), &BUCKET), Start::After(500));
        // The messages before the position may be gone (superseded): only the next matters.
        let compacted = BucketState {
            first_sequence: 401,
            ..BUCKET
        };
        assert_eq!(decide(at(400), &compacted), Start::After(400));
        // Everything was superseded or purged, and nothing written since.
        let empty = BucketState {
            first_sequence: 501,
            ..BUCKET
        };
        assert_eq!(decide(at(500), &empty), Start::After(500));
    }

    #[test]
    fn a_replica_replays_everything_when_its_position_cannot_be_trusted() {
        let full = |start| matches!(start, Start::Full(_));
        assert!(full(decide(None, &BUCKET)), "empty replica");
        let remade = BucketState {
            created_ns: 2_000,
            ..BUCKET
        };
        assert!(full(decide(at(400), &remade)), "bucket made again");
        assert!(full(decide(at(501), &BUCKET)), "bucket behind");
        let purged = BucketState {
            first_sequence: 402,
            ..BUCKET
        };
        assert!(full(decide(at(400), &purged)), "change 401 is gone");
    }

    #[test]
    fn a_replica_away_longer_than_markers_are_kept_less_the_margin_replays_everything() {
        // TTL 100 s, margin a tenth: a replica last current up to 90 s ago resumes.
        assert_eq!(away_limit(TTL), Duration::from_secs(90));
        assert_eq!(decide(at_ago(400, 0), &BUCKET), Start::After(400));
        assert_eq!(decide(at_ago(400, 90_000), &BUCKET), Start::After(400));
        // Past that, a removal's marker may have expired: it would be missed.
        assert_eq!(
            decide(at_ago(400, 90_001), &BUCKET),
            Start::Full("the replica was last current longer ago than removal markers are kept")
        );
        assert!(matches!(
            decide(at_ago(400, 30 * 86_400_000), &BUCKET),
            Start::Full(_)
        ));
        // The default TTL of 7 days keeps a margin of 16.8 hours.
        assert_eq!(
            away_limit(super::super::DEFAULT_DATA_MARKER_TTL),
            Duration::from_secs(7 * 86_400 - 7 * 8_640)
        );
    }

    #[test]
    fn a_clock_that_went_back_counts_as_no_time_away() {
        assert_eq!(decide(at_ago(400, -60_000), &BUCKET), Start::After(400));
    }

    #[test]
    fn a_position_without_the_time_it_was_current_replays_everything_once() {
        let old = Some(ReplicaPosition {
            revision: 400,
            bucket_created_ns: 1_000,
            current_at_ms: None,
        });
        assert_eq!(
            decide(old, &BUCKET),
            Start::Full("the replica never recorded when it was last current")
        );
    }

    fn meta(sig: &Signature) -> String {
        keys::record(Record::Meta, sig)
    }

    fn player(id: u64) -> Signature {
        Signature::Player(crate::domain::PlayerId::new(id).unwrap())
    }

    #[test]
    fn a_full_replay_reconciles_what_it_did_not_deliver_once_caught_up() {
        let held = HashMap::from([(player(1), 10), (player(2), 20), (player(3), 30)]);
        let mut replay = Replay::new(Start::Full("test"), &BUCKET, 2, at(400), Some(held), NOW);
        replay.count(&meta(&player(1)), 1);
        // Not caught up yet: nothing to reconcile, and the replica is not current.
        assert_eq!(replay.take_unseen(), None);
        replay.note_current(NOW);
        assert_eq!(replay.position(410).current_at_ms, Some(NOW - 1_000));
        replay.count(&meta(&player(3)), 0);
        assert!(replay.caught_up_now());
        assert!(replay.reconciling());
        // Until it has reconciled, it is not current either.
        replay.note_current(NOW);
        assert_eq!(replay.position(420).current_at_ms, Some(NOW - 1_000));
        assert_eq!(replay.take_unseen(), Some(vec![(player(2), 20)]));
        replay.note_current(NOW + 5);
        assert_eq!(replay.position(420).current_at_ms, Some(NOW + 5));
        assert_eq!(replay.take_unseen(), None, "once");
    }

    #[test]
    fn a_full_replay_of_a_bucket_without_records_drops_everything_held() {
        let held = HashMap::from([(player(1), 10)]);
        let mut replay = Replay::new(Start::Full("test"), &BUCKET, 0, None, Some(held), NOW);
        assert!(replay.caught_up_now());
        assert_eq!(replay.take_unseen(), Some(vec![(player(1), 10)]));
        assert_eq!(replay.current_position().map(|p| p.revision), Some(500));
    }

    #[test]
    fn a_resumed_watch_with_nothing_to_read_is_current_when_opened() {
        let mut replay = Replay::new(Start::After(400), &BUCKET, 0, at(400), None, NOW);
        assert!(replay.caught_up_now());
        assert!(!replay.reconciling());
        assert_eq!(
            replay.current_position(),
            Some(ReplicaPosition {
                revision: 400,
                bucket_created_ns: 1_000,
                current_at_ms: Some(NOW),
            })
        );
        assert!(!replay.stale(NOW + 1_000, Duration::from_secs(1)));
        assert!(replay.stale(NOW + 1_001, Duration::from_secs(1)));
    }
}
