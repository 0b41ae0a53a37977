//! What the shared store hands this instance's replica: each [`Change`] seen in JetStream, sent
//! as one [`Apply`] batch to whoever keeps the replica. The mirror and the store interface hold
//! that as a [`ReplicaHandle`] (an actix `Recipient`), so this layer names a message, never
//! the actor that applies it.

use actix::{Message, Recipient};

use super::EntryRecord;
use super::data::BodyForm;
use crate::domain::{Job, Signature};
use crate::encoding::Encoded;
use crate::store::{EntryMeta, Failure, ReplicaPosition, StoreError};

/// One change seen in the shared store.
#[derive(Debug)]
pub enum Change {
    /// A stored resource.
    Entry {
        signature: Signature,
        meta: EntryMeta,
        /// The body as stored: kept as the shared store holds it, never compressed again.
        stored: Encoded,
        summary: Option<Vec<u8>>,
    },
    /// The stored copy fetched at this instant (Unix ms) was marked invalidated (its body is
    /// unchanged). It concerns that copy only: a newer one the replica holds stays as it is.
    Invalidated(Signature, i64),
    /// A failure was recorded (`Some`) or cleared (`None`).
    Failure(Signature, Option<Failure>),
    /// A claim was made or renewed (`Some`), or ended or expired (`None`).
    Claim(Signature, Option<Job>),
    /// A team import was announced complete.
    Announced(Signature, i64),
    /// A team import was tracked (`Some`: last requested then) or untracked.
    Tracked(Signature, Option<i64>),
    /// The stored resource was removed from the shared store at this instant (Unix ms, the
    /// server's time) by its upkeep: the replica drops its copy, unless it holds one fetched
    /// after that (stored again meanwhile; that copy's own change follows).
    Removed(Signature, i64),
}

/// Apply changes seen in the shared store to the replica, in one write; returns how many
/// changed it.
#[derive(Message)]
#[rtype(result = "Result<usize, StoreError>")]
pub struct Apply {
    pub changes: Vec<Change>,
    /// The replica's position in the data bucket once `changes` are applied, when they leave
    /// no earlier change of that bucket unapplied: recorded in the same write, so the watch
    /// resumes after it.
    pub position: Option<ReplicaPosition>,
}

impl Apply {
    /// `changes`, saying nothing of the replica's position (a copy made outside the watch).
    pub fn of(changes: Vec<Change>) -> Self {
        Self {
            changes,
            position: None,
        }
    }
}

/// Whoever keeps the replica (the CacheKeeper, wired by the application).
pub type ReplicaHandle = Recipient<Apply>;

/// The replica's copy of a shared entry whose body bytes are `bytes` (in `record.form`). A
/// gzip body is kept as it is; a plain one (written before bodies had one stored form) is
/// compressed on the blocking pool. `None` only if that failed (the body went with it).
pub async fn entry(sig: Signature, record: EntryRecord, bytes: Vec<u8>) -> Option<Change> {
    let summary = record.summary_bytes();
    let meta = record.meta;
    let stored = match (record.form, meta.tag) {
        (BodyForm::Gzip, Some(tag)) => Encoded {
            tag,
            gzip: bytes,
            plain_len: meta.bytes,
        },
        (BodyForm::Gzip, None) => {
            let plain = crate::encoding::gunzip(&bytes)
                .inspect_err(|err| tracing::error!(%err, signature = %sig, "a shared body does not decompress"))
                .ok()?;
            Encoded {
                tag: crate::encoding::ContentTag::of(&plain),
                gzip: bytes,
                plain_len: meta.bytes,
            }
        }
        (BodyForm::Plain, _) => tokio::task::spawn_blocking(move || Encoded::of(&bytes))
            .await
            .inspect_err(|err| tracing::error!(%err, "encoding a shared body panicked"))
            .ok()?
            .inspect_err(|err| tracing::error!(%err, "could not compress a shared body"))
            .ok()?,
    };
    Some(Change::Entry {
        signature: sig,
        meta,
        stored,
        summary,
    })
}
