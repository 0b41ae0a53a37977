//! `Application::build` wires the system together and `Application::stop` takes it apart;
//! `main` and the integration tests use exactly this code. The steps themselves are in
//! [`start`].
//!
//! Start order: metrics → (demo fixture upstream) → NATS (embedded or external) → redb →
//! RateLimiter → CacheKeeper → JetStream queue → re-publish claims left by a crash →
//! fetchers → first queue status snapshot → HTTP. Stop: fetchers stop pulling and nak the
//! jobs in hand (a slow upstream does not hold up the stop), HTTP stops accepting (open event
//! streams end), the background tasks end, CacheKeeper lets go of the database file, then
//! nats-server is stopped.

mod start;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use actix::{Addr, SyncArbiter};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::actors::cache_keeper::CacheKeeper;
use crate::actors::pipeline::{Activity, Pipeline, PipelineError};
use crate::actors::refresh_scheduler::{RefreshScheduler, Rules};
use crate::actors::reserve;
use crate::actors::team_watch::TeamWatch;
use crate::bus::embedded::{EmbeddedNats, EmbeddedNatsError};
use crate::bus::queue::{BusError, JobQueue, MAX_BATCH};
use crate::bus::subjects::QueueNames;
use crate::config::Settings;
use crate::domain::ResourceKind;
#[cfg(feature = "fixture-upstream")]
use crate::fixture_upstream::{FixtureError, FixtureUpstream};
use crate::http::bypass::Bypass;
use crate::http::hot::HotCache;
use crate::http::live::RecentEvents;
use crate::http::queue_snapshot::QueueCollector;
use crate::http::schedule::RefreshState;
use crate::http::{ApiState, Shared};
use crate::metrics::MetricsError;
use crate::store::{Store, StoreError, StoreHealth};
use crate::upstream::error::UpstreamError;
use crate::upstream::recorder::RecordDirError;
use crate::upstream::shared_budget::SharedBudget;
use start::Fetchers;

/// Job kinds this build fetches.
const KINDS: [ResourceKind; 5] = ResourceKind::ALL;
/// How long stop waits, in all, for the HTTP server, in-hand jobs and the database to let go.
/// Jobs in hand are nak'ed at once, so this is slack for slow HTTP clients; it leaves room
/// under the 10 s an orchestrator is asked to allow between SIGTERM and exit, the embedded
/// nats-server's own flush being quick (it has nothing to replicate).
const STOP_BUDGET: Duration = Duration::from_secs(6);
/// Name of the redb file inside the data directory.
pub const DB_FILE: &str = "dota.redb";

