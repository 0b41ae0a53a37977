//! The CacheKeeper's claim lifecycle: a request claims a resource ([`Prepare`]), a fetch
//! stores it and claims its fan-out in the same transaction ([`Complete`]), or records a
//! permanent failure ([`Fail`]); a claim that could not be published is given back
//! ([`Release`]); start-up re-issues left-over claims ([`RequeueAll`]); the refresh scheduler
//! claims a tracked team import before it expires ([`ClaimRefresh`]). Generations make a
//! stale or duplicated job harmless: only the current claim's job may complete or fail it.

use actix::{Handler, Message};

use super::CacheKeeper;
use crate::domain::{Fanout, Job, Priority, Signature};
use crate::encoding::Encoded;
use crate::store::{EntryMeta, Failure, StoreError, Tx, now_ms};

/// A request for a resource arrived (HTTP POST/GET): decide whether it must be (re)fetched and,
/// if so, claim it. The caller publishes the returned job.
#[derive(Message)]
#[rtype(result = "Result<Prepared, StoreError>")]
pub struct Prepare {
    pub signature: Signature,
    /// Invalidate the stored copy and refetch even if fresh (and cascade to the fan-out).
    pub force: bool,
    /// Retry a resource whose last attempt failed permanently (POST does; GET does only once
    /// the failure TTL has passed).
    pub retry_failed: bool,
    pub priority: Priority,
    /// What the fetched resource fans out to.
    pub fanout: Fanout,
}

/// What [`Prepare`] found and did.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The stored copy, if any (possibly stale).
    pub entry: Option<EntryMeta>,
    /// The stored copy is fresh: nothing was queued.
    pub fresh: bool,
    /// The last attempt failed permanently, the failure is still in force, and this request
    /// did not retry it.
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
    /// The body as it is stored (tag and gzip form), made off this thread by the fetcher.
    pub stored: Encoded,
    /// The body's summary for team views (JSON), when its kind has one.
    pub summary: Option<Vec<u8>>,
    /// Resources this one refers to (a match's players, a team's matches), each with its own
    /// fan-out.
    pub children: Vec<Child>,
    /// When it was fetched, if the caller already wrote that elsewhere (`--store nats`: the
    /// shared entry, which this replica copy must match); else now.
    pub fetched_at_ms: Option<i64>,
    /// The claim was checked in the shared store (`--store nats`); the local claims are only
    /// its replica, which may lag, so they are not checked again.
    pub claim_checked: bool,
}

/// A resource to claim as bulk work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Child {
    pub signature: Signature,
    pub fanout: Fanout,
}

impl Child {
    pub fn new(signature: Signature) -> Self {
        Self {
            signature,
            fanout: Fanout::All,
        }
    }
}

/// The refresh scheduler: claim the team import `signature` as scheduled work although its
/// stored copy may still be fresh (no invalidation: it is served as it is meanwhile). Its
/// matches are claimed on completion like any import's: only those not stored fresh. Returns
/// the job to publish; `None` when the import is already queued or running, or its last
/// attempt failed and the failure TTL has not passed.
#[derive(Message)]
#[rtype(result = "Result<Option<Job>, StoreError>")]
pub struct ClaimRefresh {
    pub signature: Signature,
}

/// Claim resources outside a fetch (a stored league asked to queue its matches). Returns the
/// jobs to publish.
#[derive(Message)]
#[rtype(result = "Result<Vec<Job>, StoreError>")]
pub struct ClaimChildren {
    pub children: Vec<Child>,
    pub forced_at_ms: Option<i64>,
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
    pub failure: Failure,
    /// As in [`Complete`]: the claim was checked in the shared store.
    pub claim_checked: bool,
}

/// Publishing a claimed job failed: give the claim back so the next request can retry.
#[derive(Message)]
#[rtype(result = "Result<(), StoreError>")]
pub struct Release {
    pub job: Job,
}

/// At start-up: give every claim left by the last run a new generation and return the jobs to
/// publish. The old messages, if still in the stream, become stale and are dropped unworked;
/// a new `Nats-Msg-Id` makes sure JetStream's duplicate window does not swallow the new ones
/// (a job that was delivered when the last run stopped is otherwise only redelivered after
/// the ack wait).
#[derive(Message)]
#[rtype(result = "Result<Vec<Job>, StoreError>")]
pub struct RequeueAll;

/// Claims `sig` in `tx` unless it is already in flight. Returns the job to publish.
fn claim(tx: &mut Tx<'_>, template: Job) -> Result<Option<Job>, StoreError> {
    if tx.in_flight(&template.signature)?.is_some() {
        return Ok(None);
    }
    tx.put_in_flight(&template.signature, &template)?;
    Ok(Some(template))
}

/// Like [`claim`], but a claim held by scheduled work is taken over by more urgent work: a
/// person's request must not wait behind a refresh that waits for the day's budget. The
/// scheduled job becomes stale (a new generation) and is dropped unworked when delivered.
fn claim_over_scheduled(tx: &mut Tx<'_>, template: Job) -> Result<Option<Job>, StoreError> {
    let held_by_scheduled = tx
        .in_flight(&template.signature)?
        .is_some_and(|current| current.priority == Priority::Scheduled);
    if held_by_scheduled && template.priority != Priority::Scheduled {
        tx.put_in_flight(&template.signature, &template)?;
        return Ok(Some(template));
    }
    claim(tx, template)
}

