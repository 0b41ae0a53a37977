//! Live instances, for the fallback share: every instance sharing the budget keeps a key named
//! by its instance ID in KV bucket [`INSTANCES_BUCKET`], re-published every
//! [`HEARTBEAT_EVERY`] with a per-key TTL of [`HEARTBEAT_TTL`] (the bucket has
//! `limit_markers`), so a dead instance's key expires by itself. The same task counts the live
//! keys after each beat and keeps the last count, which is what the fallback divides by: when
//! the counters cannot be reached the bucket usually cannot either, so the count must have been
//! taken before. On shutdown the task deletes its key, so survivors' shares grow at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, kv};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use tokio_util::sync::CancellationToken;

use crate::bus::subjects::{INSTANCES_BUCKET, instance_heartbeat};

/// How often an instance re-publishes its heartbeat and recounts the live ones.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(5);
/// How long a heartbeat key lives without a refresh: three beats, so one lost beat (a slow
/// leader election) does not make a live instance disappear from others' counts.
pub const HEARTBEAT_TTL: Duration = Duration::from_secs(15);
/// How long the delete marker left by an expired key is kept (the bucket's `limit_markers`).
const MARKER_TTL: Duration = Duration::from_secs(5);
/// Longest a beat or a count may take; a slower one is skipped and the last count kept.
const OP_TIMEOUT: Duration = Duration::from_secs(2);
/// Most keys counted; far beyond any deployment, it bounds the listing.
const MAX_COUNTED: usize = 1024;

/// Setting up the instances bucket or the first heartbeat failed at start-up.
#[derive(Debug, thiserror::Error)]
pub enum InstancesError {
    #[error("instance ID {0:?} is not a valid KV key (letters, digits, `-`, `_`, `=`)")]
    InvalidId(String),
    #[error("creating KV bucket {INSTANCES_BUCKET}: {0}")]
    Bucket(#[source] async_nats::jetstream::context::CreateKeyValueError),
    #[error("first heartbeat in {INSTANCES_BUCKET}: {0}")]
    Heartbeat(String),
}

/// The heartbeat and the live count it keeps.
pub struct Instances {
    js: jetstream::Context,
    bucket: kv::Store,
    instance_id: String,
    live: Arc<AtomicUsize>,
}

impl Instances {
    /// Creates (or reuses) the bucket with `replicas` copies, beats once and counts once, so the
    /// count is known before the first call.
    pub async fn open(
        js: jetstream::Context,
        replicas: usize,
        instance_id: String,
    ) -> Result<Self, InstancesError> {
        let valid = !instance_id.is_empty()
            && instance_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '='));
        if !valid {
            return Err(InstancesError::InvalidId(instance_id));
        }
        let bucket = crate::bus::setup::with_retries("create the instances bucket", || {
            js.create_or_update_key_value(kv::Config {
                bucket: INSTANCES_BUCKET.to_string(),
                description: "Instances sharing the rate budget (heartbeat keys)".to_string(),
                history: 1,
                max_value_size: 256,
                num_replicas: replicas.max(1),
                storage: async_nats::jetstream::stream::StorageType::File,
                limit_markers: Some(MARKER_TTL),
                ..Default::default()
            })
        })
        .await
        .map_err(InstancesError::Bucket)?;
        let instances = Self {
            js,
            bucket,
            instance_id,
            live: Arc::new(AtomicUsize::new(1)),
        };
        // A new bucket on a cluster answers "no stream" until it has a leader.
        crate::bus::setup::wait_for_leader(&instances.js, &format!("KV_{INSTANCES_BUCKET}")).await;
        crate::bus::setup::with_retries("first heartbeat", || instances.beat())
            .await
            .map_err(InstancesError::Heartbeat)?;
        crate::bus::setup::with_retries("count live instances", || instances.count())
            .await
            .map_err(InstancesError::Heartbeat)?;
        Ok(instances)
    }

    /// The live count, shared with the budget; updated by [`Instances::run`].
    pub fn live(&self) -> Arc<AtomicUsize> {
        self.live.clone()
    }

    /// Beats and recounts every [`HEARTBEAT_EVERY`] until `shutdown`, then deletes this
    /// instance's key.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut ticks = tokio::time::interval(HEARTBEAT_EVERY);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await; // The first tick is immediate; `open` has just beaten.
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                () = shutdown.cancelled() => break,
            }
            if let Err(err) = self.beat().await {
                tracing::warn!(%err, "budget heartbeat failed; keeping the last live count");
                continue;
            }
            if let Err(err) = self.count().await {
                tracing::warn!(%err, "counting live instances failed; keeping the last count");
            }
        }
        let gone = tokio::time::timeout(OP_TIMEOUT, self.bucket.delete(&self.instance_id));
        match gone.await {
            Ok(Ok(())) => tracing::debug!("budget heartbeat key deleted"),
            Ok(Err(err)) => tracing::warn!(%err, "could not delete the heartbeat key"),
            Err(_) => tracing::warn!("deleting the heartbeat key timed out; it will expire"),
        }
    }

    /// Publishes this instance's key with a TTL (the KV API has no put with TTL).
    async fn beat(&self) -> Result<(), String> {
        let mut headers = HeaderMap::new();
        headers.insert(
            async_nats::header::NATS_MESSAGE_TTL,
            HEARTBEAT_TTL.as_secs().to_string().as_str(),
        );
        let publish = async {
            self.js
                .publish_with_headers(
                    instance_heartbeat(&self.instance_id),
                    headers,
                    Bytes::from_static(b"live"),
                )
                .await
                .map_err(|e| e.to_string())?
                .await
                .map_err(|e| e.to_string())
        };
        tokio::time::timeout(OP_TIMEOUT, publish)
            .await
            .map_err(|_| format!("timed out after {OP_TIMEOUT:?}"))??;
        Ok(())
    }

    /// Counts live keys (expired ones read as purged and are skipped); this instance always
    /// counts, even if its own beat has not landed.
    async fn count(&self) -> Result<(), String> {
        let list = async {
            let keys = self.bucket.keys().await.map_err(|e| e.to_string())?;
            keys.take(MAX_COUNTED)
                .try_collect::<Vec<String>>()
                .await
                .map_err(|e| e.to_string())
        };
        let keys = tokio::time::timeout(OP_TIMEOUT, list)
            .await
            .map_err(|_| format!("timed out after {OP_TIMEOUT:?}"))??;
        let live = keys.len() + usize::from(!keys.contains(&self.instance_id));
        let before = self.live.swap(live, Ordering::Relaxed);
        if before != live {
            tracing::info!(live, "instances sharing the rate budget");
        }
        Ok(())
    }
}
