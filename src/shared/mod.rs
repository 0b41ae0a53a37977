//! State shared by every instance of a `--store nats` deployment, kept in JetStream itself
//! (replicated by the NATS cluster, nothing home-made): stored resources, failures,
//! announcements and tracked imports in the KV bucket [`DATA_BUCKET`] (bodies over the value
//! limit in the Object Store [`BODIES_BUCKET`]), and claims under a lease in the KV bucket
//! [`CLAIMS_BUCKET`].
//!
//! JetStream is the source of truth. Each instance keeps its redb file as a replica of it
//! ([`mirror`] applies every change it watches), so reads, the hot cache and team views work
//! exactly as with `--store redb`, and a KV watch event is what invalidates an instance's hot
//! cache. Whatever decides whether an upstream call is made (a claim, "is it stored fresh?")
//! is asked of JetStream, never of the replica, which may lag by the watch's delivery.
//!
//! [`claims`] owns the claim protocol, [`data`] the stored records, [`keys`] how a signature
//! becomes a key, [`replica`] what the replica is handed, [`resume`] where the replica's watch
//! of the data bucket starts, [`reconcile`] what it does once caught up (a full replay drops
//! what the bucket no longer holds), [`upkeep`] what keeping the shared store within bounds needs
//! (the lease of the one instance that decides, shared request times, eviction), and
//! [`old_markers`] gives the markers of older versions a TTL.

pub mod claims;
pub mod data;
pub mod keys;
pub mod mirror;
pub mod old_markers;
mod reconcile;
pub mod replica;
pub mod resume;
pub mod upkeep;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, kv, object_store};

use crate::bus::server_version::{MIN_SHARED_STORE, ServerVersion};
use crate::bus::subjects::{ACCESS_BUCKET, BODIES_BUCKET, CLAIMS_BUCKET, DATA_BUCKET};
use crate::domain::Signature;

pub use claims::{Claim, ClaimRecord};
pub use data::EntryRecord;

/// How long a claim lives without renewal: the owner renews every third of it while the job is
/// queued or running, so a dead owner's claims are free again this long after it died. Keep it
/// under the job queue's ack wait (60 s): a job a dead instance held comes back after the ack
/// wait, and by then the claims it made for the job's fan-out must be free to be made again.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(crate::config::DEFAULT_CLAIM_LEASE_SECS);
/// Largest body kept in the KV bucket itself; larger ones go to the Object Store. Under the
/// server's default `max_payload` (1 MiB) with room for headers.
pub const DEFAULT_VALUE_LIMIT: usize = 900 * 1024;
/// How long the marker a lease expiry leaves behind is kept (a watcher sees it as a delete).
const MARKER_TTL: Duration = Duration::from_secs(60);
/// How long the marker an eviction leaves in the data bucket is kept (`--data-marker-ttl-secs`):
/// a replica's watch learns of the removal from it, and a replica away longer than about
/// this replays the bucket instead (see [`resume`]). A week covers a stopped instance over a
/// long weekend and a NATS outage of days, at the price of one small marker per evicted key
/// for that long.
pub const DEFAULT_DATA_MARKER_TTL: Duration =
    Duration::from_secs(crate::config::DEFAULT_DATA_MARKER_TTL_SECS);

/// Failures of the shared store. JetStream's own error is the source; every one is transient
/// for the caller (the job is retried, the request answered 503).
#[derive(Debug, thiserror::Error)]
pub enum SharedError {
    #[error(
        "--store nats needs nats-server {MIN_SHARED_STORE} or newer (per-key TTL, counters, correct compare-and-swap in clusters); the server at {url} is {found}"
    )]
    ServerTooOld { url: String, found: String },
    #[error("jetstream: {op}: {source}")]
    Nats {
        op: &'static str,
        source: async_nats::Error,
    },
    #[error("shared record {key} is unreadable: {source}")]
    Decode {
        key: String,
        source: serde_json::Error,
    },
}

impl SharedError {
    fn boxed<E: std::error::Error + Send + Sync + 'static>(
        op: &'static str,
    ) -> impl FnOnce(E) -> Self {
        move |source| Self::Nats {
            op,
            source: Box::new(source),
        }
    }
}

/// Whether a KV entry holds a value: not a delete, purge or lease-expiry marker.
pub(crate) fn is_live(entry: &kv::Entry) -> bool {
    entry.operation == kv::Operation::Put && !entry.value.is_empty()
}