/// Claims the children of a completed (or stored) resource. Without a force, fresh children
/// and children whose permanent failure is still in force are left alone. With a force, every child fetched
/// before the force is invalidated and refetched, and none fetched after it, so a resource
/// shared by many parents is refetched once.
/// Children are bulk work, except those of scheduled work, which stay scheduled.
///
/// `shared_decides` (`--store nats`): the replica's claims are only a lagging copy of the
/// shared ones, so a forced child is claimed here whatever they say, and the shared claim made
/// before it is queued decides (see `StorePort::confirm_claim`). Skipping it on a copied claim
/// lost work for good: a claim whose end the replica had not seen yet (its holder had stored
/// the child before the force, or was frozen, or the claims watch missed the end), while the
/// child was marked invalidated here, left it invalidated in this replica only, with no job
/// (bench/soak.sh: one instance missing players that every other instance served). An
/// unforced child still defers to a copied claim: its holder stores it, and the shared check
/// of an unforced child, which compares with the replica, would otherwise refetch a copy the
/// replica received in between.
fn claim_children(
    tx: &mut Tx<'_>,
    children: Vec<Child>,
    (generation, parent): (u64, Priority),
    forced_at_ms: Option<i64>,
    now: i64,
    shared_decides: bool,
) -> Result<Vec<Job>, StoreError> {
    let priority = match parent {
        Priority::Scheduled => Priority::Scheduled,
        Priority::Interactive | Priority::Bulk => Priority::Bulk,
    };
    let mut jobs = Vec::new();
    for child in children {
        let sig = child.signature;
        match forced_at_ms {
            Some(forced_at) => {
                let refreshed_since = tx
                    .meta(&sig)?
                    .is_some_and(|m| !m.invalidated && m.fetched_at_ms >= forced_at);
                if refreshed_since {
                    continue;
                }
                tx.invalidate(&sig)?;
                tx.clear_failure(&sig)?;
            }
            None => {
                if tx.is_fresh(&sig, now)? || tx.failure_in_force(&sig, now)?.is_some() {
                    continue;
                }
            }
        }
        let template = Job {
            signature: sig,
            generation,
            priority,
            forced_at_ms,
            fanout: child.fanout,
            queued_at_ms: now,
        };
        if shared_decides && forced_at_ms.is_some() {
            tx.put_in_flight(&sig, &template)?;
            jobs.push(template);
        } else if let Some(job) = claim(tx, template)? {
            jobs.push(job);
        }
    }
    Ok(jobs)
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
            let now = now_ms();
            let entry = tx.meta(&sig)?;
            let fresh = tx.is_fresh(&sig, now)?;
            // A failure older than the failure TTL is retried as if it were a miss.
            let failure = tx.failure_in_force(&sig, now)?;
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
            let template = Job {
                signature: sig,
                generation,
                priority: msg.priority,
                forced_at_ms: msg.force.then_some(now),
                fanout: msg.fanout,
                queued_at_ms: now,
            };
            prepared.claimed = claim_over_scheduled(tx, template)?;
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
            let fetched_at_ms = msg.fetched_at_ms.unwrap_or_else(now_ms);
            let current = tx.in_flight(&sig)?.map(|c| c.generation) == Some(msg.job.generation);
            if !current && !msg.claim_checked {
                return Ok(Completed {
                    stored: false,
                    fetched_at_ms,
                    children: Vec::new(),
                });
            }
            tx.put_entry(&sig, &msg.stored, msg.summary.as_deref(), fetched_at_ms)?;
            if current {
                tx.clear_in_flight(&sig)?;
            }
            tx.clear_failure(&sig)?;
            let children = claim_children(
                tx,
                msg.children,
                (generation, msg.job.priority),
                msg.job.forced_at_ms,
                fetched_at_ms,
                msg.claim_checked,
            )?;
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
            let current = tx.in_flight(&sig)?.map(|c| c.generation) == Some(msg.job.generation);
            if !current && !msg.claim_checked {
                return Ok(false);
            }
            if current {
                tx.clear_in_flight(&sig)?;
            }
            tx.put_failure(&sig, &msg.failure)?;
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

impl Handler<RequeueAll> for CacheKeeper {
    type Result = Result<Vec<Job>, StoreError>;

    fn handle(&mut self, _: RequeueAll, _: &mut Self::Context) -> Self::Result {
        let claims = self.store.all_in_flight()?;
        let jobs: Vec<Job> = claims
            .into_iter()
            .map(|(_, job)| Job {
                generation: self.next_generation(),
                ..job
            })
            .collect();
        self.store.write(|tx| {
            for job in &jobs {
                tx.put_in_flight(&job.signature, job)?;
            }
            Ok(())
        })?;
        Ok(jobs)
    }
}

impl Handler<ClaimChildren> for CacheKeeper {
    type Result = Result<Vec<Job>, StoreError>;

    fn handle(&mut self, msg: ClaimChildren, _: &mut Self::Context) -> Self::Result {
        let generation = self.next_generation();
        self.store.write(|tx| {
            claim_children(
                tx,
                msg.children,
                (generation, Priority::Bulk),
                msg.forced_at_ms,
                now_ms(),
                false,
            )
        })
    }
}

impl Handler<ClaimRefresh> for CacheKeeper {
    type Result = Result<Option<Job>, StoreError>;

    fn handle(&mut self, msg: ClaimRefresh, _: &mut Self::Context) -> Self::Result {
        let generation = self.next_generation();
        self.store.write(|tx| {
            let now = now_ms();
            // A refresh that failed for good waits out the failure TTL, like a GET would.
            if tx.failure_in_force(&msg.signature, now)?.is_some() {
                return Ok(None);
            }
            claim(
                tx,
                Job {
                    signature: msg.signature,
                    generation,
                    priority: Priority::Scheduled,
                    forced_at_ms: None,
                    fanout: Fanout::All,
                    queued_at_ms: now,
                },
            )
        })
    }
}
