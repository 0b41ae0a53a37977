//! The durable stream `DOTA_EVENTS`: every ready and failed event is stored in it on the subjects
//! core subscribers already follow (`dota.ready.>`, `dota.failed.>`), with limits retention
//! (`--events-retention-secs`, `--events-max-bytes`) and `--nats-replicas` copies. Publishing
//! goes through JetStream with `Nats-Msg-Id` set to the event ID, so the same event published
//! by several instances within the duplicate window is stored once; core subscribers receive
//! the message as before. Set up at start-up by `Application::build`, used by
//! [`super::announce_ready`] / [`super::announce_failed`].

use std::time::Duration;

use async_nats::jetstream::{self, stream};
use bytes::Bytes;

use super::Envelope;
use crate::bus::setup::{wait_for_leader, with_retries};
use crate::bus::subjects::{EVENTS_STREAM, FAILED_ALL, READY_ALL};

/// Window in which a repeated `Nats-Msg-Id` is dropped: longer than any gap between two
/// instances announcing the same team import (TeamWatch ticks), short enough to keep the
/// server's ID table small.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(10 * 60);
/// How long a publish keeps retrying the stream (a leader election takes seconds) before the
/// event goes out on core NATS only.
const PUBLISH_PATIENCE: Duration = Duration::from_secs(5);

/// Setting up or publishing to the event stream failed.
#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    #[error("could not create or update stream {EVENTS_STREAM}: {0}")]
    Stream(#[from] jetstream::context::CreateStreamError),
    #[error("could not publish an event: {0}")]
    Publish(#[from] jetstream::context::PublishError),
}

/// How long and how much the stream keeps (`--events-retention-secs`, `--events-max-bytes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub max_age: Duration,
    pub max_bytes: i64,
}

/// The stream's configuration.
pub fn config(retention: Retention, replicas: usize) -> stream::Config {
    stream::Config {
        name: EVENTS_STREAM.to_string(),
        subjects: vec![READY_ALL.to_string(), FAILED_ALL.to_string()],
        retention: stream::RetentionPolicy::Limits,
        discard: stream::DiscardPolicy::Old,
        max_age: retention.max_age,
        max_bytes: retention.max_bytes,
        duplicate_window: DUPLICATE_WINDOW,
        num_replicas: replicas,
        storage: stream::StorageType::File,
        ..Default::default()
    }
}

/// Creates `DOTA_EVENTS`, or brings an existing one to the current settings (instances
/// starting together on a cluster race; the step is retried).
pub async fn setup(
    js: &jetstream::Context,
    retention: Retention,
    replicas: usize,
) -> Result<(), EventsError> {
    let config = config(retention, replicas);
    with_retries("create the event stream", || {
        js.create_or_update_stream(config.clone())
    })
    .await?;
    wait_for_leader(js, EVENTS_STREAM).await;
    Ok(())
}

/// Publishes one event into the stream (and so to core subscribers), retrying for a few
/// seconds. Returns whether the stream already had it (another instance published it first).
pub async fn publish(
    js: &jetstream::Context,
    subject: String,
    envelope: &Envelope,
    payload: Bytes,
) -> Result<bool, EventsError> {
    let deadline = tokio::time::Instant::now() + PUBLISH_PATIENCE;
    let mut delay = Duration::from_millis(100);
    loop {
        let attempt = async {
            js.publish_with_headers(subject.clone(), envelope.headers(), payload.clone())
                .await?
                .await
        };
        match attempt.await {
            Ok(ack) => return Ok(ack.duplicate),
            Err(err) if tokio::time::Instant::now() + delay < deadline => {
                tracing::debug!(%err, "event not stored yet; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(1));
            }
            Err(err) => return Err(err.into()),
        }
    }
}
