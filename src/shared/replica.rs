//! What the shared store hands this instance's replica: each [`Change`] seen in JetStream, sent
//! as one [`Apply`] batch to whoever keeps the replica. The mirror and the store interface hold
//! that as a [`ReplicaHandle`] (an actix `Recipient`), so this layer names a message, never
//! the actor that applies it.

use actix::{Message, Recipient};

use super::EntryRecord;
use crate::domain::{Job, Signature};
use crate::encoding::Encoded;
use crate::store::{EntryMeta, Failure, StoreError};

/// One change seen in the shared store.
#[derive(Debug)]
pub enum Change {
    /// A stored resource.
    Entry {
        signature: Signature,
        meta: EntryMeta,
        body: Vec<u8>,
        encoded: Option<Encoded>,
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
}

/// Apply changes seen in the shared store to the replica, in one write; returns how many
/// changed it.
#[derive(Message)]
#[rtype(result = "Result<usize, StoreError>")]
pub struct Apply(pub Vec<Change>);

/// Whoever keeps the replica (the CacheKeeper, wired by the application).
pub type ReplicaHandle = Recipient<Apply>;

/// The replica's copy of a shared entry, with its encodings made on the blocking pool.
/// `None` only if making them panicked (the body went with it).
pub async fn entry(sig: Signature, record: EntryRecord, body: Vec<u8>) -> Option<Change> {
    let summary = record.summary_bytes();
    let meta = record.meta;
    let (body, encoded) = tokio::task::spawn_blocking(move || {
        let encoded = Encoded::of(&body).ok();
        (body, encoded)
    })
    .await
    .inspect_err(|err| tracing::error!(%err, "encoding a shared body panicked"))
    .ok()?;
    Some(Change::Entry {
        signature: sig,
        meta,
        body,
        encoded,
        summary,
    })
}
