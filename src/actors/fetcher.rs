//! The supervised fetcher actor, generic over what it fetches. Each instance runs one
//! dispatcher for its job kind: it keeps a batch pull request open on each priority's
//! consumer (so a published job arrives at once, whatever its priority), holds what arrives,
//! and starts held jobs, interactive first, then bulk, then scheduled, each as its own task
//! through the [`Pipeline`], as long as its [`Lane`] has a free slot (the lane's limit follows
//! the rate budget; see `upstream::in_flight`). Scheduled jobs are pulled and started only
//! while the [`SpareBudget`] gate is open (the day's budget is above the reserve kept for
//! people; see `upstream::budget::reserve`). A broken consumer stops the actor (`ctx.stop()`); its Supervisor
//! restarts it, and unacked jobs are redelivered by JetStream.
//!
//! Invariants: a pull request is read until it ends (never dropped while the server may still
//! deliver into it); a held job gets `Progress` every quarter of the ack wait until it starts; at
//! shutdown held jobs and late deliveries are handed back (nak) and running jobs finish.
//!
//! Every fetcher is this actor with its own [`FetchJobs`]: the OpenDota kinds through
//! `opendota_jobs`, team imports through `team_importer`.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, ActorContext, ActorFutureExt, AsyncContext, Context, Supervised, WrapFuture};
use async_nats::jetstream::AckKind;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::pipeline::{Fetched, Pipeline};
use crate::bus::queue::{BusError, Delivery, Pull};
use crate::domain::Job;
use crate::domain::{Priority, ResourceKind};
use crate::upstream::budget::reserve::SpareBudget;
use crate::upstream::error::UpstreamError;
use crate::upstream::in_flight::Lane;

/// Pause before a restarted fetcher pulls again, so a NATS outage is not a hot loop.
const RESTART_PAUSE: Duration = Duration::from_secs(1);

/// How one kind of job is fetched.
pub trait FetchJobs: Clone + Unpin + 'static {
    const KIND: ResourceKind;
    /// The actor's name in logs.
    const NAME: &'static str;
    /// Publish `dota.ready.<kind>.<id>` as soon as the resource is stored.
    const ANNOUNCE_ON_STORE: bool = true;
    fn fetch(&self, job: Job) -> impl Future<Output = Result<Fetched, UpstreamError>> + 'static;
}

/// The error for a job delivered to the wrong fetcher (consumer filters make this impossible
/// unless a subject is misconfigured); permanent, so the job is recorded as failed.
pub fn wrong_kind(job: &Job, expected: ResourceKind) -> UpstreamError {
    UpstreamError::Unreadable {
        service: job.signature.service(),
        reason: format!("{} is not a {expected} job", job.signature),
    }
}

/// Supervised dispatcher for one job kind.
pub struct Fetcher<J: FetchJobs> {
    jobs: J,
    pipeline: Pipeline,
    /// Where this kind's jobs take their slots: a service's lane (shared with the other kinds
    /// of that service), or a fixed one.
    lane: Arc<Lane>,
    spare: SpareBudget,
    shutdown: CancellationToken,
    restarted: bool,
}

impl<J: FetchJobs> Fetcher<J> {
    pub fn new(
        jobs: J,
        pipeline: Pipeline,
        lane: Arc<Lane>,
        spare: SpareBudget,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            jobs,
            pipeline,
            lane,
            spare,
            shutdown,
            restarted: false,
        }
    }
}

impl<J: FetchJobs> Actor for Fetcher<J> {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        tracing::info!(actor = J::NAME, "started");
        let pause = if self.restarted {
            RESTART_PAUSE
        } else {
            Duration::ZERO
        };
        let dispatcher = Dispatcher {
            jobs: self.jobs.clone(),
            pipeline: self.pipeline.clone(),
            lane: self.lane.clone(),
            spare: self.spare.clone(),
            shutdown: self.shutdown.clone(),
            held: Default::default(),
            pulls: Default::default(),
            running: JoinSet::new(),
        };
        ctx.spawn(dispatcher.run(pause).into_actor(self).map(|result, _, ctx| {
            if let Err(err) = result {
                tracing::error!(actor = J::NAME, %err, "dispatcher lost its queue; restarting the actor");
            }
            // Shutdown: every job started has finished; nothing was cancelled mid-job.
            ctx.stop();
        }));
    }
}

impl<J: FetchJobs> Supervised for Fetcher<J> {
    fn restarting(&mut self, _: &mut Self::Context) {
        tracing::warn!(actor = J::NAME, "restarting");
        self.restarted = true;
    }
}

/// Index of a priority in the dispatcher's arrays; interactive first, scheduled last.
const PRIORITIES: [Priority; 3] = Priority::ALL;
/// Index of [`Priority::Scheduled`] in [`PRIORITIES`].
const SCHEDULED: usize = 2;

struct Dispatcher<J: FetchJobs> {
    jobs: J,
    pipeline: Pipeline,
    lane: Arc<Lane>,
    /// Open while scheduled jobs may start.
    spare: SpareBudget,
    shutdown: CancellationToken,
    /// Delivered jobs waiting for a slot, per priority.
    held: [VecDeque<Delivery>; 3],
    /// The open pull request per priority.
    pulls: [Option<Pull>; 3],
    running: JoinSet<()>,
}

/// The next delivery of `pull`, or never when there is no open request.
async fn next_of(pull: &mut Option<Pull>) -> Option<Result<Delivery, BusError>> {
    match pull {
        Some(pull) => pull.next().await,
        None => std::future::pending().await,
    }
}

