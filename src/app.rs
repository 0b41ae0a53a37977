//! `Application::build` wires the system together and `Application::stop` takes it apart;
//! `main` and the integration tests use exactly this code.
//!
//! Start order: metrics → (demo fixture upstream) → NATS (embedded or external) → redb →
//! RateLimiter → CacheKeeper → JetStream queue → re-publish claims left by a crash →
//! fetchers → HTTP. Stop order is the reverse: HTTP stops accepting (open event streams end),
//! fetchers finish the job in hand, CacheKeeper lets go of the database file, then nats-server is stopped.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use actix::{Addr, Supervisor, SyncArbiter};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::actors::cache_keeper::{CacheKeeper, RequeueAll};
use crate::actors::fetcher::{FetchJobs, Fetcher};
use crate::actors::league_fetcher::{LeagueFetcher, LeagueJobs};
use crate::actors::match_fetcher::{MatchFetcher, MatchJobs};
use crate::actors::pipeline::{Activity, Pipeline};
use crate::actors::player_fetcher::{PlayerFetcher, PlayerJobs};
use crate::actors::player_stats_fetcher::{PlayerStatsFetcher, PlayerStatsJobs};
use crate::actors::rate_limiter::RateLimiter;
use crate::actors::team_importer::{TeamImporter, TeamJobs};
use crate::actors::team_watch::TeamWatch;
use crate::bus::embedded::{EmbeddedNats, EmbeddedNatsConfig, EmbeddedNatsError};
use crate::bus::queue::{BusError, JobQueue};
use crate::config::{NatsMode, Settings};
use crate::domain::ResourceKind;
use crate::fixture_upstream::{FixtureConfig, FixtureError, FixtureUpstream};
use crate::http::{self, ApiState};
use crate::store::{Store, StoreError};
use crate::upstream::client::UpstreamClient;
use crate::upstream::dotabuff::Dotabuff;
use crate::upstream::opendota::OpenDota;

