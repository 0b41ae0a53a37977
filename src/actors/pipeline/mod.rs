//! What every fetcher shares: the job queue, the CacheKeeper, the event publisher, the retry
//! policy and the activity board; and the one routine that runs a job from delivery to ack.
//!
//! A job's life: delivered → stale check (its claim must still be in flight) → fetch (with
//! `Progress` acks while it waits for rate budget) → `Complete` in CacheKeeper → publish the
//! fan-out it claimed → ack → `dota.ready.*` event. Transient failures nak with exponential
//! backoff and jitter until the last attempt; permanent ones are recorded and announced.
//! Claims, results and failures go through the store interface ([`StorePort`]), whichever
//! store is configured; [`activity`] keeps the per-service board.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use actix::Addr;
use async_nats::jetstream::AckKind;
use rand::Rng;
use tracing::Instrument;

mod activity;

use super::cache_keeper::{CacheKeeper, Child};
use super::store_port::{Entry, StorePort, StorePortError};
use crate::bus::queue::{Delivery, JobQueue};
use crate::config::RetryPolicy;
use crate::domain::Job;
use crate::domain::Signature;
use crate::encoding::Encoded;
use crate::metrics as m;
use crate::store::Failure;
use crate::store::{Store, now_ms};
use crate::upstream::error::{Disposition, UpstreamError};
pub use activity::{Activity, ServiceActivity};

/// How long the fan-out of a stored resource keeps trying to queue jobs without queueing one:
/// longer than a NATS leader election (4-8 s seen on a 3-node cluster), well under `ACK_WAIT`.
/// It starts again after every job queued, so a fan-out of thousands (a 1,000-match league,
/// its 10,000 players) rides out an election at any point, and a queue that is gone stops it
/// after this long in all.
const FANOUT_PATIENCE: Duration = Duration::from_secs(30);
/// First and largest pause between those tries.
const FANOUT_RETRY_FIRST: Duration = Duration::from_millis(200);
const FANOUT_RETRY_MAX: Duration = Duration::from_secs(4);
/// How long a job's outcome (a fetched result, a permanent failure) keeps trying to be
/// written before the job is handed back to the queue, which costs another upstream call:
/// longer than a NATS leader election, as for the fan-out. While it tries, the job's delivery
/// is kept with `Progress` acks. bench/soak.sh saw about 80 results refetched after one node
/// of three was killed, every write of those 6 s failing with "no stream found".
const WRITE_PATIENCE: Duration = Duration::from_secs(20);

impl RetryPolicy {
    /// Backoff after failed attempt `attempt` (1-based): base·2^(attempt-1), capped, with
    /// ±50 % jitter so retries of a burst do not arrive together.
    pub fn backoff(&self, attempt: u64) -> Duration {
        let exp = u32::try_from(attempt.saturating_sub(1))
            .unwrap_or(u32::MAX)
            .min(20);
        let raw = self.base_delay.saturating_mul(1 << exp).min(self.max_delay);
        raw.mul_f64(rand::rng().random_range(0.5..1.5))
    }
}

/// What a fetch produced.
pub struct Fetched {
    pub body: Vec<u8>,
    /// Resources to claim and queue as bulk work (a match's players, a team's matches).
    pub children: Vec<Child>,
    /// The body's team-view summary (JSON) when the fetch already made it from the parsed
    /// body; `None`: the pipeline makes it (for the kinds that have one).
    pub summary: Option<Vec<u8>>,
}

impl Fetched {
    /// A body with its fan-out and no summary made yet.
    pub fn new(body: Vec<u8>, children: Vec<Child>) -> Self {
        Self {
            body,
            children,
            summary: None,
        }
    }
}

/// Everything a fetcher needs besides its upstream. Cheap to clone.
#[derive(Clone)]
pub struct Pipeline {
    pub queue: JobQueue,
    pub keeper: Addr<CacheKeeper>,
    pub nats: async_nats::Client,
    pub store: Store,
    pub activity: Arc<Activity>,
    pub retry: RetryPolicy,
    /// Where claims, results and failures are written.
    pub stores: StorePort,
    /// Cancelled at shutdown: a job still waiting (for rate budget or the upstream) is
    /// handed back to JetStream at once instead of holding up the stop.
    pub shutdown: tokio_util::sync::CancellationToken,
}

