//! What every fetcher shares: the job queue, the CacheKeeper, the event publisher, the retry
//! policy and the activity board; and the one routine that runs a job from delivery to ack.
//!
//! A job's life: delivered → stale check (its claim must still be in flight) → fetch (with
//! `Progress` acks while it waits for rate budget) → `Complete` in CacheKeeper → publish the
//! fan-out it claimed → ack → `dota.ready.*` event. Transient failures nak with exponential
//! backoff and jitter until the last attempt; permanent ones are recorded and announced.
//! With `--store nats` the claim checks, the store and the release also go through the shared
//! store ([`shared`]); [`activity`] keeps the per-service board.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use actix::Addr;
use async_nats::jetstream::AckKind;
use rand::Rng;
use tracing::Instrument;

mod activity;
mod shared;

use super::cache_keeper::{CacheKeeper, Child, Complete, Fail, Release};
use crate::bus::queue::{Delivery, JobQueue};
use crate::config::RetryPolicy;
use crate::domain::Job;
use crate::domain::Signature;
use crate::encoding::Encoded;
use crate::metrics as m;
use crate::shared::{SharedError, SharedStore};
use crate::store::Failure;
use crate::store::{Store, now_ms};
use crate::upstream::error::{Disposition, UpstreamError};
pub use activity::{Activity, ServiceActivity};

/// How long the fan-out of a stored resource keeps trying to queue a job: longer than a NATS
/// leader election (4-8 s seen on a 3-node cluster), well under `ACK_WAIT`.
const FANOUT_PATIENCE: Duration = Duration::from_secs(30);
/// First and largest pause between those tries.
const FANOUT_RETRY_FIRST: Duration = Duration::from_millis(200);
const FANOUT_RETRY_MAX: Duration = Duration::from_secs(4);

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
    /// With `--store nats`: the shared store, which decides claims and freshness (the local
    /// store is then its replica).
    pub shared: Option<SharedStore>,
    /// Turns true at shutdown: a job still waiting (for rate budget or the upstream) is
    /// handed back to JetStream at once instead of holding up the stop.
    pub shutdown: tokio::sync::watch::Receiver<bool>,
}

