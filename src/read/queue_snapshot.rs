//! The queue status snapshot behind `/api/queue/status` and the queue gauges. One background
//! task ([`QueueCollector::start`], spawned by `app::start::http`) asks JetStream for the depth
//! of every consumer, the pipeline for its activity and the RateLimiter for its budgets every
//! [`REFRESH`] (with `--store nats`, the budgets as every instance counted them, read from the
//! shared counters: `scope: cluster`), and publishes the result on a `watch` channel; readers
//! ([`QueueSnapshots`]) only borrow the latest value, so a GET costs no NATS or actor round
//! trip.
//!
//! Invariants: a snapshot's `as_of` is taken before any part of it is read, so it reflects
//! every change made before `as_of`. A failed refresh keeps the previous snapshot; readers get
//! it while it is at most [`STALE_AFTER`] old and a [`StatusUnavailable`] naming the last
//! failure after that (NATS gone for good), never silently old numbers. [`QueueStatus`] is the
//! one body made of a snapshot, for `/api/queue/status` and the live feeds alike.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use actix::{Addr, MailboxError};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};
use utoipa::ToSchema;

use crate::actors::pipeline::Activity;
use crate::actors::rate_limiter::{RateLimiter, Snapshot};
use crate::bus::queue::{BusError, JobQueue};
use crate::domain::{Priority, ResourceKind, Service, Signature};
use crate::metrics::{self as m, TaskName};
use crate::tasks::Tasks;
use crate::upstream::budget::BudgetSnapshot;
use crate::upstream::budget::shared::{ClusterUsage, SharedBudget};

/// Time between two collections. The issue asks for a status at most 1 s old; one collection
/// is ~10 JetStream consumer-info requests (~2 ms), so twice a second costs well under 1% of
/// a core.
pub const REFRESH: Duration = Duration::from_millis(500);
/// Age past which the latest snapshot is no longer served: six refreshes, so one failed or
/// slow JetStream request does not flip the route to 503, while a NATS outage does within
/// seconds.
pub const STALE_AFTER: Duration = Duration::from_secs(3);
/// Longest a collection waits for the shared budget's counters; past it (or on an error) the
/// snapshot shows this instance's budget (`scope: instance`) rather than none.
const CLUSTER_READ_TIMEOUT: Duration = Duration::from_secs(1);

/// One service's queue, work and budget.
// Fields in the order the body has always listed them; the new ones at the end.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceStatus {
    /// Jobs waiting in JetStream, every priority.
    pub queued: u64,
    /// By priority (`interactive`, `bulk`, `scheduled`).
    pub queued_by_priority: BTreeMap<&'static str, u64>,
    /// Jobs delivered by JetStream and not yet acked.
    pub unacked: u64,
    /// Jobs being fetched right now.
    pub in_flight: usize,
    /// How many signatures are being fetched right now (the length of
    /// `activeSignaturesList`). A count, as the dashboard of the system this replaces renders
    /// `{activeSignatures} active requests`.
    pub active_signatures: usize,
    /// The signatures being fetched right now.
    pub active_signatures_list: Vec<Signature>,
    /// Jobs done since start.
    pub completed: u64,
    /// Jobs that failed for good since start.
    pub failed: u64,
    /// The rate budget; `None` if the limiter has none for this service.
    pub budget: Option<BudgetSnapshot>,
    /// Jobs waiting in JetStream, every priority: the same number as `queued`, under the
    /// name the dashboard of the system this replaces reads.
    pub length: u64,
    /// True while jobs are being fetched, or delivered and not yet acked (such as a job
    /// waiting to be retried).
    pub processing: bool,
}

/// Every service's status as of one instant.
#[derive(Debug)]
pub struct QueueSnapshot {
    /// Taken before anything was read: the snapshot reflects every change made before it.
    pub as_of: DateTime<Utc>,
    /// By service (`opendota`, `dotabuff`).
    pub services: BTreeMap<&'static str, ServiceStatus>,
    /// When it was taken, on the monotonic clock, for the age check.
    taken: Instant,
}

impl QueueSnapshot {
    /// `as_of` as RFC 3339 in UTC with milliseconds (`2026-11-05T10:00:00.123Z`). Truncated,
    /// never rounded up, so it stays a time the snapshot is no older than.
    pub fn as_of_rfc3339(&self) -> String {
        self.as_of.to_rfc3339_opts(SecondsFormat::Millis, true)
    }

