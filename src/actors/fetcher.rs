//! The supervised fetcher actor, generic over what it fetches. Each instance runs a bounded
//! number of worker loops that pull jobs of one kind from JetStream (interactive first) and
//! run them through the [`Pipeline`]. A broken consumer stops the actor (`ctx.stop()`); its
//! Supervisor restarts it, and the unacked job is redelivered by JetStream.
//!
//! `MatchFetcher` and `PlayerFetcher` are this actor with their own [`FetchJobs`].

use std::future::Future;
use std::time::Duration;

use actix::{Actor, ActorContext, ActorFutureExt, AsyncContext, Context, Supervised, WrapFuture};
use tokio::sync::watch;

use super::pipeline::{Fetched, Pipeline};
use crate::domain::Job;
use crate::domain::ResourceKind;
use crate::upstream::error::UpstreamError;

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

/// Supervised worker pool for one job kind.
pub struct Fetcher<J: FetchJobs> {
    jobs: J,
    pipeline: Pipeline,
    /// Worker loops per actor; each holds at most one job.
    workers: usize,
    shutdown: watch::Receiver<bool>,
    restarted: bool,
    /// Worker loops still running; the actor stops itself when the last one has drained.
    running: usize,
}

impl<J: FetchJobs> Fetcher<J> {
    pub fn new(
        jobs: J,
        pipeline: Pipeline,
        workers: usize,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        Self {
            jobs,
            pipeline,
            workers: workers.max(1),
            shutdown,
            restarted: false,
            running: 0,
        }
    }
}

impl<J: FetchJobs> Actor for Fetcher<J> {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        tracing::info!(actor = J::NAME, workers = self.workers, "started");
        let pause = if self.restarted {
            RESTART_PAUSE
        } else {
            Duration::ZERO
        };
        for _ in 0..self.workers {
            let worker = work(
                self.jobs.clone(),
                self.pipeline.clone(),
                self.shutdown.clone(),
                pause,
            );
            self.running += 1;
            ctx.spawn(worker.into_actor(self).map(|result, act, ctx| {
                act.running -= 1;
                match result {
                    Err(err) => {
                        tracing::error!(actor = J::NAME, %err, "worker lost its queue; restarting the actor");
                        ctx.stop();
                    }
                    // Shutdown: every worker finished its job; nothing is cancelled mid-job.
                    Ok(()) if act.running == 0 => ctx.stop(),
                    Ok(()) => {}
                }
            }));
        }
    }
}

impl<J: FetchJobs> Supervised for Fetcher<J> {
    fn restarting(&mut self, _: &mut Self::Context) {
        tracing::warn!(actor = J::NAME, "restarting");
        self.restarted = true;
        self.running = 0;
    }
}

async fn work<J: FetchJobs>(
    jobs: J,
    pipeline: Pipeline,
    mut shutdown: watch::Receiver<bool>,
    pause: Duration,
) -> Result<(), crate::bus::queue::BusError> {
    tokio::time::sleep(pause).await;
    loop {
        if *shutdown.borrow() {
            return Ok(());
        }
        let next = tokio::select! {
            next = pipeline.queue.next(J::KIND) => next?,
            _ = shutdown.changed() => return Ok(()),
        };
        if let Some(delivery) = next {
            let jobs = jobs.clone();
            // A job in progress is finished even during shutdown: it ends in an ack or nak.
            pipeline
                .run(delivery, J::ANNOUNCE_ON_STORE, |job| jobs.fetch(job))
                .await;
        }
    }
}