/// Failures of the pipeline itself (not of the upstream); the job is nak'ed and retried.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Stores(#[from] StorePortError),
    #[error(transparent)]
    Bus(#[from] crate::bus::queue::BusError),
}

impl Pipeline {
    /// Publishes jobs that were claimed in CacheKeeper; a job that cannot be published is
    /// released so the next request claims it again. Each job's claim is first confirmed (see
    /// [`StorePort::confirm_claim`]).
    pub async fn publish_claimed(&self, jobs: Vec<Job>) -> Result<(), PipelineError> {
        self.publish_within(jobs, Duration::ZERO).await
    }

    /// Like [`Self::publish_claimed`], retrying a job that fails while less than `patience`
    /// has passed since a job was last queued: the fan-out of a stored resource has no request
    /// to retry it, and must ride out a NATS leader election (seconds) rather than be lost.
    async fn publish_within(
        &self,
        jobs: Vec<Job>,
        patience: Duration,
    ) -> Result<(), PipelineError> {
        let mut deadline = tokio::time::Instant::now() + patience;
        let mut first_err: Option<PipelineError> = None;
        for job in jobs {
            let mut delay = FANOUT_RETRY_FIRST;
            loop {
                match self.queue_one(&job).await {
                    Ok(()) => {
                        deadline = tokio::time::Instant::now() + patience;
                        break;
                    }
                    Err(err) if tokio::time::Instant::now() + delay < deadline => {
                        tracing::warn!(signature = %job.signature, %err, retry_in_ms = delay.as_millis() as u64, "could not queue a job; retrying");
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(FANOUT_RETRY_MAX);
                    }
                    Err(err) => {
                        tracing::error!(signature = %job.signature, %err, "could not queue job; releasing its claim");
                        self.stores.give_back(&job).await;
                        first_err.get_or_insert(err);
                        break;
                    }
                }
            }
        }
        match first_err {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }

    /// Confirms the claim of `job` and publishes it. `Ok` also when it must not be queued
    /// after all; its claim is then given back.
    async fn queue_one(&self, job: &Job) -> Result<(), PipelineError> {
        if !self.stores.confirm_claim(job).await? {
            return Ok(());
        }
        self.queue.publish(job).await?;
        metrics::counter!(m::JOBS_QUEUED, "kind" => job.signature.kind().as_str(), "priority" => job.priority.as_str()).increment(1);
        Ok(())
    }

    /// Runs one delivered job to its end in its own `job{kind,id,attempt}` span. Never
    /// returns an error: every outcome ends in an ack, a nak or a term.
    pub async fn run<F, Fut>(&self, delivery: Delivery, announce: bool, fetch: F)
    where
        F: FnOnce(Job) -> Fut,
        Fut: Future<Output = Result<Fetched, UpstreamError>>,
    {
        let sig = delivery.job.signature;
        let span = tracing::info_span!(
            "job",
            kind = sig.kind().as_str(),
            id = %sig.subject_id(),
            attempt = delivery.attempt
        );
        // `instrument`, not `span.enter()`: the workers share one thread, and a guard held
        // across an await would lend this job's span to whichever job runs next.
        self.run_job(delivery, announce, fetch)
            .instrument(span)
            .await;
    }

    async fn run_job<F, Fut>(&self, delivery: Delivery, announce: bool, fetch: F)
    where
        F: FnOnce(Job) -> Fut,
        Fut: Future<Output = Result<Fetched, UpstreamError>>,
    {
        let Delivery {
            job,
            message,
            attempt,
        } = delivery;
        let sig = job.signature;
        let kind = sig.kind().as_str();
        metrics::counter!(m::JOBS_STARTED, "kind" => kind, "priority" => job.priority.as_str())
            .increment(1);

        match self.stores.take_over(&job, attempt).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::debug!("stale job (claim gone or superseded); dropping it");
                ack(&message, AckKind::Ack).await;
                return;
            }
            Err(err) => {
                tracing::error!(%err, "could not read the claims");
                ack(&message, AckKind::Nak(Some(self.retry.backoff(attempt)))).await;
                return;
            }
        }
        if !self.activity.begin(sig) {
            // A duplicate delivery of a job another worker is running: look again later.
            ack(&message, AckKind::Nak(Some(Duration::from_secs(2)))).await;
            return;
        }

