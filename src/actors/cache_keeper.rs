//! `CacheKeeper`: the only writer to redb. It owns TTL decisions, invalidation and the
//! in-flight set; every claim ("this resource is now queued") is made here, in one write
//! transaction, so two requests for the same resource can never both queue it.
//! Runs on its own thread under a `SyncArbiter` (redb's `begin_write` blocks), which restarts
//! it if it stops.

use actix::{Actor, Handler, Message, SyncContext};

use crate::bus::wire::Job;
use crate::domain::{Priority, Signature};
use crate::store::{EntryMeta, Failure, InFlight, Store, StoreError, Tx, now_ms};

/// A request for a resource arrived (HTTP POST/GET): decide whether it must be (re)fetched and,
/// if so, claim it. The caller publishes the returned job.
#[derive(Message)]
#[rtype(result = "Result<Prepared, StoreError>")]
pub struct Prepare {
    pub signature: Signature,
    /// Invalidate the stored copy and refetch even if fresh (and cascade to the fan-out).
    pub force: bool,
    /// Retry a resource whose last attempt failed permanently (POST does, GET does not).
    pub retry_failed: bool,
    pub priority: Priority,
}

/// What [`Prepare`] found and did.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The stored copy, if any (possibly stale).
    pub entry: Option<EntryMeta>,
    /// The stored copy is fresh: nothing was queued.
    pub fresh: bool,
    /// The last attempt failed permanently and this request did not retry it.
    pub failure: Option<Failure>,
    /// A job that this call claimed: the caller must publish it (or [`Release`] it).
    pub claimed: Option<Job>,
    /// A fetch was already queued or running; nothing new was queued.
    pub already_queued: bool,
}

/// A fetch succeeded: store the body, clear the claim, and claim the resources it fans out to.
#[derive(Message)]
#[rtype(result = "Result<Completed, StoreError>")]
pub struct Complete {
    pub job: Job,
    pub body: Vec<u8>,
    /// Resources this one refers to (a match's players, a team's matches).
    pub children: Vec<Signature>,
}

#[derive(Debug, Clone)]
pub struct Completed {
    /// False when the job was stale (its claim was gone or superseded): nothing was written.
    pub stored: bool,
    pub fetched_at_ms: i64,
    /// Claimed children the caller must publish.
    pub children: Vec<Job>,
}

/// A fetch failed permanently: record why and clear the claim. Never stores data.
#[derive(Message)]
#[rtype(result = "Result<bool, StoreError>")]
pub struct Fail {
    pub job: Job,
    pub reason: String,
    pub not_found: bool,
    pub attempts: u64,
}

/// Publishing a claimed job failed: give the claim back so the next request can retry.
#[derive(Message)]
#[rtype(result = "Result<(), StoreError>")]
pub struct Release {
    pub job: Job,
}

/// Mark stored copies stale (the invalidation API). Returns, per signature, whether a stored
/// copy existed.
#[derive(Message)]
#[rtype(result = "Result<Vec<(Signature, bool)>, StoreError>")]
pub struct Invalidate {
    pub signatures: Vec<Signature>,
}

/// At start-up: give every claim left by the last run a new generation and return the jobs to
/// publish. The old messages, if still in the stream, become stale and are dropped unworked;
/// a new `Nats-Msg-Id` makes sure JetStream's duplicate window does not swallow the new ones
/// (a job that was delivered when the last run stopped is otherwise only redelivered after
/// the ack wait).
#[derive(Message)]
#[rtype(result = "Result<Vec<Job>, StoreError>")]
pub struct RequeueAll;

pub struct CacheKeeper {
    store: Store,
    last_generation: u64,
}

impl CacheKeeper {
    pub fn new(store: Store) -> Self {
        Self {
            store,
            last_generation: 0,
        }
    }

    /// Strictly increasing generation numbers, seeded from the clock so they also increase
    /// across restarts (a restarted keeper never reuses a generation still in the stream).
    fn next_generation(&mut self) -> u64 {
        let now_us = u64::try_from(chrono::Utc::now().timestamp_micros()).unwrap_or(0);
        self.last_generation = now_us.max(self.last_generation + 1);
        self.last_generation
    }
}

impl Actor for CacheKeeper {
    type Context = SyncContext<Self>;
}

/// Claims `sig` in `tx` unless it is already in flight. Returns the job to publish.
fn claim(
    tx: &mut Tx<'_>,
    sig: Signature,
    generation: u64,
    priority: Priority,
    force: bool,
) -> Result<Option<Job>, StoreError> {
    if tx.in_flight(&sig)?.is_some() {
        return Ok(None);
    }
    let queued_at_ms = now_ms();
    tx.put_in_flight(
        &sig,
        &InFlight {
            generation,
            priority,
            force,
            queued_at_ms,
        },
    )?;
    Ok(Some(Job {
        signature: sig,
        generation,
        priority,
        force,
        queued_at_ms,
    }))
}

impl Handler<Prepare> for CacheKeeper {
    type Result = Result<Prepared, StoreError>;

