//! `Application::build` wires the system together and `Application::stop` takes it apart;
//! `main` and the integration tests use exactly this code. `build` is the list of start
//! steps, each a function in [`start`], [`nats`] or [`serve`]; every background task is
//! spawned through one supervisor ([`Tasks`]), so `stop` is "cancel, then wait with one
//! deadline".
//!
//! Start order: metrics → (demo fixture upstream) → NATS (embedded or external) → redb →
//! RateLimiter → CacheKeeper → JetStream queue → re-publish claims left by a crash →
//! fetchers → first queue status snapshot → HTTP. Stop: intake stops first (the fetchers'
//! addresses are dropped; on the cancelled token the fetchers stop pulling and nak the jobs in
//! hand, so a slow upstream does not hold up the stop, and HTTP stops accepting, open event
//! streams ending first), then the background tasks end, CacheKeeper lets go of the database
//! file, then nats-server is stopped. Every wait shares one [`STOP_BUDGET`].

mod consumers;
mod error;
mod hooks;
mod memory;
mod nats;
mod serve;
mod start;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use actix::{Addr, SyncArbiter};

use crate::actors::cache_keeper::CacheKeeper;
use crate::actors::pipeline::{Activity, Pipeline};
use crate::actors::store_port::StorePort;
use crate::bus::embedded::EmbeddedNats;
use crate::config::Settings;
use crate::domain::ResourceKind;
#[cfg(feature = "fixture-upstream")]
use crate::fixture_upstream::FixtureUpstream;
use crate::read::hot::HotCache;
use crate::store::{Store, StoreHealth};
use crate::tasks::Tasks;
use crate::upstream::budget::reserve;
pub use error::AppError;
pub use hooks::Hooks;
pub use memory::limit_malloc_arenas;
use start::Fetchers;

/// Job kinds this build fetches.
const KINDS: [ResourceKind; 5] = ResourceKind::ALL;
/// How long stop waits, in all, for the HTTP server, the background tasks, in-hand jobs and
/// the database to let go. Jobs in hand are nak'ed at once, so this is slack for slow HTTP
/// clients; it leaves room under the 10 s an orchestrator is asked to allow between SIGTERM
/// and exit, the embedded nats-server's own flush being quick (it has nothing to replicate).
const STOP_BUDGET: Duration = Duration::from_secs(6);
/// Name of the redb file inside the data directory.
pub const DB_FILE: &str = "dota.redb";

/// The running service.
pub struct Application {
    http_addr: SocketAddr,
    nats_url: String,
    /// Every background task (HTTP server included), and the token that stops them.
    tasks: Tasks,
    activity: Arc<Activity>,
    /// Lets stop wait until every user has let go of the database file.
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
    hot: HotCache,
}

