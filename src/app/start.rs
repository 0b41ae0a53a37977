//! The start-up steps `Application::build` runs in order, one function each: the data
//! directory and recorder, the demo fixture upstream, the shared store, the rate limiter and
//! upstream clients, the job queue, re-queuing left-over claims, the replica, the fetchers and
//! the team watchers. NATS is in [`super::nats`], HTTP in [`super::serve`]. A step that starts
//! a background task starts it on the [`Tasks`] it is given; each returns what the running
//! application keeps.

#[cfg(feature = "fixture-upstream")]
use std::net::SocketAddr;
use std::sync::Arc;

use actix::{Addr, Supervisor};
use tokio_util::sync::CancellationToken;

use super::nats::instance_id;
use super::{AppError, Hooks, KINDS};
use crate::actors::fetcher::{FetchJobs, Fetcher};
use crate::actors::league_fetcher::{LeagueFetcher, LeagueJobs};
use crate::actors::league_history::HistorySources;
use crate::actors::match_fetcher::MatchFetcher;
use crate::actors::opendota_jobs::OpenDotaJobs;
use crate::actors::pipeline::Pipeline;
use crate::actors::player_fetcher::PlayerFetcher;
use crate::actors::player_stats_fetcher::PlayerStatsFetcher;
use crate::actors::rate_limiter::{LimiterBudget, RateLimiter, Snapshot};
use crate::actors::refresh_scheduler::{RefreshScheduler, Rules};
use crate::actors::store_bounds::{BoundsView, StoreUpkeep, UpkeepStatus};
use crate::actors::team_importer::{TeamImporter, TeamJobs};
use crate::actors::team_watch::{REPAIR_GRACE, TeamWatch};
use crate::bus::queue::{JobQueue, MAX_BATCH};
use crate::bus::subjects::QueueNames;
#[cfg(feature = "fixture-upstream")]
use crate::clock::Clock;
use crate::config::{Settings, StoreBackend};
#[cfg(feature = "fixture-upstream")]
use crate::fixture_upstream::{FixtureConfig, FixtureUpstream};
use crate::metrics::TaskName;
use crate::shared::SharedStore;
use crate::shared::mirror::Mirror;
use crate::tasks::Tasks;
use crate::upstream::budget::Budget;
use crate::upstream::budget::reserve::SpareBudget;
use crate::upstream::budget::shared::{EgressIdentity, SharedBudget, SharedBudgetConfig};
use crate::upstream::client::UpstreamClient;
use crate::upstream::dotabuff::Dotabuff;
use crate::upstream::in_flight::{InFlight, Lane};
use crate::upstream::opendota::OpenDota;
use crate::upstream::recorder::Recorder;

/// Creates the data directory (redb file, embedded NATS store, instance ID).
pub(super) fn data_dir(settings: &Settings) -> Result<(), AppError> {
    std::fs::create_dir_all(&settings.data_dir).map_err(|source| AppError::DataDir {
        path: settings.data_dir.clone(),
        source,
    })
}

/// With `--record-dir`, the recorder, once the directory proved writable. Before anything else
/// starts, so a wrong directory stops start-up at once.
pub(super) fn recorder(settings: &Settings) -> Result<Option<Recorder>, AppError> {
    let Some(dir) = &settings.record_dir else {
        return Ok(None);
    };
    let recorder = Recorder::open(dir)?;
    tracing::info!(dir = %dir.display(), "recording every accepted upstream answer");
    Ok(Some(recorder))
}

/// In demo mode, starts the fixture upstream over the demo data set on a free local port and
/// points both upstream URLs of `settings` at it. It reads `clock`, as the service's rate
/// limiter does.
#[cfg(feature = "fixture-upstream")]
pub(super) async fn demo_upstream(
    settings: &mut Settings,
    clock: &Clock,
) -> Result<Option<FixtureUpstream>, AppError> {
    let Some(dir) = settings.demo_data().map(std::path::Path::to_path_buf) else {
        return Ok(None);
    };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .map_err(|source| AppError::Bind {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            source,
        })?;
    let upstream = FixtureUpstream::start(
        FixtureConfig {
            dir: dir.to_path_buf(),
            clock: clock.clone(),
            ..FixtureConfig::default()
        },
        listener,
    )
    .await?;
    settings.opendota_url = upstream.opendota_url();
    settings.dotabuff_url = upstream.dotabuff_url();
    settings.sources.steam_url = upstream.steam_url();
    settings.sources.stratz_url = upstream.stratz_url();
    // The demo imports through Steam, as a user with a key would; the fixture takes any key.
    if settings.sources.steam_api_key.is_none() {
        settings.sources.steam_api_key = crate::config::SteamKey::new("demo".to_string());
    }
    tracing::info!(addr = %upstream.addr(), dir = %dir.display(), "demo mode: fixture upstream serving the bundled data set");
    Ok(Some(upstream))
}

