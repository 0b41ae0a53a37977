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
//!   while this instance was stopped), so a change could be missing.
//!
//! The watch is a JetStream ordered push consumer on the bucket's record subjects (bodies
//! are read when their record arrives), like the KV watch of async-nats, which offers a start
//! revision only for a single key filter.

use std::pin::Pin;

use async_nats::jetstream::consumer::{DeliverPolicy, ReplayPolicy, push};
use async_nats::jetstream::kv;
use futures::{Stream, StreamExt};

use super::SharedError;
use crate::store::ReplicaPosition;

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
    /// Decides from the replica's `position` and the bucket's stream as it is now.
    pub fn decide(position: Option<ReplicaPosition>, bucket: &BucketState) -> Self {
        let Some(position) = position else {
            return Start::Full("the replica has no position in the bucket");
        };
        if position.bucket_created_ns != bucket.created_ns {
            Start::Full("the bucket was made again since the replica's position")
        } else if position.revision > bucket.last_sequence {
            Start::Full("the bucket is behind the replica's position")
        } else if bucket.first_sequence > position.revision.saturating_add(1) {
            Start::Full("the bucket no longer holds the changes after the replica's position")
        } else {
            Start::After(position.revision)
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
fn operation(headers: Option<&async_nats::HeaderMap>) -> kv::Operation {
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
/// change after that is counted `phase="live"`.
pub(super) struct Replay {
    start: Start,
    bucket_created_ns: i64,
    opened: std::time::Instant,
    read: u64,
    caught_up: bool,
    /// Set when the replay catches up, until [`Replay::caught_up_now`] is asked.
    just_caught_up: bool,
}

impl Replay {
    /// A replay from `start` in the bucket made at `bucket_created_ns`, with `pending`
    /// messages to read.
    pub(super) fn new(start: Start, bucket_created_ns: i64, pending: u64) -> Self {
        let mut replay = Self {
            start,
            bucket_created_ns,
            opened: std::time::Instant::now(),
            read: 0,
            caught_up: false,
            just_caught_up: false,
        };
        if pending == 0 {
            replay.catch_up();
        }
        replay
    }

    /// Counts `entry`, delivered by the watch.
    pub(super) fn count(&mut self, entry: &kv::Entry) {
        let phase = if self.caught_up { "live" } else { "replay" };
        metrics::counter!(crate::metrics::REPLICA_CHANGES, "phase" => phase).increment(1);
        if !self.caught_up {
            self.read += 1;
            if entry.delta == 0 {
                self.catch_up();
            }
        }
    }

    /// The position of the replica once the change at `revision` is applied.
    pub(super) fn position(&self, revision: u64) -> ReplicaPosition {
        ReplicaPosition {
            revision,
            bucket_created_ns: self.bucket_created_ns,
        }
    }

    /// True once, after the replay caught up.
    pub(super) fn caught_up_now(&mut self) -> bool {
        std::mem::take(&mut self.just_caught_up)
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

    fn at(revision: u64) -> Option<ReplicaPosition> {
        Some(ReplicaPosition {
            revision,
            bucket_created_ns: 1_000,
        })
    }

    #[test]
    fn a_replica_resumes_after_its_position() {
        assert_eq!(Start::decide(at(400), &BUCKET), Start::After(400));
        assert_eq!(Start::decide(at(500), &BUCKET), Start::After(500));
        // The messages before the position may be gone (superseded): only the next matters.
        let compacted = BucketState {
            first_sequence: 401,
            ..BUCKET
        };
        assert_eq!(Start::decide(at(400), &compacted), Start::After(400));
        // Everything was superseded or purged, and nothing written since.
        let empty = BucketState {
            first_sequence: 501,
            ..BUCKET
        };
        assert_eq!(Start::decide(at(500), &empty), Start::After(500));
    }

    #[test]
    fn a_replica_replays_everything_when_its_position_cannot_be_trusted() {
        let full = |start| matches!(start, Start::Full(_));
        assert!(full(Start::decide(None, &BUCKET)), "empty replica");
        let remade = BucketState {
            created_ns: 2_000,
            ..BUCKET
        };
        assert!(full(Start::decide(at(400), &remade)), "bucket made again");
        assert!(full(Start::decide(at(501), &BUCKET)), "bucket behind");
        let purged = BucketState {
            first_sequence: 402,
            ..BUCKET
        };
        assert!(full(Start::decide(at(400), &purged)), "change 401 is gone");
    }
}