/// Job kinds this build fetches.
const KINDS: [ResourceKind; 5] = ResourceKind::ALL;
/// How long stop waits for in-hand jobs, the HTTP server and the database to let go.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);
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
    #[error("could not connect to NATS at {url}: {reason}")]
    NatsConnect { url: String, reason: String },
    #[error("could not open the database: {0}")]
    Store(#[from] StoreError),
    #[error("could not set up the JetStream queue: {0}")]
    Queue(#[from] BusError),
    #[error("could not bind the HTTP address {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("demo fixture upstream: {0}")]
    Demo(#[from] FixtureError),
    #[error("{0}")]
    Setup(String),
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
    store_handle: std::sync::Weak<redb::Database>,
    fetchers: Fetchers,
    keeper: Addr<CacheKeeper>,
    nats: async_nats::Client,
    embedded: Option<EmbeddedNats>,
    fixture: Option<FixtureUpstream>,
    gauges: JoinHandle<()>,
    team_watch: JoinHandle<()>,
}

/// Addresses of the supervised fetchers; dropping them lets the actors stop at shutdown.
struct Fetchers {
    matches: Addr<MatchFetcher>,
    players: Addr<PlayerFetcher>,
    player_stats: Addr<PlayerStatsFetcher>,
    leagues: Addr<LeagueFetcher>,
    teams: Addr<TeamImporter>,
}

fn start_fetcher<J: FetchJobs>(
    jobs: J,
    pipeline: &Pipeline,
    workers: usize,
    shutdown: &watch::Receiver<bool>,
) -> Addr<Fetcher<J>> {
    let (pipeline, shutdown) = (pipeline.clone(), shutdown.clone());
    Supervisor::start(move |_| Fetcher::new(jobs, pipeline, workers, shutdown))
}

impl Application {
    /// Builds and starts everything. Must run inside an actix `System`.
    pub async fn build(mut settings: Settings) -> Result<Self, AppError> {
        // Both reqwest and async-nats use rustls with ring; installing it twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let metrics = crate::metrics::install().map_err(|e| AppError::Setup(e.to_string()))?;
        std::fs::create_dir_all(&settings.data_dir).map_err(|source| AppError::DataDir {
            path: settings.data_dir.clone(),
            source,
        })?;

        let fixture = match settings.demo_dir.clone() {
            Some(dir) => Some(start_demo_upstream(&dir, &mut settings).await?),
            None => None,
        };

        let (embedded, nats_url) = match &settings.nats {
            NatsMode::Embedded { conf, port } => {
                let server = EmbeddedNats::start(EmbeddedNatsConfig {
                    conf: conf.clone(),
                    store_dir: settings.data_dir.join("nats"),
                    port: *port,
                })
                .await?;
                let url = server.url().to_string();
                (Some(server), url)
            }
            NatsMode::External { url } => (None, url.clone()),
        };
        let nats = async_nats::ConnectOptions::new()
            .name("dota-orchestrator")
            .connect(&nats_url)
            .await
            .map_err(|e| AppError::NatsConnect {
                url: nats_url.clone(),
                reason: e.to_string(),
            })?;

        let store = Store::open(&settings.data_dir.join(DB_FILE), settings.ttls)?;
        let limits = settings.limits;
        let limiter = Supervisor::start(move |_| RateLimiter::new(limits));
        let keeper_store = store.clone();
        // One thread: CacheKeeper is the single writer, and redb serialises writers anyway.
        let keeper = SyncArbiter::start(1, move || CacheKeeper::new(keeper_store.clone()));

        let workers = settings.workers;
        let queue = JobQueue::setup(
            nats.clone(),
            &KINDS,
            settings.retry.max_attempts,
            u32::try_from(workers * 2).unwrap_or(u32::MAX),
        )
        .await?;
        let activity = Arc::new(Activity::default());
        let (shutdown, shutdown_rx) = watch::channel(false);
        let pipeline = Pipeline {
            shutdown: shutdown_rx.clone(),
            queue,
            keeper: keeper.clone(),
            nats: nats.clone(),
            store: store.clone(),
            activity: activity.clone(),
            retry: settings.retry,
        };
        if embedded.is_some() {
            // Private to this instance: see `JobQueue::discard_all` (crash recovery).
            pipeline.queue.discard_all().await?;
        }
        recover_claims(&pipeline).await?;

        let client =
            UpstreamClient::new(limiter.clone()).map_err(|e| AppError::Setup(e.to_string()))?;
        let opendota = OpenDota::new(
            client.clone(),
            &settings.opendota_url,
            settings.opendota_api_key.clone(),
        );
        let dotabuff = Dotabuff::new(client, &settings.dotabuff_url);
        let fetchers = Fetchers {
            matches: start_fetcher(
                MatchJobs {
                    opendota: opendota.clone(),
                },
                &pipeline,
                workers,
                &shutdown_rx,
            ),
            players: start_fetcher(
                PlayerJobs {
                    opendota: opendota.clone(),
                },
                &pipeline,
                workers,
                &shutdown_rx,
            ),
            player_stats: start_fetcher(
                PlayerStatsJobs {
                    opendota: opendota.clone(),
                },
                &pipeline,
                workers,
                &shutdown_rx,
            ),
            leagues: start_fetcher(
                LeagueJobs {
                    opendota: opendota.clone(),
                },
                &pipeline,
                1,
                &shutdown_rx,
            ),
            // Team pages are fetched one at a time anyway (Dotabuff's steady spacing).
            teams: start_fetcher(
                TeamJobs {
                    dotabuff,
                    opendota: opendota.clone(),
                    store: store.clone(),
                    keeper: keeper.clone(),
                    source: settings.team_source,
                    sides: settings.team_players,
                    page_ttl: settings.ttls.teams,
                },
                &pipeline,
                2,
                &shutdown_rx,
            ),
        };
        let team_watch = tokio::spawn(
            TeamWatch {
                store: store.clone(),
                keeper: keeper.clone(),
                pipeline: pipeline.clone(),
                sides: settings.team_players,
            }
            .run(shutdown_rx.clone()),
        );

        let (http_closing, closing) = watch::channel(false);
        let state = ApiState {
            closing,
            store: store.clone(),
            keeper: keeper.clone(),
            limiter,
            pipeline,
            metrics,
            kinds: KINDS.to_vec(),
            team_players: settings.team_players,
            admin_token: settings.admin_token.clone(),
        };
        let gauges = tokio::spawn(http::status::refresh_gauges(
            state.clone(),
            shutdown_rx.clone(),
        ));
        let listener = tokio::net::TcpListener::bind(settings.http_addr)
            .await
            .map_err(|source| AppError::Bind {
                addr: settings.http_addr,
                source,
            })?;
        let http_addr = listener.local_addr().map_err(|source| AppError::Bind {
            addr: settings.http_addr,
            source,
        })?;
        let (http_stop, http_stop_rx) = oneshot::channel::<()>();
        let server = warp::serve(http::request_id::with_request_id(http::routes(state)))
            .incoming(listener)
            .graceful(async move {
                let _ = http_stop_rx.await;
            });
        let http_task = tokio::spawn(server.run());
        tracing::info!(%http_addr, nats = %nats_url, "dota-orchestrator is serving");

        Ok(Self {
            http_addr,
            nats_url,
            http_stop,
            http_closing,
            http_task,
            shutdown,
            activity,
            store_handle: store.weak(),
            fetchers,
            keeper,
            nats,
            embedded,
            fixture,
            gauges,
            team_watch,
        })
    }

    /// Where the HTTP API listens (the real port when 0 was asked for).
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The NATS server this instance uses.
    pub fn nats_url(&self) -> &str {
        &self.nats_url
    }

    /// Process ID of the embedded nats-server, when this instance runs one.
    pub fn embedded_nats_pid(&self) -> Option<u32> {
        self.embedded.as_ref().map(EmbeddedNats::pid)
    }

    /// The demo fixture upstream, when running with `--demo`.
    pub fn demo_upstream(&self) -> Option<&FixtureUpstream> {
        self.fixture.as_ref()
    }

    /// Graceful stop: no new requests, jobs in hand finish (ack or nak), the database is
    /// closed, the embedded nats-server flushes and exits. Queued jobs stay in JetStream.
    pub async fn stop(self) {
        let Self {
            http_stop,
            http_closing,
            mut http_task,
            shutdown,
            activity,
            store_handle,
            fetchers,
            keeper,
            nats,
            embedded,
            fixture,
            gauges,
            team_watch,
            ..
        } = self;
        let _ = http_closing.send(true);
        let _ = http_stop.send(());
        if tokio::time::timeout(STOP_TIMEOUT, &mut http_task)
            .await
            .is_err()
        {
            tracing::warn!("HTTP connections did not close in time; dropping them");
            http_task.abort();
        }
        // Addresses first: a fetcher that stops while someone still holds its address is
        // restarted by its Supervisor.
        let Fetchers {
            matches,
            players,
            player_stats,
            leagues,
            teams,
        } = fetchers;
        drop((matches, players, player_stats, leagues, teams));
        let _ = shutdown.send(true);
        let _ = gauges.await;
        let _ = team_watch.await;
        drop(keeper);
        wait_until(|| activity.busy() == 0, "jobs in hand to finish").await;
        wait_until(
            || store_handle.strong_count() == 0,
            "the database to be released",
        )
        .await;
        if let Err(err) = nats.flush().await {
            tracing::warn!(%err, "could not flush NATS on shutdown");
        }
        drop(nats);
        if let Some(server) = embedded {
            server.stop().await;
        }
        if let Some(fixture) = fixture {
            fixture.stop().await;
        }
        tracing::info!("stopped");
    }
}

async fn wait_until(done: impl Fn() -> bool, what: &str) {
    let deadline = tokio::time::Instant::now() + STOP_TIMEOUT;
    while !done() {
        if tokio::time::Instant::now() > deadline {
            tracing::warn!("gave up waiting for {what}");
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Re-queues every claim found in the database under a new generation (see [`RequeueAll`]),
/// so work queued before a stop or crash is done now, not after JetStream's ack wait.
async fn recover_claims(pipeline: &Pipeline) -> Result<(), AppError> {
    let jobs = pipeline
        .keeper
        .send(RequeueAll)
        .await
        .map_err(|e| AppError::Setup(e.to_string()))??;
    if !jobs.is_empty() {
        tracing::info!(count = jobs.len(), "re-queuing work left from the last run");
    }
    pipeline
        .publish_claimed(jobs)
        .await
        .map_err(|e| AppError::Setup(format!("re-queuing left-over work: {e}")))
}

async fn start_demo_upstream(
    dir: &std::path::Path,
    settings: &mut Settings,
) -> Result<FixtureUpstream, AppError> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .map_err(|source| AppError::Bind {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            source,
        })?;
    let upstream = FixtureUpstream::start(
        FixtureConfig {
            dir: dir.to_path_buf(),
            ..FixtureConfig::default()
        },
        listener,
    )
    .await?;
    settings.opendota_url = upstream.opendota_url();
    settings.dotabuff_url = upstream.dotabuff_url();
    tracing::info!(addr = %upstream.addr(), dir = %dir.display(), "demo mode: fixture upstream serving the bundled data set");
    Ok(upstream)
}