/// Demo mode needs the fixture upstream, which this build left out.
#[cfg(not(feature = "fixture-upstream"))]
pub(super) fn no_demo(settings: &Settings) -> Result<(), AppError> {
    match settings.demo_data() {
        Some(_) => Err(AppError::DemoUnavailable),
        None => Ok(()),
    }
}

/// The upstream APIs, every call within one rate budget and its service's in-flight lane.
pub(super) struct Upstreams {
    pub limiter: Addr<RateLimiter>,
    /// With `--store nats`: the budget every instance shares (its counters feed the queue
    /// status).
    pub shared_budget: Option<SharedBudget>,
    pub in_flight: InFlight,
    pub opendota: OpenDota,
    pub dotabuff: Dotabuff,
    pub sources: HistorySources,
}

/// Starts the supervised RateLimiter on `hooks.clock` and the clients that wait on it, both
/// writing accepted answers to `recorder` when there is one. With `--store nats` (`shared`:
/// the JetStream context), every call is also counted against the budget every instance
/// shares, whose heartbeat runs on `tasks`.
pub(super) async fn upstreams(
    settings: &Settings,
    hooks: &Hooks,
    recorder: Option<Recorder>,
    shared: Option<async_nats::jetstream::Context>,
    tasks: &Tasks,
) -> Result<Upstreams, AppError> {
    let (limits, clock) = (settings.limits, hooks.clock.clone());
    let limiter = Supervisor::start(move |_| RateLimiter::new(limits, clock.clone()));
    let local: Arc<dyn Budget> = Arc::new(LimiterBudget::new(limiter.clone(), hooks.clock.clone()));
    let shared_budget = match shared {
        Some(js) => {
            let config = SharedBudgetConfig {
                limits,
                identity: EgressIdentity::of_api_key(settings.opendota_api_key.as_ref()),
                instance_id: instance_id(&settings.data_dir)?,
                replicas: usize::from(settings.nats_replicas),
                clock: hooks.clock.clone(),
            };
            Some(SharedBudget::start(js, local.clone(), config, tasks).await?)
        }
        None => None,
    };
    let budget = match &shared_budget {
        Some(shared) => Arc::new(shared.clone()) as Arc<dyn Budget>,
        None => local,
    };
    let in_flight = InFlight::new(settings.max_in_flight, limits.opendota_per_minute);
    let client =
        UpstreamClient::new(budget, in_flight.clone()).map_err(AppError::UpstreamClient)?;
    follow_budget(&in_flight, &limiter, tasks);
    Ok(Upstreams {
        limiter,
        shared_budget,
        in_flight,
        opendota: OpenDota::new(
            client.clone(),
            &settings.opendota_url,
            settings.opendota_api_key.clone(),
        )
        .recording(recorder.clone()),
        sources: HistorySources::new(&settings.sources, &client, recorder.clone()),
        dotabuff: Dotabuff::new(client, &settings.dotabuff_url).recording(recorder),
    })
}

/// Keeps the in-flight limits in step with the rate limiter until shutdown.
fn follow_budget(in_flight: &InFlight, limiter: &Addr<RateLimiter>, tasks: &Tasks) {
    let (in_flight, limiter, token) = (in_flight.clone(), limiter.clone(), tasks.token());
    tasks.spawn_restarting(TaskName::InFlight, move || {
        let limiter = limiter.clone();
        let read = move || {
            let limiter = limiter.clone();
            async move {
                let budgets = limiter.send(Snapshot).await.ok()?;
                Some(budgets.iter().map(|b| (b.service, b.grantable())).collect())
            }
        };
        in_flight.clone().refresh(read, token.clone())
    });
}