        let work = fetch(job.clone());
        tokio::pin!(work);
        let mut progress = tokio::time::interval(self.queue.progress_every());
        progress.tick().await;
        let result = loop {
            tokio::select! {
                result = &mut work => break result,
                _ = progress.tick() => ack(&message, AckKind::Progress).await,
                () = self.shutdown.cancelled() => {
                    tracing::info!("shutting down; handing the job back to the queue");
                    ack(&message, AckKind::Nak(None)).await;
                    self.activity.end(sig, None);
                    return;
                }
            }
        };

        let outcome = match result {
            Ok(fetched) => {
                self.finish(&job, fetched, &message, attempt, announce)
                    .await
            }
            Err(err) => self.fail(&job, err, &message, attempt).await,
        };
        self.activity.end(sig, outcome);
    }

    async fn finish(
        &self,
        job: &Job,
        fetched: Fetched,
        message: &async_nats::jetstream::Message,
        attempt: u64,
        announce: bool,
    ) -> Option<bool> {
        let made = represent(job.signature, fetched.body, fetched.summary).await;
        let Some((stored, summary)) = made else {
            ack(message, AckKind::Nak(Some(self.retry.backoff(attempt)))).await;
            return None;
        };
        let entry = Entry {
            stored,
            summary,
            children: fetched.children,
        };
        let stored = self
            .patiently(message, "result", || self.stores.store(job, entry.clone()))
            .await;
        let completed = self.written(stored, "result", message, attempt).await?;
        // Children are claimed in the same transaction that stored this resource; a crash
        // before they are published leaves claims that start-up recovery re-publishes. Queueing
        // thousands (a big league's matches and players) may outlast `ACK_WAIT`: the job says
        // it is alive meanwhile, or JetStream would deliver it again and the import run twice.
        let fanout = self.publish_within(completed.children, FANOUT_PATIENCE);
        if let Err(err) = with_progress(message, self.queue.progress_every(), fanout).await {
            tracing::warn!(%err, "some fan-out jobs could not be queued; they retry on the next request");
        }
        self.stores.end_claim(job).await;
        ack(message, AckKind::Ack).await;
        if announce {
            self.announce_ready(job.signature, completed.fetched_at_ms)
                .await;
        }
        metrics::counter!(m::JOBS_COMPLETED, "kind" => job.signature.kind().as_str(), "priority" => job.priority.as_str()).increment(1);
        tracing::info!("stored");
        Some(true)
    }

    async fn fail(
        &self,
        job: &Job,
        err: UpstreamError,
        message: &async_nats::jetstream::Message,
        attempt: u64,
    ) -> Option<bool> {
        let disposition = err.disposition();
        let last_attempt = attempt >= u64::from(self.retry.max_attempts);
        let not_found = match disposition {
            Disposition::Retry if !last_attempt => {
                let delay = self.retry.backoff(attempt);
                tracing::warn!(error = %err, delay_ms = delay.as_millis() as u64, "transient failure; retrying");
                metrics::counter!(m::JOB_RETRIES, "kind" => job.signature.kind().as_str())
                    .increment(1);
                ack(message, AckKind::Nak(Some(delay))).await;
                return None;
            }
            Disposition::Retry => false,
            Disposition::GiveUp { not_found } => not_found,
        };
        let reason = if matches!(disposition, Disposition::Retry) {
            format!("{err} (gave up after {attempt} attempts)")
        } else {
            err.to_string()
        };
        tracing::warn!(%reason, "failed permanently");
        let failure = Failure {
            reason: reason.clone(),
            not_found,
            failed_at_ms: now_ms(),
            attempts: attempt,
        };
        let recorded = self
            .patiently(message, "failure", || async {
                let current = self.stores.fail(job, failure.clone()).await?;
                Ok(current.then_some(()))
            })
            .await;
        self.written(recorded, "failure", message, attempt).await?;
        self.stores.end_claim(job).await;
        ack(message, AckKind::Term).await;
        crate::events::announce_failed(&self.nats, job.signature, reason).await;
        metrics::counter!(m::JOBS_FAILED, "kind" => job.signature.kind().as_str(), "priority" => job.priority.as_str()).increment(1);
        Some(false)
    }

    /// Runs `write` until it succeeds or [`WRITE_PATIENCE`] has passed (or shutdown begins),
    /// keeping the delivery meanwhile; the last error is returned for [`Self::written`] to
    /// hand the job back.
    async fn patiently<T, F, Fut>(
        &self,
        message: &async_nats::jetstream::Message,
        what: &str,
        mut write: F,
    ) -> Result<Option<T>, StorePortError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Option<T>, StorePortError>>,
    {
        let deadline = tokio::time::Instant::now() + WRITE_PATIENCE;
        let mut delay = FANOUT_RETRY_FIRST;
        loop {
            match write().await {
                Err(err)
                    if tokio::time::Instant::now() + delay < deadline
                        && !self.shutdown.is_cancelled() =>
                {
                    tracing::warn!(%err, retry_in_ms = delay.as_millis() as u64, "could not store the {what}; retrying");
                    ack(message, AckKind::Progress).await;
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = self.shutdown.cancelled() => {}
                    }
                    delay = (delay * 2).min(FANOUT_RETRY_MAX);
                }
                written => return written,
            }
        }
    }

    /// `Some` when the job's outcome (its `what`) was written. A stale job (`Ok(None)`: its
    /// claim was superseded while it ran) is acked and dropped; a failed write is nak'ed, so
    /// the job is retried.
    async fn written<T>(
        &self,
        written: Result<Option<T>, StorePortError>,
        what: &str,
        message: &async_nats::jetstream::Message,
        attempt: u64,
    ) -> Option<T> {
        match written {
            Ok(Some(value)) => Some(value),
            Ok(None) => {
                tracing::debug!("claim superseded while fetching; dropping the {what}");
                ack(message, AckKind::Ack).await;
                None
            }
            Err(err) => {
                tracing::error!(%err, "could not store the {what}; will retry");
                ack(message, AckKind::Nak(Some(self.retry.backoff(attempt)))).await;
                None
            }
        }
    }

    /// At start-up: queues again the work the last run left (see
    /// [`StorePort::recover_claims`]).
    pub async fn recover(&self) -> Result<(), PipelineError> {
        let jobs = self.stores.recover_claims(&self.queue).await?;
        if !jobs.is_empty() {
            tracing::info!(count = jobs.len(), "re-queuing work left from the last run");
        }
        self.publish_claimed(jobs).await
    }

    /// Publishes `dota.ready.<kind>.<id>` (also into `DOTA_EVENTS`).
    pub async fn announce_ready(&self, signature: Signature, fetched_at_ms: i64) {
        crate::events::announce_ready(&self.nats, signature, fetched_at_ms).await;
    }
}

