//! The CacheKeeper's tracking messages: a requested team import is tracked for the refresh
//! scheduler ([`Track`]), and stops being tracked when asked or when its last request is older
//! than `--track-days` ([`Untrack`]).

use actix::{Handler, Message};

use super::CacheKeeper;
use crate::domain::Signature;
use crate::store::StoreError;

/// The team import `signature` was requested at `requested_at_ms` (unix ms).
#[derive(Message)]
#[rtype(result = "Result<(), StoreError>")]
pub struct Track {
    pub signature: Signature,
    pub requested_at_ms: i64,
}

/// Stop tracking the team import `signature`. Returns whether it was tracked.
#[derive(Message)]
#[rtype(result = "Result<bool, StoreError>")]
pub struct Untrack {
    pub signature: Signature,
    /// Only if its last request is still this one (the scheduler's expiry must not undo a
    /// request that came in meanwhile); `None`: unconditionally.
    pub if_requested_at_ms: Option<i64>,
}

impl Handler<Track> for CacheKeeper {
    type Result = Result<(), StoreError>;

    fn handle(&mut self, msg: Track, _: &mut Self::Context) -> Self::Result {
        self.store
            .write(|tx| tx.put_tracked(&msg.signature, msg.requested_at_ms))
    }
}

impl Handler<Untrack> for CacheKeeper {
    type Result = Result<bool, StoreError>;

    fn handle(&mut self, msg: Untrack, _: &mut Self::Context) -> Self::Result {
        if let Some(at) = msg.if_requested_at_ms
            && self.store.tracked_at(&msg.signature)? != Some(at)
        {
            return Ok(false);
        }
        self.store.write(|tx| tx.remove_tracked(&msg.signature))
    }
}