/// Which JetStream queue this instance takes from. The embedded server's queue is ours alone;
/// on a shared server this instance, with its private redb, gets a queue of its own (see
/// `QueueNames::private`); with the shared store every instance takes from one queue, since
/// any of them can finish any job.
pub(super) fn queue_names(
    settings: &Settings,
    shared_store: bool,
    embedded: bool,
) -> Result<QueueNames, AppError> {
    Ok(if shared_store || embedded {
        QueueNames::shared()
    } else {
        QueueNames::private(&instance_id(&settings.data_dir)?)
    })
}

/// Creates (or reuses) the job queue: its stream and one consumer per kind and priority.
pub(super) async fn queue(
    settings: &Settings,
    hooks: &Hooks,
    nats: &async_nats::Client,
    names: QueueNames,
) -> Result<JobQueue, AppError> {
    Ok(JobQueue::setup(
        nats.clone(),
        names,
        &KINDS,
        settings.retry.max_attempts,
        // Room for every job the lanes may run plus a batch held per priority.
        u32::try_from(settings.max_in_flight.max(settings.workers) * 2 + 2 * MAX_BATCH)
            .unwrap_or(u32::MAX),
        usize::from(settings.nats_replicas),
        hooks.job_ack_wait.unwrap_or(crate::bus::queue::ACK_WAIT),
    )
    .await?)
}

/// Addresses of the supervised fetchers; dropping them lets the actors stop at shutdown.
pub(super) struct Fetchers {
    pub matches: Addr<MatchFetcher>,
    pub players: Addr<PlayerFetcher>,
    pub player_stats: Addr<PlayerStatsFetcher>,
    pub leagues: Addr<LeagueFetcher>,
    pub teams: Addr<TeamImporter>,
}

impl Fetchers {
    /// Lets go of every address, so each actor stops once its dispatcher has wound down
    /// (an actor that stops while its address is held is restarted by its Supervisor).
    pub fn release(self) {
        let Self {
            matches,
            players,
            player_stats,
            leagues,
            teams,
        } = self;
        drop((matches, players, player_stats, leagues, teams));
    }
}

/// What every fetcher is started with.
struct Start<'a> {
    pipeline: &'a Pipeline,
    spare: &'a SpareBudget,
    shutdown: CancellationToken,
}

impl Start<'_> {
    fn fetcher<J: FetchJobs>(&self, jobs: J, lane: &Arc<Lane>) -> Addr<Fetcher<J>> {
        let (pipeline, lane, spare, shutdown) = (
            self.pipeline.clone(),
            lane.clone(),
            self.spare.clone(),
            self.shutdown.clone(),
        );
        Supervisor::start(move |_| {
            Fetcher::new(
                jobs,
                pipeline,
                lane.clone(),
                spare.clone(),
                shutdown.clone(),
            )
        })
    }
}

/// Starts one supervised fetcher per job kind. The OpenDota kinds share the OpenDota lane;
/// team imports have a fixed lane of `--workers`. Scheduled jobs start while `spare` is open.
pub(super) fn fetchers(
    settings: &Settings,
    upstreams: &Upstreams,
    pipeline: &Pipeline,
    spare: &SpareBudget,
    tasks: &Tasks,
) -> Fetchers {
    let start = Start {
        pipeline,
        spare,
        shutdown: tasks.token(),
    };
    let lane = upstreams.in_flight.lane(crate::domain::Service::OpenDota);
    let opendota = &upstreams.opendota;
    let teams = TeamJobs::new(
        settings,
        (upstreams.dotabuff.clone(), opendota.clone()),
        &upstreams.sources,
        pipeline.store.clone(),
        pipeline.keeper.clone(),
    );
    let leagues = LeagueJobs {
        opendota: opendota.clone(),
        history: teams.steam_history(),
    };
    Fetchers {
        matches: start.fetcher(OpenDotaJobs::new(opendota.clone()), lane),
        players: start.fetcher(OpenDotaJobs::new(opendota.clone()), lane),
        player_stats: start.fetcher(OpenDotaJobs::new(opendota.clone()), lane),
        leagues: start.fetcher(leagues, lane),
        // Their Dotabuff pages go one at a time anyway (its steady spacing); their OpenDota
        // calls take OpenDota call slots.
        teams: start.fetcher(teams, &Lane::fixed(settings.workers)),
    }
}