/// A fetched body as it is stored (its tag and gzip form, see `crate::encoding`) and its
/// team-view summary. Made on the blocking pool (compressing a large match takes
/// milliseconds), so neither the System thread nor the CacheKeeper spends time on it. `None`
/// when that failed (only an allocation failure or a panic can make in-memory compression
/// fail): the job is then retried.
async fn represent(
    sig: Signature,
    body: Vec<u8>,
    summary: Option<Vec<u8>>,
) -> Option<(Encoded, Option<Vec<u8>>)> {
    let work = tokio::task::spawn_blocking(move || {
        // Parses the body again only when the fetch did not make the summary already.
        let summary = summary.or_else(|| crate::team::summary::of_body(&sig, &body));
        Encoded::of(&body).map(|stored| (stored, summary))
    });
    match work.await {
        Ok(Ok(made)) => Some(made),
        Ok(Err(err)) => {
            tracing::error!(%err, "could not compress a fetched body; the job is retried");
            None
        }
        Err(err) => {
            tracing::error!(%err, "preparing the body for storage panicked");
            None
        }
    }
}

/// Runs `work`, acking `message` with `Progress` every `every` until it is done.
async fn with_progress<T>(
    message: &async_nats::jetstream::Message,
    every: Duration,
    work: impl Future<Output = T>,
) -> T {
    tokio::pin!(work);
    let mut progress = tokio::time::interval(every);
    progress.tick().await;
    loop {
        tokio::select! {
            out = &mut work => return out,
            _ = progress.tick() => ack(message, AckKind::Progress).await,
        }
    }
}

async fn ack(message: &async_nats::jetstream::Message, kind: AckKind) {
    if let Err(err) = message.ack_with(kind).await {
        tracing::warn!(%err, "could not acknowledge job message");
    }
}