/// Start-up failures, each saying what to fix.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("could not create the data directory {path}: {source}")]
    DataDir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    EmbeddedNats(#[from] EmbeddedNatsError),
    #[error("could not read or create the instance ID {path}: {reason}")]
    InstanceId {
        path: std::path::PathBuf,
        reason: String,
    },
    #[error("invalid --nats-url {url:?}: {source}")]
    NatsUrl { url: String, source: std::io::Error },
    #[error("could not connect to NATS at {url}: {source} ({hint})")]
    NatsConnect {
        url: String,
        source: async_nats::ConnectError,
        hint: &'static str,
    },
    #[error("could not read the NATS {what} {path}: {source}")]
    NatsFile {
        what: &'static str,
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("could not open the database: {0}")]
    Store(#[from] StoreError),
    #[error("could not set up the JetStream queue: {0}")]
    Queue(#[from] BusError),
    #[error("could not bind the HTTP address {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[cfg(feature = "fixture-upstream")]
    #[error("demo fixture upstream: {0}")]
    Demo(#[from] FixtureError),
    /// Demo mode serves its data set through the fixture upstream, which this build left out.
    #[cfg(not(feature = "fixture-upstream"))]
    #[error(
        "demo mode needs the fixture upstream, and this build lacks the `fixture-upstream` \
         cargo feature; rebuild with default features (or `--features fixture-upstream`)"
    )]
    DemoUnavailable,
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    #[error("could not build the upstream HTTP client: {0}")]
    UpstreamClient(#[source] UpstreamError),
    #[error("the cache keeper did not answer at start-up: {0}")]
    Keeper(#[from] actix::MailboxError),
    #[error("re-queuing left-over work: {0}")]
    Requeue(#[source] PipelineError),
    #[error(transparent)]
    RecordDir(#[from] RecordDirError),
    #[error("shared store: {0}")]
    Shared(#[from] crate::shared::SharedError),
    #[error("shared rate budget: {0}")]
    SharedBudget(#[from] crate::upstream::shared_budget::SharedBudgetError),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Events(#[from] crate::events::EventsError),
    #[error("webhooks: {0}")]
    Webhooks(#[from] crate::webhooks::WebhookError),
}

/// The running service.
pub struct Application {
    http_addr: SocketAddr,
    nats_url: String,
    http_stop: oneshot::Sender<()>,
    /// Turns true just before the HTTP drain, so event streams end instead of holding it up.
    http_closing: watch::Sender<bool>,
    http_task: JoinHandle<()>,
    shutdown: watch::Sender<bool>,
    activity: Arc<Activity>,
    store_handle: std::sync::Weak<crate::store::DbSlot>,
    /// True once redb is closed and its file released.
    store_closed: Arc<std::sync::atomic::AtomicBool>,
    /// The store's write health, kept apart from the store so shutdown can still wait for the
    /// database to be released.
    store_health: Arc<StoreHealth>,
    fetchers: Fetchers,
    keeper: Addr<CacheKeeper>,
    nats: async_nats::Client,
    embedded: Option<EmbeddedNats>,
    #[cfg(feature = "fixture-upstream")]
    fixture: Option<FixtureUpstream>,
    queue_status: JoinHandle<()>,
    gauges: JoinHandle<()>,
    team_watch: JoinHandle<()>,
    /// Keeps the scheduled-work gate in step with the day's budget.
    reserve: JoinHandle<()>,
    /// With `--auto-refresh`, the refresh scheduler.
    scheduler: Option<JoinHandle<()>>,
    /// Keeps the last ready/failed events for pages that open.
    recent_events: JoinHandle<()>,
    /// With `--store nats`: the replica's watch and the lease keeper.
    shared_tasks: Vec<JoinHandle<()>>,
    /// With `--store nats`: the rate budget shared by every instance (its heartbeat ends at
    /// shutdown).
    shared_budget: Option<SharedBudget>,
    hot: HotCache,
    /// The webhook dispatcher, deliverer and endpoint watch.
    webhook_tasks: Vec<JoinHandle<()>>,
}

impl Application {
    /// Builds and starts everything. Must run inside an actix `System`.
    // Only demo mode rewrites the settings (the upstream URLs of its fixture upstream).
    #[cfg_attr(not(feature = "fixture-upstream"), allow(unused_mut))]
    pub async fn build(mut settings: Settings) -> Result<Self, AppError> {
        // Both reqwest and async-nats use rustls with ring; installing it twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let metrics = crate::metrics::install()?;
        std::fs::create_dir_all(&settings.data_dir).map_err(|source| AppError::DataDir {
            path: settings.data_dir.clone(),
            source,
        })?;
        let recorder = start::recorder(&settings)?;
        #[cfg(feature = "fixture-upstream")]
        let fixture = start::demo_upstream(&mut settings).await?;
        #[cfg(not(feature = "fixture-upstream"))]
        start::no_demo(&settings)?;
        let (embedded, nats_url, nats) = start::nats(&settings).await?;

        let store = Store::open(&settings.data_dir.join(DB_FILE), settings.ttls)?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let shared = start::shared_store(&settings, &nats, &nats_url).await?;
        let budget_setup = shared.as_ref().map(|_| {
            (
                async_nats::jetstream::new(nats.clone()),
                shutdown_rx.clone(),
            )
        });
        let (upstreams, shared_budget) =
            start::upstreams(&settings, recorder, budget_setup).await?;
        let keeper_store = store.clone();
        // One thread: CacheKeeper is the single writer, and redb serialises writers anyway.
        let keeper = SyncArbiter::start(1, move || CacheKeeper::new(keeper_store.clone()));
        let replicas = usize::from(settings.nats_replicas);
        // The embedded server's queue is ours alone; on a shared server this instance, with its
        // private redb, gets a queue of its own (see `QueueNames::private`); with the shared
        // store every instance takes from one queue, since any of them can finish any job.
        let names = match (&shared, &embedded) {
            (Some(_), _) | (None, Some(_)) => QueueNames::shared(),
            (None, None) => QueueNames::private(&start::instance_id(&settings.data_dir)?),
        };
        let queue = JobQueue::setup(
            nats.clone(),
            names,
            &KINDS,
            settings.retry.max_attempts,
            // Room for every job the lanes may run plus a batch held per priority.
            u32::try_from(settings.max_in_flight.max(settings.workers) * 2 + 2 * MAX_BATCH)
                .unwrap_or(u32::MAX),
            replicas,
            settings.job_ack_wait.unwrap_or(crate::bus::queue::ACK_WAIT),
        )
        .await?;
        let (webhooks, webhook_tasks) =
            start::events(&settings, &nats, replicas, &shutdown_rx).await?;
        let activity = Arc::new(Activity::default());
        let pipeline = Pipeline {
            shutdown: shutdown_rx.clone(),
            queue,
            keeper: keeper.clone(),
            nats: nats.clone(),
            store: store.clone(),
            activity: activity.clone(),
            retry: settings.retry,
            shared: shared.clone(),
        };
        start::recover_claims(&pipeline).await?;
        let shared_tasks = shared
            .map(|shared| start::replicate(shared, &pipeline, &shutdown_rx))
            .unwrap_or_default();

        let (spare, reserve) = reserve::watch_reserve(
            upstreams.limiter.clone(),
            settings.refresh_reserve,
            shutdown_rx.clone(),
        );
        let fetchers = start::fetchers(&settings, &upstreams, &pipeline, &spare, &shutdown_rx);
        let rules = Rules {
            team_ttl: settings.ttls.teams,
            track_days: settings.track_days,
        };
        let scheduler = settings.auto_refresh.then(|| {
            tokio::spawn(
                RefreshScheduler {
                    store: store.clone(),
                    keeper: keeper.clone(),
                    pipeline: pipeline.clone(),
                    rules,
                }
                .run(shutdown_rx.clone()),
            )
        });
        let team_watch = tokio::spawn(
            TeamWatch {
                store: store.clone(),
                keeper: keeper.clone(),
                pipeline: pipeline.clone(),
                sides: settings.team_players,
            }
            .run(shutdown_rx.clone()),
        );
        let bypass = Bypass::new(upstreams.opendota.clone());
        let recent = RecentEvents::default();
        let recent_events = tokio::spawn({
            let (recent, nats, shutdown) = (recent.clone(), nats.clone(), shutdown_rx.clone());
            async move {
                if let Err(err) = recent.follow(nats, shutdown).await {
                    tracing::warn!(%err, "the recent-events list stays empty");
                }
            }
        });
        let queue_collector = QueueCollector {
            queue: pipeline.queue.clone(),
            kinds: KINDS.to_vec(),
            limiter: upstreams.limiter,
            activity: activity.clone(),
        };
        let hot = HotCache::new(settings.hot_cache_mb.saturating_mul(1024 * 1024));
        let state = |closing, queue_status| {
            ApiState::new(Shared {
                closing,
                queue_status,
                store: store.clone(),
                keeper: keeper.clone(),
                pipeline,
                metrics,
                team_players: settings.team_players,
                admin_token: settings.admin_token.clone(),
                bypass,
                hot: hot.clone(),
                recent: recent.clone(),
                refresh: RefreshState::new(rules, settings.auto_refresh),
                webhooks,
            })
        };
        let http = start::http(settings.http_addr, queue_collector, state, &shutdown_rx).await?;
        tracing::info!(http_addr = %http.addr, nats = %nats_url, "dota-orchestrator is serving");

        Ok(Self {
            http_addr: http.addr,
            nats_url,
            http_stop: http.stop,
            http_closing: http.closing,
            http_task: http.task,
            shutdown,
            activity,
            store_handle: store.weak(),
            store_closed: store.closed_flag(),
            store_health: store.health().clone(),
            fetchers,
            keeper,
            nats,
            embedded,
            #[cfg(feature = "fixture-upstream")]
            fixture,
            queue_status: http.queue_status,
            gauges: http.gauges,
            team_watch,
            reserve,
            scheduler,
            recent_events,
            shared_tasks,
            shared_budget,
            hot,
            webhook_tasks,
        })
    }

    /// The hot cache of ready responses (its usage is also on `/metrics`, whose registry is
    /// shared by every instance in a process).
    pub fn hot_cache(&self) -> &HotCache {
        &self.hot
    }

    /// Where the HTTP API listens (the real port when 0 was asked for).
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The NATS server this instance uses.
    pub fn nats_url(&self) -> &str {
        &self.nats_url
    }

    /// The store's write health, with the test-only switch that makes writes fail.
    pub fn store_health(&self) -> &Arc<StoreHealth> {
        &self.store_health
    }

    /// Process ID of the embedded nats-server, when this instance runs one.
    pub fn embedded_nats_pid(&self) -> Option<u32> {
        self.embedded.as_ref().map(EmbeddedNats::pid)
    }

    /// Graceful stop: fetchers stop pulling and hand the jobs in hand back to JetStream (nak),
    /// no new requests, the database is closed, the embedded nats-server flushes and exits.
    /// Queued jobs stay in JetStream. Every wait shares one [`STOP_BUDGET`].
    pub async fn stop(self) {
        let Self {
            http_stop,
            http_closing,
            mut http_task,
            shutdown,
            activity,
            store_handle,
            store_closed,
            store_health: _,
            fetchers,
            keeper,
            nats,
            embedded,
            #[cfg(feature = "fixture-upstream")]
            fixture,
            queue_status,
            gauges,
            team_watch,
            reserve,
            scheduler,
            recent_events,
            shared_tasks,
            shared_budget,
            webhook_tasks,
            ..
        } = self;
        let deadline = tokio::time::Instant::now() + STOP_BUDGET;
        // Fetchers first, so a job waiting on a slow upstream is handed back at once rather
        // than after the HTTP drain. Their addresses go before the signal: a fetcher that
        // stops while someone still holds its address is restarted by its Supervisor.
        let Fetchers {
            matches,
            players,
            player_stats,
            leagues,
            teams,
        } = fetchers;
        drop((matches, players, player_stats, leagues, teams));
        let _ = shutdown.send(true);
        let _ = http_closing.send(true);
        let _ = http_stop.send(());
        if tokio::time::timeout_at(deadline, &mut http_task)
            .await
            .is_err()
        {
            tracing::warn!("HTTP connections did not close in time; dropping them");
            http_task.abort();
        }
        let _ = queue_status.await;
        let _ = gauges.await;
        let _ = team_watch.await;
        let _ = reserve.await;
        if let Some(scheduler) = scheduler {
            let _ = scheduler.await;
        }
        let _ = recent_events.await;
        for task in webhook_tasks {
            let _ = task.await;
        }
        for task in shared_tasks {
            let _ = task.await;
        }
        if let Some(budget) = shared_budget {
            let _ = tokio::time::timeout_at(deadline, budget.stopped()).await;
        }
        drop(keeper);
        wait_until(deadline, || activity.busy() == 0, "jobs in hand to finish").await;
        wait_until(
            deadline,
            || store_handle.strong_count() == 0,
            "the database to be released",
        )
        .await;
        // The last handle is gone; redb still flushes and unlocks the file in its drop.
        wait_until(
            deadline,
            || store_closed.load(std::sync::atomic::Ordering::SeqCst),
            "the database file to be closed",
        )
        .await;
        if let Err(err) = nats.flush().await {
            tracing::warn!(%err, "could not flush NATS on shutdown");
        }
        drop(nats);
        if let Some(server) = embedded {
            server.stop().await;
        }
        #[cfg(feature = "fixture-upstream")]
        if let Some(fixture) = fixture {
            fixture.stop().await;
        }
        tracing::info!("stopped");
    }
}

async fn wait_until(deadline: tokio::time::Instant, done: impl Fn() -> bool, what: &str) {
    while !done() {
        if tokio::time::Instant::now() > deadline {
            tracing::warn!("gave up waiting for {what}");
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