/// Starts the watch that publishes a team import's completion and, with `--auto-refresh`, the
/// refresh scheduler. Returns the refresh rules, which the API shows.
pub(super) fn watch_teams(
    settings: &Settings,
    hooks: &Hooks,
    pipeline: &Pipeline,
    tasks: &Tasks,
) -> Rules {
    let rules = Rules {
        team_ttl: settings.ttls.teams,
        track_days: settings.track_days,
    };
    if settings.auto_refresh {
        let scheduler = RefreshScheduler {
            store: pipeline.store.clone(),
            keeper: pipeline.keeper.clone(),
            pipeline: pipeline.clone(),
            rules,
        };
        let token = tasks.token();
        tasks.spawn_restarting(TaskName::RefreshScheduler, move || {
            scheduler.clone().run(token.clone())
        });
    }
    let watch = TeamWatch {
        store: pipeline.store.clone(),
        pipeline: pipeline.clone(),
        sides: settings.team_players,
        repair_grace: hooks.import_repair_grace.unwrap_or(REPAIR_GRACE),
    };
    let token = tasks.token();
    tasks.spawn_restarting(TaskName::TeamWatch, move || {
        watch.clone().run(token.clone())
    });
    rules
}

/// Starts the store's upkeep (request times always; `--store-max-gb` and `--retention-days`
/// when set; with `--store nats`, the shared pass when this instance holds its lease).
/// Returns what `GET /api/store` reads.
pub(super) fn store_upkeep(
    settings: &Settings,
    pipeline: &Pipeline,
    rules: Rules,
    shared: Option<SharedStore>,
    tasks: &Tasks,
) -> BoundsView {
    let status = Arc::new(UpkeepStatus::default());
    let shared_status = Arc::new(UpkeepStatus::default());
    let leading = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let upkeep = StoreUpkeep {
        store: pipeline.store.clone(),
        keeper: pipeline.keeper.clone(),
        bounds: settings.bounds,
        rules,
        status: status.clone(),
        shared: shared.clone(),
        shared_status: shared_status.clone(),
        leading: leading.clone(),
    };
    let token = tasks.token();
    tasks.spawn_restarting(TaskName::StoreUpkeep, move || {
        upkeep.clone().run(token.clone())
    });
    BoundsView {
        backend: if shared.is_some() { "nats" } else { "redb" },
        bounds: settings.bounds,
        status,
        shared,
        shared_status,
        leading,
    }
}

/// With `--store nats`: refuses a server older than 2.12 (naming the version found), then
/// opens the shared buckets. `None` with `--store redb`.
pub(super) async fn shared_store(
    settings: &Settings,
    hooks: &Hooks,
    nats: &async_nats::Client,
    url: &str,
) -> Result<Option<SharedStore>, AppError> {
    if settings.store != StoreBackend::Nats {
        return Ok(None);
    }
    settings.validate()?;
    crate::shared::check_server(nats, url)?;
    let shared = SharedStore::open(
        async_nats::jetstream::new(nats.clone()),
        usize::from(settings.nats_replicas),
        instance_id(&settings.data_dir)?,
        hooks
            .shared_tuning
            .with_lease_secs(settings.claim_lease_secs)
            .with_data_marker_ttl_secs(settings.data_marker_ttl_secs),
    )
    .await?;
    tracing::info!(
        replicas = settings.nats_replicas,
        instance = shared.instance(),
        "shared store on JetStream"
    );
    Ok(Some(shared))
}

/// With `--store nats`: starts the watch that keeps redb a replica of the shared store, and
/// the task that renews this instance's claims.
pub(super) fn replicate(shared: SharedStore, pipeline: &Pipeline, tasks: &Tasks) {
    let mirror = Mirror {
        shared: shared.clone(),
        replica: pipeline.keeper.clone().recipient(),
        store: pipeline.store.clone(),
    };
    let token = tasks.token();
    tasks.spawn_restarting(TaskName::Mirror, move || mirror.clone().run(token.clone()));
    let token = tasks.token();
    tasks.spawn_restarting(TaskName::Leases, move || {
        shared.clone().keep_leases(token.clone())
    });
}

/// Queues again the work left by the last run (see `StorePort::recover_claims`), so work
/// queued before a stop or crash is done now, not after JetStream's ack wait.
pub(super) async fn recover_claims(pipeline: &Pipeline) -> Result<(), AppError> {
    pipeline.recover().await.map_err(AppError::Requeue)
}