    /// `Some(resetsAt)` while `service`'s day budget is spent (its calls wait for the next
    /// UTC day); `None` while calls can go today or it has no day budget.
    pub fn day_spent_until(&self, service: Service) -> Option<String> {
        let budget = self.services.get(service.as_str())?.budget.as_ref()?;
        budget.day.as_ref()?.spent_until().map(str::to_string)
    }

    /// Sets the queue depth, in-flight and rate budget gauges from this snapshot.
    fn set_gauges(&self) {
        for (service, status) in &self.services {
            let service = *service;
            for (priority, n) in &status.queued_by_priority {
                metrics::gauge!(m::QUEUE_DEPTH, "service" => service, "priority" => *priority)
                    .set(*n as f64);
            }
            metrics::gauge!(m::QUEUE_IN_FLIGHT, "service" => service).set(status.unacked as f64);
            if let Some(b) = &status.budget {
                for w in &b.windows {
                    metrics::gauge!(m::RATE_LIMIT_REMAINING, "service" => service, "window" => w.window)
                        .set(f64::from(w.remaining));
                }
            }
        }
    }
}

/// Why a collection failed.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error("could not read the JetStream queue depth: {0}")]
    Depth(#[from] BusError),
    #[error("the rate limiter did not answer: {0}")]
    Limiter(#[from] MailboxError),
}

/// No snapshot recent enough to serve; says why (the HTTP side answers it with a 503).
#[derive(Debug, Clone, thiserror::Error)]
#[error("queue status unavailable: {0}")]
pub struct StatusUnavailable(String);

// Fields in alphabetical order, as the `json!` map this replaced wrote them.
/// Every upstream service's queue, work and budget, from the latest background snapshot.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QueueStatus<'a> {
    /// When the snapshot was taken (RFC 3339, UTC, milliseconds): the body reflects every
    /// change made before then. Refreshed in the background at least once a second.
    #[schema(format = DateTime)]
    pub as_of: String,
    /// By service (`opendota`, `dotabuff`).
    pub services: &'a BTreeMap<&'static str, ServiceStatus>,
    /// When this answer was made (RFC 3339).
    #[schema(format = DateTime)]
    pub timestamp: String,
}

impl<'a> QueueStatus<'a> {
    /// The body for `snapshot`, answered now (the one shape of `/api/queue/status` and of the
    /// live feeds).
    pub fn of(snapshot: &'a QueueSnapshot) -> Self {
        Self {
            as_of: snapshot.as_of_rfc3339(),
            services: &snapshot.services,
            timestamp: chrono::Utc::now().to_rfc3339(),
        }
    }
}

/// What the collector last published.
#[derive(Default)]
struct Latest {
    /// The newest successful snapshot.
    snapshot: Option<Arc<QueueSnapshot>>,
    /// Why the newest collection failed; `None` once one succeeds again.
    error: Option<String>,
}

/// The reading end: cheap to clone, never waits on NATS or an actor.
#[derive(Clone)]
pub struct QueueSnapshots(watch::Receiver<Latest>);

impl QueueSnapshots {
    /// Waits until the collector publishes again (a snapshot or an error); false once the
    /// collector has stopped.
    pub async fn changed(&mut self) -> bool {
        self.0.changed().await.is_ok()
    }

    /// The latest snapshot, if it is at most [`STALE_AFTER`] old.
    pub fn latest(&self) -> Result<Arc<QueueSnapshot>, StatusUnavailable> {
        let latest = self.0.borrow();
        let why = || {
            latest
                .error
                .clone()
                .unwrap_or_else(|| "no collection has finished".to_string())
        };
        match &latest.snapshot {
            Some(s) if s.taken.elapsed() <= STALE_AFTER => Ok(s.clone()),
            Some(s) => Err(StatusUnavailable(format!(
                "the last snapshot is from {} ({})",
                s.as_of_rfc3339(),
                why()
            ))),
            None => Err(StatusUnavailable(why())),
        }
    }
}

/// What a collection reads. Holds no store handle, so it cannot keep the database open at
/// shutdown.
pub struct QueueCollector {
    pub queue: JobQueue,
    /// Job kinds this instance has queues for.
    pub kinds: Vec<ResourceKind>,
    pub limiter: Addr<RateLimiter>,
    pub activity: Arc<Activity>,
    /// With `--store nats`: the budget every instance shares, whose counters the snapshot shows.
    pub shared_budget: Option<SharedBudget>,
}