/// Whether a JetStream error, anywhere in its source chain, says an expected last sequence
/// did not match: a lost compare-and-swap. Servers answer 10071, or 10164 when the expected
/// sequence was 0 ("must not exist"); async-nats 0.51 maps only the first to its error kind.
pub(crate) fn is_cas_conflict(err: &(dyn std::error::Error + 'static)) -> bool {
    use async_nats::jetstream::ErrorCode;
    let mut next = Some(err);
    while let Some(err) = next {
        if let Some(js) = err.downcast_ref::<async_nats::jetstream::Error>() {
            let code = js.error_code();
            if code == ErrorCode::STREAM_WRONG_LAST_SEQUENCE
                || code == ErrorCode::STREAM_WRONG_LAST_SEQUENCE_CONSTANT
            {
                return true;
            }
        }
        next = err.source();
    }
    false
}

/// Tuning of the shared store; the defaults suit production, tests shorten them.
#[derive(Debug, Clone, Copy)]
pub struct SharedTuning {
    /// Claim lease (see [`DEFAULT_LEASE`]; `--claim-lease-secs`).
    pub lease: Duration,
    /// Largest body kept in KV (see [`DEFAULT_VALUE_LIMIT`]).
    pub value_limit: usize,
    /// How long an eviction's markers stay in the data bucket (see
    /// [`DEFAULT_DATA_MARKER_TTL`]; `--data-marker-ttl-secs`).
    pub data_marker_ttl: Duration,
}

impl Default for SharedTuning {
    fn default() -> Self {
        Self {
            lease: DEFAULT_LEASE,
            value_limit: DEFAULT_VALUE_LIMIT,
            data_marker_ttl: DEFAULT_DATA_MARKER_TTL,
        }
    }
}

impl SharedTuning {
    /// These settings with the lease `--claim-lease-secs` asks for.
    pub fn with_lease_secs(self, secs: u64) -> Self {
        Self {
            lease: Duration::from_secs(secs),
            ..self
        }
    }

    /// These settings with the data bucket's marker TTL `--data-marker-ttl-secs` asks for.
    pub fn with_data_marker_ttl_secs(self, secs: u64) -> Self {
        Self {
            data_marker_ttl: Duration::from_secs(secs),
            ..self
        }
    }
}

/// A claim this instance holds: what it renews, and with which revision.
#[derive(Debug, Clone)]
struct Held {
    generation: u64,
    revision: u64,
    /// The claim record, written again on each renewal.
    value: bytes::Bytes,
}

/// Handle to the shared store. Cheap to clone.
#[derive(Clone)]
pub struct SharedStore {
    inner: Arc<Inner>,
}

struct Inner {
    js: jetstream::Context,
    data: kv::Store,
    claims: kv::Store,
    bodies: object_store::ObjectStore,
    /// Last request of each resource (see [`upkeep`]).
    access: kv::Store,
    instance: String,
    tuning: SharedTuning,
    held: Mutex<HashMap<Signature, Held>>,
}

/// Refuses a server too old for the shared store, naming the version found.
pub fn check_server(client: &async_nats::Client, url: &str) -> Result<ServerVersion, SharedError> {
    let found = client.server_info().version;
    match found.parse::<ServerVersion>() {
        Ok(version) if version >= MIN_SHARED_STORE => Ok(version),
        _ => Err(SharedError::ServerTooOld {
            url: url.to_string(),
            found,
        }),
    }
}

/// Creates (or reuses) a KV bucket of one value per key whose delete and purge markers may
/// carry a TTL ([`MARKER_TTL`] for those the server leaves when a key's own TTL runs out).
async fn marked_bucket(
    js: &jetstream::Context,
    bucket: &str,
    description: &str,
    replicas: usize,
    op: &'static str,
) -> Result<kv::Store, SharedError> {
    crate::bus::setup::with_retries(op, || {
        js.create_or_update_key_value(kv::Config {
            bucket: bucket.to_string(),
            description: description.to_string(),
            history: 1,
            num_replicas: replicas,
            limit_markers: Some(MARKER_TTL),
            ..Default::default()
        })
    })
    .await
    .map_err(SharedError::boxed(op))
}

impl SharedStore {
    /// Creates (or reuses) the buckets with `replicas` copies each. A data bucket made before
    /// its markers had a TTL is updated to allow one (markers written before keep none).
    pub async fn open(
        js: jetstream::Context,
        replicas: usize,
        instance: String,
        tuning: SharedTuning,
    ) -> Result<Self, SharedError> {
        let data = crate::bus::setup::with_retries("create the data bucket", || {
            js.create_or_update_key_value(kv::Config {
                bucket: DATA_BUCKET.to_string(),
                description: "dota-orchestrator: stored resources, failures, announcements".into(),
                history: 1,
                num_replicas: replicas,
                max_value_size: i32::try_from(tuning.value_limit + 64 * 1024).unwrap_or(i32::MAX),
                // Lets an eviction's purge markers carry a TTL (`Nats-TTL`); the bucket has no
                // max age, so the server itself leaves no markers here.
                limit_markers: Some(tuning.data_marker_ttl),
                ..Default::default()
            })
        })
        .await
        .map_err(SharedError::boxed("create the data bucket"))?;
        let claims = marked_bucket(
            &js,
            CLAIMS_BUCKET,
            "dota-orchestrator: claims on resources being fetched",
            replicas,
            "create the claims bucket",
        )
        .await?;
        let bodies = crate::bus::setup::with_retries("create the bodies object store", || async {
            match js.get_object_store(BODIES_BUCKET).await {
                Ok(store) => Ok(store),
                Err(_) => {
                    js.create_object_store(object_store::Config {
                        bucket: BODIES_BUCKET.to_string(),
                        description: Some(
                            "dota-orchestrator: bodies over the KV value limit".into(),
                        ),
                        num_replicas: replicas,
                        ..Default::default()
                    })
                    .await
                }
            }
        })
        .await
        .map_err(SharedError::boxed("create the bodies object store"))?;
        // An evicted resource's request time is purged with a marker that expires.
        let access = marked_bucket(
            &js,
            ACCESS_BUCKET,
            "dota-orchestrator: last request of each resource",
            replicas,
            "create the access bucket",
        )
        .await?;
        for stream in [
            format!("KV_{DATA_BUCKET}"),
            format!("KV_{CLAIMS_BUCKET}"),
            format!("OBJ_{BODIES_BUCKET}"),
            format!("KV_{ACCESS_BUCKET}"),
        ] {
            crate::bus::setup::wait_for_leader(&js, &stream).await;
        }
        Ok(Self {
            inner: Arc::new(Inner {
                js,
                data,
                claims,
                bodies,
                access,
                instance,
                tuning,
                held: Mutex::default(),
            }),
        })
    }

    /// This instance's ID, the owner named in its claims.
    pub fn instance(&self) -> &str {
        &self.inner.instance
    }

    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<Signature, Held>> {
        self.inner
            .held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
