//! The durable job queue on JetStream: creates the work-queue stream and one durable pull
//! consumer per (priority, kind), publishes jobs with `Nats-Msg-Id` dedup, opens batch pull
//! requests ([`Pull`]) for the fetcher dispatchers and reports queue depth.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{
    self,
    consumer::{AckPolicy, PullConsumer, pull},
    context,
    message::PublishMessage,
    stream,
    stream::{DiscardPolicy, RetentionPolicy, StorageType},
};
use futures::StreamExt;

use super::subjects::QueueNames;
use crate::domain::Job;
use crate::domain::{Priority, ResourceKind};

/// How long a worker may hold a job without acking or reporting progress before JetStream
/// hands it to another worker. Workers send `Progress` while they wait for rate budget.
pub const ACK_WAIT: Duration = Duration::from_secs(60);
/// Window within which a re-published `Nats-Msg-Id` is dropped as a duplicate.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);
/// Upper bound on jobs the stream holds; beyond it a publish is refused (the API answers 503)
/// instead of silently dropping older work.
pub const MAX_QUEUED_JOBS: i64 = 1_000_000;
/// Largest job message; jobs are small JSON (~150 bytes).
pub const MAX_JOB_BYTES: i32 = 64 * 1024;
/// Most jobs one pull request asks for. A dispatcher asks for as many as its lane has free
/// slots, up to this: one round trip per this many jobs at high budgets, and little held
/// client-side (where another instance cannot take it) when slots are few.
pub const MAX_BATCH: usize = 16;
/// How long an unfilled pull request waits at the server. A job published meanwhile is
/// delivered into it at once, so this costs no latency; it bounds how long a stopping
/// dispatcher waits for its outstanding requests to end (it must not drop one early: the
/// server would deliver into an inbox nobody reads, and the job would wait out `ACK_WAIT`).
pub const PULL_EXPIRES: Duration = Duration::from_secs(2);