impl QueueCollector {
    /// Collects once before returning, so the route has a snapshot from its first request
    /// (a failure there is logged and left to the next refresh: the route answers 503 until
    /// one succeeds), then refreshes every [`REFRESH`] on a task of `tasks` that ends at
    /// shutdown, abandoning a collection in progress.
    pub async fn start(self, tasks: &Tasks) -> QueueSnapshots {
        let (tx, rx) = watch::channel(Latest::default());
        self.refresh(&tx).await;
        let (collector, shutdown) = (Arc::new(self), tasks.token());
        tasks.spawn_restarting(TaskName::QueueStatus, move || {
            let (collector, tx, shutdown) = (collector.clone(), tx.clone(), shutdown.clone());
            async move {
                let mut tick = tokio::time::interval_at(Instant::now() + REFRESH, REFRESH);
                // After a slow collection, wait a full period rather than catch up in a burst.
                tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = async { tick.tick().await; collector.refresh(&tx).await } => {}
                    }
                }
            }
        });
        QueueSnapshots(rx)
    }

    /// One collection, published; the gauges follow a successful one. A failure is logged
    /// when it starts and when it ends, not on every refresh.
    async fn refresh(&self, tx: &watch::Sender<Latest>) {
        match self.collect().await {
            Ok(snapshot) => {
                snapshot.set_gauges();
                let snapshot = Arc::new(snapshot);
                tx.send_modify(|latest| {
                    if latest.error.take().is_some() {
                        tracing::info!("queue status collection works again");
                    }
                    latest.snapshot = Some(snapshot);
                });
            }
            Err(err) => tx.send_modify(|latest| {
                if latest.error.is_none() {
                    tracing::warn!(%err, "queue status collection failed; serving the last snapshot until it is stale");
                }
                latest.error = Some(err.to_string());
            }),
        }
    }

    /// Every service's shared counters, when there is a shared budget and they answer in time
    /// (the shared budget itself warns when its counters are unreachable).
    async fn cluster_usage(&self) -> Option<Vec<(Service, ClusterUsage)>> {
        let budget = self.shared_budget.as_ref()?;
        let reads = Service::ALL.map(|service| async move {
            Ok::<_, String>((
                service,
                budget.usage(service).await.map_err(|e| e.to_string())?,
            ))
        });
        let read = tokio::time::timeout(CLUSTER_READ_TIMEOUT, futures::future::try_join_all(reads));
        let usage = match read.await {
            Ok(usage) => usage,
            Err(_) => Err(format!("no answer within {CLUSTER_READ_TIMEOUT:?}")),
        };
        usage
            .inspect_err(|err| tracing::debug!(%err, "queue status: the shared budget's counters are unreadable; showing this instance's budget"))
            .ok()
    }

    /// Reads queue depth from JetStream, activity from the pipeline and budgets from the
    /// RateLimiter (and the shared counters, see [`QueueCollector::cluster_usage`]).
    async fn collect(&self) -> Result<QueueSnapshot, CollectError> {
        let (as_of, taken) = (Utc::now(), Instant::now());
        let (depth, budgets, usage) = tokio::join!(
            self.queue.depth(&self.kinds),
            self.limiter.send(Snapshot),
            self.cluster_usage()
        );
        let (depth, budgets) = (depth?, budgets?);
        let budget = |service: Service| {
            let local = budgets.iter().find(|b| b.service == service).cloned()?;
            let usage = usage.iter().flatten().find(|(s, _)| *s == service);
            Some(match usage {
                Some((_, u)) => local.with_cluster_usage(&u.windows, u.at),
                None => local,
            })
        };
        let mut services = BTreeMap::new();
        for service in Service::ALL {
            let mut by_priority: BTreeMap<&'static str, u64> =
                Priority::ALL.iter().map(|p| (p.as_str(), 0)).collect();
            let mut unacked = 0;
            for d in depth.iter().filter(|d| d.kind.service() == service) {
                *by_priority.entry(d.priority.as_str()).or_insert(0) += d.pending;
                unacked += d.ack_pending;
            }
            let activity = self.activity.snapshot(service);
            let queued = by_priority.values().sum();
            let in_flight = activity.active_signatures.len();
            services.insert(
                service.as_str(),
                ServiceStatus {
                    queued,
                    queued_by_priority: by_priority,
                    unacked,
                    in_flight,
                    active_signatures: in_flight,
                    active_signatures_list: activity.active_signatures.into_iter().collect(),
                    completed: activity.completed,
                    failed: activity.failed,
                    budget: budget(service),
                    length: queued,
                    processing: in_flight > 0 || unacked > 0,
                },
            );
        }
        Ok(QueueSnapshot {
            as_of,
            services,
            taken,
        })
    }
}