impl<J: FetchJobs> Dispatcher<J> {
    async fn run(mut self, pause: Duration) -> Result<(), BusError> {
        let shutdown = self.shutdown.clone();
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = shutdown.cancelled() => {}
        }
        let result = self.dispatch(&shutdown).await;
        self.wind_down(result.is_ok()).await;
        result
    }

    /// Until shutdown or a queue failure: start held jobs, keep pulls open, wait for news.
    async fn dispatch(&mut self, shutdown: &CancellationToken) -> Result<(), BusError> {
        let mut changed = self.lane.subscribe();
        let mut spare = self.spare.clone();
        let mut progress = tokio::time::interval(self.pipeline.queue.progress_every());
        progress.tick().await;
        loop {
            if shutdown.is_cancelled() {
                return Ok(());
            }
            changed.borrow_and_update();
            spare.borrow_and_update();
            self.start_held();
            self.open_pulls().await?;
            let [interactive, bulk, scheduled] = &mut self.pulls;
            tokio::select! {
                biased;
                () = shutdown.cancelled() => {}
                _ = changed.changed() => {}
                Ok(()) = spare.changed() => {}
                Some(_) = self.running.join_next(), if !self.running.is_empty() => {}
                next = next_of(interactive) => self.received(0, next)?,
                next = next_of(bulk) => self.received(1, next)?,
                next = next_of(scheduled) => self.received(SCHEDULED, next)?,
                _ = progress.tick() => {
                    for delivery in self.held.iter().flatten() {
                        ack(delivery, AckKind::Progress).await;
                    }
                }
            }
        }
    }

    fn received(
        &mut self,
        index: usize,
        next: Option<Result<Delivery, BusError>>,
    ) -> Result<(), BusError> {
        match next {
            Some(Ok(delivery)) => self.held[index].push_back(delivery),
            Some(Err(err)) => return Err(err),
            None => self.pulls[index] = None,
        }
        Ok(())
    }

    /// Starts held jobs while the lane has slots, interactive before bulk before scheduled
    /// (scheduled ones only while the day's budget can spare them).
    fn start_held(&mut self) {
        let spare = self.spare.is_open();
        for (index, held) in self.held.iter_mut().enumerate() {
            if index == SCHEDULED && !spare {
                return;
            }
            while !held.is_empty() {
                let Some(slot) = self.lane.try_job() else {
                    return;
                };
                let Some(delivery) = held.pop_front() else {
                    return;
                };
                let (jobs, pipeline) = (self.jobs.clone(), self.pipeline.clone());
                // Its own task on this (the System) thread: fetch futures need not be `Send`.
                self.running.spawn_local(async move {
                    pipeline
                        .run(delivery, J::ANNOUNCE_ON_STORE, |job| jobs.fetch(job))
                        .await;
                    drop(slot);
                });
            }
        }
    }

    /// Opens a pull request on each priority that has none, for the free slots not already
    /// spoken for by held jobs (scheduled: only while nothing more urgent is held and the
    /// day's budget can spare it, so its jobs wait in JetStream, not here, and never take a
    /// slot an interactive or bulk job in hand is waiting for). The priorities ask independently (an idle interactive
    /// request must not keep bulk from asking), so up to three times the free slots may arrive:
    /// the surplus is held, with `Progress`, until slots free up. Interactive always asks
    /// for at least one while it holds none: a person's job published while every slot is
    /// taken is then in hand when the next slot frees, ahead of held bulk jobs.
    async fn open_pulls(&mut self) -> Result<(), BusError> {
        for (index, priority) in PRIORITIES.into_iter().enumerate() {
            if self.pulls[index].is_some() {
                continue;
            }
            let held: usize = self.held.iter().map(VecDeque::len).sum();
            if index == SCHEDULED && (held > 0 || !self.spare.is_open()) {
                continue;
            }
            let mut want = self.lane.free().saturating_sub(held);
            if priority == Priority::Interactive && self.held[index].is_empty() {
                want = want.max(1);
            }
            if want == 0 {
                continue;
            }
            let pull = self.pipeline.queue.pull(priority, J::KIND, want).await?;
            self.pulls[index] = Some(pull);
        }
        Ok(())
    }

    /// After shutdown (`clean`): reads open pulls to their end, hands back every held job and
    /// waits for running jobs. After a queue failure: hands back what it holds and leaves
    /// running jobs to finish on their own while the actor restarts.
    async fn wind_down(&mut self, clean: bool) {
        if clean {
            for index in 0..PRIORITIES.len() {
                let Some(mut pull) = self.pulls[index].take() else {
                    continue;
                };
                // Ends by PULL_EXPIRES at the latest.
                while let Some(next) = pull.next().await {
                    match next {
                        Ok(delivery) => self.held[index].push_back(delivery),
                        Err(_) => break,
                    }
                }
            }
        }
        let held: Vec<Delivery> = self.held.iter_mut().flat_map(|h| h.drain(..)).collect();
        if !held.is_empty() {
            tracing::info!(
                actor = J::NAME,
                jobs = held.len(),
                "handing held jobs back to the queue"
            );
        }
        for delivery in &held {
            ack(delivery, AckKind::Nak(None)).await;
        }
        if clean {
            while self.running.join_next().await.is_some() {}
        } else {
            self.running.detach_all();
        }
    }
}

async fn ack(delivery: &Delivery, kind: AckKind) {
    if let Err(err) = delivery.message.ack_with(kind).await {
        tracing::warn!(%err, "could not acknowledge a held job");
    }
}