impl Application {
    /// Builds and starts everything, one start step per line. Must run inside an actix
    /// `System`.
    // Only demo mode rewrites the settings (the upstream URLs of its fixture upstream).
    #[cfg_attr(not(feature = "fixture-upstream"), allow(unused_mut))]
    pub async fn build(mut settings: Settings, hooks: Hooks) -> Result<Self, AppError> {
        // Both reqwest and async-nats use rustls with ring; installing it twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let metrics = crate::metrics::install()?;
        let tasks = Tasks::default();
        memory::trim_periodically(&tasks);
        start::data_dir(&settings)?;
        let recorder = start::recorder(&settings)?;
        #[cfg(feature = "fixture-upstream")]
        let fixture = start::demo_upstream(&mut settings, &hooks.clock).await?;
        #[cfg(not(feature = "fixture-upstream"))]
        start::no_demo(&settings)?;
        let (embedded, nats_url, nats) = nats::connect(&settings).await?;
        let cache_bytes =
            usize::try_from(settings.store_cache_mb.saturating_mul(1 << 20)).unwrap_or(usize::MAX);
        let store =
            Store::open_with_cache(&settings.data_dir.join(DB_FILE), settings.ttls, cache_bytes)?;
        let shared = start::shared_store(&settings, &hooks, &nats, &nats_url).await?;
        let budget_js = shared
            .as_ref()
            .map(|_| async_nats::jetstream::new(nats.clone()));
        let upstreams = start::upstreams(&settings, &hooks, recorder, budget_js, &tasks).await?;
        let keeper_store = store.clone();
        // One thread: CacheKeeper is the single writer, and redb serialises writers anyway.
        let keeper = SyncArbiter::start(1, move || CacheKeeper::new(keeper_store.clone()));
        let names = start::queue_names(&settings, shared.is_some(), embedded.is_some())?;
        let queue = start::queue(&settings, &hooks, &nats, names).await?;
        let webhooks = consumers::start(&settings, &nats, &tasks).await?;
        let activity = Arc::new(Activity::default());
        let pipeline = Pipeline {
            shutdown: tasks.token(),
            queue,
            keeper: keeper.clone(),
            nats: nats.clone(),
            store: store.clone(),
            activity: activity.clone(),
            retry: settings.retry,
            stores: StorePort::new(keeper.clone(), store.clone(), shared.clone()),
        };
        start::recover_claims(&pipeline).await?;
        if let Some(shared) = shared.clone() {
            start::replicate(shared, &pipeline, &tasks);
        }
        let spare =
            reserve::watch_reserve(upstreams.limiter.clone(), settings.refresh_reserve, &tasks);
        let fetchers = start::fetchers(&settings, &upstreams, &pipeline, &spare, &tasks);
        let rules = start::watch_teams(&settings, &hooks, &pipeline, &tasks);
        let store_bounds = start::store_upkeep(&settings, &pipeline, rules, shared, &tasks);
        let (store_handle, store_closed) = (store.weak(), store.closed_flag());
        let store_health = store.health().clone();
        let parts = serve::Parts {
            store,
            keeper: keeper.clone(),
            pipeline,
            metrics,
            upstreams,
            rules,
            webhooks,
            store_bounds,
        };
        let (http_addr, hot) = serve::http(&settings, parts, &tasks).await?;
        tracing::info!(%http_addr, nats = %nats_url, "dota-orchestrator is serving");
        Ok(Self {
            http_addr,
            nats_url,
            tasks,
            activity,
            store_handle,
            store_closed,
            store_health,
            fetchers,
            keeper,
            nats,
            embedded,
            #[cfg(feature = "fixture-upstream")]
            fixture,
            hot,
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

    /// Graceful stop: intake stops (fetchers stop pulling and hand the jobs in hand back to
    /// JetStream, HTTP takes no new requests), every background task is cancelled and waited
    /// for, the database is closed, the embedded nats-server flushes and exits. Queued jobs
    /// stay in JetStream. Every wait shares one [`STOP_BUDGET`].
    pub async fn stop(self) {
        let deadline = tokio::time::Instant::now() + STOP_BUDGET;
        // The fetchers' addresses go before the token is cancelled (see `Fetchers::release`).
        self.fetchers.release();
        self.tasks.stop(deadline).await;
        drop(self.keeper);
        let activity = self.activity;
        wait_until(deadline, || activity.busy() == 0, "jobs in hand to finish").await;
        let store = self.store_handle;
        wait_until(
            deadline,
            || store.strong_count() == 0,
            "the database to be released",
        )
        .await;
        // The last handle is gone; redb still flushes and unlocks the file in its drop.
        let closed = self.store_closed;
        wait_until(
            deadline,
            || closed.load(std::sync::atomic::Ordering::SeqCst),
            "the database file to be closed",
        )
        .await;
        if let Err(err) = self.nats.flush().await {
            tracing::warn!(%err, "could not flush NATS on shutdown");
        }
        drop(self.nats);
        if let Some(server) = self.embedded {
            server.stop().await;
        }
        #[cfg(feature = "fixture-upstream")]
        if let Some(fixture) = self.fixture {
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