/// Failures talking to JetStream, each with the client's error as the source. All are
/// transient from the caller's point of view.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("jetstream: could not create the jobs stream: {0}")]
    CreateStream(#[source] context::CreateStreamError),
    #[error("jetstream: could not open the jobs stream: {0}")]
    GetStream(#[source] context::GetStreamError),
    #[error("jetstream: could not create a job consumer: {0}")]
    CreateConsumer(#[source] stream::ConsumerError),
    #[error("jetstream: could not update a job consumer: {0}")]
    UpdateConsumer(#[source] stream::ConsumerUpdateError),
    #[error("jetstream: no consumer for {0} jobs")]
    NoConsumer(ResourceKind),
    #[error("jetstream: could not publish a job: {0}")]
    Publish(#[source] context::PublishError),
    #[error("jetstream: could not pull a job: {0}")]
    Pull(#[source] pull::BatchError),
    #[error("jetstream: could not receive a job: {0}")]
    Receive(#[source] async_nats::Error),
    #[error("jetstream: could not read a consumer's state: {0}")]
    ConsumerInfo(#[source] context::ConsumerInfoError),
    #[error("jetstream: could not purge the jobs stream: {0}")]
    Purge(#[source] async_nats::jetstream::stream::PurgeError),
    #[error("job payload is not valid JSON: {0}")]
    Decode(#[from] serde_json::Error),
}

/// Per-consumer depth as JetStream reports it.
#[derive(Debug, Clone, Copy)]
pub struct Depth {
    pub kind: ResourceKind,
    pub priority: Priority,
    /// Jobs waiting to be delivered.
    pub pending: u64,
    /// Jobs delivered and not yet acked (being worked on or awaiting redelivery).
    pub ack_pending: u64,
}

/// A job taken from the queue together with the JetStream message to ack.
pub struct Delivery {
    pub job: Job,
    pub message: jetstream::Message,
    /// 1 for the first delivery, 2 for the first retry, ...
    pub attempt: u64,
}

/// Handle to the jobs stream and its consumers. Cheap to clone.
#[derive(Clone)]
pub struct JobQueue {
    js: jetstream::Context,
    names: Arc<QueueNames>,
    consumers: Arc<HashMap<(Priority, ResourceKind), PullConsumer>>,
    /// How long a delivered job may go without an ack or `Progress` ([`ACK_WAIT`] unless a
    /// test shortens it).
    ack_wait: Duration,
}

impl JobQueue {
    /// Creates (or reuses, across restarts) the stream and the consumers for `kinds`.
    /// `max_attempts` bounds deliveries per job; `max_ack_pending` bounds jobs held at once per consumer;
    /// `replicas` is the stream's number of copies on a cluster; `ack_wait` is how long a job may
    /// be held without a sign of life ([`ACK_WAIT`] in production).
    pub async fn setup(
        client: async_nats::Client,
        names: QueueNames,
        kinds: &[ResourceKind],
        max_attempts: u32,
        max_ack_pending: u32,
        replicas: usize,
        ack_wait: Duration,
    ) -> Result<Self, BusError> {
        let js = jetstream::new(client);
        super::setup::with_retries("create the jobs stream", || {
            js.get_or_create_stream(jetstream::stream::Config {
                name: names.stream().to_string(),
                subjects: vec![names.all_subjects()],
                retention: RetentionPolicy::WorkQueue,
                storage: StorageType::File,
                duplicate_window: DUPLICATE_WINDOW,
                max_messages: MAX_QUEUED_JOBS,
                max_message_size: MAX_JOB_BYTES,
                discard: DiscardPolicy::New,
                num_replicas: replicas,
                ..Default::default()
            })
        })
        .await
        .map_err(BusError::CreateStream)?;
        super::setup::wait_for_leader(&js, names.stream()).await;
        let stream = js
            .get_stream(names.stream())
            .await
            .map_err(BusError::GetStream)?;
        let mut consumers = HashMap::new();
        for &kind in kinds {
            for priority in Priority::ALL {
                let name = names.consumer(priority, kind);
                let config = pull::Config {
                    durable_name: Some(name.clone()),
                    filter_subject: names.job(priority, kind),
                    ack_policy: AckPolicy::Explicit,
                    ack_wait,
                    // One spare delivery so the worker itself always sees the last
                    // attempt and records the failure, instead of JetStream silently
                    // giving up on the message.
                    max_deliver: i64::from(max_attempts) + 1,
                    max_ack_pending: i64::from(max_ack_pending),
                    ..Default::default()
                };
                let mut consumer: PullConsumer =
                    super::setup::with_retries("create a job consumer", || {
                        stream.get_or_create_consumer(&name, config.clone())
                    })
                    .await
                    .map_err(BusError::CreateConsumer)?;
                // A consumer kept from an earlier run keeps its old bound (say, before
                // `--max-in-flight` was raised), which would cap the jobs in flight silently.
                if consumer.cached_info().config.max_ack_pending != config.max_ack_pending {
                    tracing::info!(consumer = %name, max_ack_pending, "updating the consumer's bound on jobs held");
                    consumer = stream
                        .update_consumer(config)
                        .await
                        .map_err(BusError::UpdateConsumer)?;
                }
                consumers.insert((priority, kind), consumer);
            }
        }
        Ok(Self {
            js,
            names: Arc::new(names),
            consumers: Arc::new(consumers),
            ack_wait,
        })
    }

    /// How often a worker holding a job says so (`Progress`): a quarter of the ack wait.
    pub fn progress_every(&self) -> Duration {
        self.ack_wait / 4
    }

    fn consumer(&self, priority: Priority, kind: ResourceKind) -> Result<&PullConsumer, BusError> {
        self.consumers
            .get(&(priority, kind))
            .ok_or(BusError::NoConsumer(kind))
    }

    /// Publishes `job` and waits for JetStream's ack, so a returned `Ok` means it is durable.
    /// Returns whether JetStream reported it as a duplicate of a job it already holds.
    pub async fn publish(&self, job: &Job) -> Result<bool, BusError> {
        let payload = serde_json::to_vec(job)?;
        let ack = self
            .js
            .send_publish(
                self.names.job(job.priority, job.signature.kind()),
                PublishMessage::build()
                    .payload(payload.into())
                    .message_id(job.message_id()),
            )
            .await
            .map_err(BusError::Publish)?
            .await
            .map_err(BusError::Publish)?;
        Ok(ack.duplicate)
    }

    /// Drops every queued job and returns how many. Only for a stream no other instance uses
    /// (the embedded server's, or an instance's own on a shared server), right before start-up re-publishes every claim from redb under
    /// a new generation: each dropped job was either stale or is published again. Jobs that a
    /// killed run held stay ack-pending until [`ACK_WAIT`] and fill `max_ack_pending`, which
    /// would stall the restarted workers for up to a minute; a purge releases them at once.
    pub async fn discard_all(&self) -> Result<u64, BusError> {
        let stream = self
            .js
            .get_stream(self.names.stream())
            .await
            .map_err(BusError::GetStream)?;
        Ok(stream.purge().await.map_err(BusError::Purge)?.purged)
    }

    /// Asks the `priority` consumer of `kind` for up to `max` jobs (at most [`MAX_BATCH`]);
    /// they arrive through the returned [`Pull`] as they are published, until it has them all
    /// or [`PULL_EXPIRES`] passes.
    pub async fn pull(
        &self,
        priority: Priority,
        kind: ResourceKind,
        max: usize,
    ) -> Result<Pull, BusError> {
        let batch = self
            .consumer(priority, kind)?
            .batch()
            .max_messages(max.clamp(1, MAX_BATCH))
            .expires(PULL_EXPIRES)
            .messages()
            .await
            .map_err(BusError::Pull)?;
        Ok(Pull { batch })
    }

    /// Depth of every consumer for `kinds`.
    pub async fn depth(&self, kinds: &[ResourceKind]) -> Result<Vec<Depth>, BusError> {
        let mut out = Vec::new();
        for &kind in kinds {
            for priority in Priority::ALL {
                let info = self
                    .consumer(priority, kind)?
                    .get_info()
                    .await
                    .map_err(BusError::ConsumerInfo)?;
                out.push(Depth {
                    kind,
                    priority,
                    pending: info.num_pending,
                    ack_pending: info.num_ack_pending as u64,
                });
            }
        }
        Ok(out)
    }
}

/// One outstanding pull request. Keep it until [`Pull::next`] says it has ended: dropped
/// early, jobs the server still delivers into it are lost until `ACK_WAIT`.
pub struct Pull {
    batch: pull::Batch,
}

impl Pull {
    /// The next job delivered into this request; `None` once it has ended. Cancel-safe (a
    /// `select!` branch may drop the future between deliveries). An undecodable job is
    /// terminated and skipped.
    pub async fn next(&mut self) -> Option<Result<Delivery, BusError>> {
        loop {
            let message = match self.batch.next().await? {
                Ok(message) => message,
                Err(err) => return Some(Err(BusError::Receive(err))),
            };
            let attempt = message
                .info()
                .map(|i| u64::try_from(i.delivered).unwrap_or(1))
                .unwrap_or(1);
            match serde_json::from_slice::<Job>(&message.payload) {
                Ok(job) => {
                    return Some(Ok(Delivery {
                        job,
                        message,
                        attempt,
                    }));
                }
                Err(err) => {
                    // Poison: no worker can ever read it. Term it so it is not redelivered;
                    // in its own task, so this future stays cancel-safe.
                    tracing::error!(%err, subject = %message.subject, "undecodable job terminated");
                    tokio::spawn(async move {
                        if let Err(err) = message.ack_with(jetstream::AckKind::Term).await {
                            tracing::warn!(%err, "could not terminate the undecodable job");
                        }
                    });
                }
            }
        }
    }
}