/// Failures of the pipeline itself (not of the upstream); the job is nak'ed and retried.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("cache keeper unavailable: {0}")]
    Keeper(#[from] actix::MailboxError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Bus(#[from] crate::bus::queue::BusError),
    #[error(transparent)]
    Shared(#[from] SharedError),
}

impl Pipeline {
    /// Publishes jobs that were claimed in CacheKeeper; a job that cannot be published is
    /// released so the next request claims it again. With `--store nats`, each job is first
    /// claimed in the shared store (see [`Self::claim_shared`]).
    pub async fn publish_claimed(&self, jobs: Vec<Job>) -> Result<(), PipelineError> {
        self.publish_within(jobs, Duration::ZERO).await
    }

    /// Like [`Self::publish_claimed`], retrying a job that fails for up to `patience`: the
    /// fan-out of a stored resource has no request to retry it, and must ride out a NATS
    /// leader election (seconds) rather than be lost.
    async fn publish_within(
        &self,
        jobs: Vec<Job>,
        patience: Duration,
    ) -> Result<(), PipelineError> {
        let deadline = tokio::time::Instant::now() + patience;
        let mut first_err: Option<PipelineError> = None;
        for job in jobs {
            let mut delay = FANOUT_RETRY_FIRST;
            loop {
                match self.queue_one(&job).await {
                    Ok(()) => break,
                    Err(err) if tokio::time::Instant::now() + delay < deadline => {
                        tracing::warn!(signature = %job.signature, %err, retry_in_ms = delay.as_millis() as u64, "could not queue a job; retrying");
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(FANOUT_RETRY_MAX);
                    }
                    Err(err) => {
                        tracing::error!(signature = %job.signature, %err, "could not queue job; releasing its claim");
                        self.give_back(&job).await;
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

    /// Claims `job` in the shared store (with `--store nats`) and publishes it. `Ok` also when
    /// it must not be queued after all; its local claim is then given back.
    async fn queue_one(&self, job: &Job) -> Result<(), PipelineError> {
        if let Some(shared) = &self.shared
            && !self.claim_shared(shared, job).await?
        {
            self.keeper.send(Release { job: job.clone() }).await??;
            return Ok(());
        }
        self.queue.publish(job).await?;
        metrics::counter!(m::JOBS_QUEUED, "kind" => job.signature.kind().as_str(), "priority" => job.priority.as_str()).increment(1);
        Ok(())
    }

    /// Ends the claims of a job that could not be queued, so the next request claims it.
    async fn give_back(&self, job: &Job) {
        if let Some(shared) = &self.shared
            && let Err(err) = shared.release(job).await
        {
            tracing::warn!(%err, "could not release the shared claim; it expires with its lease");
        }
        match self.keeper.send(Release { job: job.clone() }).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => tracing::error!(%err, "could not release a claim"),
            Err(err) => tracing::error!(%err, "cache keeper unavailable to release a claim"),
        }
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

        match self.is_current(&job, attempt).await {
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
        let mut shutdown = self.shutdown.clone();
        let result = loop {
            tokio::select! {
                result = &mut work => break result,
                _ = progress.tick() => ack(&message, AckKind::Progress).await,
                _ = shutdown.wait_for(|stop| *stop) => {
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
        let Some((body, encoded, summary)) = made else {
            ack(message, AckKind::Nak(Some(self.retry.backoff(attempt)))).await;
            return None;
        };
        let mut fetched_at_ms = None;
        if let Some(shared) = &self.shared {
            match self
                .store_shared(shared, job, &body, encoded.as_ref(), summary.as_deref())
                .await
            {
                Ok(Some(meta)) => fetched_at_ms = Some(meta.fetched_at_ms),
                Ok(None) => {
                    tracing::debug!("claim superseded while fetching; dropping the result");
                    ack(message, AckKind::Ack).await;
                    return None;
                }
                Err(err) => {
                    tracing::error!(%err, "storing the result in the shared store failed; will retry");
                    ack(message, AckKind::Nak(Some(self.retry.backoff(attempt)))).await;
                    return None;
                }
            }
        }
        let complete = Complete {
            job: job.clone(),
            body,
            encoded,
            summary,
            children: fetched.children,
            fetched_at_ms,
            claim_checked: self.shared.is_some(),
        };
        let completed = match self.keeper.send(complete).await {
            Ok(Ok(c)) => c,
            Ok(Err(err)) => {
                tracing::error!(%err, "storing the result failed; will retry");
                ack(message, AckKind::Nak(Some(self.retry.backoff(attempt)))).await;
                return None;
            }
            Err(err) => {
                tracing::error!(%err, "cache keeper unavailable; will retry");
                ack(message, AckKind::Nak(Some(self.retry.backoff(attempt)))).await;
                return None;
            }
        };
        if !completed.stored {
            ack(message, AckKind::Ack).await;
            return None;
        }
        // Children are claimed in the same transaction that stored this resource; a crash
        // before they are published leaves claims that start-up recovery re-publishes.
        if let Err(err) = self
            .publish_within(completed.children, FANOUT_PATIENCE)
            .await
        {
            tracing::warn!(%err, "some fan-out jobs could not be queued; they retry on the next request");
        }
        self.release_shared(job).await;
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
        if let Some(shared) = &self.shared {
            let current = shared.current_claim(&job.signature).await;
            let recorded = match current {
                Ok(Some((c, _))) if c.job.generation == job.generation => {
                    shared.put_failure(&job.signature, &failure).await
                }
                Ok(_) => {
                    ack(message, AckKind::Ack).await;
                    return None;
                }
                Err(err) => Err(err),
            };
            if let Err(err) = recorded {
                tracing::error!(%err, "could not record the failure in the shared store; will retry");
                ack(message, AckKind::Nak(Some(self.retry.backoff(attempt)))).await;
                return None;
            }
        }
        let recorded = self
            .keeper
            .send(Fail {
                job: job.clone(),
                failure,
                claim_checked: self.shared.is_some(),
            })
            .await;
        if !matches!(recorded, Ok(Ok(_))) {
            tracing::error!("could not record the failure; will retry");
            ack(message, AckKind::Nak(Some(self.retry.backoff(attempt)))).await;
            return None;
        }
        self.release_shared(job).await;
        ack(message, AckKind::Term).await;
        crate::events::announce_failed(&self.nats, job.signature, reason).await;
        metrics::counter!(m::JOBS_FAILED, "kind" => job.signature.kind().as_str(), "priority" => job.priority.as_str()).increment(1);
        Some(false)
    }

    /// Publishes `dota.ready.<kind>.<id>` (also into `DOTA_EVENTS`).
    pub async fn announce_ready(&self, signature: Signature, fetched_at_ms: i64) {
        crate::events::announce_ready(&self.nats, signature, fetched_at_ms).await;
    }
}

/// What is stored beside a fetched body: its tag and compressed forms and its team-view
/// summary. Made on the blocking pool (compressing a large match takes milliseconds), so
/// neither the System thread nor the CacheKeeper spends time on it. Should that fail, the body
/// is stored without them and readers make what they need. `None` only when the work panicked
/// (the body went with it): the job is then retried.
async fn represent(
    sig: Signature,
    body: Vec<u8>,
    summary: Option<Vec<u8>>,
) -> Option<(Vec<u8>, Option<Encoded>, Option<Vec<u8>>)> {
    let work = tokio::task::spawn_blocking(move || {
        let encoded = Encoded::of(&body)
            .inspect_err(|err| tracing::warn!(%err, "storing the body without its encodings"))
            .ok();
        // Parses the body again only when the fetch did not make the summary already.
        let summary = summary.or_else(|| crate::team::summary::of_body(&sig, &body));
        (body, encoded, summary)
    });
    work.await
        .inspect_err(|err| tracing::error!(%err, "preparing the body for storage panicked"))
        .ok()
}

async fn ack(message: &async_nats::jetstream::Message, kind: AckKind) {
    if let Err(err) = message.ack_with(kind).await {
        tracing::warn!(%err, "could not acknowledge job message");
    }
}