    fn handle(&mut self, msg: Prepare, _: &mut Self::Context) -> Self::Result {
        let generation = self.next_generation();
        let store = self.store.clone();
        store.write(|tx| {
            let sig = msg.signature;
            if msg.force {
                tx.invalidate(&sig)?;
            }
            if msg.force || msg.retry_failed {
                tx.clear_failure(&sig)?;
            }
            let entry = tx.meta(&sig)?;
            let fresh = tx.is_fresh(&sig, now_ms())?;
            let failure = tx.failure(&sig)?;
            let mut prepared = Prepared {
                entry,
                fresh,
                failure: failure.clone(),
                claimed: None,
                already_queued: false,
            };
            if fresh || failure.is_some() {
                return Ok(prepared);
            }
            prepared.claimed = claim(tx, sig, generation, msg.priority, msg.force)?;
            prepared.already_queued = prepared.claimed.is_none();
            Ok(prepared)
        })
    }
}

impl Handler<Complete> for CacheKeeper {
    type Result = Result<Completed, StoreError>;

    fn handle(&mut self, msg: Complete, _: &mut Self::Context) -> Self::Result {
        let generation = self.next_generation();
        let store = self.store.clone();
        store.write(|tx| {
            let sig = msg.job.signature;
            let fetched_at_ms = now_ms();
            let current = tx.in_flight(&sig)?;
            if current.map(|c| c.generation) != Some(msg.job.generation) {
                return Ok(Completed {
                    stored: false,
                    fetched_at_ms,
                    children: Vec::new(),
                });
            }
            tx.put_entry(&sig, &msg.body, fetched_at_ms)?;
            tx.clear_in_flight(&sig)?;
            tx.clear_failure(&sig)?;
            let mut children = Vec::new();
            for child in msg.children {
                if msg.job.force {
                    // A forced refresh cascades: stale copies and old failures of the fan-out
                    // are refetched too.
                    tx.invalidate(&child)?;
                    tx.clear_failure(&child)?;
                } else if tx.is_fresh(&child, fetched_at_ms)? || tx.failure(&child)?.is_some() {
                    continue;
                }
                if let Some(job) = claim(tx, child, generation, Priority::Bulk, msg.job.force)? {
                    children.push(job);
                }
            }
            Ok(Completed {
                stored: true,
                fetched_at_ms,
                children,
            })
        })
    }
}

impl Handler<Fail> for CacheKeeper {
    type Result = Result<bool, StoreError>;

    fn handle(&mut self, msg: Fail, _: &mut Self::Context) -> Self::Result {
        self.store.write(|tx| {
            let sig = msg.job.signature;
            if tx.in_flight(&sig)?.map(|c| c.generation) != Some(msg.job.generation) {
                return Ok(false);
            }
            tx.clear_in_flight(&sig)?;
            tx.put_failure(
                &sig,
                &Failure {
                    reason: msg.reason,
                    not_found: msg.not_found,
                    failed_at_ms: now_ms(),
                    attempts: msg.attempts,
                },
            )?;
            Ok(true)
        })
    }
}

impl Handler<Release> for CacheKeeper {
    type Result = Result<(), StoreError>;

    fn handle(&mut self, msg: Release, _: &mut Self::Context) -> Self::Result {
        self.store.write(|tx| {
            let sig = msg.job.signature;
            if tx.in_flight(&sig)?.map(|c| c.generation) == Some(msg.job.generation) {
                tx.clear_in_flight(&sig)?;
            }
            Ok(())
        })
    }
}

impl Handler<Invalidate> for CacheKeeper {
    type Result = Result<Vec<(Signature, bool)>, StoreError>;

    fn handle(&mut self, msg: Invalidate, _: &mut Self::Context) -> Self::Result {
        self.store.write(|tx| {
            let mut out = Vec::with_capacity(msg.signatures.len());
            for sig in msg.signatures {
                let existed = tx.invalidate(&sig)?;
                tx.clear_failure(&sig)?;
                out.push((sig, existed));
            }
            Ok(out)
        })
    }
}

impl Handler<RequeueAll> for CacheKeeper {
    type Result = Result<Vec<Job>, StoreError>;

    fn handle(&mut self, _: RequeueAll, _: &mut Self::Context) -> Self::Result {
        let claims = self.store.all_in_flight()?;
        let mut jobs = Vec::with_capacity(claims.len());
        for (signature, mut claim) in claims {
            claim.generation = self.next_generation();
            jobs.push(Job {
                signature,
                generation: claim.generation,
                priority: claim.priority,
                force: claim.force,
                queued_at_ms: claim.queued_at_ms,
            });
        }
        self.store.write(|tx| {
            for job in &jobs {
                tx.put_in_flight(
                    &job.signature,
                    &InFlight {
                        generation: job.generation,
                        priority: job.priority,
                        force: job.force,
                        queued_at_ms: job.queued_at_ms,
                    },
                )?;
            }
            Ok(())
        })?;
        Ok(jobs)
    }
}
